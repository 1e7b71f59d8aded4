//! Malformed and unusual queries: silence, FORMERR, NOTIMP, BADVERS, TC.

use std::net::Ipv4Addr;
use std::time::Duration;

use names_tests::*;

use crate::{start, upstream_args};

const QUIET: Duration = Duration::from_millis(300);

fn synth_server() -> Server {
    Server::start(&["--synth", "workstation=172.0.2", "--no-forward"])
}

fn assert_still_answers(c: &UdpClient) {
    c.send(&query("workstation1.lan", Rtype::A, 0x0101, true, None));
    let r = c
        .recv(Duration::from_secs(5))
        .expect("server must still answer normal queries");
    let r = parse(&r);
    assert_eq!(r.id, 0x0101);
    assert_eq!(r.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 1)]);
}

#[test]
fn response_header_gets_no_reply() {
    let srv = synth_server();
    let c = UdpClient::new(srv.udp_addr());
    // bare 12-byte header with QR=1
    c.send(&raw_header(0x1111, 0x8000, 0, 0, 0, 0));
    assert_eq!(c.recv(QUIET), None, "a QR=1 header must not be answered");
    // a complete message with QR=1
    let mut resp = query("workstation2.lan", Rtype::A, 0x1112, true, None);
    resp[2] |= 0x80;
    c.send(&resp);
    assert_eq!(c.recv(QUIET), None, "a QR=1 message must not be answered");
    assert_still_answers(&c);
}

#[test]
fn short_garbage_gets_no_reply() {
    let srv = synth_server();
    let c = UdpClient::new(srv.udp_addr());
    c.send(&[0x13, 0x37, 0xde, 0xad, 0x42]);
    assert_eq!(c.recv(QUIET), None, "5 bytes must not be answered");
    c.send(&[]);
    assert_eq!(
        c.recv(QUIET),
        None,
        "an empty datagram must not be answered"
    );
    c.send(&raw_header(0x2222, 0x0100, 1, 0, 0, 0)[..11]);
    assert_eq!(c.recv(QUIET), None, "11 bytes must not be answered");
    assert_still_answers(&c);
}

#[test]
fn two_questions_formerr() {
    let srv = synth_server();
    let r = udp_ask(srv.udp_addr(), &query_two_questions(0x2020));
    assert_eq!(r.id, 0x2020);
    assert!(r.qr);
    assert_eq!(r.rcode, 1, "QDCOUNT=2 must give FORMERR: {r:?}");
    assert!(r.answers.is_empty());
}

#[test]
fn zero_questions_formerr() {
    let srv = synth_server();
    let r = udp_ask(srv.udp_addr(), &raw_header(0x2021, 0x0100, 0, 0, 0, 0));
    assert_eq!(r.id, 0x2021);
    assert!(r.qr);
    assert_eq!(r.rcode, 1, "QDCOUNT=0 must give FORMERR: {r:?}");
}

#[test]
fn two_questions_formerr_over_tcp() {
    let srv = synth_server();
    let r = tcp_ask(srv.tcp_addr(), &query_two_questions(0x2022));
    assert_eq!((r.id, r.rcode), (0x2022, 1), "{r:?}");
}

#[test]
fn status_opcode_notimp() {
    let srv = synth_server();
    let q = query_full(
        "workstation1.lan",
        Rtype::A,
        0x0202,
        true,
        None,
        0,
        Opcode::STATUS,
    );
    let r = udp_ask(srv.udp_addr(), &q);
    assert_eq!(r.id, 0x0202);
    assert!(r.qr, "QR must be set");
    assert_eq!(r.opcode, 2, "opcode must be echoed");
    assert_eq!(r.rcode, 4, "expected NOTIMP: {r:?}");
    assert!(r.answers.is_empty());
}

#[test]
fn garbage_body_formerr() {
    let srv = synth_server();
    // header says one question, body is a truncated label
    let mut m = raw_header(0x3333, 0x0100, 1, 0, 0, 0);
    m.extend_from_slice(&[0x07, b'e', b'x', b'a']);
    let r = udp_ask(srv.udp_addr(), &m);
    assert_eq!(r.id, 0x3333);
    assert!(r.qr);
    assert_eq!(r.rcode, 1, "unparsable body must give FORMERR: {r:?}");

    // reserved label type 0x40
    let mut m = raw_header(0x3334, 0x0100, 1, 0, 0, 0);
    m.extend_from_slice(&[0x41, b'x', 0x00, 0x00, 0x01, 0x00, 0x01]);
    let r = udp_ask(srv.udp_addr(), &m);
    assert_eq!((r.id, r.rcode), (0x3334, 1), "{r:?}");

    // compression pointer loop
    let mut m = raw_header(0x3335, 0x0100, 1, 0, 0, 0);
    m.extend_from_slice(&[0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01]);
    let r = udp_ask(srv.udp_addr(), &m);
    assert_eq!((r.id, r.rcode), (0x3335, 1), "{r:?}");

    // valid question, but ARCOUNT claims a record that is not there
    let mut m = query("workstation1.lan", Rtype::A, 0x3336, true, None);
    m[11] = 1;
    let r = udp_ask(srv.udp_addr(), &m);
    assert_eq!((r.id, r.rcode), (0x3336, 1), "{r:?}");
}

#[test]
fn edns_version_1_badvers() {
    let srv = synth_server();
    let q = query_full(
        "workstation1.lan",
        Rtype::A,
        0x0bad,
        true,
        Some(1232),
        1,
        Opcode::QUERY,
    );
    let r = udp_ask(srv.udp_addr(), &q);
    assert_eq!(r.id, 0x0bad);
    assert!(r.has_opt, "BADVERS needs an OPT record");
    assert_eq!(r.rcode, 16, "expected BADVERS (16): {r:?}");
    assert_eq!(r.opt_version, Some(0), "reply OPT version must be 0");
    assert!(r.answers.is_empty());
}

fn huge_upstream() -> FakeUpstream {
    // 130 A records: about 2100 bytes
    FakeUpstream::start(|r| vec![Reply::Send(answer_many_a(&r.bytes, 130, 300))])
}

#[test]
fn edns_4096_capped_at_1232() {
    let up = huge_upstream();
    let srv = start(&upstream_args(&[&up], &[]));
    let q = query("huge.example.com", Rtype::A, 0x4096, true, Some(4096));
    let raw = udp_exchange(srv.udp_addr(), &q, Duration::from_secs(5)).expect("UDP reply");
    let r = parse(&raw);
    assert_eq!(r.id, 0x4096);
    assert!(r.tc, "a ~2000-byte answer must be truncated at 1232: {r:?}");
    assert!(raw.len() <= 1232, "reply is {} bytes", raw.len());
    assert!(r.has_opt);
    // over TCP the whole answer comes back
    let r = tcp_ask(srv.tcp_addr(), &q);
    assert!(!r.tc);
    assert_eq!(r.answers.len(), 130);
}

#[test]
fn edns_small_size_counts_as_512() {
    let up = FakeUpstream::start(|r| {
        let p = r.parsed();
        let n = if p.question.unwrap().0.starts_with("big") {
            60
        } else {
            5
        };
        vec![Reply::Send(answer_many_a(&r.bytes, n, 300))]
    });
    let srv = start(&upstream_args(&[&up], &[]));
    // a small answer fits even though the client advertised 100
    let q = query("small.example.com", Rtype::A, 0x0100, true, Some(100));
    let raw = udp_exchange(srv.udp_addr(), &q, Duration::from_secs(5)).expect("UDP reply");
    let r = parse(&raw);
    assert!(raw.len() > 100, "test premise: reply bigger than 100 bytes");
    assert!(!r.tc, "advertised < 512 counts as 512: {r:?}");
    assert_eq!(r.answers.len(), 5);
    // ~1000 bytes exceed 512
    let q = query("big.example.com", Rtype::A, 0x0101, true, Some(100));
    let raw = udp_exchange(srv.udp_addr(), &q, Duration::from_secs(5)).expect("UDP reply");
    let r = parse(&raw);
    assert!(r.tc, "{r:?}");
    assert!(raw.len() <= 512, "reply is {} bytes", raw.len());
}

/// Audit (RFC nits): error replies to a query with an OPT carry one (RFC 6891 6.1.1); an
/// OPT in the wrong section and bytes after the message are FORMERR; meta types are
/// FORMERR as Unbound answers them, checked with the real dig too.
#[test]
fn rfc_strictness_of_error_replies_and_meta_types() {
    let srv = synth_server();
    let status = query_full(
        "workstation1.lan",
        Rtype::A,
        0x0404,
        true,
        Some(1232),
        0,
        Opcode::STATUS,
    );
    let r = udp_ask(srv.udp_addr(), &status);
    assert_eq!((r.rcode, r.has_opt), (4, true), "NOTIMP with an OPT: {r:?}");

    let mut trailing = query("workstation1.lan", Rtype::A, 0x0405, true, Some(1232));
    trailing.extend_from_slice(b"junk");
    let r = udp_ask(srv.udp_addr(), &trailing);
    assert_eq!((r.id, r.rcode, r.has_opt), (0x0405, 1, true), "{r:?}");

    let good = query("workstation1.lan", Rtype::A, 0x0406, true, Some(1232));
    let mut in_answer = good.clone();
    in_answer[7] = 1; // the OPT counted as an answer record
    in_answer[11] = 0;
    let r = udp_ask(srv.udp_addr(), &in_answer);
    assert_eq!((r.id, r.rcode), (0x0406, 1), "{r:?}");

    for qtype in ["TYPE250", "TYPE249", "TYPE41", "TYPE200", "MAILB"] {
        let out = dig_at(srv.udp_addr(), &["workstation1.lan", qtype]);
        assert!(out.contains("status: FORMERR"), "{qtype}: {out}");
    }
    let out = dig_at(srv.udp_addr(), &["workstation1.lan", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
}
