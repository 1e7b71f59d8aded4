//! The recursor through the public API: a `Server` with a recursor resolving in the
//! in-memory hierarchy of `names_tests::hierarchy` (root, TLDs, second level, servers
//! misbehaving on purpose), every query it sends logged and counted. Nothing leaves the
//! process.

use std::net::{IpAddr, Ipv4Addr};

use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::domain::base::{Message, MessageBuilder, Name, ToName, Ttl};
use names_core::domain::rdata::{Cname, Ns, A};
use names_core::recursor::{RecursorConfig, RootHints};
use names_core::stats::Kind;
use names_core::Stats;
use names_tests::hierarchy::{
    answer_udp, authoritative, client_query, config, example_com, ip, rcode_reply,
    recursive_server, Behaviour, World,
};
use names_tests::parse::Parsed;

const NOERROR: u16 = 0;
const SERVFAIL: u16 = 2;
const NXDOMAIN: u16 = 3;

/// The most packets one client query may cause: every exchange (at most `max_sends`) is at
/// most a UDP try, a retry without EDNS and a TCP try.
fn packet_bound(config: &RecursorConfig) -> usize {
    3 * config.max_sends as usize
}

fn addrs(reply: &Parsed) -> Vec<Ipv4Addr> {
    reply.a_addrs()
}

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// `owner type` of each record of a section.
fn kinds(rrs: &[names_tests::parse::Rr]) -> Vec<String> {
    rrs.iter()
        .map(|r| format!("{} {}", r.owner, Rtype::from_int(r.rtype)))
        .collect()
}

/// Makes both example.com servers answer `special` with `reply` (or nothing) and every
/// other question honestly from the zone.
fn example_com_answers(
    world: &mut World,
    special: &'static str,
    reply: fn(&Message<bytes::Bytes>) -> Option<Vec<u8>>,
) {
    for last in [40, 41] {
        let mut honest = authoritative(&[example_com()]);
        world.set_behaviour(
            ip(last),
            Behaviour::Script(Box::new(move |q: &Message<bytes::Bytes>| {
                if q.first_question()?.qname().to_string() == special {
                    reply(q)
                } else {
                    answer_udp(&mut honest, q.as_slice())
                }
            })),
        );
    }
}

/// An authoritative reply (AA) to `q`: `owner CNAME target`.
fn cname_reply(q: &Message<bytes::Bytes>, target: &str) -> Option<Vec<u8>> {
    let mut b = MessageBuilder::new_vec()
        .start_answer(q, Rcode::NOERROR)
        .ok()?;
    b.header_mut().set_aa(true);
    let target: Name<bytes::Bytes> = target.parse().ok()?;
    b.push((q.first_question()?.qname(), 60, Cname::new(target)))
        .ok()?;
    Some(b.finish())
}

#[test]
fn plain_a_and_aaaa_primed_minimised_rd0_upstream() {
    let mut world = World::standard();
    let cfg = config();
    let (setup, mut server) = recursive_server(cfg.clone(), false);
    let reply = world.ask(&mut server, "host.example.com", Rtype::A, false);
    assert_eq!(reply.rcode, NOERROR, "{reply:?}");
    assert!(reply.ra && !reply.aa);
    assert_eq!(addrs(&reply), [v4("192.0.2.200")]);
    let asked: Vec<(IpAddr, &str, Rtype)> = world
        .asked
        .iter()
        .map(|a| (a.to.ip(), a.qname.as_str(), a.qtype))
        .collect();
    // Priming, then QNAME minimisation: each zone is asked for one label more.
    assert_eq!(
        asked,
        [
            (ip(1), "", Rtype::NS),
            (ip(1), "com", Rtype::A),
            (ip(2), "example.com", Rtype::A),
            (asked[3].0, "host.example.com", Rtype::A),
        ]
    );
    assert!([ip(40), ip(41)].contains(&asked[3].0));
    assert!(world.asked.iter().all(|a| !a.rd && a.edns && !a.dnssec_ok));
    assert!(world.asked.iter().all(|a| a.to.port() == 53));

    let reply = world.ask(&mut server, "host.example.com", Rtype::AAAA, false);
    assert_eq!(reply.rcode, NOERROR);
    assert_eq!(reply.answers[0].rdata, "2001:db8::200");
    assert_eq!(world.asked.len(), 5, "the delegation is known: one query");
    let stats = setup.recursor_stats().unwrap();
    assert_eq!(stats.resolutions, 2);
    assert_eq!(stats.sends_sum, 5);
    assert!(
        stats.infra_entries >= 3 && stats.delegation_entries >= 3,
        "{stats:?}"
    );
}

#[test]
fn every_server_is_asked_on_the_configured_port() {
    let mut world = World::standard();
    let cfg = RecursorConfig {
        port: 5353,
        ..config()
    };
    let (_setup, mut server) = recursive_server(cfg, false);
    let reply = world.ask(&mut server, "www.glueless.com", Rtype::A, false);
    assert_eq!(addrs(&reply), [v4("192.0.2.204")]);
    assert!(world.asked.iter().all(|a| a.to.port() == 5353));
}

#[test]
fn referrals_three_deep_without_minimisation() {
    let mut world = World::standard();
    let cfg = RecursorConfig {
        qname_minimisation: false,
        ..config()
    };
    let (_setup, mut server) = recursive_server(cfg, false);
    let reply = world.ask(&mut server, "www.sub.example.com", Rtype::A, false);
    assert_eq!(addrs(&reply), [v4("192.0.2.201")]);
    let path: Vec<IpAddr> = world.asked.iter().map(|a| a.to.ip()).collect();
    assert_eq!(path.len(), 5, "{:?}", world.asked);
    assert_eq!(&path[..3], [ip(1), ip(1), ip(2)]);
    assert!([ip(40), ip(41)].contains(&path[3]));
    assert_eq!(path[4], ip(50));
    assert!(world.asked[1..]
        .iter()
        .all(|a| a.qname == "www.sub.example.com"));
}

#[test]
fn glueless_delegation_resolves_the_ns_name_first() {
    let mut world = World::standard();
    let (setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "www.glueless.com", Rtype::A, false);
    assert_eq!(addrs(&reply), [v4("192.0.2.204")], "{:?}", world.asked);
    assert!(world
        .asked
        .iter()
        .any(|a| a.qname == "ns.example.net" && a.qtype == Rtype::A && a.to.ip() == ip(60)));
    assert_eq!(world.asked.last().unwrap().to.ip(), ip(60));
    assert!(setup.recursor_stats().unwrap().max_depth >= 1);
}

#[test]
fn out_of_bailiwick_glue_is_ignored_and_not_cached() {
    let mut world = World::standard();
    // The example.com servers refer poison.example.com to a name in org, with "glue" for
    // it and an address for www.example.net: neither is theirs to give.
    example_com_answers(&mut world, "poison.example.com", |q| {
        let b = MessageBuilder::new_vec()
            .start_answer(q, Rcode::NOERROR)
            .ok()?;
        let mut auth = b.authority();
        let owner: Name<bytes::Bytes> = "poison.example.com".parse().unwrap();
        let ns: Name<bytes::Bytes> = "ns.example.org".parse().unwrap();
        auth.push((&owner, 3600, Ns::new(ns.clone()))).ok()?;
        let mut add = auth.additional();
        add.push((&ns, 3600, A::new(v4("192.0.2.66")))).ok()?;
        let www: Name<bytes::Bytes> = "www.example.net".parse().unwrap();
        add.push((&www, Ttl::from_secs(3600), A::new(v4("192.0.2.66"))))
            .ok()?;
        Some(add.finish())
    });
    let cfg = config();
    let (_setup, mut server) = recursive_server(cfg.clone(), true);
    let reply = world.ask(&mut server, "poison.example.com", Rtype::A, false);
    // ns.example.org does not exist: nowhere to go.
    assert_eq!(reply.rcode, SERVFAIL, "{:?}", world.asked);
    assert!(world.asked_of(ip(66)).is_empty(), "the glue was used");
    assert!(world
        .asked
        .iter()
        .any(|a| a.qname == "ns.example.org" && a.to.ip() == ip(3)));
    let reply = world.ask(&mut server, "www.example.net", Rtype::A, false);
    assert_eq!(addrs(&reply), [v4("192.0.2.202")], "the poison was cached");
    assert!(world.asked.len() <= 2 * packet_bound(&cfg));
}

#[test]
fn cname_across_zones_gives_the_whole_chain() {
    let mut world = World::standard();
    let (_setup, mut server) = recursive_server(config(), true);
    let reply = world.ask(&mut server, "www.example.com", Rtype::A, false);
    assert_eq!(reply.rcode, NOERROR);
    assert_eq!(
        kinds(&reply.answers),
        ["www.example.com CNAME", "www.example.net A"]
    );
    assert_eq!(addrs(&reply), [v4("192.0.2.202")]);
    assert!(world.asked.iter().any(|a| a.to.ip() == ip(60)));
}

#[test]
fn dname_is_followed() {
    let mut world = World::standard();
    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "x.dname.example.com", Rtype::A, false);
    assert_eq!(reply.rcode, NOERROR, "{:?}", world.asked);
    assert_eq!(
        kinds(&reply.answers),
        [
            "dname.example.com DNAME",
            "x.dname.example.com CNAME",
            "x.example.net A"
        ]
    );
    assert_eq!(addrs(&reply), [v4("192.0.2.203")]);
}

#[test]
fn nxdomain_and_nodata_at_every_level_with_the_soa() {
    let mut world = World::standard();
    let (_setup, mut server) = recursive_server(config(), false);
    for (qname, qtype, rcode, zone) in [
        ("nonexistent", Rtype::A, NXDOMAIN, ""),
        ("nonexistent.com", Rtype::A, NXDOMAIN, "com"),
        ("nonexistent.example.com", Rtype::A, NXDOMAIN, "example.com"),
        (
            "a.b.nonexistent.example.com",
            Rtype::A,
            NXDOMAIN,
            "example.com",
        ),
        (
            "nope.sub.example.com",
            Rtype::A,
            NXDOMAIN,
            "sub.example.com",
        ),
        ("com", Rtype::TXT, NOERROR, "com"),
        ("host.example.com", Rtype::TXT, NOERROR, "example.com"),
        ("ent.example.com", Rtype::A, NOERROR, "example.com"),
        (
            "www.sub.example.com",
            Rtype::AAAA,
            NOERROR,
            "sub.example.com",
        ),
    ] {
        let reply = world.ask(&mut server, qname, qtype, false);
        assert_eq!(reply.rcode, rcode, "{qname} {qtype}: {reply:?}");
        assert!(reply.answers.is_empty(), "{qname}");
        assert_eq!(kinds(&reply.authority), [format!("{zone} SOA")], "{qname}");
    }
}

#[test]
fn minimisation_falls_back_to_the_full_name_on_a_wrong_nxdomain() {
    let mut world = World::standard();
    // Servers that answer NXDOMAIN for the empty non-terminal ent.example.com, which has
    // a name below it: an old bug RFC 8020 servers do not have.
    example_com_answers(&mut world, "ent.example.com", |q| {
        Some(rcode_reply(q, Rcode::NXDOMAIN))
    });
    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "deep.ent.example.com", Rtype::A, false);
    assert_eq!(addrs(&reply), [v4("192.0.2.210")], "{:?}", world.asked);
    let names: Vec<&str> = world.asked.iter().map(|a| a.qname.as_str()).collect();
    assert_eq!(
        &names[names.len() - 2..],
        ["ent.example.com", "deep.ent.example.com"]
    );
}

#[test]
fn minimisation_falls_back_to_the_full_name_when_a_server_ignores_it() {
    let mut world = World::standard();
    example_com_answers(&mut world, "ent.example.com", |_| None);
    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "deep.ent.example.com", Rtype::A, false);
    assert_eq!(addrs(&reply), [v4("192.0.2.210")], "{:?}", world.asked);
    let names: Vec<&str> = world.asked.iter().map(|a| a.qname.as_str()).collect();
    assert_eq!(
        &names[names.len() - 2..],
        ["ent.example.com", "deep.ent.example.com"]
    );
    assert!(
        world.now_ms >= 376,
        "after the timeout of a server never heard from"
    );
}

#[test]
fn minimisation_stops_after_its_limit_and_asks_the_full_name() {
    let mut world = World::standard();
    let cfg = config();
    let (_setup, mut server) = recursive_server(cfg.clone(), false);
    let qname = "a.b.c.d.e.f.g.h.i.j.k.l.deep.example.com";
    let reply = world.ask(&mut server, qname, Rtype::A, false);
    assert_eq!(addrs(&reply), [v4("192.0.2.212")]);
    let minimised = world
        .asked
        .iter()
        .filter(|a| a.qname != qname && !a.qname.is_empty())
        .count();
    assert_eq!(minimised, cfg.max_minimise as usize, "{:?}", world.asked);
    assert_eq!(world.asked.last().unwrap().qname, qname);
}

#[test]
fn lame_upward_and_dead_servers_are_skipped_and_remembered() {
    let mut world = World::standard();
    let (setup, mut server) = recursive_server(config(), false);
    // Until each bad server has been tried once (the choice among equals is random).
    for zone in ["lame.com", "up.com"] {
        for _ in 0..30 {
            let reply = world.ask(&mut server, &format!("www.{zone}"), Rtype::A, false);
            assert_eq!(reply.rcode, NOERROR, "{:?}", world.asked);
            let start = world.now_ms;
            assert!(world.now_ms - start < 5000);
            let bad = if zone == "lame.com" {
                [ip(70), ip(72)]
            } else {
                [ip(110), ip(110)]
            };
            if bad.iter().all(|b| !world.asked_of(*b).is_empty()) {
                break;
            }
        }
    }
    for bad in [ip(70), ip(72), ip(110)] {
        assert!(!world.asked_of(bad).is_empty(), "{bad} never tried");
    }
    let before = world.asked.len();
    for name in [
        "ftp.lame.com",
        "mail.lame.com",
        "www.lame.com",
        "ftp.up.com",
    ] {
        let reply = world.ask(&mut server, name, Rtype::A, false);
        assert_eq!(reply.rcode, NOERROR);
    }
    let later: Vec<IpAddr> = world.asked[before..].iter().map(|a| a.to.ip()).collect();
    assert_eq!(
        later,
        [ip(71), ip(71), ip(71), ip(111)],
        "the good servers first"
    );
    let stats = setup.recursor_stats().unwrap();
    assert!(
        stats.lame_marked >= 2 && stats.lame_servers >= 2,
        "{stats:?}"
    );
}

#[test]
fn a_truncated_reply_is_asked_again_over_tcp() {
    let mut world = World::standard();
    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "www.tc.com", Rtype::A, false);
    assert_eq!(addrs(&reply), [v4("192.0.2.206")]);
    let to_tc: Vec<bool> = world.asked_of(ip(80)).iter().map(|a| a.tcp).collect();
    assert_eq!(to_tc, [false, true]);
}

#[test]
fn formerr_to_edns_drops_edns_and_is_remembered() {
    let mut world = World::standard();
    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "www.old.com", Rtype::A, false);
    assert_eq!(addrs(&reply), [v4("192.0.2.207")]);
    let edns: Vec<bool> = world.asked_of(ip(90)).iter().map(|a| a.edns).collect();
    assert_eq!(edns, [true, false]);
    let reply = world.ask(&mut server, "ftp.old.com", Rtype::A, false);
    assert_eq!(addrs(&reply), [v4("192.0.2.217")]);
    let edns: Vec<bool> = world.asked_of(ip(90)).iter().map(|a| a.edns).collect();
    assert_eq!(edns, [true, false, false], "asked without EDNS at once");
}

#[test]
fn a_delegation_loop_fails_with_bounded_work() {
    let mut world = World::standard();
    let cfg = config();
    let (setup, mut server) = recursive_server(cfg.clone(), false);
    let reply = world.ask(&mut server, "www.loop1.com", Rtype::A, false);
    assert_eq!(reply.rcode, SERVFAIL);
    assert!(
        world.asked.len() <= packet_bound(&cfg),
        "{}",
        world.asked.len()
    );
    assert!(world.now_ms < 5000);
    assert_eq!(setup.recursor_stats().unwrap().resolutions, 1);
}

#[test]
fn nxns_delegation_with_a_hundred_glueless_names_is_bounded() {
    let mut world = World::standard();
    let cfg = config();
    let (setup, mut server) = recursive_server(cfg.clone(), false);
    let reply = world.ask(&mut server, "www.nxns.com", Rtype::A, false);
    assert_eq!(reply.rcode, SERVFAIL);
    let at_victim = world.asked_of(ip(100)).len();
    // At most max_targets_per_delegation NS names looked up, A then AAAA each.
    assert!(
        at_victim <= 2 * cfg.max_targets_per_delegation as usize,
        "{at_victim} queries reached the victim"
    );
    assert!(world.asked.len() <= packet_bound(&cfg));
    let stats = setup.recursor_stats().unwrap();
    assert!(stats.sends_sum <= u64::from(cfg.max_sends));
}

#[test]
fn rd0_is_answered_from_the_cache_or_with_a_referral_never_resolved() {
    let mut world = World::standard();
    let (_setup, mut server) = recursive_server(config(), true);
    let before = world.asked.len();
    let query = client_query("host.example.com", Rtype::A, false, false);
    let reply = world.resolve(&mut server, &query).unwrap();
    // Nothing known yet: a referral to the root from the hints.
    assert_eq!(reply.rcode, NOERROR);
    assert!(!reply.aa && reply.answers.is_empty() && reply.ra);
    assert_eq!(kinds(&reply.authority), [" NS"]);
    assert_eq!(world.asked.len(), before, "RD=0 sent a query");

    world.ask(&mut server, "host.example.com", Rtype::A, false);
    let sent = world.asked.len();
    let reply = world.resolve(&mut server, &query).unwrap();
    assert_eq!(addrs(&reply), [v4("192.0.2.200")], "a cache hit");
    let other = client_query("other.example.com", Rtype::A, false, false);
    let reply = world.resolve(&mut server, &other).unwrap();
    assert_eq!(reply.rcode, NOERROR);
    assert_eq!(
        kinds(&reply.authority),
        ["example.com NS", "example.com NS"]
    );
    // The cache keeps replies minimal: the glue only with minimal responses off.
    assert!(reply.additional.is_empty());
    assert_eq!(world.asked.len(), sent, "RD=0 sent a query");

    let (_setup, mut bare) = recursive_server(config(), false);
    world.ask(&mut bare, "host.example.com", Rtype::A, false);
    let sent = world.asked.len();
    let reply = world.resolve(&mut bare, &other).unwrap();
    assert_eq!(
        kinds(&reply.additional),
        ["ns1.example.com A", "ns2.example.com A"]
    );
    assert_eq!(world.asked.len(), sent, "RD=0 sent a query");
}

#[test]
fn loopback_servers_are_never_asked_unless_allowed() {
    let mut world = World::standard();
    let cfg = RecursorConfig {
        query_localhost: false,
        ..config()
    };
    let (_setup, mut server) = recursive_server(cfg, false);
    let reply = world.ask(&mut server, "www.lo.com", Rtype::A, false);
    assert_eq!(reply.rcode, SERVFAIL);
    assert!(world.asked.iter().all(|a| !a.to.ip().is_loopback()));

    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "www.lo.com", Rtype::A, false);
    assert_eq!(addrs(&reply), [v4("192.0.2.209")]);
}

#[test]
fn do_is_passed_on_and_dnssec_records_kept_but_never_validated() {
    let mut world = World::standard();
    let (_setup, mut server) = recursive_server(config(), false);
    let reply = world.ask(&mut server, "signed.example.com", Rtype::A, true);
    assert_eq!(addrs(&reply), [v4("192.0.2.211")]);
    assert!(
        world.asked.iter().all(|a| a.dnssec_ok),
        "DO to every server"
    );
    // (The zone module serves no signatures with answers; asked for, it gives them.)
    let reply = world.ask(&mut server, "signed.example.com", Rtype::RRSIG, true);
    assert_eq!(kinds(&reply.answers), ["signed.example.com RRSIG"]);
    assert!(!reply.aa, "never authoritative");
    // A client without DO: no DO upstream either (the cache is off: asked again).
    let sent = world.asked.len();
    world.ask(&mut server, "host.example.com", Rtype::A, false);
    assert!(world.asked[sent..].iter().all(|a| !a.dnssec_ok));
}

#[test]
fn every_server_dead_is_servfail_within_the_budget() {
    let mut world = World::standard();
    world.set_behaviour(ip(40), Behaviour::Dead);
    world.set_behaviour(ip(41), Behaviour::Dead);
    let cfg = config();
    let (_setup, mut server) = recursive_server(cfg.clone(), false);
    let reply = world.ask(&mut server, "host.example.com", Rtype::A, false);
    assert_eq!(reply.rcode, SERVFAIL);
    assert!(world.now_ms <= 5000, "answered at {} ms", world.now_ms);
    assert!(world.asked.len() <= packet_bound(&cfg));
}

#[test]
fn recursor_metrics_are_exported_through_stats() {
    let mut world = World::standard();
    let (setup, mut server) = recursive_server(config(), false);
    world.ask(&mut server, "host.example.com", Rtype::A, false);
    let mut stats = Stats::default();
    stats.read(&server);
    stats.set_recursor(setup.recursor_stats().unwrap());
    let metrics = stats.metrics();
    let per_query = metrics
        .iter()
        .find(|m| m.name == "recursor_upstream_queries_per_query")
        .unwrap();
    assert_eq!(per_query.kind, Kind::Histogram);
    for name in [
        "recursor_infra_entries",
        "recursor_lame_servers",
        "recursor_depth",
    ] {
        assert!(metrics.iter().any(|m| m.name == name), "{name}");
    }
    assert!(Stats::default()
        .metrics()
        .iter()
        .all(|m| !m.name.starts_with("recursor_")));
}

#[test]
fn root_hints_parse_the_iana_format_and_name_bad_lines() {
    let hints = RootHints::parse(
        ";  This file holds the information on root name servers\n\
         .                        3600000      NS    A.ROOT-SERVERS.NET.\n\
         A.ROOT-SERVERS.NET.      3600000      A     198.41.0.4\n\
         A.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:ba3e::2:30\n\
         ; End of file\n",
    )
    .unwrap();
    assert_eq!(hints.addresses(53).len(), 2);
    assert_eq!(RootHints::iana().servers().len(), 13);
    let err = RootHints::parse(". NS a.root.\na.root. A nonsense\n").unwrap_err();
    assert_eq!(err.to_string(), "root hints line 2: bad address");
    assert_eq!(
        RecursorConfig::default().root_hints,
        RootHints::iana(),
        "the built-in hints by default"
    );
}

#[test]
fn a_flood_of_the_same_question_shares_the_exchanges() {
    let mut world = World::standard();
    let cfg = config();
    let (setup, mut server) = recursive_server(cfg.clone(), true);
    let query = client_query("www.sub.example.com", Rtype::A, true, false);
    let replies = world.resolve_all(&mut server, &vec![query; 50]);
    for reply in &replies {
        let reply = reply.as_ref().expect("every client answered");
        assert_eq!(addrs(reply), [v4("192.0.2.201")]);
    }
    // Identical exchanges in flight are shared: far fewer than 50 resolutions' worth.
    assert!(
        world.asked.len() <= 12,
        "{} queries sent",
        world.asked.len()
    );
    assert!(server.stats().coalesced > 0);
    assert_eq!(setup.recursor_stats().unwrap().resolutions, 50);
}

#[test]
fn a_cname_loop_across_zones_ends_in_servfail() {
    let mut world = World::standard();
    example_com_answers(&mut world, "loop.example.com", |q| {
        cname_reply(q, "loop.example.net")
    });
    world.set_behaviour(
        ip(60),
        Behaviour::Script(Box::new(|q: &Message<bytes::Bytes>| {
            cname_reply(q, "loop.example.com")
        })),
    );
    let cfg = config();
    let (_setup, mut server) = recursive_server(cfg.clone(), false);
    let reply = world.ask(&mut server, "loop.example.com", Rtype::A, false);
    assert_eq!(reply.rcode, SERVFAIL);
    assert!(world.asked.len() <= packet_bound(&cfg));
}

#[test]
fn the_root_is_primed_again_when_its_ns_set_expires() {
    let mut world = World::standard();
    let (_setup, mut server) = recursive_server(config(), false);
    world.ask(&mut server, "host.example.com", Rtype::A, false);
    let primings = |w: &World| {
        w.asked
            .iter()
            .filter(|a| a.qname.is_empty() && a.qtype == Rtype::NS)
            .count()
    };
    assert_eq!(primings(&world), 1);
    world.ask(&mut server, "www.example.net", Rtype::A, false);
    assert_eq!(primings(&world), 1, "primed once while the NS set lives");
    world.now_ms += 3_601_000; // the root NS TTL of the world is 3600 s
    world.ask(&mut server, "www.example.net", Rtype::A, false);
    assert_eq!(primings(&world), 2);
}

#[test]
fn a_server_flooding_referrals_and_ns_names_cannot_make_unbounded_work() {
    let mut world = World::standard();
    // The example.com servers refer every name one label deeper, to ever new zones with
    // 1000 glueless NS names each.
    for last in [40, 41] {
        world.set_behaviour(
            ip(last),
            Behaviour::Script(Box::new(move |q: &Message<bytes::Bytes>| {
                let qname: Name<bytes::Bytes> = q.first_question()?.qname().to_name();
                let b = MessageBuilder::new_vec()
                    .start_answer(q, Rcode::NOERROR)
                    .ok()?;
                let mut auth = b.authority();
                for i in 0..1000 {
                    let ns: Name<bytes::Bytes> = format!("ns{i}.victim.org").parse().unwrap();
                    auth.push((&qname, 60, Ns::new(ns))).ok()?;
                }
                Some(auth.finish())
            })),
        );
    }
    let cfg = config();
    let (setup, mut server) = recursive_server(cfg.clone(), false);
    let reply = world.ask(&mut server, "a.b.c.d.e.f.example.com", Rtype::A, false);
    assert_eq!(reply.rcode, SERVFAIL);
    assert!(
        world.asked.len() <= packet_bound(&cfg),
        "{}",
        world.asked.len()
    );
    assert!(world.asked_of(ip(100)).len() <= 2 * cfg.max_targets_per_delegation as usize);
    assert!(setup.recursor_stats().unwrap().delegation_entries < 100);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Servers losing, corrupting, cutting, re-coding and truncating replies at random:
    /// every client still gets one reply within its budget, and no query sends more than
    /// the packet bound.
    #[test]
    fn chaotic_servers_never_break_the_bounds(seed: u64) {
        let mut world = World::standard();
        world.chaos(seed);
        let cfg = config();
        let (_setup, mut server) = recursive_server(cfg.clone(), true);
        for name in ["www.sub.example.com", "www.example.com", "www.glueless.com", "x.dname.example.com", "www.lame.com", "nonexistent.example.com"] {
            let (sent, start) = (world.asked.len(), world.now_ms);
            let reply = world.resolve(&mut server, &client_query(name, Rtype::A, true, false));
            let reply = reply.expect("a reply");
            proptest::prop_assert!(reply.qr && reply.id == 4242);
            proptest::prop_assert!(world.now_ms - start <= 5001, "{} ms", world.now_ms - start);
            proptest::prop_assert!(world.asked.len() - sent <= packet_bound(&cfg));
        }
    }
}
