//! One table-driven test per protocol rule of the forwarding server (issue 2), driven
//! through `Server` with fixed seeds and fake `Instant`s (offsets from one epoch).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use names_core::domain::base::iana::{Opcode, OptRcode, Rcode, Rtype};
use names_core::domain::base::Message;
use names_core::{Action, Chain, Config, ConnId, Origin, Server, Token, Via};
use names_tests::build::*;
use names_tests::drive::*;
use names_tests::parse::{a_addrs, message, question_bytes};
use names_tests::sim::{Conn, Event, World};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const WS7: Ipv4Addr = Ipv4Addr::new(172, 0, 2, 7);
const UP_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Sends one UDP message at `now` and returns every action.
fn ask_at(server: &mut Server, now_ms: u64, bytes: &[u8]) -> Vec<Action> {
    server.handle_client(at(now_ms), udp(5353), bytes);
    drain(server)
}

fn ask(server: &mut Server, bytes: &[u8]) -> Vec<Action> {
    ask_at(server, 0, bytes)
}

/// The single reply among `actions`, unframed if TCP, parsed.
fn only_reply(actions: &[Action]) -> Message<Vec<u8>> {
    let r = replies(actions);
    assert_eq!(r.len(), 1, "exactly one reply expected, got {actions:?}");
    let (to, bytes) = &r[0];
    match to {
        Origin::Udp { .. } => message(bytes),
        Origin::Tcp(_) => message(unframe(bytes)),
    }
}

fn synth_only() -> Server {
    server(Config::default(), &[])
}

fn forwarding(n: u8) -> Server {
    let ups: Vec<SocketAddr> = (1..=n).map(upstream_addr).collect();
    server(Config::default(), &ups)
}

/// Feeds an upstream datagram and returns every action.
fn upstream(
    server: &mut Server,
    now_ms: u64,
    s: &Sent,
    from: SocketAddr,
    bytes: &[u8],
) -> Vec<Action> {
    server.handle_upstream(at(now_ms), s.token, from, bytes);
    drain(server)
}

fn timeout(server: &mut Server, now_ms: u64) -> Vec<Action> {
    server.handle_timeout(at(now_ms));
    drain(server)
}

// ---------------------------------------------------------------------------
// Header rules
// ---------------------------------------------------------------------------

#[test]
fn reply_id_equals_query_id() {
    let ids = [0u16, 1, 0x1234, 0x8000, 0xffff];
    for id in ids {
        // (what, server, query): synth answer, REFUSED, FORMERR, NOTIMP, BADVERS.
        let cases: Vec<(&str, Server, Vec<u8>)> = vec![
            (
                "synth",
                synth_only(),
                query("workstation7.example.com", Rtype::A, id, true, None),
            ),
            (
                "refused",
                synth_only(),
                query("other.example.com", Rtype::A, id, true, None),
            ),
            ("formerr", synth_only(), {
                let mut q = query("a.example", Rtype::A, id, true, None);
                q[5] = 2; // QDCOUNT 2
                q
            }),
            (
                "notimp",
                synth_only(),
                query_with("a.example", id, Opcode::NOTIFY, None),
            ),
            (
                "badvers",
                synth_only(),
                query_with("a.example", id, Opcode::QUERY, Some(1)),
            ),
        ];
        for (what, mut server, q) in cases {
            let reply = only_reply(&ask(&mut server, &q));
            assert_eq!(reply.header().id(), id, "{what} id {id}");
            assert!(reply.header().qr(), "{what}: QR set");
        }
        // Forwarded: the upstream uses its own ID, the client gets its own back.
        let mut server = forwarding(1);
        let q = query("www.example.com", Rtype::A, id, true, None);
        let s = sends(&ask(&mut server, &q)).remove(0);
        let up = upstream_reply(&s.message, Rcode::NOERROR, &[UP_IP], false);
        let reply = only_reply(&upstream(&mut server, 5, &s, s.to, &up));
        assert_eq!(reply.header().id(), id, "forwarded id {id}");
    }
}

#[test]
fn question_echoed_with_case_preserved() {
    let names = [
        "WorkStation7.ExAmple.COM",
        "workstation7.example.com",
        "WORKSTATION7.EXAMPLE.COM",
        "NoSuch.Example.ORG",
        ".",
    ];
    for qname in names {
        for qtype in [Rtype::A, Rtype::AAAA, Rtype::TXT] {
            let q = query(qname, qtype, 77, true, None);
            let mut server = synth_only();
            let actions = ask(&mut server, &q);
            let (_, bytes) = &replies(&actions)[0];
            assert_eq!(question_bytes(bytes), question_bytes(&q), "{qname} {qtype}");
            // Through the forwarder, even when the upstream lowercases the name (0x20).
            let mut server = forwarding(1);
            let sent = sends(&ask(&mut server, &q));
            if sent.is_empty() {
                continue; // answered by synth above
            }
            let s = &sent[0];
            assert_eq!(
                question_bytes(&s.message),
                question_bytes(&q),
                "forwarded as asked"
            );
            let lower = query(&qname.to_ascii_lowercase(), qtype, s.id(), true, Some(1232));
            let up = upstream_reply(&lower, Rcode::NOERROR, &[], false);
            let actions = upstream(&mut server, 3, s, s.to, &up);
            let (_, bytes) = &replies(&actions)[0];
            assert_eq!(
                question_bytes(bytes),
                question_bytes(&q),
                "{qname} forwarded"
            );
        }
    }
}

#[test]
fn rd_echoed() {
    for rd in [false, true] {
        for qname in ["workstation1.example", "nothing.example"] {
            let mut server = synth_only();
            let reply = only_reply(&ask(&mut server, &query(qname, Rtype::A, 9, rd, None)));
            assert_eq!(reply.header().rd(), rd, "{qname}");
        }
        let mut server = forwarding(1);
        let s = sends(&ask(
            &mut server,
            &query("x.example", Rtype::A, 9, rd, None),
        ))
        .remove(0);
        let up = upstream_reply(&s.message, Rcode::NOERROR, &[UP_IP], false);
        let reply = only_reply(&upstream(&mut server, 1, &s, s.to, &up));
        assert_eq!(reply.header().rd(), rd, "forwarded");
    }
}

#[test]
fn ra_set_only_with_a_forwarder_in_the_chain() {
    // (chain has forwarder, name): the answer itself may come from synth.
    let cases = [
        (false, "workstation3.example"),
        (false, "none.example"),
        (true, "workstation3.example"),
    ];
    for (forward, qname) in cases {
        let mut server = if forward { forwarding(1) } else { synth_only() };
        let reply = only_reply(&ask(&mut server, &query(qname, Rtype::A, 1, true, None)));
        assert_eq!(reply.header().ra(), forward, "{qname} forward={forward}");
    }
    let mut server = forwarding(1);
    let s = sends(&ask(
        &mut server,
        &query("x.example", Rtype::A, 1, true, None),
    ))
    .remove(0);
    let mut up = upstream_reply(&s.message, Rcode::NOERROR, &[UP_IP], false);
    up[3] &= !0x80; // the upstream says RA=0: ours is what counts
    let reply = only_reply(&upstream(&mut server, 1, &s, s.to, &up));
    assert!(reply.header().ra());
}

#[test]
fn forwarded_reply_keeps_rcode_and_sections_but_not_aa() {
    for rcode in [
        Rcode::NOERROR,
        Rcode::NXDOMAIN,
        Rcode::FORMERR,
        Rcode::YXDOMAIN,
    ] {
        let mut w = World::manual(Config::default(), chain(&[upstream_addr(1)]));
        let q = query("www.example.com", Rtype::A, 4242, true, Some(1232));
        let s = sends(&w.client_at(0, udp(5353), &q)).remove(0);
        // Answer, authority and additional sections, AA=1.
        let owner = name("www.example.com");
        let mut b = names_core::domain::base::MessageBuilder::new_vec();
        b.header_mut().set_id(s.id());
        b.header_mut().set_qr(true);
        b.header_mut().set_aa(true);
        b.header_mut().set_rcode(rcode);
        let mut qb = b.question();
        qb.push((&owner, Rtype::A, names_core::domain::base::iana::Class::IN))
            .unwrap();
        let mut ans = qb.answer();
        for ip in [UP_IP, Ipv4Addr::new(192, 0, 2, 2)] {
            ans.push(a_record("www.example.com", ip)).unwrap();
        }
        let mut auth = ans.authority();
        auth.push(a_record("ns.example.com", Ipv4Addr::new(192, 0, 2, 53)))
            .unwrap();
        let mut add = auth.additional();
        add.push(a_record("glue.example.com", Ipv4Addr::new(192, 0, 2, 54)))
            .unwrap();
        let mut up = add.finish();
        let mut s = s;
        if rcode == Rcode::FORMERR {
            // FORMERR to a query with EDNS is asked once more without it; the second is passed on.
            let actions = w.upstream_at(5, s.token, s.to, &up);
            assert!(replies(&actions).is_empty());
            s = sends(&actions).remove(0);
            up[..2].copy_from_slice(&s.id().to_be_bytes());
        }
        let actions = w.upstream_at(10, s.token, s.to, &up);
        let reply = only_reply(&actions);
        assert_eq!(reply.header().rcode(), rcode);
        assert!(!reply.header().aa(), "AA never passed on");
        let counts = reply.header_counts();
        assert_eq!(
            (counts.ancount(), counts.nscount(), counts.arcount()),
            (2, 1, 2),
            "sections kept (plus our OPT)"
        );
        assert_eq!(a_addrs(&reply), vec![UP_IP, Ipv4Addr::new(192, 0, 2, 2)]);
        let auth: Vec<_> = reply
            .authority()
            .unwrap()
            .limit_to::<names_core::domain::rdata::A>()
            .map(|r| r.unwrap().owner().to_string())
            .collect();
        assert_eq!(auth, vec!["ns.example.com"]);
        w.assert_clean();
    }
}

#[test]
fn other_opcodes_get_notimp_with_opcode_echoed() {
    for opcode in [
        Opcode::IQUERY,
        Opcode::STATUS,
        Opcode::NOTIFY,
        Opcode::UPDATE,
        Opcode::from_int(3),
    ] {
        for mut server in [synth_only(), forwarding(1)] {
            let actions = ask(
                &mut server,
                &query_with("workstation7.example", 31, opcode, None),
            );
            assert!(sends(&actions).is_empty(), "nothing forwarded");
            let reply = only_reply(&actions);
            let h = reply.header();
            assert_eq!(h.rcode(), Rcode::NOTIMP, "{opcode}");
            assert_eq!(h.opcode(), opcode);
            assert!(h.qr());
            assert_eq!(h.id(), 31);
        }
    }
}

#[test]
fn qdcount_other_than_one_is_formerr() {
    let one = query("workstation7.example", Rtype::A, 12, true, None);
    let mut zero = one[..12].to_vec();
    zero[5] = 0;
    let mut two = names_core::domain::base::MessageBuilder::new_vec();
    two.header_mut().set_id(12);
    let mut q = two.question();
    q.push((
        &name("a.example"),
        Rtype::A,
        names_core::domain::base::iana::Class::IN,
    ))
    .unwrap();
    q.push((
        &name("b.example"),
        Rtype::A,
        names_core::domain::base::iana::Class::IN,
    ))
    .unwrap();
    let two = q.finish();
    for (what, bytes) in [("qdcount 0", zero), ("qdcount 2", two)] {
        for mut server in [synth_only(), forwarding(1)] {
            let actions = ask(&mut server, &bytes);
            assert!(sends(&actions).is_empty(), "{what}: nothing forwarded");
            let reply = only_reply(&actions);
            assert_eq!(reply.header().rcode(), Rcode::FORMERR, "{what}");
            assert_eq!(reply.header().id(), 12);
        }
    }
}

#[test]
fn readable_header_with_garbage_body_is_formerr() {
    let good = query("workstation7.example", Rtype::A, 99, true, Some(1232));
    let header = good[..12].to_vec();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("no question bytes", vec![]),
        ("label runs off the end", vec![0x3f, b'a', b'b']),
        ("name without type and class", vec![1, b'a', 0]),
        ("bad label type", vec![0x80, 0, 0, 1, 0, 1]),
        ("pointer loop", vec![0xc0, 12, 0, 1, 0, 1]),
        (
            "question then truncated OPT",
            good[12..good.len() - 3].to_vec(),
        ),
        ("all ones", vec![0xff; 40]),
    ];
    for (what, body) in bodies {
        let msg = [header.clone(), body].concat();
        let mut server = forwarding(1);
        let actions = ask(&mut server, &msg);
        assert!(sends(&actions).is_empty(), "{what}: nothing forwarded");
        let reply = only_reply(&actions);
        assert_eq!(reply.header().rcode(), Rcode::FORMERR, "{what}");
        assert_eq!(reply.header().id(), 99, "{what}");
    }
    // A second OPT record is malformed too (RFC 6891 6.1.1).
    let mut two_opts = good.clone();
    two_opts[11] = 2; // ARCOUNT 2
    two_opts.extend_from_slice(&good[good.len() - 11..]);
    let mut server = synth_only();
    let reply = only_reply(&ask(&mut server, &two_opts));
    assert_eq!(reply.header().rcode(), Rcode::FORMERR, "two OPT records");
}

#[test]
fn short_messages_and_responses_are_dropped_silently() {
    let mut response = query("workstation7.example", Rtype::A, 5, true, None);
    response[2] |= 0x80; // QR=1
    let mut garbage_response = vec![0u8; 12];
    garbage_response[2] = 0x80;
    garbage_response.extend_from_slice(&[0xff; 9]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("one byte", vec![1]),
        ("eleven bytes", vec![0; 11]),
        ("response", response),
        ("garbage response", garbage_response),
    ];
    for (what, bytes) in cases {
        for mut server in [synth_only(), forwarding(1)] {
            let actions = ask(&mut server, &bytes);
            assert!(
                actions.is_empty(),
                "{what}: no action at all, got {actions:?}"
            );
            assert_eq!(server.pending_queries(), 0);
            assert_eq!(server.poll_timeout(), None, "{what}: no timer armed");
        }
    }
}

// ---------------------------------------------------------------------------
// EDNS and sizes
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Forwarder
// ---------------------------------------------------------------------------

#[test]
fn every_try_has_a_fresh_random_id_and_port() {
    let ups: Vec<SocketAddr> = (1..=3).map(upstream_addr).collect();
    let config = Config::default();
    let mut w = World::manual(config, chain(&ups));
    let mut all = Vec::new();
    for i in 0..20u16 {
        let q = query(&format!("host{i}.example"), Rtype::A, 1000 + i, true, None);
        all.extend(sends(&w.client_at(0, udp(5353), &q)));
    }
    // Every query retried twice (per-try timeouts), all tries alive at once.
    all.extend(sends(&w.timeout_at(1000)));
    all.extend(sends(&w.timeout_at(2000)));
    assert_eq!(all.len(), 60);
    let mut pairs = std::collections::BTreeSet::new();
    let mut ids = std::collections::BTreeSet::new();
    let mut ports = std::collections::BTreeSet::new();
    for s in &all {
        let Via::Udp { local_port } = s.via else {
            panic!("first tries go over UDP")
        };
        assert!(local_port >= 1024, "port {local_port}");
        assert!(pairs.insert((s.id(), local_port)), "(id, port) repeated");
        ids.insert(s.id());
        ports.insert(local_port);
        let msg = message(&s.message);
        assert!(!msg.header().qr());
        assert!(msg.header().rd());
    }
    // 60 draws from 65536 IDs / 64512 ports: repeats are possible but a handful at most.
    assert!(ids.len() >= 55, "IDs look random: {} distinct", ids.len());
    assert!(
        ports.len() >= 55,
        "ports look random: {} distinct",
        ports.len()
    );
    // The client's IDs are not reused upstream.
    let client_ids = all
        .iter()
        .filter(|s| (1000..1020).contains(&s.id()))
        .count();
    assert!(client_ids <= 1);
    // Tries of one query rotate through the servers.
    let mut per_query: BTreeMap<String, Vec<SocketAddr>> = BTreeMap::new();
    for s in &all {
        let q = message(&s.message)
            .sole_question()
            .unwrap()
            .qname()
            .to_string();
        per_query.entry(q).or_default().push(s.to);
    }
    for tos in per_query.values() {
        assert_eq!(tos, &ups, "one try per server, in order");
    }
    // Finish: the budget ends them all.
    w.timeout_at(5000);
    assert_eq!(w.replies.len(), 20);
    w.assert_clean();
}

#[test]
fn spoofed_replies_are_ignored_and_the_real_one_accepted() {
    let other: SocketAddr = "127.0.0.66:53".parse().unwrap();
    let same_ip_other_port: SocketAddr = "127.0.1.1:5353".parse().unwrap();
    let mut w = World::manual(Config::default(), chain(&[upstream_addr(1)]));
    let q = query("www.example.com", Rtype::A, 500, true, None);
    let s = sends(&w.client_at(0, udp(5353), &q)).remove(0);
    let real = upstream_reply(&s.message, Rcode::NOERROR, &[UP_IP], false);
    let evil = [Ipv4Addr::new(6, 6, 6, 6)];
    let spoofs: Vec<(&str, SocketAddr, Vec<u8>)> = vec![
        (
            "wrong source ip",
            other,
            upstream_reply(&s.message, Rcode::NOERROR, &evil, false),
        ),
        (
            "wrong source port",
            same_ip_other_port,
            upstream_reply(&s.message, Rcode::NOERROR, &evil, false),
        ),
        (
            "wrong id",
            s.to,
            with_id(
                &upstream_reply(&s.message, Rcode::NOERROR, &evil, false),
                s.id().wrapping_add(1),
            ),
        ),
        (
            "wrong name",
            s.to,
            upstream_reply(
                &query("www.example.org", Rtype::A, s.id(), true, None),
                Rcode::NOERROR,
                &evil,
                false,
            ),
        ),
        (
            "wrong type",
            s.to,
            upstream_reply(
                &query("www.example.com", Rtype::AAAA, s.id(), true, None),
                Rcode::NOERROR,
                &[],
                false,
            ),
        ),
        ("not a response", s.to, s.message.clone()),
        ("garbage", s.to, vec![0xff; 7]),
        ("header only", s.to, real[..12].to_vec()),
        (
            "spoofed SERVFAIL from elsewhere",
            other,
            upstream_reply(&s.message, Rcode::SERVFAIL, &[], false),
        ),
    ];
    for (i, (what, from, bytes)) in spoofs.iter().enumerate() {
        let actions = w.upstream_at(10 + i as u64, s.token, *from, bytes);
        assert!(actions.is_empty(), "{what}: ignored, got {actions:?}");
        assert_eq!(w.server.pending_queries(), 1, "{what}");
    }
    // A packet for a token that never existed, or a stale one, is ignored too.
    assert!(w.upstream_at(30, Token(9999), s.to, &real).is_empty());
    let actions = w.upstream_at(40, s.token, s.to, &real);
    let reply = only_reply(&actions);
    assert_eq!(a_addrs(&reply), vec![UP_IP]);
    assert_eq!(reply.header().id(), 500);
    w.assert_clean();
    // The real reply again, now stale: nothing.
    let actions = w.upstream_at(50, s.token, s.to, &real);
    assert!(actions.is_empty());
}

#[test]
fn per_try_timeout_moves_to_the_next_upstream() {
    let ups: Vec<SocketAddr> = (1..=3).map(upstream_addr).collect();
    for try_ms in [200u64, 1000] {
        let config = Config {
            try_timeout: Duration::from_millis(try_ms),
            ..Config::default()
        };
        let mut w = World::manual(config, chain(&ups));
        let first = sends(&w.client_at(0, udp(5353), &query("a.example", Rtype::A, 1, true, None)));
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].to, ups[0]);
        assert_eq!(w.server.poll_timeout(), Some(at(try_ms)));
        assert!(w.timeout_at(try_ms - 1).is_empty(), "not yet");
        let actions = w.timeout_at(try_ms);
        let second = sends(&actions);
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].to, ups[1]);
        assert!(closes(&actions).is_empty(), "the first try stays open");
        assert_ne!(second[0].token, first[0].token);
        let third = sends(&w.timeout_at(2 * try_ms));
        assert_eq!(third[0].to, ups[2]);
        let up = upstream_reply(&third[0].message, Rcode::NOERROR, &[UP_IP], false);
        let actions = w.upstream_at(2 * try_ms + 5, third[0].token, ups[2], &up);
        assert_eq!(a_addrs(&only_reply(&actions)), vec![UP_IP]);
        assert_eq!(closes(&actions).len(), 3, "all tries closed");
        w.assert_clean();
        assert_eq!(w.server.poll_timeout(), None);
    }
}

#[test]
fn failure_rcodes_move_to_the_next_upstream() {
    let ups: Vec<SocketAddr> = (1..=2).map(upstream_addr).collect();
    for rcode in [Rcode::SERVFAIL, Rcode::REFUSED, Rcode::NOTIMP] {
        let mut w = World::manual(Config::default(), chain(&ups));
        let s1 = sends(&w.client_at(0, udp(5353), &query("a.example", Rtype::A, 1, true, None)))
            .remove(0);
        let bad = upstream_reply(&s1.message, rcode, &[], false);
        let actions = w.upstream_at(3, s1.token, s1.to, &bad);
        assert!(replies(&actions).is_empty(), "{rcode}: no reply yet");
        assert_eq!(
            closes(&actions),
            vec![s1.token],
            "{rcode}: failed try closed"
        );
        let s2 = sends(&actions).remove(0);
        assert_eq!(s2.to, ups[1], "{rcode}: next server at once");
        let good = upstream_reply(&s2.message, Rcode::NOERROR, &[UP_IP], false);
        let reply = only_reply(&w.upstream_at(6, s2.token, s2.to, &good));
        assert_eq!(reply.header().rcode(), Rcode::NOERROR);
        w.assert_clean();

        // Every upstream fails: SERVFAIL at once, not at the budget.
        let mut w = World::manual(Config::default(), chain(&ups));
        let s1 = sends(&w.client_at(0, udp(5353), &query("a.example", Rtype::A, 1, true, None)))
            .remove(0);
        let s2 = sends(&w.upstream_at(
            3,
            s1.token,
            s1.to,
            &upstream_reply(&s1.message, rcode, &[], false),
        ))
        .remove(0);
        let actions = w.upstream_at(
            4,
            s2.token,
            s2.to,
            &upstream_reply(&s2.message, rcode, &[], false),
        );
        let reply = only_reply(&actions);
        assert_eq!(
            reply.header().rcode(),
            Rcode::SERVFAIL,
            "{rcode} everywhere"
        );
        w.assert_clean();
    }
}

#[test]
fn late_reply_to_an_earlier_try_still_counts() {
    let ups: Vec<SocketAddr> = (1..=2).map(upstream_addr).collect();
    let mut w = World::manual(Config::default(), chain(&ups));
    let s1 =
        sends(&w.client_at(0, udp(5353), &query("a.example", Rtype::A, 1, true, None))).remove(0);
    let s2 = sends(&w.timeout_at(1000)).remove(0);
    let s3 = sends(&w.timeout_at(2000)).remove(0);
    assert_eq!((s1.to, s2.to, s3.to), (ups[0], ups[1], ups[0]));
    // The first try's reply arrives at 4.9 s, within the 5 s budget.
    let late = upstream_reply(&s1.message, Rcode::NOERROR, &[UP_IP], false);
    let actions = w.upstream_at(4900, s1.token, s1.to, &late);
    assert_eq!(a_addrs(&only_reply(&actions)), vec![UP_IP]);
    w.assert_clean();
    // The second try answering now is stale.
    let other = upstream_reply(&s2.message, Rcode::NOERROR, &[UP_IP], false);
    assert!(w.upstream_at(4950, s2.token, s2.to, &other).is_empty());
}

#[test]
fn truncated_udp_reply_is_retried_over_tcp() {
    let ups: Vec<SocketAddr> = (1..=2).map(upstream_addr).collect();
    let many: Vec<Ipv4Addr> = (0..100).map(|i| Ipv4Addr::new(192, 0, 2, i)).collect();
    // chunkings of the TCP reply: whole, byte by byte, split in the length prefix, odd sizes
    let chunkings: [&dyn Fn(usize) -> Vec<usize>; 4] = [
        &|len| vec![len],
        &|len| vec![1; len],
        &|len| vec![1, len - 1],
        &|len| {
            let mut v = vec![3, 7, 100];
            v.push(len - 110);
            v
        },
    ];
    for chunking in chunkings {
        let mut w = World::manual(Config::default(), chain(&ups));
        let q = query("big.example", Rtype::A, 77, true, Some(1232));
        let s1 = sends(&w.client_at(0, udp(5353), &q)).remove(0);
        let tc = upstream_reply(&s1.message, Rcode::NOERROR, &[], true);
        let actions = w.upstream_at(5, s1.token, s1.to, &tc);
        assert!(replies(&actions).is_empty());
        assert_eq!(closes(&actions), vec![s1.token], "the UDP try is over");
        let s2 = sends(&actions).remove(0);
        assert_eq!(s2.via, Via::Tcp);
        assert_eq!(s2.to, s1.to, "same server");
        assert_eq!(question_bytes(&s2.message), question_bytes(&s1.message));
        let full = frame(&upstream_reply(&s2.message, Rcode::NOERROR, &many, false));
        let mut offset = 0;
        let mut got = Vec::new();
        for len in chunking(full.len()) {
            let chunk = &full[offset..offset + len];
            offset += len;
            got.extend(w.upstream_at(10, s2.token, s2.to, chunk));
        }
        assert_eq!(offset, full.len());
        let r = replies(&got);
        assert_eq!(r.len(), 1);
        let reply = message(&r[0].1);
        // 100 records exceed the client's 1232: truncated for it, over UDP.
        assert!(reply.header().tc());
        assert!(reply.header().ra());
        w.assert_clean();
    }
    // A client on TCP gets all 100.
    let mut w = World::manual(Config::default(), chain(&ups));
    w.conns.insert(CONN, Conn::new(tcp_peer(), w.now));
    w.push(Event::TcpOpen(CONN));
    let q = frame(&query("big.example", Rtype::A, 78, true, None));
    let s1 = sends(&w.client_at(0, Origin::Tcp(CONN), &q)).remove(0);
    let tc = upstream_reply(&s1.message, Rcode::NOERROR, &[], true);
    let s2 = sends(&w.upstream_at(5, s1.token, s1.to, &tc)).remove(0);
    let full = frame(&upstream_reply(&s2.message, Rcode::NOERROR, &many, false));
    let reply = only_reply(&w.upstream_at(6, s2.token, s2.to, &full));
    assert_eq!(a_addrs(&reply).len(), 100);
    w.assert_clean();
}

#[test]
fn budget_expiry_is_servfail_at_exactly_the_budget() {
    for budget_ms in [300u64, 2500, 5000] {
        for ups in [1u8, 3] {
            let list: Vec<SocketAddr> = (1..=ups).map(upstream_addr).collect();
            let config = Config {
                budget: Duration::from_millis(budget_ms),
                ..Config::default()
            };
            let mut w = World::manual(config, chain(&list));
            let start = 123;
            w.client_at(
                start,
                udp(5353),
                &query("slow.example", Rtype::A, 4, true, None),
            );
            let deadline = at(start + budget_ms);
            let mut steps = 0;
            while let Some(next) = w.server.poll_timeout() {
                steps += 1;
                assert!(steps < 100, "bounded");
                assert!(next <= deadline);
                let actions = w.timeout_at((next - epoch()).as_millis() as u64);
                if !replies(&actions).is_empty() {
                    assert_eq!(next, deadline, "reply at exactly the budget");
                }
            }
            assert_eq!(w.replies.len(), 1);
            let reply = message(&w.replies[0].1);
            assert_eq!(reply.header().rcode(), Rcode::SERVFAIL);
            assert_eq!(reply.header().id(), 4);
            // One try per per-try timeout within the budget.
            let tries = budget_ms.div_ceil(1000) as usize;
            assert_eq!(w.tokens.len(), tries, "budget {budget_ms}");
            w.assert_clean();
        }
    }
}

#[test]
fn upstream_errors_close_the_token_and_move_on() {
    use names_core::UpstreamError;
    let ups: Vec<SocketAddr> = (1..=2).map(upstream_addr).collect();
    // Bind: same server, another port.
    let mut w = World::manual(Config::default(), chain(&ups));
    let s1 =
        sends(&w.client_at(0, udp(5353), &query("a.example", Rtype::A, 1, true, None))).remove(0);
    let actions = w.error_at(1, s1.token, UpstreamError::Bind);
    assert_eq!(closes(&actions), vec![s1.token]);
    let s2 = sends(&actions).remove(0);
    assert_eq!(s2.to, s1.to);
    assert_ne!(s2.via, s1.via);
    // Io: that server failed, the next one is asked.
    let actions = w.error_at(2, s2.token, UpstreamError::Io);
    let s3 = sends(&actions).remove(0);
    assert_eq!(s3.to, ups[1]);
    let reply = only_reply(&w.error_at(3, s3.token, UpstreamError::Io));
    assert_eq!(reply.header().rcode(), Rcode::SERVFAIL);
    w.assert_clean();
}

// ---------------------------------------------------------------------------
// TCP clients
// ---------------------------------------------------------------------------

fn tcp_server(config: Config, ups: &[SocketAddr]) -> Server {
    let mut s = server(config, ups);
    s.handle_tcp_open(at(0), CONN, tcp_peer());
    s
}

#[test]
fn pipelined_queries_in_one_chunk_and_across_chunks() {
    let queries: Vec<Vec<u8>> = (0..5u16)
        .map(|i| {
            query(
                &format!("workstation{i}.example"),
                Rtype::A,
                100 + i,
                true,
                None,
            )
        })
        .collect();
    let stream: Vec<u8> = queries.iter().flat_map(|q| frame(q)).collect();
    for chunk_size in [stream.len(), 1, 2, 3, 13, 50] {
        let mut server = tcp_server(Config::default(), &[]);
        let mut got = Vec::new();
        for chunk in stream.chunks(chunk_size) {
            server.handle_client(at(1), Origin::Tcp(CONN), chunk);
            got.extend(replies(&drain(&mut server)));
        }
        assert_eq!(got.len(), 5, "chunk {chunk_size}");
        for (i, (to, bytes)) in got.iter().enumerate() {
            assert_eq!(*to, Origin::Tcp(CONN));
            let msg = message(unframe(bytes));
            assert_eq!(msg.header().id(), 100 + i as u16);
            assert_eq!(a_addrs(&msg), vec![Ipv4Addr::new(172, 0, 2, i as u8)]);
        }
    }
    // Forwarded pipelined queries are answered in the upstream's order.
    let mut server = tcp_server(Config::default(), &[upstream_addr(1)]);
    let stream: Vec<u8> = (0..3u16)
        .flat_map(|i| {
            frame(&query(
                &format!("h{i}.example"),
                Rtype::A,
                200 + i,
                true,
                None,
            ))
        })
        .collect();
    server.handle_client(at(1), Origin::Tcp(CONN), &stream);
    let sent = sends(&drain(&mut server));
    assert_eq!(sent.len(), 3);
    let mut ids = Vec::new();
    for s in sent.iter().rev() {
        let up = upstream_reply(&s.message, Rcode::NOERROR, &[UP_IP], false);
        let r = replies(&upstream(&mut server, 5, s, s.to, &up));
        ids.push(message(unframe(&r[0].1)).header().id());
    }
    assert_eq!(ids, vec![202, 201, 200]);
}

#[test]
fn idle_connection_closed_after_tcp_idle() {
    let idle = Duration::from_millis(2000);
    let config = Config {
        tcp_idle: idle,
        ..Config::default()
    };
    // Never used: closed at exactly tcp_idle.
    let mut server = tcp_server(config.clone(), &[]);
    assert!(timeout(&mut server, 1999).is_empty());
    assert_eq!(
        timeout(&mut server, 2000),
        vec![Action::CloseClient { conn: CONN }]
    );
    assert_eq!(server.open_connections(), 0);

    // A query at 1.5 s resets the idle clock: closed at 3.5 s.
    let mut server = tcp_server(config.clone(), &[]);
    server.handle_client(
        at(1500),
        Origin::Tcp(CONN),
        &frame(&query("workstation1.x", Rtype::A, 1, true, None)),
    );
    assert_eq!(replies(&drain(&mut server)).len(), 1);
    assert!(timeout(&mut server, 2000).is_empty());
    assert!(timeout(&mut server, 3499).is_empty());
    assert_eq!(
        timeout(&mut server, 3500),
        vec![Action::CloseClient { conn: CONN }]
    );

    // A query in flight keeps it open past tcp_idle; closed tcp_idle after the reply.
    let mut server = tcp_server(config.clone(), &[upstream_addr(1)]);
    server.handle_client(
        at(100),
        Origin::Tcp(CONN),
        &frame(&query("fwd.example", Rtype::A, 1, true, None)),
    );
    let mut all = drain(&mut server);
    let mut t = 100;
    let mut steps = 0;
    while let Some(next) = server.poll_timeout() {
        steps += 1;
        assert!(steps < 50);
        t = next.duration_since(epoch()).as_millis() as u64;
        server.handle_timeout(next);
        let actions = drain(&mut server);
        if actions.contains(&Action::CloseClient { conn: CONN }) {
            break;
        }
        all.extend(actions);
    }
    let r = replies(&all);
    assert_eq!(r.len(), 1, "SERVFAIL at the budget before the close");
    assert_eq!(message(unframe(&r[0].1)).header().rcode(), Rcode::SERVFAIL);
    assert_eq!(t, 100 + 5000 + 2000, "closed tcp_idle after the reply");

    // A partial frame is not activity.
    let mut server = tcp_server(config, &[]);
    server.handle_client(at(1000), Origin::Tcp(CONN), &[0, 30, 1, 2]);
    assert!(drain(&mut server).is_empty());
    assert_eq!(
        timeout(&mut server, 2000),
        vec![Action::CloseClient { conn: CONN }]
    );
}

#[test]
fn connections_beyond_max_tcp_are_closed_at_once() {
    let config = Config {
        max_tcp: 2,
        ..Config::default()
    };
    let mut server = server(config, &[]);
    server.handle_tcp_open(at(0), ConnId(1), tcp_peer());
    server.handle_tcp_open(at(0), ConnId(2), tcp_peer());
    assert!(drain(&mut server).is_empty());
    server.handle_tcp_open(at(0), ConnId(3), tcp_peer());
    assert_eq!(
        drain(&mut server),
        vec![Action::CloseClient { conn: ConnId(3) }]
    );
    assert_eq!(server.open_connections(), 2);
    // The others keep being served, and closing one makes room.
    server.handle_client(
        at(1),
        Origin::Tcp(ConnId(2)),
        &frame(&query("workstation5.x", Rtype::A, 5, true, None)),
    );
    assert_eq!(replies(&drain(&mut server)).len(), 1);
    // UDP is unaffected.
    assert_eq!(
        replies(&ask_at(
            &mut server,
            1,
            &query("workstation5.x", Rtype::A, 5, true, None)
        ))
        .len(),
        1
    );
    server.handle_tcp_closed(at(2), ConnId(1));
    server.handle_tcp_open(at(2), ConnId(4), tcp_peer());
    assert!(drain(&mut server).is_empty());
    assert_eq!(server.open_connections(), 2);
}

#[test]
fn pipelining_limit_pauses_then_resumes_reading() {
    let config = Config {
        max_pipelined: 2,
        ..Config::default()
    };
    let mut server = tcp_server(config, &[upstream_addr(1)]);
    let stream: Vec<u8> = (0..5u16)
        .flat_map(|i| {
            frame(&query(
                &format!("p{i}.example"),
                Rtype::A,
                300 + i,
                true,
                None,
            ))
        })
        .collect();
    server.handle_client(at(1), Origin::Tcp(CONN), &stream);
    let actions = drain(&mut server);
    assert_eq!(sends(&actions).len(), 2, "only max_pipelined read");
    assert!(actions.contains(&Action::PauseRead { conn: CONN }));
    let mut queue = sends(&actions);
    let mut ids = Vec::new();
    let mut resumed = false;
    let mut steps = 0;
    while let Some(s) = (!queue.is_empty()).then(|| queue.remove(0)) {
        steps += 1;
        assert!(steps < 20);
        let up = upstream_reply(&s.message, Rcode::NOERROR, &[UP_IP], false);
        let actions = upstream(&mut server, 2, &s, s.to, &up);
        for r in replies(&actions) {
            ids.push(message(unframe(&r.1)).header().id());
        }
        if resumed {
            assert!(
                sends(&actions).is_empty(),
                "nothing left unread once resumed"
            );
        }
        queue.extend(sends(&actions));
        assert!(
            !actions.contains(&Action::PauseRead { conn: CONN }),
            "paused once"
        );
        resumed |= actions.contains(&Action::ResumeRead { conn: CONN });
        assert!(server.pending_queries() <= 2);
    }
    assert!(resumed, "reading resumes once the buffered queries drained");
    assert_eq!(ids, vec![300, 301, 302, 303, 304]);
}

#[test]
fn zero_length_frame_closes_the_connection() {
    for prefix in [
        vec![],
        frame(&query("workstation1.x", Rtype::A, 1, true, None)),
    ] {
        let mut server = tcp_server(Config::default(), &[]);
        let stream = [
            prefix.clone(),
            vec![0, 0],
            frame(&query("workstation2.x", Rtype::A, 2, true, None)),
        ]
        .concat();
        server.handle_client(at(1), Origin::Tcp(CONN), &stream);
        let actions = drain(&mut server);
        assert_eq!(
            replies(&actions).len(),
            usize::from(!prefix.is_empty()),
            "queries before it answered"
        );
        assert_eq!(actions.last(), Some(&Action::CloseClient { conn: CONN }));
        assert_eq!(server.open_connections(), 0);
        // Bytes after the close are ignored.
        server.handle_client(
            at(2),
            Origin::Tcp(CONN),
            &frame(&query("workstation3.x", Rtype::A, 3, true, None)),
        );
        assert!(drain(&mut server).is_empty());
    }
}

#[test]
fn closed_connection_gets_no_late_reply() {
    let mut server = tcp_server(Config::default(), &[upstream_addr(1)]);
    server.handle_client(
        at(1),
        Origin::Tcp(CONN),
        &frame(&query("a.example", Rtype::A, 1, true, None)),
    );
    let s = sends(&drain(&mut server)).remove(0);
    server.handle_tcp_closed(at(2), CONN);
    let up = upstream_reply(&s.message, Rcode::NOERROR, &[UP_IP], false);
    let actions = upstream(&mut server, 3, &s, s.to, &up);
    assert!(replies(&actions).is_empty());
    assert_eq!(closes(&actions), vec![s.token]);
    assert_eq!(server.pending_queries(), 0);
    assert_eq!(server.open_upstream_tokens(), 0);
}

// ---------------------------------------------------------------------------
// Synth
// ---------------------------------------------------------------------------

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
fn in_flight_limit_is_shared_by_servers_cloned_from_one_config() {
    let config = Config {
        max_exchanges: 3,
        ..Config::default()
    };
    let up = upstream_addr(1);
    let mut servers = [server(config.clone(), &[up]), server(config.clone(), &[up])];
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
    // When the budget ends them, the shared count goes back to zero: three fit again.
    for s in &mut servers {
        s.handle_timeout(at(60_000));
        drain(s);
    }
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
