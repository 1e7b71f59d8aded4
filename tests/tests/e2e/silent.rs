//! Timeouts and failover between upstreams.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use names_tests::*;

use crate::{start, upstream_args, UP_IP};

const SECOND: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn timed_udp(srv: &Server, q: &[u8]) -> (Parsed, Duration) {
    let t0 = Instant::now();
    let r = udp_exchange(srv.udp_addr(), q, Duration::from_secs(6))
        .unwrap_or_else(|| panic!("no reply within 6s; logs:\n{}", srv.logs()));
    (parse(&r), t0.elapsed())
}

#[test]
fn silent_upstream_gives_servfail_after_timeout() {
    let up = FakeUpstream::silent();
    let srv = start(&upstream_args(
        &[&up],
        &["--timeout", "800", "--try-timeout", "300"],
    ));
    let (r, took) = timed_udp(
        &srv,
        &query("slow.example.com", Rtype::A, 0x5151, true, None),
    );
    assert_eq!(r.id, 0x5151);
    assert_eq!(r.rcode, 2, "expected SERVFAIL: {r:?}");
    assert!(r.ra);
    assert!(
        took >= Duration::from_millis(700) && took <= Duration::from_millis(2500),
        "SERVFAIL after {took:?}, expected about 800ms"
    );
    // 800ms budget with 300ms tries: the single upstream is retried.
    assert!(
        up.count() >= 2,
        "expected the silent upstream to be retried, it saw {} queries",
        up.count()
    );
}

#[test]
fn silent_first_upstream_falls_over_to_second() {
    let first = FakeUpstream::silent();
    let second = FakeUpstream::answering(&[SECOND]);
    let srv = start(&upstream_args(
        &[&first, &second],
        &["--timeout", "4000", "--try-timeout", "300"],
    ));
    let (r, took) = timed_udp(&srv, &query("fo.example.com", Rtype::A, 0x6161, true, None));
    assert_eq!(r.id, 0x6161);
    assert_eq!(r.rcode, 0, "logs:\n{}", srv.logs());
    assert_eq!(r.a_addrs(), vec![SECOND]);
    assert!(
        took <= Duration::from_millis(1500),
        "answer after {took:?}, expected about one try timeout (300ms)"
    );
    assert!(
        first.count() >= 1,
        "first upstream should be tried first (saw {})",
        first.count()
    );
    assert!(
        took >= Duration::from_millis(250),
        "answer after {took:?}: the silent first upstream should cost one try timeout"
    );
}

fn failover_on_rcode(rcode: Rcode) {
    let first = FakeUpstream::rcode(rcode);
    let second = FakeUpstream::answering(&[SECOND]);
    let srv = start(&upstream_args(
        &[&first, &second],
        &["--timeout", "5000", "--try-timeout", "2000"],
    ));
    let (r, took) = timed_udp(&srv, &query("sf.example.com", Rtype::A, 0x7171, true, None));
    assert_eq!(r.id, 0x7171);
    assert_eq!(
        r.rcode, 0,
        "{rcode}: expected NOERROR from the second upstream: {r:?}"
    );
    assert_eq!(r.a_addrs(), vec![SECOND]);
    assert!(
        took < Duration::from_millis(1500),
        "{rcode} should move to the next upstream at once, took {took:?}"
    );
    assert_eq!(first.count(), 1);
}

#[test]
fn servfail_upstream_moves_to_next() {
    failover_on_rcode(Rcode::SERVFAIL);
}

#[test]
fn refused_upstream_moves_to_next() {
    failover_on_rcode(Rcode::REFUSED);
}

#[test]
fn notimp_upstream_moves_to_next() {
    failover_on_rcode(Rcode::NOTIMP);
}

#[test]
fn late_reply_within_budget_is_used() {
    // One upstream that answers only its second query: the first try times
    // out, the retry (same upstream, cycling) gets the answer.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen2 = seen.clone();
    let up = FakeUpstream::start(move |r| {
        if seen2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            vec![Reply::Nothing]
        } else {
            vec![Reply::Send(answer_a(&r.bytes, &[UP_IP], 300))]
        }
    });
    let srv = start(&upstream_args(
        &[&up],
        &["--timeout", "3000", "--try-timeout", "300"],
    ));
    let (r, took) = timed_udp(
        &srv,
        &query("retry.example.com", Rtype::A, 0x8181, true, None),
    );
    assert_eq!(r.rcode, 0, "{r:?}");
    assert_eq!(r.a_addrs(), vec![UP_IP]);
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    assert!(up.count() >= 2);
    let ids: Vec<u16> = up.received().iter().map(|r| r.id()).collect();
    assert_ne!(
        ids[0], ids[1],
        "each upstream try needs a fresh ID: {ids:?}"
    );
}
