//! Forwarding conformance through the real binary (issue 14): an upstream's error reply
//! without a question (as NSD sends for class HS) ends that try at once, for the server
//! and for `names query`; a CNAME chain ending in a negative answer keeps the CNAME's own
//! TTL in cache hits (RFC 2308 5). Loopback only; every process stops when dropped.

use std::net::Ipv4Addr;
use std::thread::sleep;
use std::time::{Duration, Instant};

use domain::base::iana::Class;
use domain::base::message_builder::AnswerBuilder;
use domain::base::{Message, MessageBuilder, Name, Serial, Ttl};
use domain::rdata::{Cname, Soa};
use names_tests::*;

const IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);
/// Far above what moving on at once takes: only waiting for a timeout could reach it.
const AT_ONCE: Duration = Duration::from_millis(1500);

/// An upstream answering every query with a bare REFUSED: the query's ID, QR, no
/// question, no records.
fn bare_refused() -> FakeUpstream {
    FakeUpstream::start(|r| vec![Reply::Send(raw_header(r.id(), 0x8005, 0, 0, 0, 0))])
}

#[test]
fn a_bare_refused_moves_on_to_the_next_upstream_at_once() {
    let bad = bare_refused();
    let good = FakeUpstream::start(|r| vec![Reply::Send(answer_a(&r.bytes, &[IP], 60))]);
    let (a, b) = (bad.arg(), good.arg());
    let srv = Server::start(&[
        "--upstream",
        &a,
        "--upstream",
        &b,
        "--try-timeout",
        "3000",
        "--timeout",
        "8000",
    ]);
    for (i, name) in ["one.example", "two.example", "three.example"]
        .iter()
        .enumerate()
    {
        let start = Instant::now();
        let out = dig_at(srv.udp_addr(), &[name, "A"]);
        let took = start.elapsed();
        assert!(out.contains("status: NOERROR"), "#{i}: {out}");
        assert!(out.contains("192.0.2.7"), "#{i}: {out}");
        assert!(took < AT_ONCE, "#{i}: {took:?}, not at once");
    }
    assert!(good.count() >= 3);
}

#[test]
fn a_bare_refused_from_the_only_upstream_is_servfail_at_once() {
    let bad = bare_refused();
    let a = bad.arg();
    let srv = Server::start(&[
        "--upstream",
        &a,
        "--try-timeout",
        "3000",
        "--timeout",
        "8000",
    ]);
    let start = Instant::now();
    let out = dig_at(srv.udp_addr(), &["hs.example", "A"]);
    let took = start.elapsed();
    assert!(out.contains("status: SERVFAIL"), "{out}");
    assert!(took < AT_ONCE, "{took:?}, not at once");
    assert!(bad.count() >= 1);
}

#[test]
fn a_bare_noerror_is_still_not_the_reply() {
    // Without a question only an error ends the try: a NOERROR is ignored, and the try
    // times out onto the next upstream.
    let odd = FakeUpstream::start(|r| vec![Reply::Send(raw_header(r.id(), 0x8000, 0, 0, 0, 0))]);
    let good = FakeUpstream::start(|r| vec![Reply::Send(answer_a(&r.bytes, &[IP], 60))]);
    let (a, b) = (odd.arg(), good.arg());
    let srv = Server::start(&[
        "--upstream",
        &a,
        "--upstream",
        &b,
        "--try-timeout",
        "700",
        "--timeout",
        "5000",
    ]);
    let start = Instant::now();
    let out = dig_at(srv.udp_addr(), &["x.example", "A"]);
    let took = start.elapsed();
    assert!(out.contains("192.0.2.7"), "{out}");
    assert!(
        took >= Duration::from_millis(600),
        "{took:?}: the try timed out first"
    );
}

#[test]
fn names_query_reports_a_bare_error_at_once() {
    let bad = bare_refused();
    let at = format!("@{}", bad.addr());
    let start = Instant::now();
    let out = run_names(&["query", &at, "hs.example", "A", "--timeout", "3000"]);
    let took = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(";; status: REFUSED"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "not NOERROR");
    assert!(took < AT_ONCE, "{took:?}, not at once");
}

#[test]
fn a_cname_to_nxdomain_keeps_its_ttl_in_cache_hits() {
    let up = FakeUpstream::start(|r| vec![Reply::Send(cname_to_nxdomain(&r.bytes))]);
    let a = up.arg();
    let srv = Server::start(&["--upstream", &a]);
    let first = dig_at(
        srv.udp_addr(),
        &["+noall", "+answer", "+authority", "alias.example", "A"],
    );
    assert!(
        first.contains("alias.example.\t\t3600\tIN\tCNAME\tgone.example."),
        "{first}"
    );
    sleep(Duration::from_millis(1100));
    let hit = dig_at(srv.udp_addr(), &["alias.example", "A"]);
    assert_eq!(up.count(), 1, "a hit: {hit}");
    assert!(hit.contains("status: NXDOMAIN"), "{hit}");
    let ttl_of = |rtype: &str| -> u32 {
        let line = hit
            .lines()
            .find(|l| l.split_whitespace().nth(3) == Some(rtype))
            .unwrap_or_else(|| panic!("no {rtype}: {hit}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert!(
        (3598..3600).contains(&ttl_of("CNAME")),
        "the CNAME's own TTL: {hit}"
    );
    assert!(
        (298..300).contains(&ttl_of("SOA")),
        "the negative TTL: {hit}"
    );
}

#[test]
fn a_negative_answer_keeps_its_soa_ttl_beside_a_cached_positive_soa() {
    // The same SOA arrives twice: capped at 300 in negative answers, 3600 as the answer
    // to an SOA question. Found by the differential test against Unbound: the positive
    // copy replaced the capped one, so negative answers (new or cached) said 3600.
    let up = FakeUpstream::start(|r| {
        let soa_question = r
            .parsed()
            .question
            .is_some_and(|(_, t)| t == Rtype::SOA.to_int());
        vec![Reply::Send(if soa_question {
            soa_answer(&r.bytes)
        } else {
            nxdomain(&r.bytes)
        })]
    });
    let a = up.arg();
    let srv = Server::start(&["--upstream", &a]);
    let soa_ttl = |name: &str, qtype: &str| -> (String, u32) {
        let out = dig_at(srv.udp_addr(), &[name, qtype]);
        let line = out
            .lines()
            .find(|l| !l.starts_with(';') && l.split_whitespace().nth(3) == Some("SOA"))
            .unwrap_or_else(|| panic!("no SOA: {out}"));
        (
            out.clone(),
            line.split_whitespace().nth(1).unwrap().parse().unwrap(),
        )
    };
    let (out, ttl) = soa_ttl("gone.example", "A");
    assert!(out.contains("status: NXDOMAIN") && ttl <= 300, "{out}");
    let (out, ttl) = soa_ttl("example", "SOA");
    assert!(out.contains("status: NOERROR") && ttl > 3000, "{out}");
    // A cached negative answer, and a new one, after the positive SOA.
    for name in ["gone.example", "other.example"] {
        let (out, ttl) = soa_ttl(name, "A");
        assert!(out.contains("status: NXDOMAIN"), "{out}");
        assert!(ttl <= 300, "the negative TTL caps the SOA: {out}");
    }
    assert_eq!(
        up.count(),
        3,
        "the first negative answer came from the cache"
    );
}

/// `example.` SOA, TTL 3600, as the answer to an SOA question.
fn soa_answer(query: &[u8]) -> Vec<u8> {
    let mut b = reply_to(query, Rcode::NOERROR);
    b.header_mut().set_aa(true);
    let zone: Name<Vec<u8>> = "example".parse().unwrap();
    b.push((&zone, Class::IN, 3600, example_soa())).unwrap();
    b.finish()
}

/// NXDOMAIN with the `example.` SOA (TTL 3600, MINIMUM 300).
fn nxdomain(query: &[u8]) -> Vec<u8> {
    let b = reply_to(query, Rcode::NXDOMAIN);
    let zone: Name<Vec<u8>> = "example".parse().unwrap();
    let mut auth = b.authority();
    auth.push((&zone, Class::IN, 3600, example_soa())).unwrap();
    auth.finish()
}

/// The start of a reply to `query` with `rcode`, its answer section next.
fn reply_to(query: &[u8], rcode: Rcode) -> AnswerBuilder<Vec<u8>> {
    let q = Message::from_octets(query).unwrap();
    MessageBuilder::new_vec().start_answer(&q, rcode).unwrap()
}

/// The `example.` SOA: MINIMUM 300.
fn example_soa() -> Soa<Name<Vec<u8>>> {
    let zone: Name<Vec<u8>> = "example".parse().unwrap();
    let t = Ttl::from_secs;
    Soa::new(
        zone.clone(),
        zone,
        Serial(1),
        t(3600),
        t(600),
        t(86400),
        t(300),
    )
}

/// `alias.example CNAME gone.example` (TTL 3600), NXDOMAIN, and `example.` SOA with
/// TTL 3600 and MINIMUM 300.
fn cname_to_nxdomain(query: &[u8]) -> Vec<u8> {
    let mut b = reply_to(query, Rcode::NXDOMAIN);
    b.header_mut().set_ra(true);
    let alias: Name<Vec<u8>> = "alias.example".parse().unwrap();
    let gone: Name<Vec<u8>> = "gone.example".parse().unwrap();
    let zone: Name<Vec<u8>> = "example".parse().unwrap();
    b.push((&alias, Class::IN, 3600, Cname::new(gone))).unwrap();
    let mut auth = b.authority();
    auth.push((&zone, Class::IN, 3600, example_soa())).unwrap();
    auth.finish()
}
