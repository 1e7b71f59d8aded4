//! The synth resolver: `--synth workstation=172.0.2` answers
//! `workstationN.<anything>` A queries with 172.0.2.N.

use std::net::Ipv4Addr;

use names_tests::*;

use crate::{start, upstream_args, UP_IP};

fn synth_server() -> Server {
    Server::start(&["--synth", "workstation=172.0.2", "--no-forward"])
}

#[test]
fn synth_answers_a_with_aa() {
    let srv = synth_server();
    let r = udp_ask(
        srv.udp_addr(),
        &query("workstation7.example.com", Rtype::A, 0x5707, true, None),
    );
    assert_eq!(r.id, 0x5707);
    assert_eq!(r.rcode, 0, "logs:\n{}", srv.logs());
    assert!(r.qr && r.aa, "synth answers are authoritative: {r:?}");
    assert!(!r.ra, "RA must be clear with --no-forward");
    assert!(r.rd, "RD echoed");
    assert_eq!(r.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 7)]);
    assert_eq!(r.answers.len(), 1);
    assert_eq!(
        r.answers[0].owner.to_ascii_lowercase(),
        "workstation7.example.com"
    );
    assert!(r.answers[0].ttl > 0, "TTL should be positive");
    assert_eq!(
        r.question,
        Some(("workstation7.example.com".into(), Rtype::A.to_int()))
    );
}

#[test]
fn synth_prefix_case_insensitive_and_case_echoed() {
    let srv = synth_server();
    let r = udp_ask(
        srv.udp_addr(),
        &query("WorkStation12.Example.COM", Rtype::A, 12, true, None),
    );
    assert_eq!(r.rcode, 0);
    assert_eq!(r.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 12)]);
    assert_eq!(
        r.question,
        Some(("WorkStation12.Example.COM".into(), Rtype::A.to_int()))
    );
}

#[test]
fn synth_boundaries() {
    let srv = synth_server();
    for (n, want) in [(0u16, Some(0u8)), (255, Some(255)), (256, None)] {
        let r = udp_ask(
            srv.udp_addr(),
            &query(&format!("workstation{n}.lan"), Rtype::A, n, true, None),
        );
        match want {
            Some(o) => {
                assert_eq!(r.rcode, 0, "workstation{n}");
                assert_eq!(r.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, o)]);
            }
            None => {
                assert_eq!(r.rcode, 5, "workstation{n} must be REFUSED: {r:?}");
                assert!(r.answers.is_empty());
            }
        }
    }
}

#[test]
fn synth_non_matching_refused() {
    let srv = synth_server();
    for (name, rtype) in [
        ("workstation7.example.com", Rtype::AAAA),
        ("workstation.example.com", Rtype::A),
        ("workstationx.example.com", Rtype::A),
        ("server7.example.com", Rtype::A),
    ] {
        let r = udp_ask(srv.udp_addr(), &query(name, rtype, 5, true, None));
        assert_eq!(r.rcode, 5, "{name} {rtype} must be REFUSED: {r:?}");
        assert!(r.answers.is_empty(), "{name} {rtype}: {r:?}");
        assert!(!r.ra);
    }
}

#[test]
fn synth_over_tcp() {
    let srv = synth_server();
    let r = tcp_ask(
        srv.tcp_addr(),
        &query("workstation9.corp", Rtype::A, 0x0909, true, None),
    );
    assert_eq!((r.id, r.rcode), (0x0909, 0));
    assert_eq!(r.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 9)]);
}

#[test]
fn synth_then_forward_chain() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let srv = start(&upstream_args(&[&up], &["--synth", "workstation=172.0.2"]));
    let r = udp_ask(
        srv.udp_addr(),
        &query("workstation4.example.com", Rtype::A, 1, true, None),
    );
    assert_eq!(r.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 4)]);
    assert!(r.aa);
    assert!(r.ra, "RA set when forwarding is on");
    assert_eq!(up.count(), 0, "synth names must not be forwarded");
    let r = udp_ask(
        srv.udp_addr(),
        &query("other.example.com", Rtype::A, 2, true, None),
    );
    assert_eq!(r.a_addrs(), vec![UP_IP]);
    assert!(!r.aa);
    assert_eq!(up.count(), 1);
    // AAAA for a synth name goes on to the forwarder
    let r = udp_ask(
        srv.udp_addr(),
        &query("workstation4.example.com", Rtype::AAAA, 3, true, None),
    );
    assert_eq!(r.rcode, 0);
    assert_eq!(up.count(), 2);
}
