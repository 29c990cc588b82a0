#!/usr/bin/env python3
"""Sends raw Ethernet frames on an interface (run inside a test namespace).

frames.py IFACE DST SRC VID ETHERTYPE COUNT
  DST/SRC: aa:bb:cc:dd:ee:ff, or 'random' for a random locally administered unicast source per frame.
  VID: an 802.1Q VLAN id to tag with, or '-' for untagged.
"""
import os
import socket
import struct
import sys


def mac(text):
    if text == "random":
        b = bytearray(os.urandom(6))
        b[0] = (b[0] & 0xFC) | 0x02
        return bytes(b)
    return bytes(int(x, 16) for x in text.split(":"))


def main():
    iface, dst, src, vid, ethertype, count = sys.argv[1:7]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for i in range(int(count)):
        frame = mac(dst) + mac(src)
        if vid != "-":
            frame += struct.pack("!HH", 0x8100, int(vid))
        frame += struct.pack("!H", int(ethertype, 0)) + struct.pack("!I", i)
        frame += bytes(max(0, 60 - len(frame)))
        s.send(frame)
    print(count)


main()
