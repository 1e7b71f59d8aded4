//! Cache poisoning attempts by an upstream, through the real binary with replies as full
//! as `--minimal-responses false` allows: records planted for unrelated names in the
//! answer, authority or additional section, a CNAME or DNAME chain that leaves the
//! question's tree with extra records beside it, glue that contradicts an authoritative
//! answer, and a duplicate RRset with a longer TTL. Nothing planted reaches a client, in
//! the first reply or a cached one, and a later question for a planted name goes upstream
//! instead of being answered from a poisoned cache.

use names_tests::scenario::{all_text, expect, Canned, Expected, Upstream};
use names_tests::*;

/// The address every planted record points to.
const EVIL: &str = "6.6.6.6";
/// Seconds of TTL a reply may lose to real time between steps.
const SLACK: u32 = 2;

fn serve(up: &Upstream) -> Server {
    let arg = up.arg();
    Server::start(&["--upstream", arg.as_str(), "--minimal-responses", "false"])
}

fn ask(srv: &Server, question: &str) -> Parsed {
    let mut it = question.split_whitespace();
    let qname = it.next().unwrap();
    let qtype: Rtype = it.next().unwrap().parse().unwrap();
    udp_ask(srv.udp_addr(), &query(qname, qtype, 0x5151, true, None))
}

/// Asserts that no record of `p` names or points to anything planted.
fn clean(p: &Parsed, planted: &[&str], what: &str) {
    let text = all_text(p);
    for mark in planted.iter().chain(&[EVIL]) {
        assert!(
            !text.contains(mark),
            "{what}: {mark} reached a client:\n{text}"
        );
    }
}

/// The honest answer for a planted name, given by the upstream when asked directly.
fn honest(owner: &str) -> Canned {
    Canned::new(&format!("{owner} IN A 192.0.2.99"), "", "").aa()
}

/// Asks for a planted name: the upstream must be asked, and its honest answer returned.
fn asks_upstream(srv: &Server, up: &Upstream, owner: &str) {
    let question = format!("{owner} A");
    up.set(&question, honest(owner));
    let before = up.asked(&question);
    let r = ask(srv, &question);
    assert_eq!(
        up.asked(&question),
        before + 1,
        "{owner} was answered from the cache: {r:?}"
    );
    assert_eq!(
        r.a_addrs(),
        vec!["192.0.2.99".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    clean(&r, &[], owner);
}

// An upstream answering www.example.com plants, beside the real answer: an A for a bank
// in the answer section, the NS of an unrelated zone in authority, and addresses for that
// zone's name server and for the bank in additional. (An NS for the root or another
// ancestor of the question is the question's own delegation and may be kept.)
#[test]
fn unrelated_records_in_every_section_are_dropped() {
    let up = Upstream::new();
    up.set(
        "www.example.com. A",
        Canned::new(
            "www.example.com. IN A 10.20.30.40\nwww.bank.test. IN A 6.6.6.6",
            "example.com. IN NS ns.example.com.\nbank.test. IN NS ns.evil.test.",
            "ns.example.com. IN A 10.20.30.50\nns.evil.test. IN A 6.6.6.6\n\
             www.bank.test. IN A 6.6.6.6\nmail.bank.test. IN A 6.6.6.6",
        )
        .aa(),
    );
    let srv = serve(&up);
    let want = Expected::new(
        "www.example.com. IN A 10.20.30.40",
        "example.com. IN NS ns.example.com.",
        "ns.example.com. IN A 10.20.30.50",
    );
    let planted = ["bank.test", "evil.test"];
    for round in ["first", "cached"] {
        let r = ask(&srv, "www.example.com. A");
        clean(&r, &planted, round);
        expect(&r, &want, SLACK, round);
    }
    assert_eq!(up.asked("www.example.com. A"), 1);
    for owner in ["www.bank.test.", "ns.evil.test.", "mail.bank.test."] {
        asks_upstream(&srv, &up, owner);
    }
    // A second look at the first name: still clean, still from the cache.
    clean(&ask(&srv, "www.example.com. A"), &planted, "again");
    assert_eq!(up.asked("www.example.com. A"), 1);
}

// A CNAME chain from the question's tree into another (as a forwarder, the chain itself
// is the answer), with extra records beside it: an A for a name off the chain in the
// answer section, an NS for an unrelated zone in authority, and addresses for names no
// kept record points to in additional. The chain reaches the client; the extras never.
#[test]
fn cname_chain_out_of_the_tree_keeps_only_the_chain() {
    let up = Upstream::new();
    up.set(
        "www.example.com. A",
        Canned::new(
            "www.example.com. IN CNAME www.cdn.test.\nwww.cdn.test. IN A 10.20.30.41\n\
             www.bank.test. IN A 6.6.6.6\nwww.example.com. IN TXT \"planted\"",
            "bank.test. IN NS ns.evil.test.",
            "ns.evil.test. IN A 6.6.6.6\nwww.bank.test. IN A 6.6.6.6",
        ),
    );
    let srv = serve(&up);
    let planted = ["bank.test", "evil.test", "planted"];
    for round in ["first", "cached"] {
        let r = ask(&srv, "www.example.com. A");
        clean(&r, &planted, round);
        let answer: Vec<(String, u16)> = r
            .answers
            .iter()
            .map(|rr| (rr.owner.to_ascii_lowercase(), rr.rtype))
            .collect();
        assert_eq!(
            answer,
            vec![
                ("www.example.com".to_string(), Rtype::CNAME.to_int()),
                ("www.cdn.test".to_string(), Rtype::A.to_int())
            ],
            "{round}: the chain, in order: {r:?}"
        );
    }
    assert_eq!(up.asked("www.example.com. A"), 1);
    for owner in ["www.bank.test.", "ns.evil.test."] {
        asks_upstream(&srv, &up, owner);
    }
    // The TXT planted at the question's own name was not cached either.
    up.set(
        "www.example.com. TXT",
        Canned::new("www.example.com. IN TXT \"honest\"", "", ""),
    );
    let txt = ask(&srv, "www.example.com. TXT");
    assert_eq!(up.asked("www.example.com. TXT"), 1, "{txt:?}");
    clean(&txt, &planted, "TXT");
}

// Glue that contradicts an answer of higher rank: ns.example.com's address comes first
// as an authoritative answer; a later reply carries example.com's NS with a different
// (planted) address for ns.example.com as glue. Glue ranks below an answer: the cached
// answer keeps the first address and no reply ever shows the planted one.
#[test]
fn glue_never_overrides_an_answer() {
    let up = Upstream::new();
    up.set(
        "ns.example.com. A",
        Canned::new(
            "ns.example.com. IN A 10.20.30.50",
            "example.com. IN NS ns.example.com.",
            "",
        )
        .aa(),
    );
    up.set(
        "www.example.com. A",
        Canned::new(
            "www.example.com. IN A 10.20.30.40",
            "example.com. IN NS ns.example.com.",
            "ns.example.com. IN A 6.6.6.6",
        ),
    );
    let srv = serve(&up);
    let ns = Expected::new(
        "ns.example.com. IN A 10.20.30.50",
        "example.com. IN NS ns.example.com.",
        "",
    );
    expect(&ask(&srv, "ns.example.com. A"), &ns, SLACK, "first");
    let www = ask(&srv, "www.example.com. A");
    clean(&www, &[], "www");
    assert_eq!(
        www.a_addrs(),
        vec!["10.20.30.40".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    for round in ["after the glue", "again"] {
        let r = ask(&srv, "ns.example.com. A");
        expect(&r, &ns, SLACK, round);
        clean(&r, &[], round);
    }
    assert_eq!(up.asked("ns.example.com. A"), 1, "answered from the cache");
    clean(&ask(&srv, "www.example.com. A"), &[], "www cached");
    assert_eq!(up.asked("www.example.com. A"), 1);
}

// A duplicate RRset with a longer TTL: within one reply (the same A record twice, the
// copy with a day's TTL), and across replies (a later reply of equal rank repeats the
// zone's NS with a day's TTL, and lists the first answer again as extra additional data).
// The client sees each record once, and no TTL grows past the first one's.
#[test]
fn duplicate_rrsets_never_lengthen_a_ttl() {
    let up = Upstream::new();
    up.set(
        "a.example.com. A",
        Canned::new(
            "a.example.com. 100 IN A 10.20.30.40\na.example.com. 86400 IN A 10.20.30.40",
            "example.com. 100 IN NS ns.example.com.",
            "ns.example.com. 100 IN A 10.20.30.50\nns.example.com. 100 IN A 10.20.30.50",
        )
        .aa(),
    );
    up.set(
        "b.example.com. A",
        Canned::new(
            "b.example.com. 100 IN A 10.20.30.41",
            "example.com. 86400 IN NS ns.example.com.",
            "ns.example.com. 86400 IN A 10.20.30.50\na.example.com. 86400 IN A 10.20.30.40",
        )
        .aa(),
    );
    let srv = serve(&up);
    let a = Expected::new(
        "a.example.com. 100 IN A 10.20.30.40",
        "example.com. 100 IN NS ns.example.com.",
        "ns.example.com. 100 IN A 10.20.30.50",
    )
    .ttl();
    expect(&ask(&srv, "a.example.com. A"), &a, SLACK, "first");
    let b = ask(&srv, "b.example.com. A");
    expect(
        &b,
        &Expected::new(
            "b.example.com. 100 IN A 10.20.30.41",
            "example.com. 100 IN NS ns.example.com.",
            "ns.example.com. 100 IN A 10.20.30.50",
        )
        .ttl(),
        SLACK,
        "b",
    );
    expect(&ask(&srv, "a.example.com. A"), &a, SLACK, "cached");
    assert_eq!(up.asked("a.example.com. A"), 1);
}

// A DNAME chain out of the question's tree (example.com renamed to example.net), with a
// record for a name off the chain in the answer section and an unrelated zone's NS in
// authority: the DNAME, the CNAME it makes and the target's address reach the client,
// the extras never.
#[test]
fn dname_chain_keeps_only_the_chain() {
    let up = Upstream::new();
    up.set(
        "www.example.com. A",
        Canned::new(
            "example.com. IN DNAME example.net.\nwww.example.com. IN CNAME www.example.net.\n\
             www.example.net. IN A 10.20.30.42\nwww.bank.test. IN A 6.6.6.6",
            "bank.test. IN NS ns.evil.test.",
            "ns.evil.test. IN A 6.6.6.6",
        ),
    );
    let srv = serve(&up);
    let planted = ["bank.test", "evil.test"];
    for round in ["first", "cached"] {
        let r = ask(&srv, "www.example.com. A");
        clean(&r, &planted, round);
        let mut answer: Vec<(String, u16)> = r
            .answers
            .iter()
            .map(|rr| (rr.owner.to_ascii_lowercase(), rr.rtype))
            .collect();
        answer.sort();
        assert_eq!(
            answer,
            vec![
                ("example.com".to_string(), Rtype::DNAME.to_int()),
                ("www.example.com".to_string(), Rtype::CNAME.to_int()),
                ("www.example.net".to_string(), Rtype::A.to_int()),
            ],
            "{round}: the chain: {r:?}"
        );
    }
    assert_eq!(up.asked("www.example.com. A"), 1);
    asks_upstream(&srv, &up, "www.bank.test.");
}
