//! Forwarding: answers come from the upstream, AA cleared, RA set, rcode and
//! sections passed through, question case and RD echoed.

use std::collections::HashSet;

use names_tests::*;

use crate::{start, upstream_args, UP_IP};

#[test]
fn forwards_a_query_clearing_aa_setting_ra() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let srv = start(&upstream_args(&[&up], &[]));
    let q = query("www.example.com", Rtype::A, 0x1234, true, None);
    let r = udp_ask(srv.udp_addr(), &q);
    assert_eq!(r.id, 0x1234);
    assert!(r.qr, "QR must be set");
    assert_eq!(r.rcode, 0, "rcode; logs:\n{}", srv.logs());
    assert_eq!(r.a_addrs(), vec![UP_IP]);
    assert!(
        !r.aa,
        "AA must be cleared on forwarded replies (fake set it)"
    );
    assert!(r.ra, "RA must be set when forwarding is on");
    assert!(r.rd, "RD must be echoed");
    assert_eq!(
        r.question,
        Some(("www.example.com".into(), Rtype::A.to_int()))
    );
    assert!(!r.has_opt, "no OPT in reply to a query without EDNS");
    assert!(up.count() >= 1);
    let fq = up.received()[0].parsed();
    assert_eq!(
        fq.question.map(|(n, t)| (n.to_ascii_lowercase(), t)),
        Some(("www.example.com".into(), Rtype::A.to_int()))
    );
}

#[test]
fn upstream_queries_use_fresh_ids_and_ports() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let srv = start(&upstream_args(&[&up], &[]));
    for id in 1..=4u16 {
        let r = udp_ask(
            srv.udp_addr(),
            &query(&format!("n{id}.example.com"), Rtype::A, id, true, None),
        );
        assert_eq!((r.id, r.rcode), (id, 0));
    }
    let rec = up.received();
    assert!(rec.len() >= 4, "fake saw {} queries", rec.len());
    let ids: Vec<u16> = rec.iter().map(|r| r.id()).collect();
    assert_ne!(
        ids,
        vec![1, 2, 3, 4],
        "upstream IDs must not copy client IDs"
    );
    let ports: HashSet<u16> = rec.iter().map(|r| r.from.port()).collect();
    assert!(
        ports.len() > 1,
        "all upstream queries came from one source port: {ports:?}"
    );
    assert!(
        !ports.contains(&srv.udp_addr().port()),
        "upstream queries must not come from the listen port"
    );
}

#[test]
fn rd_clear_is_echoed() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let srv = start(&upstream_args(&[&up], &[]));
    let r = udp_ask(
        srv.udp_addr(),
        &query("rd.example.com", Rtype::A, 77, false, None),
    );
    assert_eq!(r.id, 77);
    assert!(!r.rd, "RD=0 in the query must give RD=0 in the reply");
    assert_eq!(r.a_addrs(), vec![UP_IP]);
}

#[test]
fn nxdomain_passed_through_with_sections() {
    let up = FakeUpstream::start(|r| vec![Reply::Send(answer_nxdomain_soa(&r.bytes))]);
    let srv = start(&upstream_args(&[&up], &[]));
    let r = udp_ask(
        srv.udp_addr(),
        &query("nope.example", Rtype::A, 0xbeef, true, None),
    );
    assert_eq!(r.id, 0xbeef);
    assert_eq!(r.rcode, 3, "NXDOMAIN must be passed through");
    assert!(!r.aa, "AA must be cleared");
    assert!(r.ra);
    assert!(r.answers.is_empty());
    assert_eq!(r.authority.len(), 1, "authority SOA must be kept: {r:?}");
    assert_eq!(r.authority[0].rtype, Rtype::SOA.to_int());
    assert_eq!(r.authority[0].owner.to_ascii_lowercase(), "example");
    // NXDOMAIN must not make the forwarder try other upstreams
    assert_eq!(up.count(), 1);
}

#[test]
fn question_case_preserved() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let srv = start(&upstream_args(&[&up], &[]));
    let r = udp_ask(
        srv.udp_addr(),
        &query("WwW.ExAmPlE.CoM", Rtype::A, 9, true, None),
    );
    assert_eq!(r.rcode, 0);
    assert_eq!(
        r.question,
        Some(("WwW.ExAmPlE.CoM".into(), Rtype::A.to_int()))
    );
    assert_eq!(r.a_addrs(), vec![UP_IP]);
}

#[test]
fn edns_opt_iff_query_had_one() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let srv = start(&upstream_args(&[&up], &[]));
    let r = udp_ask(
        srv.udp_addr(),
        &query("e.example.com", Rtype::A, 10, true, Some(1232)),
    );
    assert_eq!(r.rcode, 0);
    assert!(r.has_opt, "query with OPT must get OPT back");
    assert_eq!(r.opt_version, Some(0));
    assert_eq!(r.a_addrs(), vec![UP_IP]);
    let r = udp_ask(
        srv.udp_addr(),
        &query("e.example.com", Rtype::A, 11, true, None),
    );
    assert!(!r.has_opt, "query without OPT must not get OPT back");
}

#[test]
fn forwarding_over_tcp() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let srv = start(&upstream_args(&[&up], &[]));
    let r = tcp_ask(
        srv.tcp_addr(),
        &query("t.example.com", Rtype::A, 0x4242, true, None),
    );
    assert_eq!((r.id, r.rcode), (0x4242, 0));
    assert_eq!(r.a_addrs(), vec![UP_IP]);
    assert!(!r.aa && r.ra);
}

#[test]
fn concurrent_queries_are_not_serialized() {
    // every upstream answer takes 300ms; 20 parallel client queries must
    // finish in far less than 20 * 300ms
    let up = FakeUpstream::start(|r| {
        vec![Reply::Delay(
            std::time::Duration::from_millis(300),
            answer_a(&r.bytes, &[UP_IP], 300),
        )]
    });
    let srv = start(&upstream_args(&[&up], &[]));
    let addr = srv.udp_addr();
    let t0 = std::time::Instant::now();
    let clients: Vec<_> = (0..20u16)
        .map(|i| {
            let c = UdpClient::new(addr);
            c.send(&query(
                &format!("c{i}.example.com"),
                Rtype::A,
                1000 + i,
                true,
                None,
            ));
            (i, c)
        })
        .collect();
    for (i, c) in clients {
        let r = c
            .recv(std::time::Duration::from_secs(5))
            .unwrap_or_else(|| panic!("no reply to query {i}"));
        let p = parse(&r);
        assert_eq!((p.id, p.rcode), (1000 + i, 0));
        assert_eq!(
            p.question.unwrap().0,
            format!("c{i}.example.com"),
            "reply for the wrong question"
        );
    }
    let took = t0.elapsed();
    assert!(
        took < std::time::Duration::from_millis(2000),
        "20 parallel queries took {took:?}"
    );
}

#[test]
fn several_workers_all_answer() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let srv = start(&upstream_args(&[&up], &["--workers", "3"]));
    for i in 0..12u16 {
        let q = query(&format!("w{i}.example.com"), Rtype::A, 500 + i, true, None);
        let r = if i % 2 == 0 {
            udp_ask(srv.udp_addr(), &q)
        } else {
            tcp_ask(srv.tcp_addr(), &q)
        };
        assert_eq!((r.id, r.rcode), (500 + i, 0), "logs:\n{}", srv.logs());
        assert_eq!(r.a_addrs(), vec![UP_IP]);
    }
}
