#!/usr/bin/env python3
"""A hostile peer for the WAN optimizer's channel: authenticates with the real key (connector role), sends
broken and forged frames, then carries one good flow to HOST:PORT (a tcpcheck.py server) and checks the
answer. Exit 0 only if the good flow came back intact.  Usage: hostile.py PEER PEERPORT KEYFILE HOST PORT"""
import hashlib, hmac, os, socket, struct, sys

LABEL = b"kiln-wanopt channel v1"
HELLO, AUTH, OPEN, DATA, CLOSE, WINDOW, RESET = 1, 2, 3, 4, 5, 6, 7

def frame(t, flow, payload=b""):
    return struct.pack(">BII", t, flow, len(payload)) + payload

def read_frame(s, buf):
    while len(buf) < 9 or len(buf) < 9 + struct.unpack(">I", bytes(buf[5:9]))[0]:
        b = s.recv(65536)
        if not b:
            raise SystemExit("peer closed the channel")
        buf += b
    t, flow, n = struct.unpack(">BII", bytes(buf[:9]))
    payload = bytes(buf[9:9 + n])
    del buf[:9 + n]
    return t, flow, payload

def open_payload(dst, dport, src, sport):
    return bytes([4]) + socket.inet_aton(dst) + struct.pack(">H", dport) + socket.inet_aton(src) + struct.pack(">H", sport)

def main():
    peer, peer_port, key_file, host, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    key = open(key_file, "rb").read().strip()
    s = socket.create_connection((peer, peer_port), timeout=30)
    buf = bytearray()
    ours = os.urandom(32)
    s.sendall(frame(HELLO, 0, bytes([1, 0]) + ours))  # version 1, pass-through codec
    t, _, p = read_frame(s, buf)
    assert t == HELLO, t
    theirs = p[2:]
    s.sendall(frame(AUTH, 0, hmac.new(key, LABEL + b"C" + theirs + ours, hashlib.sha256).digest()))
    t, _, p = read_frame(s, buf)
    assert t == AUTH and hmac.compare_digest(p, hmac.new(key, LABEL + b"A" + ours + theirs, hashlib.sha256).digest()), "bad proof"
    me = s.getsockname()[0]
    bad = b"".join([
        frame(DATA, 99, b"no such flow"),
        frame(OPEN, 2, open_payload(host, port, me, 1000)),          # even id: the acceptor's numbering
        frame(OPEN, 3, bytes([4, 10, 2, 0])),                         # truncated
        frame(77, 5, b"??"),                                          # unknown type
        frame(OPEN, 7, open_payload(host, port, me, 1001)),
        frame(WINDOW, 7, struct.pack(">I", 0)),                       # zero window update
        frame(OPEN, 9, open_payload(host, port, me, 1002)),
        frame(OPEN, 9, open_payload(host, port, me, 1003)),           # id in use
    ])
    s.sendall(bad)
    data = os.urandom(100_000)
    s.sendall(frame(OPEN, 11, open_payload(host, port, me, 1004)) + frame(DATA, 11, data) + frame(CLOSE, 11))
    got = bytearray()
    resets = []
    while True:
        t, flow, p = read_frame(s, buf)
        if t == RESET:
            resets.append((flow, p.decode(errors="replace")))
            if flow == 11:
                raise SystemExit(f"good flow reset: {p!r}")
        elif flow == 11 and t == DATA:
            got += p
            s.sendall(frame(WINDOW, 11, struct.pack(">I", len(p))))
        elif flow == 11 and t == CLOSE:
            break
    line, _, back = bytes(got).partition(b"\n")
    expected = b"".join(data[i:i + 65536][::-1] for i in range(0, len(data), 65536))
    ok = line.decode() == f"{hashlib.sha256(data).hexdigest()} {len(data)}" and back == expected
    print("resets:", resets)
    print("good flow", "ok" if ok else "mismatch")
    sys.exit(0 if ok else 1)

main()
