//! Truncated upstream replies are retried over TCP to the same upstream.

use std::net::Ipv4Addr;

use names_tests::*;

use crate::{start, upstream_args};

#[test]
fn truncated_udp_reply_retried_over_tcp() {
    let full = [
        Ipv4Addr::new(192, 0, 2, 31),
        Ipv4Addr::new(192, 0, 2, 32),
        Ipv4Addr::new(192, 0, 2, 33),
    ];
    let up = FakeUpstream::start(move |r| {
        if r.tcp {
            vec![Reply::Send(answer_a(&r.bytes, &full, 300))]
        } else {
            vec![Reply::Send(with_tc(&answer_a(&r.bytes, &[], 300)))]
        }
    });
    let srv = start(&upstream_args(&[&up], &[]));
    let r = udp_ask(
        srv.udp_addr(),
        &query("tc.example.com", Rtype::A, 0x7c7c, true, None),
    );
    assert_eq!(r.id, 0x7c7c);
    assert_eq!(r.rcode, 0, "logs:\n{}", srv.logs());
    assert!(!r.tc, "the client must get the full answer, not TC: {r:?}");
    assert_eq!(r.a_addrs(), full.to_vec());
    assert!(!r.aa);
    assert!(up.udp_count() >= 1, "the UDP try comes first");
    assert!(
        up.tcp_count() >= 1,
        "the fake upstream never saw a TCP query: {:?}",
        up.received()
    );
    let tcp_q = up.received().into_iter().find(|r| r.tcp).unwrap().parsed();
    assert_eq!(
        tcp_q.question.map(|(n, t)| (n.to_ascii_lowercase(), t)),
        Some(("tc.example.com".into(), Rtype::A.to_int()))
    );
}

#[test]
fn truncated_reply_for_tcp_client_also_full() {
    let full = [Ipv4Addr::new(192, 0, 2, 41), Ipv4Addr::new(192, 0, 2, 42)];
    let up = FakeUpstream::start(move |r| {
        if r.tcp {
            vec![Reply::Send(answer_a(&r.bytes, &full, 300))]
        } else {
            vec![Reply::Send(with_tc(&answer_a(&r.bytes, &[], 300)))]
        }
    });
    let srv = start(&upstream_args(&[&up], &[]));
    let r = tcp_ask(
        srv.tcp_addr(),
        &query("tc2.example.com", Rtype::A, 0x7c7d, true, None),
    );
    assert_eq!((r.id, r.rcode, r.tc), (0x7c7d, 0, false), "{r:?}");
    assert_eq!(r.a_addrs(), full.to_vec());
}
