//! EDNS and sizes: OPT in replies, BADVERS, truncation to the client's limit, TCP sizes.

use super::*;

#[test]
fn opt_present_iff_the_query_had_one() {
    for edns in [None, Some(512), Some(1232), Some(4096)] {
        for qname in ["workstation7.example", "nothing.example"] {
            let mut server = synth_only();
            let reply = only_reply(&ask(&mut server, &query(qname, Rtype::A, 3, true, edns)));
            assert_eq!(reply.opt().is_some(), edns.is_some(), "{qname} {edns:?}");
            if let Some(opt) = reply.opt() {
                assert_eq!(opt.version(), 0);
                assert_eq!(opt.udp_payload_size(), 1232);
            }
        }
        // Forwarded: the upstream's OPT is per hop, ours follows the client's.
        let mut server = forwarding(1);
        let s = sends(&ask(
            &mut server,
            &query("x.example", Rtype::A, 3, true, edns),
        ))
        .remove(0);
        let up_with_opt = upstream_reply(
            &query("x.example", Rtype::A, s.id(), true, Some(4096)),
            Rcode::NOERROR,
            &[UP_IP],
            false,
        );
        let reply = only_reply(&upstream(&mut server, 1, &s, s.to, &up_with_opt));
        assert_eq!(reply.opt().is_some(), edns.is_some(), "forwarded {edns:?}");
        assert_eq!(reply.header_counts().arcount(), u16::from(edns.is_some()));
    }
}

#[test]
fn edns_version_above_zero_is_badvers() {
    for version in [1u8, 2, 255] {
        for mut server in [synth_only(), forwarding(1)] {
            let actions = ask(
                &mut server,
                &query_with("workstation7.example", 8, Opcode::QUERY, Some(version)),
            );
            assert!(sends(&actions).is_empty());
            let reply = only_reply(&actions);
            assert_eq!(reply.opt_rcode(), OptRcode::BADVERS, "version {version}");
            assert_eq!(reply.opt_rcode().to_int(), 16);
            let opt = reply.opt().expect("BADVERS carries an OPT");
            assert_eq!(opt.version(), 0);
            assert_eq!(reply.header().id(), 8);
        }
    }
    let mut server = synth_only();
    let reply = only_reply(&ask(
        &mut server,
        &query_with("workstation7.example", 8, Opcode::QUERY, Some(0)),
    ));
    assert_eq!(reply.opt_rcode(), OptRcode::NOERROR, "version 0 is fine");
}

/// Size of the full reply with `n` records, measured over TCP.
fn full_size(n: usize) -> usize {
    let mut server = Server::new(Config::default(), Chain::new().with(Many(n)), SEED);
    server.handle_tcp_open(at(0), CONN, tcp_peer());
    let q = query("big.example", Rtype::A, 1, true, Some(65535));
    server.handle_client(at(0), Origin::Tcp(CONN), &frame(&q));
    let (_, bytes) = replies(&drain(&mut server)).remove(0);
    let msg = message(unframe(&bytes));
    assert!(!msg.header().tc());
    assert_eq!(msg.header_counts().ancount() as usize, n);
    bytes.len() - 2
}

#[test]
fn udp_replies_truncated_to_the_client_limit() {
    // (advertised EDNS size, effective limit)
    let cases = [
        (None, 512),
        (Some(100), 512),
        (Some(511), 512),
        (Some(512), 512),
        (Some(1000), 1000),
        (Some(1232), 1232),
        (Some(1233), 1232),
        (Some(4096), 1232),
        (Some(65535), 1232),
    ];
    // Sizes grow by one record (16 bytes with a compressed owner) per step.
    let sizes: Vec<usize> = (0..120).map(full_size).collect();
    for (edns, limit) in cases {
        let opt = if edns.is_some() { 11 } else { 0 };
        // `sizes` were measured with an OPT; adjust for queries without one.
        let fits = sizes.iter().rposition(|&s| s - 11 + opt <= limit).unwrap();
        for (n, expect_tc) in [(fits, false), (fits + 1, true), (119, true)] {
            let mut server = Server::new(Config::default(), Chain::new().with(Many(n)), SEED);
            let actions = ask(&mut server, &query("big.example", Rtype::A, 2, true, edns));
            let (_, bytes) = &replies(&actions)[0];
            assert!(bytes.len() <= limit, "{edns:?}: {} > {limit}", bytes.len());
            let reply = message(bytes);
            assert_eq!(reply.header().tc(), expect_tc, "{edns:?} n={n}");
            assert_eq!(reply.header().id(), 2);
            assert_eq!(
                question_bytes(bytes),
                question_bytes(&query("big.example", Rtype::A, 2, true, edns))
            );
            assert_eq!(reply.opt().is_some(), edns.is_some());
            if expect_tc {
                assert_eq!(
                    reply.header_counts().ancount(),
                    0,
                    "truncated: question only"
                );
            } else {
                assert_eq!(reply.header_counts().ancount() as usize, n);
            }
        }
    }
}

#[test]
fn tcp_gets_the_full_reply_framed() {
    for (n, edns) in [
        (0, None),
        (1, None),
        (100, None),
        (300, Some(512)),
        (3000, Some(1232)),
    ] {
        let mut server = Server::new(Config::default(), Chain::new().with(Many(n)), SEED);
        server.handle_tcp_open(at(0), CONN, tcp_peer());
        let q = query("big.example", Rtype::A, 6, true, edns);
        server.handle_client(at(0), Origin::Tcp(CONN), &frame(&q));
        let r = replies(&drain(&mut server));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, Origin::Tcp(CONN));
        let msg = message(unframe(&r[0].1));
        assert!(!msg.header().tc(), "n={n}");
        assert_eq!(msg.header_counts().ancount() as usize, n);
        assert_eq!(msg.header().id(), 6);
    }
}

#[test]
fn no_answer_and_no_forwarder_is_refused() {
    let cases: Vec<(&str, Chain, &str, Rtype)> = vec![
        (
            "empty chain",
            Chain::new(),
            "workstation7.example",
            Rtype::A,
        ),
        ("synth passes name", chain(&[]), "server7.example", Rtype::A),
        (
            "synth passes type",
            chain(&[]),
            "workstation7.example",
            Rtype::AAAA,
        ),
    ];
    for (what, chain, qname, qtype) in cases {
        let mut server = Server::new(Config::default(), chain, SEED);
        let reply = only_reply(&ask(&mut server, &query(qname, qtype, 77, true, None)));
        assert_eq!(reply.header().rcode(), Rcode::REFUSED, "{what}");
        assert!(!reply.header().ra(), "{what}");
        assert!(!reply.header().aa(), "{what}");
        assert_eq!(reply.header_counts().ancount(), 0);
    }
}
