//! Spoofing resistance (RFC 5452): replies with the wrong ID, from the wrong
//! port or for the wrong question are ignored; the real reply still counts.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use names_tests::*;

use crate::{start, upstream_args};

const EVIL: [Ipv4Addr; 3] = [
    Ipv4Addr::new(6, 6, 6, 6),
    Ipv4Addr::new(6, 6, 6, 7),
    Ipv4Addr::new(6, 6, 6, 8),
];
const REAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

/// Replies that must all be ignored by the forwarder.
fn spoofs(r: &Received) -> Vec<Reply> {
    let id = r.id();
    let wrong_question = query("evil.example", Rtype::A, id, true, None);
    vec![
        // wrong ID, right port and question
        Reply::Send(with_id(&answer_a(&r.bytes, &[EVIL[0]], 300), id ^ 0x5a5a)),
        // right ID and question, wrong source port
        Reply::FromOtherPort(answer_a(&r.bytes, &[EVIL[1]], 300)),
        // right ID and port, wrong question
        Reply::Send(answer_a(&wrong_question, &[EVIL[2]], 300)),
    ]
}

#[test]
fn spoofed_replies_ignored_real_reply_accepted() {
    let up = FakeUpstream::start(|r| {
        let mut v = spoofs(r);
        v.push(Reply::Delay(
            Duration::from_millis(150),
            answer_a(&r.bytes, &[REAL], 300),
        ));
        v
    });
    let srv = start(&upstream_args(&[&up], &[]));
    let r = udp_ask(
        srv.udp_addr(),
        &query("victim.example.com", Rtype::A, 0x7777, true, None),
    );
    assert_eq!(r.id, 0x7777);
    assert_eq!(r.rcode, 0, "logs:\n{}", srv.logs());
    assert_eq!(
        r.a_addrs(),
        vec![REAL],
        "client must get the real answer, not a spoofed one"
    );
    assert_eq!(
        r.question,
        Some(("victim.example.com".into(), Rtype::A.to_int()))
    );
}

#[test]
fn only_spoofed_replies_gives_servfail() {
    let up = FakeUpstream::start(spoofs);
    let srv = start(&upstream_args(
        &[&up],
        &["--timeout", "800", "--try-timeout", "300"],
    ));
    let t0 = Instant::now();
    let r = udp_exchange(
        srv.udp_addr(),
        &query("victim.example.com", Rtype::A, 0x7778, true, None),
        Duration::from_secs(5),
    )
    .expect("SERVFAIL expected, got no reply");
    let r = parse(&r);
    assert_eq!(r.id, 0x7778);
    assert_eq!(r.rcode, 2, "expected SERVFAIL, got {r:?}");
    assert!(r.a_addrs().iter().all(|a| !EVIL.contains(a)), "{r:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
}
