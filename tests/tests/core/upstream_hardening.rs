//! Regressions from the security audit (issue 10), upstream side: hostile upstream TCP
//! streams (several frames per read after a failure rcode, zero-length and garbage
//! frames, endless streams), floods of identical queries, FORMERR to EDNS, and zone
//! transfers through the forwarder.

use std::net::{Ipv4Addr, SocketAddr};

use names_core::config::MAX_WAITERS_PER_EXCHANGE;
use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::{Action, Config, Origin, Server, Via};
use names_tests::build::*;
use names_tests::drive::*;
use names_tests::parse::{a_addrs, message};

const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const WRONG: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
/// The most a TCP try may hold: one frame of the largest size and its prefix.
const MAX_HELD: usize = 65535 + 2;

fn ask(server: &mut Server, at_ms: u64, port: u16, bytes: &[u8]) -> Vec<Action> {
    server.handle_client(at(at_ms), udp(port), bytes);
    drain(server)
}

fn feed(server: &mut Server, at_ms: u64, s: &Sent, bytes: &[u8]) -> Vec<Action> {
    server.handle_upstream(at(at_ms), s.token, s.to, bytes);
    drain(server)
}

/// The trigger of the audit: the first UDP try is ignored, the retry (after the try
/// timeout, to the last of `ups`) is answered with TC=1, so a TCP try follows.
/// Returns the server, the first UDP try (still open) and the TCP try.
fn at_tcp_try(ups: &[SocketAddr]) -> (Server, Sent, Sent) {
    let mut server = server(Config::default(), ups);
    let q = query("big.example", Rtype::A, 9, true, Some(1232));
    let s1 = sends(&ask(&mut server, 0, 5000, &q)).remove(0);
    server.handle_timeout(at(1000));
    let actions = drain(&mut server);
    let s2 = sends(&actions).remove(0);
    assert!(matches!(s2.via, Via::Udp { .. }));
    let tc = upstream_reply(&s2.message, Rcode::NOERROR, &[], true);
    let s3 = sends(&feed(&mut server, 1001, &s2, &tc)).remove(0);
    assert_eq!(s3.via, Via::Tcp);
    (server, s1, s3)
}

fn the_reply(actions: &[Action]) -> names_core::domain::base::Message<Vec<u8>> {
    let r = replies(actions);
    assert_eq!(r.len(), 1, "one reply expected: {actions:?}");
    message(&r[0].1)
}

/// Runs timers until the budget (5 s after the query) is surely over.
fn run_out(server: &mut Server) -> Vec<Action> {
    server.handle_timeout(at(6000));
    drain(server)
}

#[test]
fn servfail_frame_and_another_frame_in_one_read_do_not_panic() {
    // One upstream: the SERVFAIL frame removes the TCP try; the frame after it used to be
    // matched against an index past the end of the tries.
    let (mut server, _s1, s3) = at_tcp_try(&[upstream_addr(1)]);
    let mut bytes = frame(&upstream_reply(&s3.message, Rcode::SERVFAIL, &[], false));
    bytes.extend(frame(&upstream_reply(
        &s3.message,
        Rcode::NOERROR,
        &[WRONG],
        false,
    )));
    let actions = feed(&mut server, 1002, &s3, &bytes);
    assert!(closes(&actions).contains(&s3.token), "the TCP try is over");
    assert!(
        replies(&actions).is_empty(),
        "the first UDP try is still open"
    );
    let reply = the_reply(&run_out(&mut server));
    assert_eq!(reply.header().rcode(), Rcode::SERVFAIL);
    assert_eq!(server.open_exchanges(), 0);
    assert_eq!(server.open_upstream_tokens(), 0);
}

#[test]
fn frames_after_a_failure_rcode_are_not_read_as_another_tries_reply() {
    // Two upstreams: after the SERVFAIL, the next try goes to the other server; the
    // second frame of the same read belongs to a try that is gone and is not looked at.
    for rcode in [Rcode::SERVFAIL, Rcode::REFUSED, Rcode::NOTIMP] {
        let ups = [upstream_addr(1), upstream_addr(2)];
        let (mut server, _s1, s3) = at_tcp_try(&ups);
        assert_eq!(s3.to, ups[1]);
        let mut bytes = frame(&upstream_reply(&s3.message, rcode, &[], false));
        bytes.extend(frame(&upstream_reply(
            &s3.message,
            Rcode::NOERROR,
            &[WRONG],
            false,
        )));
        bytes.extend([0, 0, 1, 2, 3]);
        let actions = feed(&mut server, 1002, &s3, &bytes);
        assert!(replies(&actions).is_empty());
        let s4 = sends(&actions).remove(0);
        assert_eq!(s4.to, ups[0], "moved on to the server that has not failed");
        let answer = upstream_reply(&s4.message, Rcode::NOERROR, &[ANSWER], false);
        let reply = the_reply(&feed(&mut server, 1003, &s4, &answer));
        assert_eq!(a_addrs(&reply), vec![ANSWER]);
    }
}

#[test]
fn zero_length_frame_fails_the_tcp_try_and_nothing_after_it_is_kept() {
    let ups = [upstream_addr(1), upstream_addr(2)];
    let (mut server, _s1, s3) = at_tcp_try(&ups);
    let mut first = vec![0u8, 0];
    first.extend(std::iter::repeat_n(0xab, 16 * 1024 - 2));
    let actions = feed(&mut server, 1002, &s3, &first);
    assert!(
        closes(&actions).contains(&s3.token),
        "a zero-length frame ends the try"
    );
    let s4 = sends(&actions).remove(0);
    assert_eq!(s4.to, ups[0], "and the next server is asked");
    // The stream goes on (the runtime may still deliver what it read): nothing is kept.
    for _ in 0..64 {
        feed(&mut server, 1003, &s3, &[0xab; 16 * 1024]);
        assert_eq!(server.upstream_buffered_bytes(), 0);
    }
    let answer = upstream_reply(&s4.message, Rcode::NOERROR, &[ANSWER], false);
    let reply = the_reply(&feed(&mut server, 1004, &s4, &answer));
    assert_eq!(a_addrs(&reply), vec![ANSWER]);
}

#[test]
fn a_tcp_try_never_holds_more_than_one_largest_frame() {
    let (mut server, _s1, s3) = at_tcp_try(&[upstream_addr(1), upstream_addr(2)]);
    // A frame announced at the largest size, then a megabyte in one read.
    let mut bytes = vec![0xff, 0xff];
    bytes.extend(std::iter::repeat_n(0xab, 1 << 20));
    server.handle_upstream(at(1002), s3.token, s3.to, &bytes);
    assert!(
        server.upstream_buffered_bytes() <= MAX_HELD,
        "{} bytes held",
        server.upstream_buffered_bytes()
    );
    // A frame that is not this try's reply ends it: TCP cannot be spoofed, so the
    // upstream is broken.
    assert!(closes(&drain(&mut server)).contains(&s3.token));
}

#[test]
fn garbage_or_foreign_frames_over_tcp_fail_the_try() {
    let ups = [upstream_addr(1), upstream_addr(2)];
    type Make<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;
    let garbage: [Make; 3] = [
        &|q| with_id(&upstream_reply(q, Rcode::NOERROR, &[WRONG], false), 1),
        &|_| vec![1, 2, 3, 4, 5],
        &|q| {
            upstream_reply(
                &query("other.example", Rtype::A, 9, true, None),
                Rcode::NOERROR,
                &[WRONG],
                false,
            )
            .into_iter()
            .enumerate()
            .map(|(i, b)| if i < 2 { q[i] } else { b })
            .collect()
        },
    ];
    for make in garbage {
        let (mut server, _s1, s3) = at_tcp_try(&ups);
        // An endless stream of such frames: the first ends the try.
        let frame = frame(&make(&s3.message));
        let bytes: Vec<u8> = frame
            .iter()
            .copied()
            .cycle()
            .take(frame.len() * 50)
            .collect();
        let actions = feed(&mut server, 1002, &s3, &bytes);
        assert!(closes(&actions).contains(&s3.token), "the try is over");
        let s4 = sends(&actions).remove(0);
        assert_eq!(s4.to, ups[0]);
        let answer = upstream_reply(&s4.message, Rcode::NOERROR, &[ANSWER], false);
        let reply = the_reply(&feed(&mut server, 1003, &s4, &answer));
        assert_eq!(a_addrs(&reply), vec![ANSWER]);
    }
}

#[test]
fn an_identical_question_joins_its_exchange_at_the_in_flight_limit() {
    let config = Config {
        max_exchanges: 1,
        ..Config::default()
    };
    let mut server = server(config, &[upstream_addr(1)]);
    let q1 = query("same.example", Rtype::A, 1, true, None);
    let q2 = query("same.example", Rtype::A, 2, true, None);
    let s = sends(&ask(&mut server, 0, 5001, &q1)).remove(0);
    let actions = ask(&mut server, 1, 5002, &q2);
    assert!(
        replies(&actions).is_empty(),
        "joined, not SERVFAIL: {actions:?}"
    );
    assert!(sends(&actions).is_empty());
    assert_eq!(server.pending_queries(), 2);
    // A different question at the limit still gets SERVFAIL.
    let other = query("other.example", Rtype::A, 3, true, None);
    let reply = the_reply(&ask(&mut server, 2, 5003, &other));
    assert_eq!(reply.header().rcode(), Rcode::SERVFAIL);
    let answer = upstream_reply(&s.message, Rcode::NOERROR, &[ANSWER], false);
    let r = replies(&feed(&mut server, 3, &s, &answer));
    assert_eq!(r.len(), 2, "both waiters answered");
    for (_, bytes) in r {
        assert_eq!(a_addrs(&message(&bytes)), vec![ANSWER]);
    }
}

#[test]
fn waiting_queries_are_bounded_per_exchange_and_in_total() {
    // Per exchange: identical questions beyond the bound get SERVFAIL at once.
    let mut server = server(Config::default(), &[upstream_addr(1)]);
    let q = query("same.example", Rtype::A, 1, true, None);
    let flood = MAX_WAITERS_PER_EXCHANGE + 36;
    let mut servfails = 0;
    for i in 0..flood {
        for (_, bytes) in replies(&ask(&mut server, 0, 10_000 + i as u16, &q)) {
            assert_eq!(message(&bytes).header().rcode(), Rcode::SERVFAIL);
            servfails += 1;
        }
    }
    assert_eq!(servfails, 36);
    assert_eq!(server.pending_queries(), MAX_WAITERS_PER_EXCHANGE);
    assert_eq!(server.stats().overloaded, 36);
    assert_eq!(server.open_exchanges(), 1);

    // In total: `max_waiting`, over every exchange.
    let config = Config {
        max_waiting: 10,
        ..Config::default()
    };
    let mut server = server_for(config);
    let mut servfails = 0;
    for i in 0..30u16 {
        let q = query(&format!("n{}.example", i % 15), Rtype::A, i, true, None);
        for (_, bytes) in replies(&ask(&mut server, 0, 20_000 + i, &q)) {
            assert_eq!(message(&bytes).header().rcode(), Rcode::SERVFAIL);
            servfails += 1;
        }
        assert!(server.pending_queries() <= 10);
    }
    assert_eq!(servfails, 20);
    assert_eq!(server.pending_queries(), 10);
    let ends = replies(&run_out(&mut server));
    assert_eq!(
        ends.len(),
        10,
        "the waiting ones are answered at the budget"
    );
    assert_eq!(server.pending_queries(), 0);
}

fn server_for(config: Config) -> Server {
    server(config, &[upstream_addr(1)])
}

#[test]
fn formerr_to_an_edns_query_is_retried_once_without_edns() {
    for tcp in [false, true] {
        let mut server = server_for(Config::default());
        let q = query("old.example", Rtype::A, 5, true, None);
        let mut s = sends(&ask(&mut server, 0, 5000, &q)).remove(0);
        if tcp {
            let tc = upstream_reply(&s.message, Rcode::NOERROR, &[], true);
            s = sends(&feed(&mut server, 1, &s, &tc)).remove(0);
        }
        assert!(
            message(&s.message).opt().is_some(),
            "upstream queries carry EDNS"
        );
        let formerr = upstream_reply(&s.message, Rcode::FORMERR, &[], false);
        let formerr = if tcp { frame(&formerr) } else { formerr };
        let actions = feed(&mut server, 2, &s, &formerr);
        assert!(replies(&actions).is_empty(), "not given up: {actions:?}");
        assert!(closes(&actions).contains(&s.token));
        let retry = sends(&actions).remove(0);
        assert_eq!(retry.to, s.to, "the same server");
        assert_eq!(retry.via == Via::Tcp, tcp, "over the same transport");
        assert!(message(&retry.message).opt().is_none(), "without EDNS");
        let answer = upstream_reply(&retry.message, Rcode::NOERROR, &[ANSWER], false);
        let answer = if tcp { frame(&answer) } else { answer };
        let reply = the_reply(&feed(&mut server, 3, &retry, &answer));
        assert_eq!(a_addrs(&reply), vec![ANSWER]);
    }
    // FORMERR again without EDNS: that is the answer (once, no loop).
    let mut server = server_for(Config::default());
    let q = query("old.example", Rtype::A, 6, true, None);
    let s = sends(&ask(&mut server, 0, 5000, &q)).remove(0);
    let formerr = upstream_reply(&s.message, Rcode::FORMERR, &[], false);
    let retry = sends(&feed(&mut server, 1, &s, &formerr)).remove(0);
    let formerr = upstream_reply(&retry.message, Rcode::FORMERR, &[], false);
    let actions = feed(&mut server, 2, &retry, &formerr);
    assert!(sends(&actions).is_empty());
    assert_eq!(the_reply(&actions).header().rcode(), Rcode::FORMERR);
}

#[test]
fn zone_transfers_are_not_forwarded() {
    for qtype in [Rtype::AXFR, Rtype::IXFR] {
        // Over TCP, where a transfer would be asked.
        let mut server = server_for(Config::default());
        server.handle_tcp_open(at(0), CONN, tcp_peer());
        let q = query("example.com", qtype, 7, false, None);
        server.handle_client(at(0), Origin::Tcp(CONN), &frame(&q));
        let actions = drain(&mut server);
        assert!(sends(&actions).is_empty(), "{qtype} forwarded: {actions:?}");
        let r = replies(&actions);
        assert_eq!(r.len(), 1);
        assert_eq!(message(unframe(&r[0].1)).header().rcode(), Rcode::REFUSED);
        // And over UDP.
        let actions = ask(&mut server, 1, 5000, &q);
        assert!(sends(&actions).is_empty(), "{qtype} forwarded: {actions:?}");
        assert_eq!(the_reply(&actions).header().rcode(), Rcode::REFUSED);
    }
}

/// An upstream of a routed zone (example.com) referring up, to com (no answer, an NS set
/// above the zone, no SOA: Unbound's iter_scrub_ns_fwd.rpl), is lame: SERVFAIL. A
/// referral down (to sub.example.com) and a NODATA with its SOA go to the client.
#[test]
fn a_referral_up_from_a_routed_upstream_is_servfail() {
    use names_core::domain::base::iana::Class;
    use names_core::domain::base::{Record, Ttl};
    use names_core::domain::rdata::{AllRecordData, Ns, Soa};
    use names_core::{Chain, ForwardRoute, Forwarder};
    let ns = |owner: &str| -> names_core::Rr {
        Record::new(
            name(owner),
            Class::IN,
            Ttl::from_secs(60),
            AllRecordData::Ns(Ns::new(name("ns.example.com"))),
        )
    };
    let ttl = Ttl::from_secs(60);
    let soa: names_core::Rr = Record::new(
        name("example.com"),
        Class::IN,
        ttl,
        AllRecordData::Soa(Soa::new(
            name("ns.example.com"),
            name("root.example.com"),
            1.into(),
            ttl,
            ttl,
            ttl,
            ttl,
        )),
    );
    let glue = a_record("ns.example.com", Ipv4Addr::new(192, 0, 2, 4));
    for (authority, want) in [
        (vec![ns("com")], Rcode::SERVFAIL),
        (vec![ns("sub.example.com")], Rcode::NOERROR),
        (vec![soa, ns("com")], Rcode::NOERROR),
    ] {
        let route = ForwardRoute::new(name("example.com"), [upstream_addr(1)]);
        let forwarder = Forwarder::new(Vec::new()).with_routes(vec![route]);
        let mut server = Server::new(Config::default(), Chain::new().with(forwarder), SEED);
        let q = query("mail.sub.example.com", Rtype::A, 3, true, None);
        let s = sends(&ask(&mut server, 0, 5000, &q)).remove(0);
        let reply = reply_sections(
            &s.message,
            Rcode::NOERROR,
            false,
            [&[], &authority, std::slice::from_ref(&glue)],
        );
        let got = the_reply(&feed(&mut server, 1, &s, &reply));
        assert_eq!(got.header().rcode(), want, "{authority:?}");
    }
}
