#!/usr/bin/env python3
"""Extracts a stream of concatenated newc cpio archives (as the kernel reads an initramfs) into a directory.
GNU cpio stops at the first TRAILER!!!; the kernel, and this, keep going. Device nodes are skipped."""
import os, stat, sys

data, root = sys.stdin.buffer.read(), sys.argv[1]
pos = 0
while pos + 110 <= len(data):
    if data[pos:pos + 6] != b"070701":
        pos += 1  # padding between archives
        continue
    fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
    mode, filesize, namesize = fields[1], fields[6], fields[11]
    name_start = pos + 110
    name = data[name_start:name_start + namesize - 1].decode()
    body = (name_start + namesize + 3) & ~3
    content = data[body:body + filesize]
    pos = (body + filesize + 3) & ~3
    if name == "TRAILER!!!" or name == ".":
        continue
    path = os.path.join(root, name.lstrip("/"))
    if stat.S_ISDIR(mode):
        os.makedirs(path, exist_ok=True)
    elif stat.S_ISLNK(mode):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(content.decode(), path)
    elif stat.S_ISREG(mode):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
        os.chmod(path, mode & 0o7777)
