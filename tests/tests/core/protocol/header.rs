//! Header rules: IDs, questions, flags, opcodes, counts, malformed and short messages.

use super::*;

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
fn forwarded_reply_keeps_rcode_and_scrubbed_sections_but_not_aa() {
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
        // Scrubbed (issue 13): an A record in authority and glue no NS points to are dropped.
        let counts = reply.header_counts();
        assert_eq!(
            (counts.ancount(), counts.nscount(), counts.arcount()),
            (2, 0, 1),
            "answer kept, unrelated authority and additional dropped (plus our OPT)"
        );
        assert_eq!(a_addrs(&reply), vec![UP_IP, Ipv4Addr::new(192, 0, 2, 2)]);
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
