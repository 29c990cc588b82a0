#!/usr/bin/env python3
"""File transfers for the WAN optimizer benchmark (Benchmarks/wanopt/run.sh).

serve PORT ZPORT    accept connections on PORT (the stream as it is) and ZPORT (a zstd stream, decompressed here
                    with `zstd -d`); read each to its end and answer "<sha256> <bytes>\\n" of what arrived
                    (decompressed), then close. One thread per connection; runs until killed.
send HOST PORT FILE [zstd]
                    send FILE (with `zstd`: the output of `zstd -1 -c FILE`, piped as it is produced), half-close,
                    read the answer; print the SHA-256 (shortened), the size and the time, and exit 0 only if the
                    server saw exactly FILE's bytes (both digests printed when not).
"""
import hashlib, socket, subprocess, sys, threading, time

BLOCK = 1 << 16


def handle(c, compressed):
    try:
        h, n = hashlib.sha256(), 0
        unzstd = None
        if compressed:
            unzstd = subprocess.Popen(["zstd", "-d", "-q", "-c"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            result = {}

            def drain():
                hh, nn = hashlib.sha256(), 0
                while True:
                    b = unzstd.stdout.read(BLOCK)
                    if not b:
                        break
                    hh.update(b)
                    nn += len(b)
                result["h"], result["n"] = hh, nn

            reader = threading.Thread(target=drain)
            reader.start()
        while True:
            b = c.recv(BLOCK)
            if not b:
                break
            if unzstd:
                unzstd.stdin.write(b)
            else:
                h.update(b)
                n += len(b)
        if unzstd:
            unzstd.stdin.close()
            reader.join()
            status = unzstd.wait()
            h, n = result["h"], result["n"]
            if status != 0:
                c.sendall(b"zstd-error 0\n")
                return
        c.sendall(f"{h.hexdigest()} {n}\n".encode())
        c.shutdown(socket.SHUT_WR)
    except OSError as e:
        print("server connection error:", e, flush=True)
    finally:
        c.close()


def listen(port, compressed):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, compressed), daemon=True).start()


def serve(port, zport):
    threading.Thread(target=listen, args=(zport, True), daemon=True).start()
    time.sleep(0.2)
    print("listening", port, zport, flush=True)
    listen(port, False)


def send(host, port, path, compressed):
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while True:
            b = f.read(BLOCK)
            if not b:
                break
            h.update(b)
            n += len(b)
    expected = f"{h.hexdigest()} {n}"
    start = time.monotonic()
    c = socket.create_connection((host, port), timeout=120)
    if compressed:
        z = subprocess.Popen(["zstd", "-1", "-q", "-c", path], stdout=subprocess.PIPE)
        source = z.stdout
    else:
        z, source = None, open(path, "rb")
    while True:
        b = source.read(BLOCK)
        if not b:
            break
        c.sendall(b)
    source.close()
    if z and z.wait() != 0:
        sys.exit("zstd -1 failed")
    c.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        b = c.recv(BLOCK)
        if not b:
            break
        answer += b
    c.close()
    got = answer.decode(errors="replace").strip()
    ok = got == expected
    if ok:
        print(f"sha256 {h.hexdigest()[:16]}.. {n} bytes: same at the server, {time.monotonic() - start:.2f} s", flush=True)
    else:
        print(f"sent {expected} got {got}: MISMATCH", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), sys.argv[4], len(sys.argv) > 5 and sys.argv[5] == "zstd")
    else:
        sys.exit(__doc__)
