//! The harness itself: every server of the loopback hierarchy answers as laid out, asked
//! directly (RD=0), so a recursion test that fails does not fail for the hierarchy.

use std::net::SocketAddr;

use names_tests::dig_at;
use names_tests::loopback::*;

use crate::{answers, authority, hierarchy, status, Block};

fn ask(at: SocketAddr, args: &[&str]) -> String {
    let mut full = vec!["+norec"];
    full.extend_from_slice(args);
    dig_at(at, &full)
}

#[test]
fn the_hierarchy_answers_as_laid_out() {
    let h = hierarchy(Block::Layout);
    let root = ask(h.addr(1), &["www.example.test", "A"]);
    assert_eq!(status(&root), "NOERROR", "{root}");
    assert_eq!(authority(&root), ["test. ns ns.test."], "{root}");
    let tld = ask(h.addr(2), &["www.example.test", "A"]);
    assert_eq!(
        authority(&tld),
        ["example.test. ns ns.example.test."],
        "{tld}"
    );
    let www = ask(h.addr(3), &["www.example.test", "A"]);
    assert_eq!(
        answers(&www),
        [format!("www.example.test. a {WWW_A}")],
        "{www}"
    );
    let deep = ask(h.addr(4), &["deep.sub.example.test", "A"]);
    assert_eq!(
        answers(&deep),
        [format!("deep.sub.example.test. a {DEEP_A}")]
    );
    let glueless = ask(h.addr(5), &["www.glueless.other", "A"]);
    assert_eq!(
        authority(&glueless),
        ["glueless.other. ns ns-glueless.example.test."]
    );
    assert!(
        !glueless.contains("ADDITIONAL SECTION"),
        "no glue: {glueless}"
    );
    assert_eq!(status(&ask(h.addr(11), &["www.mixed.test"])), "REFUSED");
    assert!(ask(h.addr(12), &["www.mixed.test"]).contains("timed out"));
    let upward = ask(h.addr(13), &["www.mixed.test"]);
    assert_eq!(authority(&upward), [". ns a.root."], "{upward}");
    let udp = ask(h.addr(20), &["+ignore", "www.tc.test"]);
    assert!(udp.contains(" tc") && answers(&udp).is_empty(), "{udp}");
    let tcp = ask(h.addr(20), &["+tcp", "www.tc.test"]);
    assert_eq!(answers(&tcp), [format!("www.tc.test. a {TC_A}")], "{tcp}");
    let edns = ask(h.addr(21), &["www.formerr.test"]);
    assert_eq!(status(&edns), "FORMERR", "{edns}");
    let plain = ask(h.addr(21), &["+noedns", "www.formerr.test"]);
    assert_eq!(
        answers(&plain),
        [format!("www.formerr.test. a {FORMERR_A}")]
    );
    let evil = ask(h.addr(22), &["www.evil.test"]);
    assert!(evil.contains(&POISON_A.to_string()), "{evil}");
    let nxns = ask(h.addr(23), &["www.nxns.test"]);
    assert_eq!(authority(&nxns).len(), NXNS_NAMES, "{nxns}");
    assert_eq!(status(&ask(h.addr(24), &["ns1.victim.test"])), "NXDOMAIN");
    assert!(h.queries(3) >= 1 && h.queries(24) == 1);
}
