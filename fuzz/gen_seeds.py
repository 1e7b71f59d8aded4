#!/usr/bin/env python3
"""Writes the hand-made part of the seed corpora in fuzz/seeds/<target>/ (stdlib only).

Run from anywhere: python3 fuzz/gen_seeds.py. Files are named gen-*; files named
min-* were picked from a fuzzing run, crash-* are regressions.
"""
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def name(n):
    out = b""
    for label in n.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(id_=0x1234, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return struct.pack(">HHHHHH", id_, flags, qd, an, ns, ar)


def opt(size=1232, version=0, do=False, rdata=b""):
    ttl = (version << 16) | (0x8000 if do else 0)
    return b"\0" + struct.pack(">HHIH", 41, size, ttl, len(rdata)) + rdata


def query(qname="www.example.com", qtype=1, qclass=1, id_=0x1234, flags=0x0100, edns=None, extra=b"", ar=None):
    rr = b""
    if edns is not None:
        rr = opt(*edns) if isinstance(edns, tuple) else opt(edns)
    count = ar if ar is not None else (1 if rr else 0)
    return header(id_, flags, 1, 0, 0, count) + name(qname) + struct.pack(">HH", qtype, qclass) + rr + extra


def frame(m):
    return struct.pack(">H", len(m)) + m


def write(target, label, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "gen-" + label), "wb") as f:
        f.write(data)


DATAGRAMS = {
    "a": query(),
    "a-edns": query(edns=4096),
    "a-edns-small": query(edns=100),
    "a-do": query(edns=(1232, 0, True)),
    "badvers": query(edns=(1232, 1, False)),
    "notimp": query(flags=0x1100),
    "qd2": header(qd=2) + name("a.b") + b"\0\1\0\1" + name("c.d") + b"\0\1\0\1",
    "qd0": header(qd=0),
    "qr": query(flags=0x8100),
    "short": b"\x12\x34\x01",
    "synth": query("host7.example.com"),
    "synth-mixed": query("HoSt255.Example.COM"),
    "synth-out": query("host256.example.com"),
    "any": query(qtype=255),
    "txt-ch": query("version.bind", 16, 3),
    "loop": header() + b"\xc0\x0c\0\1\0\1",
    "truncated-q": header() + b"\x03www\x07exam",
    "two-opt": query(edns=1232, extra=opt(), ar=2),
    "opt-options": query(edns=(1232, 0, False, b"\0\x0a\0\x08" + b"abcdefgh")),
    "bad-ar": query(ar=3),
    "root": query("", 2),
    "long-name": query(".".join(["a" * 63] * 3 + ["b" * 61])),
    "cd": query(flags=0x0110),
    "no-rd": query(flags=0x0000),
}


def main():
    for label, d in DATAGRAMS.items():
        write("client_datagram", label, d)
    streams = {
        "one": frame(query()),
        "three": frame(query(id_=1)) + frame(query("host1.x", id_=2)) + frame(query(qtype=28, id_=3)),
        "pipelined-10": b"".join(frame(query("host%d.x" % i, id_=i)) for i in range(10)),
        "forwarded-8": b"".join(frame(query("n%d.example" % i, id_=i)) for i in range(8)),
        "empty-frame": frame(query()) + b"\0\0" + frame(query(id_=9)),
        "long-prefix": b"\x10\x00" + query(),
        "half": frame(query())[:7],
        "garbage": frame(b"\xff" * 30) + frame(query(id_=5)),
        "notimp": frame(query(flags=0x2100)),
        "qr": frame(query(flags=0x8100)) + frame(query(id_=77)),
        "big-edns": frame(query(edns=65535)),
    }
    for i, (label, s) in enumerate(streams.items()):
        write("tcp_stream", label, bytes([i, (i * 37) & 0xFF]) + s)
    # Issue 10: the first byte picks a stalled reader (bit 1), a half-close (bit 2), a
    # 200-byte buffering limit (bit 3) and a flood from the client's address (bit 4);
    # bit 0 answers the upstream queries.
    client_side = {
        "stall-limit-30": (0b1010, b"".join(frame(query("host%d.x" % i, id_=i)) for i in range(30))),
        "half-close-mixed": (0b0101, frame(query("n1.example", id_=1)) + frame(query("host2.x", id_=2)) + frame(query("host3.x", id_=3))[:9]),
        "stall-half-close": (0b1110, b"".join(frame(query("host%d.x" % i, id_=i)) for i in range(12))),
        "stall-forwarded": (0b1011, b"".join(frame(query("n%d.example" % i, id_=i)) for i in range(10))),
        "flood": (0b10001, b"".join(frame(query("host%d.x" % i, id_=i)) for i in range(5))),
    }
    for label, (flags, s) in client_side.items():
        write("tcp_stream", label, bytes([flags, 0x5A]) + s)

    qsec = name("wWw.Example.COM") + b"\0\1\0\1"
    a_rr = b"\xc0\x0c\0\1\0\1\0\0\x0e\x10\0\x04\xc0\0\2\1"
    cname_rr = b"\xc0\x0c\0\5\0\1\0\0\x0e\x10\0\x06\x03abc\xc0\x10"
    soa_rr = (b"\xc0\x10\0\x06\0\1\0\0\x0e\x10\0\x22\x02ns\xc0\x10\x02hm\xc0\x10"
              + struct.pack(">IIIII", 1, 2, 3, 4, 5))
    ups = {
        # shape 0: raw bytes
        "raw-empty": b"\0",
        "raw-answer": b"\0" + header(0, 0x8180, 1, 1) + qsec + a_rr,
        # shape 1: ID spliced in
        "id-answer": b"\1" + header(0, 0x8180, 1, 1) + qsec + a_rr,
        "id-answer-tcp-client": b"\5" + header(0, 0x8180, 1, 1) + qsec + a_rr + opt(),
        "id-wrong-q": b"\1" + header(0, 0x8180, 1, 1) + name("other.example") + b"\0\1\0\1",
        # shape 2: header + question from the query, then records
        "rec-a": b"\2" + bytes([0x81, 0x80, 1, 0, 0]) + a_rr,
        "rec-many": b"\x0a" + bytes([0x81, 0x80, 3, 1, 1]) + a_rr + cname_rr + a_rr + soa_rr + opt(),
        "rec-tc": b"\2" + bytes([0x83, 0x80, 0, 0, 0]),
        "rec-tc-then": b"\x0e" + bytes([0x83, 0x80, 1, 0, 0]) + a_rr,
        "rec-servfail": b"\2" + bytes([0x81, 0x82, 0, 0, 0]),
        "rec-nxdomain-soa": b"\x0a" + bytes([0x81, 0x83, 0, 1, 0]) + soa_rr,
        "rec-bad-rdlen": b"\2" + bytes([0x81, 0x80, 1, 0, 0]) + a_rr[:-3] + b"\xff\xff",
        "rec-pointer-loop": b"\2" + bytes([0x81, 0x80, 1, 0, 0]) + b"\xc0\x1d\0\1\0\1\0\0\0\1\0\4\1\2\3\4",
        "rec-ext-rcode": b"\x0a" + bytes([0x81, 0x80, 0, 0, 1]) + b"\0\0\x29\x04\xd0\x01\0\0\0\0\0",
        # shape 3: from a wrong address
        "spoof-a": b"\3" + bytes([0x81, 0x80, 1, 0, 0]) + a_rr,
        "spoof-tcp-client": b"\x0f" + bytes([0x81, 0x80, 1, 0, 0]) + a_rr,
        # bit 4 one upstream, bit 5 first try lost, bits 6-7 the TCP style (after TC=1):
        # 1 a frame with rcode [SERVFAIL, REFUSED, NOTIMP, FORMERR, NOERROR][body[0] % 5],
        # the reply's frame, then the body raw, in one read; 2 the same in small reads;
        # 3 a zero-length frame then garbage (body[0] even) or the reply's frame repeated
        "tcp-zero-length-then-endless": b"\xf2" + bytes([0, 0, 0, 0, 0]),
        "tcp-endless-frames": b"\xf2" + bytes([1, 0, 0, 0, 0]),
        "tcp-formerr-split": b"\xb2" + bytes([3, 0, 0, 0, 0, 7]),
        "tcp-refused-then-frame-edns": b"\x7a" + bytes([1, 0, 0, 0, 0]),
        "tcp-notimp-two-upstreams": b"\x62" + bytes([2, 0, 0, 0, 0, 0, 0]),
    }
    for label, d in ups.items():
        write("upstream_reply", label, d)

    zones = {
        "basic": "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n"
                 "@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\nwww AAAA 2001:db8::1\n",
        "no-origin": "example.org. 60 IN SOA ns.example.org. h.example.org. 7 1 2 3 4\n"
                     "www 60 IN CNAME example.org.\n@ 60 IN MX 10 mail\nmail 60 IN A 10.0.0.1\n",
        "wildcard": "$ORIGIN w.test.\n@ SOA a b 1 2 3 4 5\n* TXT \"wild\" \"card\"\nsub NS ns.other.\n",
        "parens": "$ORIGIN p.test.\n@ IN SOA ns hm (\n 1 ; serial\n 2 3 4 5 )\n@ TXT \"a;b\"\n",
        "include": "$ORIGIN i.test.\n@ SOA a b 1 2 3 4 5\n$INCLUDE other.zone\n",
        "rfc3597": "$ORIGIN u.test.\n@ SOA a b 1 2 3 4 5\nx TYPE65280 \\# 3 010203\n",
        "two-soa": "$ORIGIN d.test.\n@ SOA a b 1 2 3 4 5\n@ SOA a b 2 2 3 4 5\n",
        "no-soa": "$ORIGIN n.test.\nwww A 1.2.3.4\n",
        "cname-chain": "$ORIGIN c.test.\n@ SOA a b 1 2 3 4 5\na CNAME b\nb CNAME c\nc CNAME a\n",
        "srv-ptr": "$ORIGIN s.test.\n@ SOA a b 1 2 3 4 5\n_sip._udp SRV 0 5 5060 sip\n"
                   "1 PTR host.s.test.\nsip A 10.1.1.1\n",
        "mixed-case": "$ORIGIN MiXed.Test.\n@ SOA A B 1 2 3 4 5\nWwW A 10.0.0.9\n",
        "bad-class": "$ORIGIN b.test.\n@ IN SOA a b 1 2 3 4 5\nx CH A 1.2.3.4\n",
        "long-txt": "$ORIGIN t.test.\n@ SOA a b 1 2 3 4 5\nwww TXT " + " ".join(['"%s"' % ("x" * 200)] * 30) + "\n",
        "garbage": "\x00\xff$ORIGIN\n@@@ SOA\n((((\n",
    }
    for label, text in zones.items():
        write("zonefile", label, text.encode("latin-1"))

    rng = random.Random(5)
    for i in range(24):
        n = rng.choice([16, 64, 128, 256, 512, 1024])
        write("structured", "random-%02d" % i, bytes(rng.randrange(256) for _ in range(n)))


if __name__ == "__main__":
    main()
