#!/usr/bin/env python3
"""A fake upstream DNS server for the soak run (stdlib only, loopback only).

Answers every query with one A record (192.0.2.1, TTL 60) and silently drops a given
fraction of them, chosen at random. Prints the bound port on stdout, then serves until
killed. Usage: fake_upstream.py [--drop 0.05] [--port 0] [--seed 1]
"""
import argparse
import random
import signal
import socket
import struct
import sys


def answer(query):
    """The query echoed as a response with one A record, or None if unreadable."""
    if len(query) < 12:
        return None
    qid, flags, qd = struct.unpack(">HHH", query[:6])
    if qd != 1 or flags & 0x8000:
        return None
    i = 12
    while i < len(query) and query[i] != 0:
        if query[i] & 0xC0:
            return None
        i += 1 + query[i]
    end = i + 5
    if end > len(query):
        return None
    question = query[12:end]
    rflags = 0x8180 | (flags & 0x0100)  # QR, RD echoed, RA
    header = struct.pack(">HHHHHH", qid, rflags, 1, 1, 0, 0)
    rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1])
    return header + question + rr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--drop", type=float, default=0.05)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", args.port))
    print(sock.getsockname()[1], flush=True)
    received = dropped = 0
    try:
        while True:
            data, peer = sock.recvfrom(65535)
            received += 1
            if rng.random() < args.drop:
                dropped += 1
                continue
            reply = answer(data)
            if reply is not None:
                sock.sendto(reply, peer)
    except KeyboardInterrupt:
        pass
    finally:
        print("fake upstream: received %d, dropped %d" % (received, dropped), file=sys.stderr)


if __name__ == "__main__":
    main()
