#!/usr/bin/env python3
"""TCP transfer checker for the WAN optimizer tests.

serve PORT [GATE]   accept connections (one thread each); read to end of stream, answer
                    "<sha256> <bytes>\n" and then the bytes received, reversed in 64 KiB blocks.
                    With GATE, each connection reads nothing until the file GATE exists.
send HOST PORT BYTES SEED
                    send BYTES pseudo-random bytes (from SEED), half-close, read the answer; print
                    "sent <sha256> <bytes> got <sha256> <bytes> back <ok|mismatch>" and exit 0 only if the
                    server saw exactly what was sent and the bytes that came back are the expected ones.
"""
import hashlib, os, random, socket, sys, threading, time

BLOCK = 65536

def serve(port, gate):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    print("listening", port, flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, gate), daemon=True).start()

def handle(c, gate):
    try:
        if gate:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            while not os.path.exists(gate):
                time.sleep(0.05)
        h = hashlib.sha256()
        data = bytearray()
        while True:
            b = c.recv(BLOCK)
            if not b:
                break
            h.update(b)
            data += b
        reply = bytearray(f"{h.hexdigest()} {len(data)}\n".encode())
        for i in range(0, len(data), BLOCK):
            reply += data[i:i + BLOCK][::-1]
        c.sendall(reply)
        c.shutdown(socket.SHUT_WR)
        c.close()
    except OSError as e:
        print("server connection error:", e, flush=True)

def payload(n, seed):
    rnd = random.Random(seed)
    return rnd.randbytes(n)

def send(host, port, n, seed):
    data = payload(n, seed)
    c = socket.create_connection((host, port), timeout=60)
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        b = c.recv(BLOCK)
        if not b:
            break
        got += b
    line, _, back = bytes(got).partition(b"\n")
    expected_back = bytearray()
    for i in range(0, len(data), BLOCK):
        expected_back += data[i:i + BLOCK][::-1]
    sent = f"{hashlib.sha256(data).hexdigest()} {len(data)}"
    ok = line.decode(errors="replace") == sent and back == bytes(expected_back)
    print(f"sent {sent} got {line.decode(errors='replace')} back {'ok' if ok else 'mismatch'} ({len(back)} bytes)", flush=True)
    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
