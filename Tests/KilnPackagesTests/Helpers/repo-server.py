#!/usr/bin/env python3
"""A local repository server for KilnPackages tests. Serves ROOT on 127.0.0.1 at a free port (printed as the
first line of stdout), with Range support. The first path segment picks a behaviour for files under pool/:

  ok             serve normally
  notfound       404 for pool files
  hang           send headers and a few bytes of a pool file, then stall
  truncate-once  the first request for each pool file closes halfway; later ones (with Range) succeed
  truncate       every request for a pool file closes halfway
  flaky          the first request for each pool file gets 503

The rest of the path is relative to ROOT. The server stops by itself after --lifetime seconds, or when its parent
goes away, so a crashed test never leaves it running.
"""
import argparse
import http.server
import os
import signal
import re
import sys
import threading
import time

seen = set()
seen_lock = threading.Lock()


def first_time(key):
    with seen_lock:
        if key in seen:
            return False
        seen.add(key)
        return True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("repo-server: " + (fmt % args) + "\n")

    def do_GET(self):
        parts = self.path.split("?")[0].lstrip("/").split("/", 1)
        if len(parts) != 2:
            return self.fail(404)
        mode, rel = parts
        path = os.path.realpath(os.path.join(self.server.root, rel))
        if not path.startswith(self.server.root + os.sep) or not os.path.isfile(path):
            return self.fail(404)
        is_pool = "/pool/" in "/" + rel
        if is_pool and mode == "notfound":
            return self.fail(404)
        if is_pool and mode == "flaky" and first_time(("flaky", rel)):
            return self.fail(503)
        with open(path, "rb") as f:
            data = f.read()
        start = 0
        status = 200
        match = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.end_headers()
        if is_pool and mode == "hang":
            self.wfile.write(body[:16])
            self.wfile.flush()
            time.sleep(self.server.hang)
            self.close_connection = True
            return
        cut = (mode == "truncate") or (mode == "truncate-once" and first_time(("trunc", rel)))
        if is_pool and cut:
            self.wfile.write(body[: max(1, len(body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def fail(self, code):
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--lifetime", type=float, default=300)
    parser.add_argument("--hang", type=float, default=60)
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.root = os.path.realpath(args.root)
    server.hang = args.hang
    parent = os.getppid()
    print(server.server_address[1], flush=True)

    def watchdog():
        deadline = time.time() + args.lifetime
        while time.time() < deadline and os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    # The test runner may have SIGTERM blocked or ignored, and children inherit both: take it back.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()
