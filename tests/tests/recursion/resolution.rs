//! Resolution through the hierarchy: answers as the authoritative servers give them, from
//! the root down, with the cache in front; RD=0 from the cache only; loopback servers
//! never asked without `--query-localhost`.

use std::time::Duration;

use names_tests::loopback::*;
use names_tests::{metrics_addr, sample, scrape, FakeUpstream, Server};

use crate::{answers, ask, authority, eventually, hierarchy, recursor, resolves, status, Block};

#[test]
fn resolves_from_the_root_through_referrals_glueless_cname_and_dname() {
    let h = hierarchy(Block::Resolution);
    let srv = recursor(&h, &["--metrics", "127.0.0.1:0"]);
    assert!(
        srv.ready_line().contains("chain=cache,recurse"),
        "{}",
        srv.ready_line()
    );
    let hints = h.hints().display().to_string();
    let said = format!("recursion from 1 root servers (1 addresses) of {hints}, loopback");
    assert!(srv.logs().contains(&said), "{}", srv.logs());
    let www = resolves(&srv, "www.example.test", WWW_A);
    assert!(www.contains("flags: qr rd ra;"), "RA set, AA not: {www}");
    let aaaa = ask(&srv, &["www.example.test", "AAAA"]);
    assert_eq!(
        answers(&aaaa),
        [format!("www.example.test. aaaa {WWW_AAAA}")],
        "{aaaa}\n{}",
        srv.logs()
    );
    // Three referrals: the root, test., example.test., then sub.example.test. answers.
    resolves(&srv, "deep.sub.example.test", DEEP_A);
    assert!(h.asked(4, "sub.example.test.") >= 1);
    // Glueless: the name server's address is resolved first, in example.test.
    resolves(&srv, "www.glueless.other", GLUELESS_A);
    assert!(h.asked(3, "ns-glueless.example.test.") >= 1);
    // CNAME into another TLD, DNAME too.
    let alias = ask(&srv, &["alias.example.test"]);
    assert_eq!(
        answers(&alias),
        [
            "alias.example.test. cname www.other.",
            &format!("www.other. a {OTHER_A}")
        ],
        "{alias}\n{}",
        srv.logs()
    );
    let dname = ask(&srv, &["www.dname.example.test"]);
    let records = answers(&dname);
    assert!(
        records.contains(&"dname.example.test. dname other.".to_string()),
        "{dname}\n{}",
        srv.logs()
    );
    assert!(
        records.contains(&format!("www.other. a {OTHER_A}")),
        "{dname}\n{}",
        srv.logs()
    );
    // Asked again: the cache answers, nobody is asked.
    let before = h.settle();
    assert_eq!(answers(&ask(&srv, &["www.example.test"])), answers(&www));
    assert_eq!(h.settle(), before, "a cached answer asks nobody");
    // The recursor's metrics, from the shared state, on the endpoint.
    let body = scrape(metrics_addr(&srv));
    let value = |series: &str| sample(&body, series).unwrap_or_else(|| panic!("{series}: {body}"));
    assert!(value("names_recursor_resolutions_total") >= 6.0);
    assert!(
        value("names_recursor_infra_entries") >= 5.0,
        "a server per zone at least"
    );
    let histogram = value("names_recursor_upstream_queries_per_query_count");
    assert_eq!(histogram, value("names_recursor_resolutions_total"));
    assert!(value("names_recursor_upstream_queries_per_query_sum") >= 10.0);
}

#[test]
fn nxdomain_and_nodata_at_every_level_carry_the_soa_of_the_zone_that_said_so() {
    let h = hierarchy(Block::Negative);
    let srv = recursor(&h, &[]);
    for (qname, zone) in [
        ("nope.", "."),
        ("nope.test.", "test."),
        ("nope.example.test.", "example.test."),
        ("nope.sub.example.test.", "sub.example.test."),
        ("nope.glueless.other.", "glueless.other."),
    ] {
        let out = ask(&srv, &[qname, "A"]);
        assert_eq!(status(&out), "NXDOMAIN", "{qname}: {out}\n{}", srv.logs());
        let soa = authority(&out);
        assert!(
            soa.len() == 1 && soa[0].starts_with(&format!("{zone} soa ")),
            "{qname}: {out}
{}",
            srv.logs()
        );
    }
    for (qname, qtype, zone) in [
        (".", "TXT", "."),
        ("test.", "TXT", "test."),
        ("www.example.test.", "MX", "example.test."),
        ("deep.sub.example.test.", "TXT", "sub.example.test."),
    ] {
        let out = ask(&srv, &[qname, qtype]);
        assert_eq!(
            status(&out),
            "NOERROR",
            "{qname} {qtype}: {out}
{}",
            srv.logs()
        );
        assert!(
            answers(&out).is_empty(),
            "{qname} {qtype}: {out}
{}",
            srv.logs()
        );
        let soa = authority(&out);
        assert!(
            soa.len() == 1 && soa[0].starts_with(&format!("{zone} soa ")),
            "{qname}: {out}
{}",
            srv.logs()
        );
    }
}

#[test]
fn rd0_is_answered_from_the_cache_only() {
    let h = hierarchy(Block::RecursionDesired);
    let srv = recursor(&h, &[]);
    let cold = ask(&srv, &["+norec", "www.example.test"]);
    assert!(answers(&cold).is_empty(), "nothing cached yet: {cold}");
    assert_eq!(h.settle(), 0, "RD=0 sends nothing: {cold}");
    let warm = resolves(&srv, "www.example.test", WWW_A);
    let sent = h.settle();
    let cached = ask(&srv, &["+norec", "www.example.test"]);
    assert_eq!(answers(&cached), answers(&warm), "{cached}");
    assert!(cached.contains(" ra"), "RA set: {cached}");
    assert_eq!(h.settle(), sent);
}

#[test]
fn loopback_servers_are_never_asked_without_query_localhost() {
    let h = hierarchy(Block::Localhost);
    let hints = h.hints().display().to_string();
    // A route the operator gave is asked, loopback or not.
    let corp = FakeUpstream::answering(&[OTHER_A]);
    let route = format!("corp.test={}", corp.arg());
    let srv = Server::start(&["--recursive", "--root-hints", &hints, "--forward", &route]);
    let out = ask(&srv, &["www.example.test"]);
    assert_eq!(status(&out), "SERVFAIL", "{out}");
    assert!(!eventually(Duration::from_millis(300), || h.all_queries() > 0));
    resolves(&srv, "www.corp.test", OTHER_A);
}

#[test]
fn a_recorded_recursion_replays_exactly_from_the_hints_recorded() {
    let h = hierarchy(Block::Replay);
    let dir = names_tests::temp_dir("recursion-replay");
    let hints = dir.join("copy.hints");
    std::fs::copy(h.hints(), &hints).unwrap();
    let journal = dir.join("recursion.journal").display().to_string();
    let hints = hints.display().to_string();
    let mut srv = Server::start(&[
        "--recursive",
        "--query-localhost",
        "--root-hints",
        &hints,
        "--workers",
        "1",
        "--record",
        &journal,
    ]);
    resolves(&srv, "deep.sub.example.test", DEEP_A);
    resolves(&srv, "www.glueless.other", GLUELESS_A);
    // Stopped gracefully: the journal is finished.
    srv.signal("TERM");
    assert!(srv
        .wait_exit(Duration::from_secs(5))
        .is_some_and(|s| s.success()));
    // The hints file is gone: the replay reads the one recorded.
    std::fs::remove_file(&hints).unwrap();
    let out = names_tests::run_names(&["replay", &journal, "--check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("identical"),
        "{stdout}{stderr}"
    );
}
