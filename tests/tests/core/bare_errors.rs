//! Upstream error replies without a question (issue 14): a FORMERR, SERVFAIL, NOTIMP or
//! REFUSED from the queried server with the try's ID but no question section, as NSD sends
//! for a class it does not serve, ends that try at once (next server, SERVFAIL when none
//! is left, FORMERR to EDNS retried without it), where it used to be ignored until the
//! budget ran out. Without a question, anything else (NOERROR, NXDOMAIN, records) is
//! still not the reply, and the client's matching (`names query`) is the same.

use std::net::{Ipv4Addr, SocketAddr};

use names_core::client::{Lookup, Question, Step};
use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::{Action, Config, Server, Via};
use names_tests::build::*;
use names_tests::drive::*;
use names_tests::parse::{a_addrs, message};

const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const QR: u16 = 0x8000;

fn ask(server: &mut Server, at_ms: u64, bytes: &[u8]) -> Vec<Action> {
    server.handle_client(at(at_ms), udp(5000), bytes);
    drain(server)
}

fn feed(server: &mut Server, at_ms: u64, s: &Sent, bytes: &[u8]) -> Vec<Action> {
    server.handle_upstream(at(at_ms), s.token, s.to, bytes);
    drain(server)
}

/// A reply header with no question: QR, `rcode`, and the given record counts.
fn bare(id: u16, rcode: Rcode, an: u16, ns: u16) -> Vec<u8> {
    raw_header(id, QR | u16::from(rcode.to_int()), 0, an, ns, 0)
}

fn one_try(ups: &[SocketAddr]) -> (Server, Sent) {
    let mut server = server(Config::default(), ups);
    let q = query("hs.example", Rtype::A, 9, true, Some(1232));
    let s = sends(&ask(&mut server, 0, &q)).remove(0);
    (server, s)
}

#[test]
fn a_bare_error_moves_on_to_the_next_upstream_at_once() {
    for rcode in [Rcode::REFUSED, Rcode::SERVFAIL, Rcode::NOTIMP] {
        let ups = [upstream_addr(1), upstream_addr(2)];
        let (mut server, s1) = one_try(&ups);
        assert_eq!(s1.to, ups[0]);
        let actions = feed(&mut server, 10, &s1, &bare(s1.id(), rcode, 0, 0));
        assert!(replies(&actions).is_empty(), "{rcode}");
        let next = sends(&actions);
        assert_eq!(next.len(), 1, "{rcode}: the second upstream, at once");
        assert_eq!(next[0].to, ups[1]);
        let actions = feed(
            &mut server,
            20,
            &next[0],
            &answer_a(&next[0].message, &[ANSWER], 60),
        );
        let r = replies(&actions);
        assert_eq!(r.len(), 1, "{rcode}");
        let msg = message(&r[0].1);
        assert_eq!(msg.header().rcode(), Rcode::NOERROR);
        assert_eq!(a_addrs(&msg), vec![ANSWER]);
    }
}

#[test]
fn a_bare_error_from_the_only_upstream_is_servfail_at_once() {
    let (mut server, s) = one_try(&[upstream_addr(1)]);
    let actions = feed(&mut server, 10, &s, &bare(s.id(), Rcode::REFUSED, 0, 0));
    let r = replies(&actions);
    assert_eq!(
        r.len(),
        1,
        "SERVFAIL without waiting for the budget: {actions:?}"
    );
    assert_eq!(message(&r[0].1).header().rcode(), Rcode::SERVFAIL);
    assert!(sends(&actions).is_empty());
}

#[test]
fn a_bare_formerr_to_edns_is_asked_again_without_it() {
    let (mut server, s) = one_try(&[upstream_addr(1)]);
    assert!(message(&s.message).opt().is_some());
    let actions = feed(&mut server, 10, &s, &bare(s.id(), Rcode::FORMERR, 0, 0));
    let again = sends(&actions);
    assert_eq!(again.len(), 1, "{actions:?}");
    assert_eq!(again[0].to, upstream_addr(1));
    assert!(message(&again[0].message).opt().is_none());
    // A bare FORMERR without EDNS too: the try's failure, SERVFAIL (nothing to relay).
    let actions = feed(
        &mut server,
        20,
        &again[0],
        &bare(again[0].id(), Rcode::FORMERR, 0, 0),
    );
    let r = replies(&actions);
    assert_eq!(r.len(), 1);
    assert_eq!(message(&r[0].1).header().rcode(), Rcode::SERVFAIL);
}

#[test]
fn other_replies_without_a_question_are_still_ignored() {
    let (mut server, s) = one_try(&[upstream_addr(1)]);
    let ignored = [
        bare(s.id(), Rcode::NOERROR, 0, 0),
        bare(s.id(), Rcode::NXDOMAIN, 0, 0),
        bare(s.id(), Rcode::YXDOMAIN, 0, 0),
        bare(s.id(), Rcode::REFUSED, 1, 0), // claims data: never a bare error
        bare(s.id(), Rcode::REFUSED, 0, 1),
        bare(s.id() ^ 1, Rcode::REFUSED, 0, 0), // another ID
        raw_header(s.id(), u16::from(Rcode::REFUSED.to_int()), 0, 0, 0, 0), // QR clear
        bare(s.id(), Rcode::REFUSED, 0, 0)[..11].to_vec(), // short
    ];
    for (i, bytes) in ignored.iter().enumerate() {
        let actions = feed(&mut server, 10, &s, bytes);
        assert!(
            actions.is_empty() || (replies(&actions).is_empty() && sends(&actions).is_empty()),
            "#{i}: {actions:?}"
        );
    }
    // From a stranger: ignored too.
    server.handle_upstream(
        at(11),
        s.token,
        upstream_addr(9),
        &bare(s.id(), Rcode::REFUSED, 0, 0),
    );
    assert!(replies(&drain(&mut server)).is_empty());
    // The real reply still counts.
    let actions = feed(&mut server, 12, &s, &answer_a(&s.message, &[ANSWER], 60));
    assert_eq!(a_addrs(&message(&replies(&actions)[0].1)), vec![ANSWER]);
}

#[test]
fn a_bare_error_over_tcp_fails_the_try() {
    let (mut server, s) = one_try(&[upstream_addr(1), upstream_addr(2)]);
    let tc = upstream_reply(&s.message, Rcode::NOERROR, &[], true);
    let t = sends(&feed(&mut server, 5, &s, &tc)).remove(0);
    assert_eq!(t.via, Via::Tcp);
    let actions = feed(
        &mut server,
        10,
        &t,
        &frame(&bare(t.id(), Rcode::REFUSED, 0, 0)),
    );
    let next = sends(&actions);
    assert_eq!(next.len(), 1, "{actions:?}");
    assert_eq!(next[0].to, upstream_addr(2));
}

#[test]
fn the_client_reports_a_bare_error_at_once() {
    let server: SocketAddr = "192.0.2.1:53".parse().unwrap();
    let q = Question::parse("hs.example", "A").unwrap();
    let mut lookup = Lookup::new(q, server, 7);
    assert_eq!(
        lookup.handle(server, &bare(7, Rcode::NOERROR, 0, 0)),
        Step::Wait
    );
    assert_eq!(
        lookup.handle(server, &bare(7, Rcode::REFUSED, 1, 0)),
        Step::Wait
    );
    assert_eq!(
        lookup.handle(server, &bare(8, Rcode::REFUSED, 0, 0)),
        Step::Wait
    );
    let stranger = "192.0.2.2:53".parse().unwrap();
    assert_eq!(
        lookup.handle(stranger, &bare(7, Rcode::REFUSED, 0, 0)),
        Step::Wait
    );
    // TC on a bare error does not send the client to TCP: the error is the outcome.
    let refused = with_tc(&bare(7, Rcode::REFUSED, 0, 0));
    let Step::Done(reply) = lookup.handle(server, &refused) else {
        panic!("the error is the outcome")
    };
    assert_eq!(reply.rcode(), Rcode::REFUSED.into());
    assert!(reply.records().is_empty());
    assert!(
        reply.summary().starts_with(";; status: REFUSED, id: 7"),
        "{}",
        reply.summary()
    );
    // Over TCP too.
    let mut lookup = Lookup::over_tcp(Question::parse("hs.example", "A").unwrap(), server, 7);
    let framed = frame(&bare(7, Rcode::FORMERR, 0, 0));
    let Step::Done(reply) = lookup.handle(server, &framed) else {
        panic!("the error is the outcome")
    };
    assert_eq!(reply.rcode(), Rcode::FORMERR.into());
}
