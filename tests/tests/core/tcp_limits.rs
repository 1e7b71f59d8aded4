//! Client TCP connections under attack (issue 10): replies a client never reads, half-close,
//! one address holding many connections, connection pressure, and AXFR frames that must
//! never exceed what a 2-byte length can carry. Fake time, fixed seeds.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::zone::{load_zone, Snapshot, ZoneResolver, ZoneSet};
use names_core::{Action, Chain, Config, ConnId, Origin, Server};
use names_tests::build::*;
use names_tests::drive::*;
use names_tests::parse::message;

const CONN: ConnId = ConnId(1);

fn peer(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(127, 0, 0, last), port))
}

fn pauses(actions: &[Action], conn: ConnId) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::PauseRead { conn: c } if *c == conn))
        .count()
}

fn closed(actions: &[Action], conn: ConnId) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::CloseClient { conn: c } if *c == conn))
}

fn tcp_bytes(actions: &[Action]) -> usize {
    replies(actions).iter().map(|(_, b)| b.len()).sum()
}

/// Every TCP reply's prefix is its true length.
fn assert_framed(actions: &[Action]) {
    for (to, bytes) in replies(actions) {
        if let Origin::Tcp(_) = to {
            unframe(&bytes);
        }
    }
}

/// #3: a client that pipelines queries for a big answer and never reads gets no more
/// queries taken once its unwritten replies pass the limit; reading lets the rest through.
#[test]
fn unwritten_replies_stop_taking_queries_until_written() {
    let limit = 64 * 1024;
    let config = Config {
        max_tcp_buffered: limit,
        ..Config::default()
    };
    let mut s = Server::new(config, Chain::new().with(Many(600)), SEED);
    s.handle_tcp_open(at(0), CONN, peer(1, 4000));
    let n = 60u16;
    let stream: Vec<u8> = (0..n)
        .flat_map(|i| frame(&query(&format!("big{i}.example"), Rtype::A, i, true, None)))
        .collect();
    s.handle_client(at(1), Origin::Tcp(CONN), &stream);
    let actions = drain(&mut s);
    assert_framed(&actions);
    let first = replies(&actions);
    let reply_len = first[0].1.len();
    assert!(reply_len > 9000, "a big answer: {reply_len}");
    assert!(
        first.len() < usize::from(n),
        "every query answered into a client that does not read"
    );
    let queued = tcp_bytes(&actions);
    assert!(queued <= limit + reply_len, "{queued} bytes queued");
    assert_eq!(s.tcp_unwritten(CONN), queued);
    assert_eq!(pauses(&actions, CONN), 1, "reading paused");
    assert!(s.tcp_unread(CONN) <= stream.len());
    // Nothing more is taken while nothing is written, whatever the time.
    s.handle_timeout(at(2000));
    assert!(replies(&drain(&mut s)).is_empty());
    // The client reads: the rest comes, never more than the limit plus a reply at a time.
    let mut answered = first.len();
    for round in 0..100 {
        let unwritten = s.tcp_unwritten(CONN);
        s.handle_tcp_written(at(3 + round), CONN, unwritten);
        let actions = drain(&mut s);
        answered += replies(&actions).len();
        assert!(s.tcp_unwritten(CONN) <= limit + reply_len);
        if answered == usize::from(n) {
            assert!(actions
                .iter()
                .any(|a| matches!(a, Action::ResumeRead { conn } if *conn == CONN)));
            break;
        }
    }
    assert_eq!(answered, usize::from(n));
    assert_eq!(s.tcp_unread(CONN), 0);
}

/// #3: input a runtime keeps pushing after `PauseRead` is bounded: the connection is closed.
#[test]
fn unread_input_is_bounded() {
    let config = Config {
        max_tcp_buffered: 4096,
        ..Config::default()
    };
    let mut s = Server::new(config, Chain::new().with(Many(600)), SEED);
    s.handle_tcp_open(at(0), CONN, peer(1, 4000));
    let q = frame(&query("big.example", Rtype::A, 1, true, None));
    let mut closed_at = None;
    for i in 0..10_000 {
        s.handle_client(at(1), Origin::Tcp(CONN), &q);
        let actions = drain(&mut s);
        assert!(s.tcp_unread(CONN) <= 4096 + 65_537);
        if closed(&actions, CONN) {
            closed_at = Some(i);
            break;
        }
    }
    assert!(closed_at.is_some(), "never closed");
    assert_eq!(s.stats().tcp_overrun, 1);
    assert_eq!(s.open_connections(), 0);
}

/// #8: after the client's end of stream, every complete query read before it is answered
/// (a forwarded one too), then the server closes; a partial trailing frame is dropped.
#[test]
fn half_close_answers_every_query_then_closes() {
    let up = upstream_addr(1);
    let mut s = server(Config::default(), &[up]);
    s.handle_tcp_open(at(0), CONN, peer(1, 4000));
    let mut stream = frame(&query("forwarded.example", Rtype::A, 1, true, None));
    stream.extend(frame(&query(
        "workstation5.example",
        Rtype::A,
        2,
        true,
        None,
    )));
    stream.extend(frame(&query(
        "workstation6.example",
        Rtype::A,
        3,
        true,
        None,
    )));
    stream.extend([0, 40, 1, 2]); // the start of a frame that never completes
    s.handle_client(at(1), Origin::Tcp(CONN), &stream);
    s.handle_tcp_eof(at(1), CONN);
    let actions = drain(&mut s);
    let r = replies(&actions);
    assert_eq!(r.len(), 2, "the synth answers at once");
    assert!(!closed(&actions, CONN), "closed with a query in flight");
    let written = tcp_bytes(&actions);
    s.handle_tcp_written(at(2), CONN, written);
    assert!(!closed(&drain(&mut s), CONN));
    let sent = sends(&actions);
    assert_eq!(sent.len(), 1);
    let reply = upstream_reply(
        &sent[0].message,
        Rcode::NOERROR,
        &[Ipv4Addr::new(192, 0, 2, 1)],
        false,
    );
    s.handle_upstream(at(300), sent[0].token, sent[0].to, &reply);
    let actions = drain(&mut s);
    let r = replies(&actions);
    assert_eq!(
        r.len(),
        1,
        "the forwarded answer arrives after the half-close"
    );
    assert_eq!(message(unframe(&r[0].1)).header().id(), 1);
    assert!(
        !closed(&actions, CONN),
        "closed before the reply was written"
    );
    s.handle_tcp_written(at(301), CONN, r[0].1.len());
    assert!(closed(&drain(&mut s), CONN), "closed once all is written");
    assert_eq!(s.open_connections(), 0);
    // End of stream with nothing in flight: closed at once.
    s.handle_tcp_open(at(400), ConnId(2), peer(1, 4001));
    s.handle_tcp_eof(at(401), ConnId(2));
    assert!(closed(&drain(&mut s), ConnId(2)));
}

/// #13: one address holds at most `max_tcp_per_client` connections; another address is
/// not affected, and a closed slot can be taken again.
#[test]
fn connections_per_client_address_are_capped() {
    let config = Config {
        max_tcp_per_client: 3,
        ..Config::default()
    };
    let mut s = server(config, &[]);
    for i in 0..3 {
        s.handle_tcp_open(at(0), ConnId(i), peer(1, 4000 + i as u16));
    }
    assert!(drain(&mut s).is_empty());
    s.handle_tcp_open(at(1), ConnId(3), peer(1, 5000));
    assert!(
        closed(&drain(&mut s), ConnId(3)),
        "the fourth is closed at once"
    );
    assert_eq!(s.stats().tcp_per_client_refused, 1);
    assert_eq!(s.connections_from(peer(1, 0).ip()), 3);
    s.handle_tcp_open(at(1), ConnId(4), peer(2, 5000));
    assert!(drain(&mut s).is_empty(), "another address still gets in");
    s.handle_tcp_closed(at(2), ConnId(0));
    s.handle_tcp_open(at(2), ConnId(5), peer(1, 5001));
    assert!(drain(&mut s).is_empty(), "a freed slot is usable");
    assert_eq!(s.connections_from(peer(1, 0).ip()), 3);
    assert_eq!(s.open_connections(), 4);
}

/// #13: with 90% of `max_tcp` open, idle connections are closed after a tenth of the idle
/// timeout; below that, the full timeout holds.
#[test]
fn idle_connections_closed_sooner_under_pressure() {
    let config = Config {
        max_tcp: 10,
        tcp_idle: Duration::from_millis(10_000),
        ..Config::default()
    };
    // Below the pressure mark: 8 of 10 stay open past a tenth of the timeout.
    let mut s = server(config.clone(), &[]);
    for i in 0..8 {
        s.handle_tcp_open(at(0), ConnId(i), peer(1, 4000 + i as u16));
    }
    s.handle_timeout(at(2000));
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.open_connections(), 8);
    // At 9 of 10: all idle ones go within about a second, a busy one stays.
    let mut s = server(config, &[]);
    for i in 0..9 {
        s.handle_tcp_open(at(0), ConnId(i), peer(1, 4000 + i as u16));
    }
    s.handle_timeout(at(900));
    assert!(drain(&mut s).is_empty());
    let mut closes = 0;
    let mut t = 900;
    while let Some(next) = s.poll_timeout() {
        t = (next - at(0)).as_millis() as u64;
        if t > 2000 {
            break;
        }
        s.handle_timeout(next);
        closes += drain(&mut s)
            .iter()
            .filter(|a| matches!(a, Action::CloseClient { .. }))
            .count();
        if s.open_connections() == 0 {
            break;
        }
    }
    assert!(t <= 1001, "closed at {t} ms");
    assert_eq!(closes, 9);
    assert!(s.stats().tcp_idle_closed >= 9);
}

fn zone_server(text: &str) -> Server {
    let zone = load_zone("big.zone", text, &mut |p: &str, _: &str| {
        Err(format!("no {p}"))
    })
    .unwrap();
    let set = ZoneSet::new(vec![zone]).unwrap();
    Server::new(
        Config::default(),
        Chain::new().with(ZoneResolver::new(Snapshot::new(set))),
        SEED,
    )
}

/// A TXT record of `strings` strings of 255 bytes and one of `tail` bytes.
fn txt(owner: &str, strings: usize, tail: usize) -> String {
    let mut line = format!("{owner} TXT");
    for _ in 0..strings {
        line.push_str(&format!(" \"{}\"", "x".repeat(255)));
    }
    line.push_str(&format!(" \"{}\"\n", "y".repeat(tail)));
    line
}

fn axfr(s: &mut Server, conn: ConnId) -> Vec<Action> {
    s.handle_tcp_open(at(0), conn, peer(1, 4000 + conn.0 as u16));
    let q = query("big.test", Rtype::AXFR, 7, false, None);
    s.handle_client(at(1), Origin::Tcp(conn), &frame(&q));
    drain(s)
}

/// #15b: a record near 64 KiB gets a message of its own, never over 65,535 bytes; one that
/// fits no message makes the transfer SERVFAIL, never a frame whose length lies.
#[test]
fn axfr_frames_never_exceed_the_length_prefix() {
    let head = "$ORIGIN big.test.\n@ 3600 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n";
    // 255 * 256 + 221 = 65,501 bytes of data: alone in a message, it just fits.
    let mut s = zone_server(&format!("{head}{}", txt("a", 255, 220)));
    let actions = axfr(&mut s, ConnId(1));
    assert_framed(&actions);
    let r = replies(&actions);
    assert!(r.len() >= 2);
    assert!(r.iter().any(|(_, b)| b.len() > 65_000));
    for (_, b) in &r {
        assert_eq!(message(unframe(b)).header().rcode(), Rcode::NOERROR);
    }
    // 65,530 bytes of data: no message holds it. Refused whole, counted.
    let mut s = zone_server(&format!("{head}{}", txt("a", 255, 249)));
    let actions = axfr(&mut s, ConnId(2));
    assert_framed(&actions);
    let r = replies(&actions);
    assert_eq!(r.len(), 1, "{} messages", r.len());
    assert_eq!(message(unframe(&r[0].1)).header().rcode(), Rcode::SERVFAIL);
    assert_eq!(s.stats().tcp_oversize, 1);
    let answered: u64 = s.answers_by_source().iter().map(|(_, n)| n).sum();
    assert_eq!(answered, 1, "the refused transfer is counted once");
}

/// #3 with AXFR: one transfer may exceed the limit (it is one query), but nothing more is
/// taken until it is written; a reading client gets it all.
#[test]
fn a_transfer_exceeds_the_limit_once_then_waits() {
    let mut text =
        String::from("$ORIGIN big.test.\n@ 3600 SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n");
    for i in 0..3000 {
        text.push_str(&format!(
            "host{i} TXT \"record number {i} with some padding\"\n"
        ));
    }
    let mut s = zone_server(&text);
    s.handle_tcp_open(at(0), CONN, peer(1, 4000));
    let mut stream = frame(&query("big.test", Rtype::AXFR, 7, false, None));
    stream.extend(frame(&query("host1.big.test", Rtype::TXT, 8, false, None)));
    s.handle_client(at(1), Origin::Tcp(CONN), &stream);
    let actions = drain(&mut s);
    let r = replies(&actions);
    let total = tcp_bytes(&actions);
    assert!(total > 64 * 1024, "the whole transfer at once: {total}");
    assert!(r
        .iter()
        .all(|(_, b)| message(unframe(b)).header().id() == 7));
    assert_eq!(pauses(&actions, CONN), 1);
    s.handle_tcp_written(at(2), CONN, total);
    let r = replies(&drain(&mut s));
    assert_eq!(r.len(), 1);
    assert_eq!(message(unframe(&r[0].1)).header().id(), 8);
}
