//! What a client message gets before any resolver sees it, where the RFCs and Unbound are
//! strict: an error reply to a query with a valid OPT carries an OPT (RFC 6891 6.1.1); an
//! OPT outside the additional section, with a non-root owner, or bytes after the last
//! record make the message malformed; meta types (OPT, TSIG, TKEY, MAILA, MAILB and
//! 128-248) are FORMERR, as Unbound answers them.

use names_core::domain::base::iana::{Opcode, Rcode, Rtype};
use names_core::domain::base::Message;
use names_core::{Action, Config, Server};
use names_tests::build::*;
use names_tests::drive::*;
use names_tests::parse::{message, question_bytes};

fn ask(server: &mut Server, bytes: &[u8]) -> Vec<Action> {
    server.handle_client(at(0), udp(5353), bytes);
    drain(server)
}

fn only_reply(server: &mut Server, bytes: &[u8]) -> Message<Vec<u8>> {
    let actions = ask(server, bytes);
    assert!(sends(&actions).is_empty(), "nothing forwarded: {actions:?}");
    let r = replies(&actions);
    assert_eq!(r.len(), 1, "exactly one reply expected, got {actions:?}");
    message(&r[0].1)
}

fn forwarding() -> Server {
    server(Config::default(), &[upstream_addr(1)])
}

/// The OPT record of a query made by `query(.., Some(1232))`: the last 11 bytes.
const OPT_LEN: usize = 11;

#[test]
fn error_replies_to_a_query_with_an_opt_carry_one() {
    // NOTIMP: another opcode, with an OPT.
    let notify = query_with("a.example", 7, Opcode::NOTIFY, Some(0));
    let reply = only_reply(&mut forwarding(), &notify);
    assert_eq!(reply.header().rcode(), Rcode::NOTIMP);
    assert!(reply.opt().is_some(), "NOTIMP carries an OPT");
    // FORMERR: two questions, with an OPT after them.
    let one = query("a.example", Rtype::A, 8, true, Some(1232));
    let question = question_bytes(&one).to_vec();
    let mut two = one[..12].to_vec();
    two[5] = 2;
    two.extend_from_slice(&question);
    two.extend_from_slice(&question);
    two.extend_from_slice(&one[one.len() - OPT_LEN..]);
    let reply = only_reply(&mut forwarding(), &two);
    assert_eq!(reply.header().rcode(), Rcode::FORMERR);
    assert!(reply.opt().is_some(), "FORMERR carries an OPT");
    // Without an OPT in the query, none in the reply.
    let plain = query_with("a.example", 9, Opcode::NOTIFY, None);
    let reply = only_reply(&mut forwarding(), &plain);
    assert_eq!(reply.header().rcode(), Rcode::NOTIMP);
    assert!(reply.opt().is_none());
}

#[test]
fn an_opt_out_of_place_or_with_a_name_is_formerr() {
    let good = query("a.example", Rtype::A, 10, true, Some(1232));
    let (head, opt) = good.split_at(good.len() - OPT_LEN);
    // The OPT in the answer section.
    let mut in_answer = head.to_vec();
    in_answer[7] = 1; // ANCOUNT 1
    in_answer[11] = 0; // ARCOUNT 0
    in_answer.extend_from_slice(opt);
    // The OPT in the authority section.
    let mut in_authority = in_answer.clone();
    in_authority[7] = 0;
    in_authority[9] = 1;
    // An OPT owned by `a.` rather than the root.
    let mut named = head.to_vec();
    named.extend_from_slice(&[1, b'a']);
    named.extend_from_slice(opt);
    for (what, bytes) in [
        ("answer", in_answer),
        ("authority", in_authority),
        ("named", named),
    ] {
        let reply = only_reply(&mut forwarding(), &bytes);
        assert_eq!(reply.header().rcode(), Rcode::FORMERR, "{what}");
        assert_eq!(reply.header().id(), 10, "{what}");
    }
}

#[test]
fn bytes_after_the_last_record_are_formerr() {
    for edns in [None, Some(1232)] {
        let mut bytes = query("a.example", Rtype::A, 11, true, edns);
        bytes.extend_from_slice(&[0, 0, 0]);
        let reply = only_reply(&mut forwarding(), &bytes);
        assert_eq!(reply.header().rcode(), Rcode::FORMERR, "{edns:?}");
    }
}

#[test]
fn meta_types_are_formerr_as_unbound_answers() {
    for qtype in [41, 249, 250, 253, 254, 128, 200, 248] {
        let bytes = query("a.example", Rtype::from_int(qtype), 12, true, Some(1232));
        let reply = only_reply(&mut forwarding(), &bytes);
        assert_eq!(reply.header().rcode(), Rcode::FORMERR, "type {qtype}");
        let q = reply.sole_question().expect("the question echoed");
        assert_eq!(q.qtype().to_int(), qtype);
        assert!(reply.opt().is_some(), "type {qtype}");
    }
    // Types next to them are ordinary questions: forwarded.
    for qtype in [1, 127, 255, 256, 65280] {
        let bytes = query("a.example", Rtype::from_int(qtype), 13, true, None);
        let actions = ask(&mut forwarding(), &bytes);
        assert_eq!(sends(&actions).len(), 1, "type {qtype} is forwarded");
    }
}
