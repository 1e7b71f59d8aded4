//! The forwarder: fresh IDs and ports, spoofing, per-try timeouts, failures, TC over TCP, the budget.

use super::*;

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
