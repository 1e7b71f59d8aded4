//! TCP transport: pipelining, large answers, idle timeout.

use std::collections::HashMap;
use std::io::Read;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use names_tests::*;

use crate::{start, upstream_args};

#[test]
fn pipelined_synth_queries_on_one_connection() {
    let srv = Server::start(&["--synth", "workstation=172.0.2", "--no-forward"]);
    let qs: Vec<Vec<u8>> = (1..=5u16)
        .map(|i| {
            query(
                &format!("workstation{i}.example.com"),
                Rtype::A,
                100 + i,
                true,
                None,
            )
        })
        .collect();
    let replies = tcp_exchange(srv.tcp_addr(), &qs);
    assert_eq!(replies.len(), 5, "expected 5 replies on one connection");
    let mut by_id = HashMap::new();
    for r in &replies {
        let p = parse(r);
        by_id.insert(p.id, p);
    }
    for i in 1..=5u16 {
        let p = by_id
            .get(&(100 + i))
            .unwrap_or_else(|| panic!("no reply with id {}", 100 + i));
        assert_eq!(p.rcode, 0);
        assert_eq!(p.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, i as u8)]);
    }
}

#[test]
fn pipelined_forwarded_queries_may_complete_out_of_order() {
    // The first query is answered slowly by the upstream; the others at once.
    let up = FakeUpstream::start(|r| {
        let p = r.parsed();
        let name = p.question.map(|q| q.0).unwrap_or_default();
        let a = answer_a(&r.bytes, &[Ipv4Addr::new(192, 0, 2, 50)], 300);
        if name.starts_with("slow") {
            vec![Reply::Delay(Duration::from_millis(400), a)]
        } else {
            vec![Reply::Send(a)]
        }
    });
    let srv = start(&upstream_args(&[&up], &[]));
    let names = [
        "slow.example.com",
        "f1.example.com",
        "f2.example.com",
        "f3.example.com",
    ];
    let qs: Vec<Vec<u8>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| query(n, Rtype::A, 200 + i as u16, true, None))
        .collect();
    let replies = tcp_exchange(srv.tcp_addr(), &qs);
    assert_eq!(replies.len(), 4, "logs:\n{}", srv.logs());
    let mut ids: Vec<u16> = replies.iter().map(|r| parse(r).id).collect();
    for r in &replies {
        let p = parse(r);
        assert_eq!(p.rcode, 0);
        assert_eq!(p.a_addrs(), vec![Ipv4Addr::new(192, 0, 2, 50)]);
        let qn = p.question.unwrap().0;
        assert_eq!(qn, names[(p.id - 200) as usize], "reply/question mismatch");
    }
    ids.sort();
    assert_eq!(ids, vec![200, 201, 202, 203]);
}

fn big_upstream(n: usize) -> FakeUpstream {
    FakeUpstream::start(move |r| vec![Reply::Send(answer_many_a(&r.bytes, n, 300))])
}

#[test]
fn large_answer_truncated_over_udp_without_edns() {
    let up = big_upstream(60);
    let srv = start(&upstream_args(&[&up], &[]));
    let q = query("big.example.com", Rtype::A, 0x0b16, true, None);
    let raw = udp_exchange(srv.udp_addr(), &q, Duration::from_secs(5)).expect("UDP reply");
    let r = parse(&raw);
    assert_eq!(r.id, 0x0b16);
    assert!(r.tc, "a >512-byte answer without EDNS must set TC: {r:?}");
    assert!(
        raw.len() <= 512,
        "UDP reply is {} bytes (limit 512)",
        raw.len()
    );
}

#[test]
fn large_answer_full_over_tcp() {
    let up = big_upstream(60);
    let srv = start(&upstream_args(&[&up], &[]));
    let q = query("big.example.com", Rtype::A, 0x0b17, true, None);
    let r = tcp_ask(srv.tcp_addr(), &q);
    assert_eq!(r.id, 0x0b17);
    assert!(!r.tc, "TCP reply must not be truncated");
    assert_eq!(r.answers.len(), 60);
    assert_eq!(r.a_addrs(), many_ips(60));
}

#[test]
fn large_answer_fits_with_edns_1232() {
    let up = big_upstream(60);
    let srv = start(&upstream_args(&[&up], &[]));
    let q = query("big.example.com", Rtype::A, 0x0b18, true, Some(4096));
    let raw = udp_exchange(srv.udp_addr(), &q, Duration::from_secs(5)).expect("UDP reply");
    let r = parse(&raw);
    assert!(raw.len() <= 1232, "reply is {} bytes", raw.len());
    assert!(!r.tc, "60 A records (~1000 bytes) fit into 1232: {r:?}");
    assert_eq!(r.answers.len(), 60);
    assert!(r.has_opt);
}

#[test]
fn idle_tcp_connection_closed() {
    let srv = Server::start(&["--no-forward", "--tcp-idle-ms", "300"]);
    let mut s = tcp_connect(srv.tcp_addr());
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 16];
    let res = s.read(&mut buf);
    let took = t0.elapsed();
    match res {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the idle connection to be closed, got {other:?} after {took:?}"),
    }
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(2500),
        "closed after {took:?}, expected about 300ms"
    );
}

#[test]
fn tcp_connection_serves_queries_sequentially() {
    let srv = Server::start(&["--synth", "workstation=172.0.2", "--no-forward"]);
    let mut s = tcp_connect(srv.tcp_addr());
    for i in 0..3u16 {
        use std::io::Write;
        let q = query(
            &format!("workstation{}.lan", 20 + i),
            Rtype::A,
            300 + i,
            true,
            None,
        );
        s.write_all(&frame(&q)).unwrap();
        let r = tcp_read_frame(&mut s, Instant::now() + Duration::from_secs(5))
            .expect("reply on the same connection");
        let p = parse(&r);
        assert_eq!(p.id, 300 + i);
        assert_eq!(p.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 20 + i as u8)]);
    }
}
