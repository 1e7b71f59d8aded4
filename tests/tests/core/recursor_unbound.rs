//! Unbound's iterator scenarios (NLnetLabs/unbound `testdata/iter_*.rpl`), ported: each
//! `RANGE` is a server of `names_tests::hierarchy` answering from its canned entries
//! (`hierarchy::canned`, RA clear as the rpl's `REPLY QR ...`), the `stub-addr` of the
//! root is the root hints, and the `CHECK_ANSWER` steps are compared section by section
//! with `scenario::expect`. A server without a matching entry answers REFUSED (Unbound's
//! test harness would not answer), so the recursor's relaxed QNAME minimisation asks the
//! full name as these scenarios expect.

use std::net::IpAddr;

use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::recursor::{RecursorConfig, RootHints};
use names_tests::hierarchy::{canned, canned_recursive, recursive_server, World};
use names_tests::scenario::{expect, Canned, Expected};

/// The root hints of every scenario: K.ROOT-SERVERS.NET at 193.0.14.129.
fn config() -> RecursorConfig {
    RecursorConfig {
        root_hints: RootHints::parse(
            ". NS K.ROOT-SERVERS.NET.\nK.ROOT-SERVERS.NET. A 193.0.14.129\n",
        )
        .unwrap(),
        ..RecursorConfig::default()
    }
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn root_priming() -> (&'static str, Canned) {
    (
        ". NS",
        Canned::new(
            ". IN NS K.ROOT-SERVERS.NET.",
            "",
            "K.ROOT-SERVERS.NET. IN A 193.0.14.129",
        ),
    )
}

/// The root server of iter_cycle.rpl and iter_lame_nosoa.rpl: priming, and referrals
/// to com (a.gtld-servers.net) and net (e.gtld-servers.net) for any name below them.
fn root_referring_com_and_net() -> Vec<(&'static str, Canned)> {
    vec![
        root_priming(),
        (
            "*.com.",
            Canned::new(
                "",
                "com. IN NS a.gtld-servers.net.",
                "a.gtld-servers.net. IN A 192.5.6.30",
            ),
        ),
        (
            "*.net.",
            Canned::new(
                "",
                "net. IN NS e.gtld-servers.net.",
                "e.gtld-servers.net. IN A 192.12.94.30",
            ),
        ),
    ]
}

/// The answer for www.example.com of iter_resolve.rpl and iter_primenoglue.rpl.
const WWW: [&str; 3] = [
    "www.example.com. IN A 10.20.30.40",
    "example.com. IN NS ns.example.com.",
    "ns.example.com. IN A 1.2.3.4",
];

/// The server's reply carrying [`WWW`] (no AA, as in the scenarios).
fn www_answer() -> Canned {
    Canned::new(WWW[0], WWW[1], WWW[2])
}

/// Asserts the client got [`WWW`].
fn expect_www(reply: &names_tests::parse::Parsed, what: &str) {
    expect(reply, &Expected::new(WWW[0], WWW[1], WWW[2]), 0, what);
}

/// iter_resolve.rpl: a basic iterative resolve of www.example.com.
#[test]
fn iter_resolve() {
    let mut world = World::new();
    world.serve(
        addr("193.0.14.129"),
        &[],
        canned(vec![
            root_priming(),
            (
                "www.example.com. A",
                Canned::new(
                    "",
                    "com. IN NS a.gtld-servers.net.",
                    "a.gtld-servers.net. IN A 192.5.6.30",
                ),
            ),
        ]),
    );
    world.serve(
        addr("192.5.6.30"),
        &[],
        canned(vec![
            (
                "com. NS",
                Canned::new(
                    "com. IN NS a.gtld-servers.net.",
                    "",
                    "a.gtld-servers.net. IN A 192.5.6.30",
                ),
            ),
            (
                "www.example.com. A",
                Canned::new(
                    "",
                    "example.com. IN NS ns.example.com.",
                    "ns.example.com. IN A 1.2.3.4",
                ),
            ),
        ]),
    );
    world.serve(
        addr("1.2.3.4"),
        &[],
        canned(vec![
            (
                "example.com. NS",
                Canned::new(
                    "example.com. IN NS ns.example.com.",
                    "",
                    "ns.example.com. IN A 1.2.3.4",
                ),
            ),
            ("www.example.com. A", www_answer()),
        ]),
    );
    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "www.example.com", Rtype::A, false);
    expect_www(&reply, "iter_resolve");
}

/// iter_lame_noaa.rpl: a server that refers the query to its own zone without AA is lame;
/// the other server of the zone answers. Played with either server lame, since which one
/// is asked first is a random choice.
#[test]
fn iter_lame_noaa() {
    for (lame, good) in [
        ("168.192.2.2", "168.192.3.3"),
        ("168.192.3.3", "168.192.2.2"),
    ] {
        let mut world = World::new();
        world.serve(
            addr("193.0.14.129"),
            &[],
            canned(vec![
                (
                    ". NS",
                    Canned::new(
                        ". IN NS K.ROOT-SERVERS.NET.",
                        "",
                        "K.ROOT-SERVERS.NET. IN A 193.0.14.129",
                    )
                    .aa(),
                ),
                (
                    "www.example.com. A",
                    Canned::new(
                        "",
                        "com. IN NS a.gtld-servers.net.",
                        "a.gtld-servers.net. IN A 192.5.6.30",
                    ),
                ),
            ]),
        );
        let referral = Canned::new(
            "",
            "example.com. IN NS ns1.example.com.\nexample.com. IN NS ns2.example.com.",
            "ns1.example.com. IN A 168.192.2.2\nns2.example.com. IN A 168.192.3.3",
        );
        world.serve(
            addr("192.5.6.30"),
            &[],
            canned(vec![
                (
                    "com. NS",
                    Canned::new(
                        "com. IN NS a.gtld-servers.net.",
                        "",
                        "a.gtld-servers.net. IN A 192.5.6.30",
                    )
                    .aa(),
                ),
                ("www.example.com. A", referral.clone()),
            ]),
        );
        world.serve(
            addr(lame),
            &[],
            canned(vec![("www.example.com. A", referral.clone())]),
        );
        world.serve(
            addr(good),
            &[],
            canned(vec![(
                "www.example.com. A",
                Canned::new(
                    "www.example.com. IN A 10.20.30.40",
                    "example.com. IN NS ns1.example.com.\nexample.com. IN NS ns2.example.com.",
                    "ns1.example.com. IN A 168.192.2.2\nns2.example.com. IN A 168.192.3.3",
                )
                .aa(),
            )]),
        );
        let (setup, mut server) = recursive_server(config(), false);
        let reply = world.ask(&mut server, "www.example.com", Rtype::A, false);
        expect(
            &reply,
            &Expected::new(
                "www.example.com. IN A 10.20.30.40",
                "example.com. IN NS ns1.example.com.\nexample.com. IN NS ns2.example.com.",
                "ns1.example.com. IN A 168.192.2.2\nns2.example.com. IN A 168.192.3.3",
            ),
            0,
            "iter_lame_noaa",
        );
        let asked_lame = !world.asked_of(addr(lame)).is_empty();
        assert_eq!(setup.recursor_stats().unwrap().lame_marked > 0, asked_lame);
    }
}

/// iter_primenoglue.rpl (without its DNSSEC part): the priming reply carries no glue for
/// the root server; the example.com server is glueless (ns.example.net, resolved first).
#[test]
fn iter_primenoglue() {
    let mut world = World::new();
    world.serve(
        addr("193.0.14.129"),
        &[],
        canned(vec![
            (". NS", Canned::new(". IN NS K.ROOT-SERVERS.NET.", "", "")),
            (
                "www.example.com. A",
                Canned::new(
                    "",
                    "com. IN NS a.gtld-servers.net.\nexample.net. NS ns.example.net.",
                    "a.gtld-servers.net. IN A 192.5.6.30",
                ),
            ),
            (
                "ns.example.net. A",
                Canned::new(
                    "",
                    "net. IN NS a.gtld-servers.net.",
                    "a.gtld-servers.net. IN A 192.5.6.30",
                ),
            ),
        ]),
    );
    world.serve(
        addr("192.5.6.30"),
        &[],
        canned(vec![
            (
                "www.example.com. A",
                Canned::new("", "example.com. IN NS ns.example.net.", ""),
            ),
            (
                "ns.example.net. A",
                Canned::new(
                    "",
                    "example.net. NS ns.example.net.",
                    "ns.example.net. IN A 1.2.3.4",
                ),
            ),
        ]),
    );
    world.serve(
        addr("1.2.3.4"),
        &[],
        canned(vec![
            (
                "ns.example.net. A",
                Canned::new("ns.example.net. IN A 1.2.3.4", "", "").aa(),
            ),
            ("ns.example.net. AAAA", Canned::new("", "", "").aa()),
            ("www.example.com. A", www_answer()),
        ]),
    );
    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "www.example.com", Rtype::A, false);
    expect_www(&reply, "iter_primenoglue");
    // The root's NS set from the priming reply, its address from the hints: priming
    // answered, the rest went to the servers the referrals named.
    assert!(world
        .asked_of(addr("192.5.6.30"))
        .iter()
        .any(|a| a.qname == "ns.example.net"));
}

/// iter_cycle.rpl: ns.example.com needs ns.example.net, which needs ns.example.com (the
/// glue offered is out of bailiwick and scrubbed): SERVFAIL.
#[test]
fn iter_cycle() {
    let mut world = World::new();
    world.serve(
        addr("193.0.14.129"),
        &[],
        canned(root_referring_com_and_net()),
    );
    world.serve(
        addr("192.5.6.30"),
        &[],
        canned(vec![(
            "*.example.com.",
            Canned::new(
                "",
                "example.com. IN NS ns.example.net.",
                "ns.example.net. IN A 1.2.3.1",
            ),
        )]),
    );
    world.serve(
        addr("192.12.94.30"),
        &[],
        canned(vec![(
            "*.example.net.",
            Canned::new(
                "",
                "example.net. IN NS ns.example.com.",
                "ns.example.com. IN A 1.2.3.2",
            ),
        )]),
    );
    let cfg = config();
    let (_setup, mut server) = recursive_server(cfg.clone(), false);
    let reply = world.ask(&mut server, "ns.example.com", Rtype::A, false);
    expect(
        &reply,
        &Expected::new("", "", "").rcode(Rcode::SERVFAIL),
        0,
        "iter_cycle",
    );
    assert!(
        world.asked_of(addr("1.2.3.1")).is_empty() && world.asked_of(addr("1.2.3.2")).is_empty()
    );
    assert!(world.asked.len() <= 3 * cfg.max_sends as usize);
}

/// iter_lame_nosoa.rpl: ns.example.com refers to its own zone (lame); ns.example.net
/// answers with RA and without AA, as a recursive server: used as the last resort, for
/// an answer and for a NODATA without SOA.
#[test]
fn iter_lame_nosoa() {
    let mut world = World::new();
    world.serve(
        addr("193.0.14.129"),
        &[],
        canned(root_referring_com_and_net()),
    );
    world.serve(
        addr("192.5.6.30"),
        &[],
        canned(vec![(
            "*.example.com.",
            Canned::new(
                "",
                "example.com. IN NS ns.example.net.\nexample.com. IN NS ns.example.com.",
                "ns.example.com. IN A 1.2.3.55",
            ),
        )]),
    );
    world.serve(
        addr("192.12.94.30"),
        &[],
        canned(vec![(
            "*.example.net.",
            Canned::new(
                "",
                "example.net. IN NS ns.example.net.",
                "ns.example.net. IN A 1.2.3.44",
            ),
        )]),
    );
    let ns = "example.com. IN NS ns.example.net.\nexample.com. IN NS ns.example.com.";
    let rec = canned_recursive(vec![
        (
            "ns.example.net. A",
            Canned::new(
                "ns.example.net. IN A 1.2.3.44",
                "example.net. IN NS ns.example.net.",
                "",
            ),
        ),
        (
            "ns.example.net. AAAA",
            Canned::new("", "example.net. IN NS ns.example.net.", ""),
        ),
        (
            "www.example.com. A",
            Canned::new(
                "www.example.com. IN A 10.20.30.40",
                ns,
                "ns.example.com. IN A 1.2.3.55\nns.example.net. IN A 1.2.3.44",
            ),
        ),
        ("mail.example.com. A", Canned::new("", ns, "")),
    ]);
    world.serve(addr("1.2.3.44"), &[], rec);
    world.serve(
        addr("1.2.3.55"),
        &[],
        canned(vec![(
            "*.example.com.",
            Canned::new("", "example.com. IN NS ns.example.com.", ""),
        )]),
    );
    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "www.example.com", Rtype::A, false);
    assert!(
        !world.asked_of(addr("1.2.3.55")).is_empty(),
        "the lame server first"
    );
    expect(
        &reply,
        &Expected::new(
            "www.example.com. IN A 10.20.30.40",
            ns,
            "ns.example.com. IN A 1.2.3.55",
        ),
        0,
        "iter_lame_nosoa www",
    );
    let reply = world.ask(&mut server, "mail.example.com", Rtype::A, false);
    expect(
        &reply,
        &Expected::new("", ns, ""),
        0,
        "iter_lame_nosoa mail",
    );
}

/// iter_ranoaa_lame.rpl: the server with glue (ns.example.com) is a recursive server
/// answering from its cache (RA without AA, a wrong address); the glueless one
/// (ns.example.net) is looked up and gives the authoritative answer.
#[test]
fn iter_ranoaa_lame() {
    let mut world = World::new();
    world.serve(
        addr("193.0.14.129"),
        &[],
        canned(root_referring_com_and_net()),
    );
    let ns = "example.com. IN NS ns.example.com.\nexample.com. IN NS ns.example.net.";
    world.serve(
        addr("192.5.6.30"),
        &[],
        canned(vec![(
            "www.example.com. A",
            Canned::new("", ns, "ns.example.com. IN A 1.2.3.55"),
        )]),
    );
    world.serve(
        addr("192.12.94.30"),
        &[],
        canned(vec![(
            "*.example.net.",
            Canned::new(
                "",
                "example.net. IN NS ns.example.net.",
                "ns.example.net. IN A 1.2.3.44",
            ),
        )]),
    );
    world.serve(
        addr("1.2.3.44"),
        &[],
        canned(vec![
            (
                "ns.example.net. A",
                Canned::new(
                    "ns.example.net. IN A 1.2.3.44",
                    "example.net. IN NS ns.example.net.",
                    "",
                ),
            ),
            (
                "www.example.com. A",
                Canned::new(
                    "www.example.com. IN A 10.20.30.40",
                    ns,
                    "ns.example.net. IN A 1.2.3.44",
                )
                .aa(),
            ),
        ]),
    );
    world.serve(
        addr("1.2.3.55"),
        &[],
        canned_recursive(vec![(
            "www.example.com. A",
            Canned::new(
                "www.example.com. IN A 10.20.30.50",
                ns,
                "ns.example.com. IN A 1.2.3.55",
            ),
        )]),
    );
    let (setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "www.example.com", Rtype::A, false);
    expect(
        &reply,
        &Expected::new("www.example.com. IN A 10.20.30.40", ns, ""),
        0,
        "iter_ranoaa_lame",
    );
    assert!(
        !world.asked_of(addr("1.2.3.55")).is_empty(),
        "the glued server first"
    );
    // The recursive server is asked last from now on.
    let before = world.asked.len();
    world.ask(&mut server, "www.example.com", Rtype::A, false);
    assert_eq!(world.asked[before].to.ip(), addr("1.2.3.44"));
    assert!(setup.recursor_stats().unwrap().resolutions == 2);
}

/// The referrals to example.com (ns.example.net, glueless) and example.net (glue
/// ns.example.net at 1.2.3.44) of iter_pcdiff.rpl and the tests below.
fn com_and_net(example_com_ns: &str, com_glue: &str, net_glue: &str) -> World {
    let mut world = World::new();
    world.serve(
        addr("193.0.14.129"),
        &[],
        canned(root_referring_com_and_net()),
    );
    let delegation = format!("example.com. IN NS {example_com_ns}");
    world.serve(
        addr("192.5.6.30"),
        &[],
        canned(vec![(
            "*.example.com.",
            Canned::new("", &delegation, com_glue),
        )]),
    );
    world.serve(
        addr("192.12.94.30"),
        &[],
        canned(vec![(
            "*.example.net.",
            Canned::new("", "example.net. IN NS ns.example.net.", net_glue),
        )]),
    );
    world
}

/// Whether `ip` was asked about `qname`.
fn asked_about(world: &World, ip: &str, qname: &str) -> bool {
    world
        .asked_of(addr(ip))
        .iter()
        .any(|a| a.qname.trim_end_matches('.').eq_ignore_ascii_case(qname))
}

/// iter_pcdiff.rpl: the parent's glue for ns.example.net (1.2.3.44) differs from the
/// child's own address record (1.2.3.55, which fails): the parent-side address is the
/// last resort, and it answers.
#[test]
fn iter_pcdiff() {
    let mut world = com_and_net("ns.example.net.", "", "ns.example.net. IN A 1.2.3.44");
    world.serve(
        addr("1.2.3.44"),
        &[],
        canned(vec![
            (
                "ns.example.net. A",
                Canned::new("ns.example.net. IN A 1.2.3.55", "", "").aa(),
            ),
            (
                "www.example.com. A",
                Canned::new(
                    "www.example.com. IN A 10.20.30.40",
                    "example.com. IN NS ns.example.net.",
                    "",
                )
                .aa(),
            ),
        ]),
    );
    world.serve(
        addr("1.2.3.55"),
        &[],
        canned(vec![(
            "*.com.",
            Canned::new("", "", "").rcode(Rcode::SERVFAIL),
        )]),
    );
    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "www.example.com", Rtype::A, false);
    expect(
        &reply,
        &Expected::new(
            "www.example.com. IN A 10.20.30.40",
            "example.com. IN NS ns.example.net.",
            "",
        ),
        0,
        "iter_pcdiff",
    );
    assert!(asked_about(&world, "1.2.3.55", "www.example.com"));
    assert!(asked_about(&world, "1.2.3.44", "www.example.com"));
}

/// iter_pcnamech.rpl, and what it must not allow: an NS name only the child's answers
/// give (ns.example.net) is never asked while the parent's server answers, and is the last
/// resort once it fails (SERVFAIL for mail.example.com).
#[test]
fn child_only_ns_names_are_a_last_resort_never_a_takeover() {
    let mut world = com_and_net(
        "ns.example.com.",
        "ns.example.com. IN A 1.2.3.44",
        "ns.example.net. IN A 1.2.3.66",
    );
    let child_ns = "example.com. IN NS ns.example.com.\nexample.com. IN NS ns.example.net.";
    world.serve(
        addr("1.2.3.44"),
        &[],
        canned(vec![
            (
                "www.example.com. A",
                Canned::new("www.example.com. IN A 10.20.30.40", child_ns, "").aa(),
            ),
            (
                "*.example.com.",
                Canned::new("", "", "").rcode(Rcode::SERVFAIL),
            ),
        ]),
    );
    world.serve(
        addr("1.2.3.66"),
        &[],
        canned(vec![
            (
                "ns.example.net. A",
                Canned::new("ns.example.net. IN A 1.2.3.66", "", "").aa(),
            ),
            (
                "*.example.com.",
                Canned::new("mail.example.com. IN A 10.20.30.20", child_ns, "").aa(),
            ),
        ]),
    );
    let (_setup, mut server) = recursive_server(config(), false);
    let www = world.ask(&mut server, "www.example.com", Rtype::A, false);
    expect(
        &www,
        &Expected::new("www.example.com. IN A 10.20.30.40", child_ns, ""),
        0,
        "www from the parent's server",
    );
    assert!(world.asked_of(addr("1.2.3.66")).is_empty(), "no takeover");
    let mail = world.ask(&mut server, "mail.example.com", Rtype::A, false);
    expect(
        &mail,
        &Expected::new("mail.example.com. IN A 10.20.30.20", child_ns, ""),
        0,
        "mail from the child's other server",
    );
    assert!(asked_about(&world, "1.2.3.44", "mail.example.com"));
    assert!(asked_about(&world, "1.2.3.66", "mail.example.com"));
}

/// iter_dname_insec.rpl, step 220901: a DNAME onto itself synthesises `cyc CNAME cyc`, a
/// loop within the one answer: that answer is the client's (NOERROR, as Unbound gives
/// it), after one question to the server.
#[test]
fn a_dname_onto_itself_is_answered_as_it_stands() {
    let mut world = com_and_net("ns1.example.com.", "ns1.example.com. IN A 168.192.2.2", "");
    let looping = "example.com. IN DNAME example.com.\ncyc.example.com. IN CNAME cyc.example.com.";
    world.serve(
        addr("168.192.2.2"),
        &[],
        canned(vec![(
            "cyc.example.com. A",
            Canned::new(looping, "", "").aa(),
        )]),
    );
    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "cyc.example.com", Rtype::A, false);
    expect(&reply, &Expected::new(looping, "", ""), 0, "the DNAME loop");
    let asked = world.asked_of(addr("168.192.2.2"));
    assert_eq!(asked.len(), 1, "asked once: {asked:?}");
}

/// iter_scrub_rr_length.rpl: an A record of three octets beside a good one is dropped
/// alone, the rest of the answer used; an answer of only such records is a NODATA.
#[test]
fn a_record_of_impossible_length_is_dropped_alone() {
    let mut world = com_and_net("ns.example.com.", "ns.example.com. IN A 1.2.3.4", "");
    let ns = "example.com. IN NS ns.example.com.";
    world.serve(
        addr("1.2.3.4"),
        &[],
        canned(vec![
            (
                "www.example.com. A",
                Canned::new(
                    "www.example.com. IN A 10.20.30.40\nwww.example.com. IN A \\# 3 030405",
                    ns,
                    "",
                )
                .aa(),
            ),
            (
                "broken.example.com. A",
                Canned::new("broken.example.com. IN A \\# 3 030405", ns, "").aa(),
            ),
        ]),
    );
    let (_setup, mut server) = recursive_server(config(), false);
    let www = world.ask(&mut server, "www.example.com", Rtype::A, false);
    expect(
        &www,
        &Expected::new("www.example.com. IN A 10.20.30.40", ns, ""),
        0,
        "the good record",
    );
    let broken = world.ask(&mut server, "broken.example.com", Rtype::A, false);
    expect(
        &broken,
        &Expected::new("", ns, ""),
        0,
        "nothing left: NODATA",
    );
}

/// iter_lame_aaaa.rpl: the example.com server refers AAAA up to the root, with AA (the
/// scrub leaves an empty reply): lame for that question, SERVFAIL, not a NODATA; its A
/// answer is still used afterwards.
#[test]
fn an_authoritative_upward_referral_is_lame_for_its_question_only() {
    let mut world = com_and_net("ns.example.com.", "ns.example.com. IN A 1.2.3.4", "");
    world.serve(
        addr("1.2.3.4"),
        &[],
        canned(vec![
            (
                "example.com. AAAA",
                Canned::new(
                    "",
                    ". IN NS a.root-servers.net.",
                    "a.root-servers.net. IN A 198.41.0.4",
                )
                .aa(),
            ),
            (
                "example.com. A",
                Canned::new("example.com. IN A 204.14.213.188", "", "").aa(),
            ),
        ]),
    );
    let (_setup, mut server) = recursive_server(config(), false);
    let aaaa = world.ask(&mut server, "example.com", Rtype::AAAA, false);
    expect(
        &aaaa,
        &Expected::new("", "", "").rcode(Rcode::SERVFAIL),
        0,
        "the upward referral",
    );
    let a = world.ask(&mut server, "example.com", Rtype::A, false);
    expect(
        &a,
        &Expected::new("example.com. IN A 204.14.213.188", "", ""),
        0,
        "the A answer",
    );
    assert!(world.asked_of(addr("198.41.0.4")).is_empty());
}
