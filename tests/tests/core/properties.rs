//! Properties of the core over arbitrary input (proptest): whatever bytes a client
//! sends, at most one reply comes back and it carries the query's ID; TCP framing does
//! not depend on how the stream is chunked; queries round-trip through the encoder; and
//! replies to well-formed queries parse back and fit the client's UDP limit.

use std::net::Ipv4Addr;
use std::time::Duration;

use names_core::domain::base::iana::{Class, Opcode, Rtype};
use names_core::domain::base::{Message, Name, ToName};
use names_core::{Action, Chain, Config, Origin, Server};
use names_tests::build::*;
use names_tests::drive::*;
use names_tests::parse::{a_addrs, message, question_bytes};
use proptest::prelude::*;

/// A valid query, then some bytes overwritten, truncated or appended.
fn mutated_query() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u16>(),
        prop::sample::select(vec!["workstation7.example", "a.b.c", ".", "x"]),
        prop::option::of(any::<u16>()),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        prop::option::of(any::<usize>()),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(id, qname, edns, flips, cut, tail)| {
            let mut q = query(qname, Rtype::A, id, true, edns);
            for (at, byte) in flips {
                let i = at % q.len();
                q[i] = byte;
            }
            if let Some(cut) = cut {
                q.truncate(cut % (q.len() + 1));
            }
            q.extend(tail);
            q
        })
}

fn client_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..600), mutated_query()]
}

/// Every reply sent to `origin` while the server runs to quiescence (timers included).
fn run_to_end(server: &mut Server) -> Vec<Action> {
    let mut actions = drain(server);
    for _ in 0..100 {
        let Some(next) = server.poll_timeout() else {
            break;
        };
        server.handle_timeout(next);
        actions.extend(drain(server));
    }
    assert_eq!(server.poll_timeout(), None, "bounded");
    actions
}

fn both_servers() -> [Server; 2] {
    [
        server(Config::default(), &[]),
        server(Config::default(), &[upstream_addr(1)]),
    ]
}

fn opt_limit(edns: Option<u16>) -> usize {
    match edns {
        None => 512,
        Some(size) => usize::from(size.clamp(512, 1232)),
    }
}

/// A name from 0 to 4 labels of mixed-case letters, digits and hyphens.
fn any_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-zA-Z0-9][a-zA-Z0-9-]{0,20}", 0..5).prop_map(|labels| {
        if labels.is_empty() {
            ".".to_string()
        } else {
            labels.join(".")
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_udp_bytes_get_at_most_one_reply_with_their_id(bytes in client_bytes()) {
        for mut server in both_servers() {
            server.handle_client(at(0), udp(4000), &bytes);
            let actions = run_to_end(&mut server);
            let r = replies(&actions);
            prop_assert!(r.len() <= 1, "{actions:?}");
            if let Some((to, reply)) = r.first() {
                prop_assert_eq!(*to, udp(4000));
                prop_assert!(bytes.len() >= 12, "short input dropped");
                prop_assert_eq!(&reply[..2], &bytes[..2]);
                let msg = Message::from_octets(reply.clone()).unwrap();
                prop_assert!(msg.header().qr());
                prop_assert!(reply.len() <= 512 || Message::from_octets(&bytes[..]).unwrap().opt().is_some());
            }
            prop_assert_eq!(server.pending_queries(), 0);
            prop_assert_eq!(server.open_upstream_tokens(), 0);
        }
    }

    #[test]
    fn tcp_stream_gets_the_same_replies_however_chunked(
        messages in prop::collection::vec(
            prop_oneof![
                3 => client_bytes(),
                1 => Just(Vec::new()),
            ],
            1..6,
        ),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let stream: Vec<u8> = messages.iter().flat_map(|m| frame(m)).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.push(stream.len());
        points.sort_unstable();
        // Frames before the first empty one, which closes the connection.
        let live: Vec<&Vec<u8>> = messages.iter().take_while(|m| !m.is_empty()).collect();
        let mut outcomes = Vec::new();
        for chunked in [false, true] {
            let mut server = server(Config::default(), &[]);
            server.handle_tcp_open(at(0), CONN, tcp_peer());
            let mut actions = Vec::new();
            if chunked {
                let mut from = 0;
                for &p in &points {
                    server.handle_client(at(1), Origin::Tcp(CONN), &stream[from..p]);
                    actions.extend(drain(&mut server));
                    from = p;
                }
            } else {
                server.handle_client(at(1), Origin::Tcp(CONN), &stream);
                actions.extend(drain(&mut server));
            }
            let r = replies(&actions);
            prop_assert!(r.len() <= live.len());
            // Replies come in frame order, one at most per frame, each with its frame's ID.
            let mut frames = live.iter().filter(|m| m.len() >= 12);
            for (to, bytes) in &r {
                prop_assert_eq!(*to, Origin::Tcp(CONN));
                let reply = unframe(bytes);
                let found = frames.any(|m| m[..2] == reply[..2]);
                prop_assert!(found, "reply ID {:02x?} matches a frame in order", &reply[..2]);
            }
            let closed = actions.contains(&Action::CloseClient { conn: CONN });
            prop_assert_eq!(closed, live.len() < messages.len(), "closed iff an empty frame came");
            outcomes.push(actions);
        }
        prop_assert_eq!(&outcomes[0], &outcomes[1]);
    }

    /// The query the forwarder encodes carries the client's question (name bytes, case
    /// included, type and class), RD, CD as asked, and an OPT (version 0, the server's
    /// UDP size) with the client's DO bit; nothing else.
    #[test]
    fn forwarded_queries_round_trip(
        id in any::<u16>(),
        qname in any_name(),
        qtype in any::<u16>().prop_filter("a data type", |t| !matches!(t, 41 | 128..=255)),
        qclass in prop::sample::select(vec![Class::IN, Class::CH, Class::HS, Class::ANY]),
        cd in any::<bool>(),
        edns in prop::option::of((any::<u16>(), any::<bool>())),
    ) {
        let name = name(&qname);
        let qtype = Rtype::from_int(qtype);
        let flags = Flags { rd: true, cd, opcode: Opcode::QUERY };
        let asked = query_wire(&name, qtype, qclass, id, flags, edns.map(|(s, d)| (s, 0, d)));
        let config = Config::default();
        let mut server = server(config.clone(), &[upstream_addr(1)]);
        server.handle_client(at(0), udp(4000), &asked);
        let sent = sends(&drain(&mut server));
        prop_assert_eq!(sent.len(), 1, "{} {} forwarded", qname, qtype);
        let msg = Message::from_octets(sent[0].message.clone()).unwrap();
        let h = msg.header();
        prop_assert!(!h.qr());
        prop_assert_eq!(h.opcode(), Opcode::QUERY);
        prop_assert_eq!((h.rd(), h.cd()), (true, cd));
        let q = msg.sole_question().unwrap();
        let parsed: Name<Vec<u8>> = q.qname().to_name();
        prop_assert_eq!(parsed.as_slice(), name.as_slice(), "name bytes, case included");
        prop_assert_eq!((q.qtype(), q.qclass()), (qtype, qclass));
        let opt = msg.opt().expect("an OPT upstream");
        prop_assert_eq!(opt.udp_payload_size(), config.edns_udp_size);
        prop_assert_eq!(opt.dnssec_ok(), edns.is_some_and(|(_, d)| d));
        prop_assert_eq!(opt.version(), 0);
        prop_assert_eq!(msg.header_counts().ancount() + msg.header_counts().nscount(), 0);
        prop_assert_eq!(msg.header_counts().arcount(), 1);
    }

    #[test]
    fn replies_parse_and_fit_the_udp_limit(
        id in any::<u16>(),
        qname in any_name(),
        qtype in prop::sample::select(vec![Rtype::A, Rtype::AAAA, Rtype::TXT, Rtype::ANY]),
        records in 0usize..200,
        edns in prop::option::of(any::<u16>()),
        tcp in any::<bool>(),
    ) {
        let mut server = Server::new(Config::default(), Chain::new().with(Many(records)), SEED);
        let q = query(&qname, qtype, id, true, edns);
        let origin = if tcp {
            server.handle_tcp_open(at(0), CONN, tcp_peer());
            server.handle_client(at(0), Origin::Tcp(CONN), &frame(&q));
            Origin::Tcp(CONN)
        } else {
            server.handle_client(at(0), udp(4001), &q);
            udp(4001)
        };
        let r = replies(&drain(&mut server));
        prop_assert_eq!(r.len(), 1);
        prop_assert_eq!(r[0].0, origin);
        let bytes = if tcp { unframe(&r[0].1).to_vec() } else { r[0].1.clone() };
        if !tcp {
            prop_assert!(bytes.len() <= opt_limit(edns), "{} > {}", bytes.len(), opt_limit(edns));
        }
        let msg = message(&bytes);
        prop_assert_eq!(msg.header().id(), id);
        prop_assert_eq!(question_bytes(&bytes), question_bytes(&q));
        prop_assert_eq!(msg.opt().is_some(), edns.is_some());
        if msg.header().tc() {
            prop_assert!(!tcp, "never truncated over TCP");
            prop_assert_eq!(msg.header_counts().ancount(), 0);
        } else {
            prop_assert_eq!(usize::from(msg.header_counts().ancount()), records);
            let addrs = a_addrs(&msg);
            prop_assert!(addrs.iter().all(|a| a.octets()[..2] == [10, 9]));
        }
    }

    #[test]
    fn forwarded_replies_fit_the_client_too(
        id in any::<u16>(),
        records in 0usize..150,
        edns in prop::option::of(any::<u16>()),
    ) {
        let up = upstream_addr(1);
        let mut server = server(Config { budget: Duration::from_millis(100), ..Config::default() }, &[up]);
        let q = query("big.example", Rtype::A, id, true, edns);
        server.handle_client(at(0), udp(4002), &q);
        let s = sends(&drain(&mut server)).remove(0);
        let ips: Vec<Ipv4Addr> = (0..records).map(|i| Ipv4Addr::new(10, 1, (i / 256) as u8, i as u8)).collect();
        let reply = frame(&upstream_reply(&s.message, names_core::domain::base::iana::Rcode::NOERROR, &ips, false));
        // Over UDP from the upstream (its size is not our client's problem).
        server.handle_upstream(at(1), s.token, up, &reply[2..]);
        let r = replies(&drain(&mut server));
        prop_assert_eq!(r.len(), 1);
        let bytes = &r[0].1;
        prop_assert!(bytes.len() <= opt_limit(edns));
        let msg = message(bytes);
        prop_assert_eq!(msg.header().id(), id);
        if !msg.header().tc() {
            prop_assert_eq!(a_addrs(&msg), ips);
        }
        prop_assert_eq!(server.open_upstream_tokens(), 0);
    }
}
