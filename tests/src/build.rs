//! Message builders: queries and answers made with `domain`'s `MessageBuilder`, header
//! tweaks, and the 2-byte TCP framing. The one set of builders of every harness (the
//! end-to-end tests, the core's tests, the simulation and the fuzz bodies).

use std::net::Ipv4Addr;

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::message_builder::{AdditionalBuilder, AnswerBuilder};
use domain::base::{Message, MessageBuilder, Name, Record, Serial, StaticCompressor, ToName, Ttl};
use domain::rdata::{AllRecordData, Soa, A};

/// Prefixes a message with its 2-byte TCP length.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

/// Strips the 2-byte TCP length prefix, checking that `bytes` is exactly one frame.
pub fn unframe(bytes: &[u8]) -> &[u8] {
    assert!(bytes.len() >= 2, "a TCP frame has a length prefix");
    let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    assert_eq!(len + 2, bytes.len(), "exactly one TCP frame");
    &bytes[2..]
}

/// The complete frames of a client's TCP stream, up to the first zero-length one (which
/// ends the connection), and whether there was one.
pub fn split_frames(stream: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while let [hi, lo, body @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        if len == 0 {
            return (frames, true);
        }
        let Some(msg) = body.get(..len) else {
            break;
        };
        frames.push(msg.to_vec());
        rest = &body[len..];
    }
    (frames, false)
}

/// A domain name from its presentation form (panics on a bad one).
pub fn name(s: &str) -> Name<Bytes> {
    s.parse()
        .unwrap_or_else(|e| panic!("bad domain name {s:?}: {e:?}"))
}

/// Builds a query. `edns = Some(size)` adds an OPT record (version 0).
pub fn query(qname: &str, rtype: Rtype, id: u16, rd: bool, edns: Option<u16>) -> Vec<u8> {
    query_full(qname, rtype, id, rd, edns, 0, Opcode::QUERY)
}

/// Builds a query with full control over EDNS version and opcode.
pub fn query_full(
    qname: &str,
    rtype: Rtype,
    id: u16,
    rd: bool,
    edns: Option<u16>,
    edns_version: u8,
    opcode: Opcode,
) -> Vec<u8> {
    query_wire(
        &name(qname),
        rtype,
        Class::IN,
        id,
        Flags {
            rd,
            cd: false,
            opcode,
        },
        edns.map(|size| (size, edns_version, false)),
    )
}

/// Header flags of a query built by [`query_wire`].
#[derive(Clone, Copy, Debug)]
pub struct Flags {
    pub rd: bool,
    pub cd: bool,
    pub opcode: Opcode,
}

/// A query for `qname` A with RD, any opcode, and an OPT (UDP size 1232) of this EDNS
/// version when `edns_version` is set.
pub fn query_with(qname: &str, id: u16, opcode: Opcode, edns_version: Option<u8>) -> Vec<u8> {
    let edns = edns_version.map(|_| 1232);
    query_full(
        qname,
        Rtype::A,
        id,
        true,
        edns,
        edns_version.unwrap_or(0),
        opcode,
    )
}

/// Builds a query for any name, type and class; `edns` is (UDP size, version, DO bit).
pub fn query_wire(
    qname: &impl ToName,
    qtype: Rtype,
    qclass: Class,
    id: u16,
    flags: Flags,
    edns: Option<(u16, u8, bool)>,
) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    let h = b.header_mut();
    h.set_id(id);
    h.set_rd(flags.rd);
    h.set_cd(flags.cd);
    h.set_opcode(flags.opcode);
    let mut q = b.question();
    q.push((qname, qtype, qclass)).expect("a question fits");
    let mut add = q.additional();
    if let Some((size, version, dnssec_ok)) = edns {
        add.opt(|o| {
            o.set_udp_payload_size(size);
            o.set_version(version);
            o.set_dnssec_ok(dnssec_ok);
            Ok(())
        })
        .expect("an OPT fits");
    }
    add.finish()
}

/// A query with two questions (QDCOUNT=2).
pub fn query_two_questions(id: u16) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(id);
    b.header_mut().set_rd(true);
    let mut q = b.question();
    q.push((&name("a.example."), Rtype::A, Class::IN)).unwrap();
    q.push((&name("b.example."), Rtype::A, Class::IN)).unwrap();
    q.finish()
}

/// A reply being built, its answer section next.
type ReplyBuilder = AnswerBuilder<StaticCompressor<Vec<u8>>>;

/// The start of an answer to `query`: its ID, RD and question, QR, AA and RA set. `None`
/// when `query` has no sole question.
fn start_reply(query: &[u8], rcode: Rcode) -> Option<(ReplyBuilder, Name<Bytes>, bool)> {
    let msg = Message::from_octets(query).ok()?;
    let owner = msg.sole_question().ok()?.qname().to_name::<Bytes>();
    let b = MessageBuilder::from_target(StaticCompressor::new(Vec::new())).ok()?;
    let mut ans = b.start_answer(&msg, rcode).ok()?;
    ans.header_mut().set_aa(true);
    ans.header_mut().set_ra(true);
    Some((ans, owner, msg.opt().is_some()))
}

/// Ends a reply, with an OPT when the query had one.
fn finish_reply(mut add: AdditionalBuilder<StaticCompressor<Vec<u8>>>, opt: bool) -> Vec<u8> {
    if opt {
        let _ = add.opt(|o| {
            o.set_udp_payload_size(4096);
            Ok(())
        });
    }
    add.finish().into_target()
}

/// An answer to `query` (same ID and question, QR=1, AA=1, RA=1) with `rcode` and one A
/// record per address for the question's name, and OPT if the query had one. `None`
/// when `query` is not a query with one question (fuzzed input). Records that do not
/// fit the 64 KiB limit are left out.
pub fn try_answer(query: &[u8], rcode: Rcode, ips: &[Ipv4Addr], ttl: u32) -> Option<Vec<u8>> {
    let (mut ans, owner, opt) = start_reply(query, rcode)?;
    for ip in ips {
        if ans.push((&owner, Class::IN, ttl, A::new(*ip))).is_err() {
            break;
        }
    }
    Some(finish_reply(ans.additional(), opt))
}

/// [`try_answer`] for a query that must be well formed.
pub fn answer(query: &[u8], rcode: Rcode, ips: &[Ipv4Addr], ttl: u32) -> Vec<u8> {
    try_answer(query, rcode, ips, ttl).expect("a query with one question")
}

/// A NOERROR [`answer`] with these addresses.
pub fn answer_a(query: &[u8], ips: &[Ipv4Addr], ttl: u32) -> Vec<u8> {
    answer(query, Rcode::NOERROR, ips, ttl)
}

/// `n` distinct A records 10.0.x.y for the question's name.
pub fn answer_many_a(query: &[u8], n: usize, ttl: u32) -> Vec<u8> {
    answer_a(query, &many_ips(n), ttl)
}

/// `n` distinct addresses 10.0.x.y (x = i / 256, y = i % 256).
pub fn many_ips(n: usize) -> Vec<Ipv4Addr> {
    (0..n)
        .map(|i| Ipv4Addr::new(10, 0, (i / 256) as u8, (i % 256) as u8))
        .collect()
}

/// An empty reply with `rcode` (AA and RA set).
pub fn answer_rcode(query: &[u8], rcode: Rcode) -> Vec<u8> {
    answer(query, rcode, &[], 0)
}

/// An upstream's reply to `query`: [`answer`] with TTL 300, TC as asked (AA is set, which
/// a server must not pass on).
pub fn upstream_reply(query: &[u8], rcode: Rcode, addrs: &[Ipv4Addr], tc: bool) -> Vec<u8> {
    let reply = answer(query, rcode, addrs, 300);
    if tc {
        with_tc(&reply)
    } else {
        reply
    }
}

/// NXDOMAIN with an SOA for `example.` in the authority section.
pub fn answer_nxdomain_soa(query: &[u8]) -> Vec<u8> {
    let (ans, _, opt) = start_reply(query, Rcode::NXDOMAIN).expect("a query with one question");
    let mut auth = ans.authority();
    let t = Ttl::from_secs;
    auth.push((
        &name("example."),
        Class::IN,
        900,
        Soa::new(
            name("ns1.example."),
            name("hostmaster.example."),
            Serial(2024010101),
            t(3600),
            t(600),
            t(86400),
            t(300),
        ),
    ))
    .unwrap();
    finish_reply(auth.additional(), opt)
}

/// An owned A record with TTL 60, for building answers by hand.
pub fn a_record(owner: &str, addr: Ipv4Addr) -> names_core::Rr {
    Record::new(
        name(owner),
        Class::IN,
        Ttl::from_secs(60),
        AllRecordData::A(A::new(addr)),
    )
}

/// Copy of `msg` with the TC bit set.
pub fn with_tc(msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[2] |= 0x02;
    m
}

/// Copy of `msg` with the ID replaced.
pub fn with_id(msg: &[u8], id: u16) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[..2].copy_from_slice(&id.to_be_bytes());
    m
}

/// A raw 12-byte header with the given fields.
pub fn raw_header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    for x in [id, flags, qd, an, ns, ar] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v
}

/// A reply to `query` (its ID, RD and question; QR and RA set) with `rcode`, the AA bit as
/// given and these sections, and OPT if the query had one: an authoritative server's
/// answer, referral or negative answer, built by hand.
pub fn reply_sections(
    query: &[u8],
    rcode: Rcode,
    aa: bool,
    [answer, authority, additional]: [&[names_core::Rr]; 3],
) -> Vec<u8> {
    let (mut ans, _, opt) = start_reply(query, rcode).expect("a query with one question");
    ans.header_mut().set_aa(aa);
    for rr in answer {
        ans.push(rr).expect("fits");
    }
    let mut auth = ans.authority();
    for rr in authority {
        auth.push(rr).expect("fits");
    }
    let mut add = auth.additional();
    for rr in additional {
        add.push(rr).expect("fits");
    }
    finish_reply(add, opt)
}

#[cfg(test)]
mod tests {
    use crate::*;
    use std::net::Ipv4Addr;

    #[test]
    fn query_roundtrip_keeps_case_and_flags() {
        let q = query("WwW.Example.COM", Rtype::AAAA, 0xabcd, false, Some(1232));
        let p = parse(&q);
        assert_eq!(p.id, 0xabcd);
        assert!(!p.qr && !p.rd);
        assert_eq!(p.question, Some(("WwW.Example.COM".into(), 28)));
        assert!(p.has_opt);
        assert_eq!(p.opt_udp_size, Some(1232));
        assert_eq!(p.opt_version, Some(0));
    }

    #[test]
    fn answers_and_rcodes() {
        let q = query("a.example", Rtype::A, 7, true, None);
        let ips = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
        let a = parse(&answer_a(&q, &ips, 60));
        assert!(a.qr && a.aa && a.ra && a.rd && !a.tc);
        assert_eq!((a.id, a.rcode), (7, 0));
        assert_eq!(a.a_addrs(), ips.to_vec());
        assert_eq!(a.answers[0].ttl, 60);
        assert_eq!(a.answers[0].owner, "a.example");
        assert!(parse(&with_tc(&answer_a(&q, &[], 1))).tc);
        assert_eq!(parse(&answer_rcode(&q, Rcode::SERVFAIL)).rcode, 2);
        let nx = parse(&answer_nxdomain_soa(&q));
        assert_eq!((nx.rcode, nx.authority.len()), (3, 1));
        let big = answer_many_a(&q, 130, 300);
        assert!(big.len() > 2000, "{}", big.len());
        assert_eq!(parse(&big).answers.len(), 130);
        let v1 = query_full("a.example", Rtype::A, 1, true, Some(512), 1, Opcode::STATUS);
        let p = parse(&v1);
        assert_eq!((p.opcode, p.opt_version), (2, Some(1)));
        assert_eq!(parse(&query_two_questions(3)).qdcount, 2);
        assert!(try_parse(&[1, 2, 3]).is_err());
        let mut bad = raw_header(1, 0x0100, 1, 0, 0, 0);
        bad.extend_from_slice(&[7, b'x']);
        assert!(try_parse(&bad).is_err());
    }
}
