//! Synth answers; the exchange limit shared by servers; RA in error replies.

use super::*;

#[test]
fn synth_answers_prefix_number_a_queries_only() {
    // (name, type, expected address or None for pass -> REFUSED)
    let cases: &[(&str, Rtype, Option<Ipv4Addr>)] = &[
        ("workstation7.example.com", Rtype::A, Some(WS7)),
        ("WorkStation7.Example.Com", Rtype::A, Some(WS7)),
        ("WORKSTATION7", Rtype::A, Some(WS7)),
        (
            "workstation0.example.com",
            Rtype::A,
            Some(Ipv4Addr::new(172, 0, 2, 0)),
        ),
        (
            "workstation255.example.com",
            Rtype::A,
            Some(Ipv4Addr::new(172, 0, 2, 255)),
        ),
        ("workstation256.example.com", Rtype::A, None),
        ("workstation+7.example.com", Rtype::A, None),
        ("workstation07x.example.com", Rtype::A, None),
        ("workstation-7.example.com", Rtype::A, None),
        ("workstation.example.com", Rtype::A, None),
        ("workstation1000.example.com", Rtype::A, None),
        ("xworkstation7.example.com", Rtype::A, None),
        ("example.workstation7.com", Rtype::A, None),
        ("workstation7.example.com", Rtype::AAAA, None),
        ("workstation7.example.com", Rtype::MX, None),
        (".", Rtype::A, None),
    ];
    for &(qname, qtype, expected) in cases {
        let q = query(qname, qtype, 61, true, None);
        let mut server = synth_only();
        let reply = only_reply(&ask(&mut server, &q));
        match expected {
            Some(addr) => {
                assert_eq!(reply.header().rcode(), Rcode::NOERROR, "{qname}");
                assert_eq!(a_addrs(&reply), vec![addr], "{qname}");
                assert!(reply.header().aa(), "local data is authoritative");
                // The owner is the name as asked.
                let owner = reply
                    .answer()
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .owner()
                    .to_string();
                assert_eq!(owner, qname.trim_end_matches('.'), "{qname}");
            }
            None => assert_eq!(
                reply.header().rcode(),
                Rcode::REFUSED,
                "{qname} {qtype} passes"
            ),
        }
        // In front of a forwarder, a pass is forwarded.
        let mut server = forwarding(1);
        let actions = ask(&mut server, &q);
        assert_eq!(
            sends(&actions).len(),
            usize::from(expected.is_none()),
            "{qname} {qtype}"
        );
    }
}

/// `max_exchanges` bounds the exchanges in flight over every server sharing a config
/// (the workers of one process); beyond it a query gets SERVFAIL at once.
#[test]
fn in_flight_limit_is_shared_by_servers_given_one_count() {
    let config = Config {
        max_exchanges: 3,
        ..Config::default()
    };
    let up = upstream_addr(1);
    let shared = names_core::config::InFlight::new();
    let mut servers =
        [0, 1].map(|_| Server::with_shared(config.clone(), chain(&[up]), SEED, &shared));
    // Five queries spread over both servers: three forwarded, two SERVFAIL at once.
    let ask_five = |servers: &mut [Server; 2], start: u64, first: usize| {
        let (mut forwarded, mut servfail) = (0, 0);
        for i in first..first + 5 {
            let s = &mut servers[i % 2];
            let q = query(&format!("n{i}.example"), Rtype::A, i as u16, true, None);
            s.handle_client(at(start), udp(4000 + i as u16), &q);
            let actions = drain(s);
            forwarded += sends(&actions).len();
            for (_, bytes) in replies(&actions) {
                assert_eq!(message(&bytes).header().rcode(), Rcode::SERVFAIL);
                servfail += 1;
            }
        }
        (forwarded, servfail)
    };
    assert_eq!(ask_five(&mut servers, 0, 0), (3, 2));
    assert_eq!(shared.get(), 3);
    // When the budget ends them, the shared count goes back to zero: three fit again.
    for s in &mut servers {
        s.handle_timeout(at(60_000));
        drain(s);
    }
    assert_eq!(shared.get(), 0);
    assert_eq!(ask_five(&mut servers, 60_000, 5), (3, 2));
}

/// Error replies tell the truth about recursion too: RA set with a forwarder in the chain,
/// clear without one.
#[test]
fn error_replies_carry_ra_like_answers() {
    for (upstreams, ra) in [(vec![upstream_addr(1)], true), (vec![], false)] {
        let mut s = server(Config::default(), &upstreams);
        for bad in [
            query_with("a.example", 1, Opcode::NOTIFY, None),
            query_with("a.example", 2, Opcode::QUERY, Some(1)),
        ] {
            s.handle_client(at(0), udp(4000), &bad);
            let out = replies(&drain(&mut s));
            assert_eq!(out.len(), 1);
            assert_eq!(
                message(&out[0].1).header().ra(),
                ra,
                "upstreams {upstreams:?}"
            );
        }
        let mut two = query("a.example", Rtype::A, 3, true, None);
        two[5] = 2; // QDCOUNT 2
        s.handle_client(at(0), udp(4000), &two);
        let out = replies(&drain(&mut s));
        assert_eq!(message(&out[0].1).header().rcode(), Rcode::FORMERR);
        assert_eq!(message(&out[0].1).header().ra(), ra);
    }
}
