//! Odd and hostile authoritative servers: lame, dead and upward-referring servers among an
//! NS set, a server that answers over TCP only, one that FORMERRs EDNS, out-of-bailiwick
//! glue, a delegation loop and an NXNS referral. Every client gets its answer (or a
//! SERVFAIL) within its budget, and the work per client query is bounded.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use names_tests::loopback::*;
use names_tests::{parse, query, Rcode, Rtype, UdpClient};

use crate::{ask, fails_within, hierarchy, recursor, resolves, status, Block};

/// `--timeout` of these recursors: a failure must be a SERVFAIL within it.
const BUDGET: Duration = Duration::from_millis(2500);
const BUDGET_MS: &str = "2500";

#[test]
fn lame_dead_upward_tc_only_and_formerr_servers_are_worked_around() {
    let h = hierarchy(Block::OddServers);
    let srv = recursor(&h, &["--timeout", BUDGET_MS, "--try-timeout", "300"]);
    // mixed.test.: one good server among a lame, a dead and an upward-referring one; a
    // new name each round, so each is resolved, not served from the cache.
    for round in 0..4 {
        let started = Instant::now();
        resolves(&srv, "www.mixed.test", MIXED_A);
        assert!(started.elapsed() < BUDGET);
        let nope = ask(&srv, &[&format!("nope{round}.mixed.test")]);
        assert_eq!(status(&nope), "NXDOMAIN", "{nope}");
    }
    h.settle();
    assert!(h.queries(10) >= 4, "the good server answered");
    // The bad servers were tried (which one first is chosen at random), and remembered:
    // not asked again for every name.
    let bad = [(11, "lame"), (12, "dead"), (13, "upward-referring")];
    for (k, what) in bad {
        let asked = h.queries(k);
        assert!(asked <= 2, "the {what} server was asked {asked} times");
    }
    assert!(bad.iter().map(|&(k, _)| h.queries(k)).sum::<usize>() >= 1);
    // TC over UDP: asked again over TCP.
    resolves(&srv, "www.tc.test", TC_A);
    assert!(h.fake(20).tcp_count() >= 1);
    // FORMERR to EDNS: asked again without.
    resolves(&srv, "www.formerr.test", FORMERR_A);
    let plain = h
        .fake(21)
        .received()
        .iter()
        .filter(|r| !r.parsed().has_opt)
        .count();
    assert!(plain >= 1, "a query without EDNS reached the server");
}

#[test]
fn out_of_bailiwick_glue_is_neither_used_nor_served() {
    let h = hierarchy(Block::Poisoning);
    let srv = recursor(&h, &[]);
    let evil = resolves(&srv, "www.evil.test", EVIL_A);
    assert!(!evil.contains(&POISON_A.to_string()), "{evil}");
    // Not in the cache: RD=0 finds nothing for the victim name.
    let cached = ask(&srv, &["+norec", "www.example.test"]);
    assert!(!cached.contains(&POISON_A.to_string()), "{cached}");
    // Resolved from its real server, not from the NS the evil server named.
    h.settle();
    let evil_asked = h.queries(22);
    resolves(&srv, "www.example.test", WWW_A);
    assert!(h.asked(3, "www.example.test.") >= 1);
    assert_eq!(
        h.queries(22),
        evil_asked,
        "the evil server was not asked about example.test"
    );
}

#[test]
fn a_delegation_loop_fails_within_the_budget_with_bounded_work() {
    let h = hierarchy(Block::Loops);
    let srv = recursor(&h, &["--timeout", BUDGET_MS]);
    let sent = fails_within(&srv, &h, "www.loop1.test", BUDGET);
    // 4 were seen: each of the two loop delegations asked once, then the loop is found.
    assert!(
        (2..=32).contains(&sent),
        "{sent} queries for one looping name"
    );
}

#[test]
fn an_nxns_referral_costs_a_bounded_number_of_queries() {
    let h = hierarchy(Block::Nxns);
    let srv = recursor(&h, &["--timeout", BUDGET_MS]);
    let sent = fails_within(&srv, &h, "www.nxns.test", BUDGET);
    let victim = h.queries(24);
    // Of 100 glueless names, a few are looked up (Unbound's target-fetch-policy); the
    // client query as a whole is bounded (32 sends, sub-queries included).
    // 6 and 11 were seen.
    assert!(
        (1..=16).contains(&victim),
        "{victim} queries reached the victim"
    );
    assert!(sent <= 32, "{sent} queries for one client query");
}

#[test]
fn a_flood_of_new_names_is_answered_with_bounded_work() {
    let h = hierarchy(Block::Flood);
    let srv = recursor(&h, &["--timeout", BUDGET_MS]);
    // Warm the delegations first, so the flood costs one query per new name.
    resolves(&srv, "www.example.test", WWW_A);
    let before = h.settle();
    let upper = h.queries(1) + h.queries(2);
    const FLOOD: u16 = 300;
    let client = UdpClient::new(srv.udp_addr());
    let mut rcodes: BTreeMap<u16, usize> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut take = |reply: Option<Vec<u8>>, seen: &mut BTreeSet<u16>| {
        let Some(reply) = reply else { return };
        let reply = parse(&reply);
        if seen.insert(reply.id) {
            *rcodes.entry(reply.rcode).or_default() += 1;
        }
    };
    // In bursts of 50, the replies read in between: a socket's receive buffer holds a few
    // hundred datagrams, the client's as much as the server's. A query left without an
    // answer is sent again once, as dig does: on a loaded machine the kernel may drop one.
    for _ in 0..2 {
        let unanswered: Vec<u16> = (0..FLOOD).filter(|i| !seen.contains(i)).collect();
        for burst in unanswered.chunks(50) {
            for &i in burst {
                client.send(&query(
                    &format!("flood{i}.example.test"),
                    Rtype::A,
                    i,
                    true,
                    None,
                ));
            }
            while let Some(reply) = client.recv(Duration::from_millis(2)) {
                take(Some(reply), &mut seen);
            }
        }
        let deadline = Instant::now() + BUDGET + Duration::from_millis(500);
        while seen.len() < usize::from(FLOOD) && Instant::now() < deadline {
            take(client.recv(Duration::from_millis(100)), &mut seen);
        }
    }
    let logged = srv.logs().matches("names: query ").count() - 1;
    assert_eq!(
        seen.len(),
        usize::from(FLOOD),
        "every query answered ({logged} by the log): {rcodes:?}"
    );
    let nxdomain = rcodes[&u16::from(Rcode::NXDOMAIN.to_int())];
    assert!(nxdomain >= usize::from(FLOOD) * 9 / 10, "{rcodes:?}");
    let sent = h.settle() - before;
    assert!(
        sent <= usize::from(FLOOD) * 2,
        "{sent} queries for {FLOOD} new names"
    );
    assert_eq!(
        h.queries(1) + h.queries(2),
        upper,
        "the delegations came from the cache"
    );
}
