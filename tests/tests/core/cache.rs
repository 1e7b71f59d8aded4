//! The cache resolver under fake time: hits, TTL countdown, expiry, negative caching,
//! LRU bound, coalescing, serve-stale and poisoning, plus a property over random runs.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use names_core::cache::{Cache, CacheConfig, Store};
use names_core::domain::base::iana::{Class, Rcode, Rtype};
use names_core::domain::base::Record;
use names_core::domain::base::{
    Message, MessageBuilder, Name, Serial, StaticCompressor, ToName, Ttl,
};
use names_core::domain::rdata::{AllRecordData, Cname, Ns, Soa, A};
use names_core::{Chain, Config, Forwarder, Server};
use names_tests::build::*;
use names_tests::drive::*;
use names_tests::parse::{a_addrs, message, question_bytes};
use proptest::prelude::*;

fn upstream() -> SocketAddr {
    upstream_addr(1)
}

fn cached_server(config: CacheConfig) -> (Server, Arc<Store>) {
    let store = Arc::new(Store::new(config.size, 1));
    let chain = Chain::new()
        .with(Cache::new(store.clone(), config))
        .with(Forwarder::new(vec![upstream()]));
    (Server::new(Config::default(), chain, SEED), store)
}

/// What an upstream puts in a reply.
#[derive(Clone, Default)]
struct Reply {
    rcode: Option<Rcode>,
    answer: Vec<(String, u32, Ipv4Addr)>,
    cname: Option<(String, u32, String)>,
    soa: Option<(String, u32, u32)>,
    additional: Vec<(String, u32, Ipv4Addr)>,
}

fn build_reply(query: &[u8], r: &Reply) -> Vec<u8> {
    let q = Message::from_octets(query).unwrap();
    let question = q.sole_question().unwrap();
    let owner: Name<Vec<u8>> = question.qname().to_name();
    let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::new())).unwrap();
    let h = b.header_mut();
    h.set_id(q.header().id());
    h.set_qr(true);
    h.set_rd(true);
    h.set_ra(true);
    h.set_rcode(r.rcode.unwrap_or(Rcode::NOERROR));
    let mut qb = b.question();
    qb.push((&owner, question.qtype(), question.qclass()))
        .unwrap();
    let mut ans = qb.answer();
    if let Some((o, ttl, target)) = &r.cname {
        let t: Name<Vec<u8>> = target.parse().unwrap();
        ans.push((
            &o.parse::<Name<Vec<u8>>>().unwrap(),
            Class::IN,
            *ttl,
            Cname::new(t),
        ))
        .unwrap();
    }
    for (o, ttl, a) in &r.answer {
        ans.push((
            &o.parse::<Name<Vec<u8>>>().unwrap(),
            Class::IN,
            *ttl,
            A::new(*a),
        ))
        .unwrap();
    }
    let mut auth = ans.authority();
    if let Some((zone, ttl, minimum)) = &r.soa {
        let z: Name<Vec<u8>> = zone.parse().unwrap();
        let t = Ttl::from_secs;
        let soa = Soa::new(
            z.clone(),
            z.clone(),
            Serial(1),
            t(3600),
            t(600),
            t(86400),
            t(*minimum),
        );
        auth.push((&z, Class::IN, *ttl, soa)).unwrap();
    }
    let mut add = auth.additional();
    for (o, ttl, a) in &r.additional {
        add.push((
            &o.parse::<Name<Vec<u8>>>().unwrap(),
            Class::IN,
            *ttl,
            A::new(*a),
        ))
        .unwrap();
    }
    if q.opt().is_some() {
        add.opt(|o| {
            o.set_udp_payload_size(1232);
            Ok(())
        })
        .unwrap();
    }
    add.finish().into_target()
}

/// Sends a query at `ms`; if it goes upstream, answers with `reply` (when given).
/// Returns the client's reply (if any yet) and how many upstream sends it caused.
fn ask(
    server: &mut Server,
    ms: u64,
    id: u16,
    qname: &str,
    qtype: Rtype,
    reply: Option<&Reply>,
) -> (Option<Vec<u8>>, usize) {
    server.handle_client(
        at(ms),
        udp(5000 + id),
        &query(qname, qtype, id, true, Some(1232)),
    );
    let actions = drain(server);
    let sent = sends(&actions);
    if let (Some(s), Some(r)) = (sent.first(), reply) {
        server.handle_upstream(at(ms), s.token, s.to, &build_reply(&s.message, r));
        let more = drain(server);
        return (replies(&more).pop().map(|(_, b)| b), sent.len());
    }
    (replies(&actions).pop().map(|(_, b)| b), sent.len())
}

fn ttls(msg: &Message<Vec<u8>>) -> Vec<u32> {
    msg.answer()
        .unwrap()
        .chain(msg.authority().unwrap())
        .map(|r| r.unwrap().ttl().as_secs())
        .collect()
}

fn a_reply(name: &str, ttl: u32) -> Reply {
    Reply {
        answer: vec![(name.into(), ttl, Ipv4Addr::new(192, 0, 2, 1))],
        ..Reply::default()
    }
}

#[test]
fn second_query_is_a_hit_with_ttl_counted_down() {
    let (mut server, store) = cached_server(CacheConfig::default());
    let (first, sent) = ask(
        &mut server,
        0,
        1,
        "www.example.com",
        Rtype::A,
        Some(&a_reply("www.example.com", 300)),
    );
    assert_eq!(sent, 1);
    assert_eq!(ttls(&message(&first.unwrap())), vec![300]);
    let (second, sent) = ask(&mut server, 10_500, 2, "WWW.Example.com", Rtype::A, None);
    assert_eq!(sent, 0, "a hit goes nowhere upstream");
    let bytes = second.expect("answered from the cache at once");
    let msg = message(&bytes);
    assert_eq!(msg.header().id(), 2);
    assert_eq!(
        ttls(&msg),
        vec![290],
        "10.5 s in the cache -> 10 whole seconds off"
    );
    assert_eq!(a_addrs(&msg), vec![Ipv4Addr::new(192, 0, 2, 1)]);
    assert_eq!(
        &question_bytes(&bytes)[..4],
        b"\x03WWW",
        "the question is echoed as asked"
    );
    assert!(!msg.header().aa() && msg.header().ra() && msg.opt().is_some());
    assert_eq!(store.stats().hits, 1);
}

#[test]
fn expires_at_exactly_its_ttl() {
    let (mut server, _) = cached_server(CacheConfig::default());
    ask(
        &mut server,
        0,
        1,
        "a.example",
        Rtype::A,
        Some(&a_reply("a.example", 5)),
    );
    let (hit, sent) = ask(&mut server, 4_999, 2, "a.example", Rtype::A, None);
    assert_eq!(sent, 0);
    assert_eq!(ttls(&message(&hit.unwrap())), vec![1]);
    let (_, sent) = ask(&mut server, 5_000, 3, "a.example", Rtype::A, None);
    assert_eq!(sent, 1, "at exactly the TTL the entry is gone");
}

#[test]
fn ttl_zero_is_not_cached() {
    let (mut server, store) = cached_server(CacheConfig::default());
    ask(
        &mut server,
        0,
        1,
        "z.example",
        Rtype::A,
        Some(&a_reply("z.example", 0)),
    );
    assert_eq!(store.len(), 0);
}

#[test]
fn negative_answers_are_cached_for_the_soa_minimum_with_the_soa() {
    let (mut server, _) = cached_server(CacheConfig::default());
    let nx = Reply {
        rcode: Some(Rcode::NXDOMAIN),
        soa: Some(("example.".into(), 3600, 60)),
        ..Reply::default()
    };
    ask(&mut server, 0, 1, "nope.example", Rtype::A, Some(&nx));
    let (hit, sent) = ask(&mut server, 20_000, 2, "nope.example", Rtype::A, None);
    assert_eq!(sent, 0);
    let msg = message(&hit.unwrap());
    assert_eq!(msg.header().rcode(), Rcode::NXDOMAIN);
    assert_eq!(msg.header_counts().ancount(), 0);
    let soa: Vec<_> = msg.authority().unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(soa.len(), 1);
    assert_eq!(soa[0].rtype(), Rtype::SOA);
    assert_eq!(
        soa[0].ttl().as_secs(),
        40,
        "min(3600, 60) counted down by 20 s"
    );
    let (_, sent) = ask(&mut server, 60_000, 3, "nope.example", Rtype::A, None);
    assert_eq!(sent, 1, "expired after min(SOA TTL, MINIMUM)");

    // NODATA: NOERROR, no answer, SOA; SOA TTL smaller than MINIMUM wins.
    let nodata = Reply {
        soa: Some(("example.".into(), 30, 600)),
        ..Reply::default()
    };
    ask(
        &mut server,
        100_000,
        4,
        "host.example",
        Rtype::AAAA,
        Some(&nodata),
    );
    let (hit, sent) = ask(&mut server, 129_000, 5, "host.example", Rtype::AAAA, None);
    assert_eq!(sent, 0);
    assert_eq!(ttls(&message(&hit.unwrap())), vec![1]);
    let (_, sent) = ask(&mut server, 130_000, 6, "host.example", Rtype::AAAA, None);
    assert_eq!(sent, 1);
}

#[test]
fn negative_answer_without_soa_and_servfail_are_not_cached() {
    let (mut server, store) = cached_server(CacheConfig::default());
    let nx = Reply {
        rcode: Some(Rcode::NXDOMAIN),
        ..Reply::default()
    };
    ask(&mut server, 0, 1, "nope.example", Rtype::A, Some(&nx));
    assert_eq!(store.len(), 0);
    // A SERVFAIL from the only upstream: the forwarder gives SERVFAIL, nothing cached.
    let sf = Reply {
        rcode: Some(Rcode::SERVFAIL),
        ..Reply::default()
    };
    let (reply, _) = ask(&mut server, 0, 2, "fail.example", Rtype::A, Some(&sf));
    assert_eq!(message(&reply.unwrap()).header().rcode(), Rcode::SERVFAIL);
    assert_eq!(store.len(), 0);
}

#[test]
fn lru_evicts_at_the_bound() {
    let (mut server, store) = cached_server(CacheConfig {
        size: 3,
        ..CacheConfig::default()
    });
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        let name = format!("{n}.example");
        ask(
            &mut server,
            0,
            i as u16 + 1,
            &name,
            Rtype::A,
            Some(&a_reply(&name, 300)),
        );
    }
    assert_eq!(ask(&mut server, 1, 10, "a.example", Rtype::A, None).1, 0); // a is now fresh
    ask(
        &mut server,
        2,
        11,
        "d.example",
        Rtype::A,
        Some(&a_reply("d.example", 300)),
    );
    assert_eq!(store.len(), 3);
    assert_eq!(
        ask(&mut server, 3, 12, "b.example", Rtype::A, None).1,
        1,
        "b was least recently used"
    );
    assert_eq!(store.stats().evictions, 1, "d evicted b");
}

#[test]
fn identical_questions_in_flight_share_one_upstream_query() {
    let (mut server, _) = cached_server(CacheConfig::default());
    let mut sent = Vec::new();
    // Five clients, with different IDs, cases and EDNS sizes.
    let names = [
        "co.example",
        "CO.example",
        "co.EXAMPLE",
        "Co.Example",
        "co.example",
    ];
    for (i, n) in names.iter().enumerate() {
        let edns = if i % 2 == 0 { Some(1232) } else { None };
        server.handle_client(
            at(i as u64),
            udp(6000 + i as u16),
            &query(n, Rtype::A, 100 + i as u16, true, edns),
        );
        sent.extend(sends(&drain(&mut server)));
    }
    assert_eq!(sent.len(), 1, "one upstream exchange for five clients");
    assert_eq!(server.pending_queries(), 5);
    server.handle_upstream(
        at(10),
        sent[0].token,
        sent[0].to,
        &build_reply(&sent[0].message, &a_reply("co.example", 60)),
    );
    let out = replies(&drain(&mut server));
    assert_eq!(out.len(), 5);
    for (i, (to, bytes)) in out.iter().enumerate() {
        let msg = message(bytes);
        assert_eq!(*to, udp(6000 + i as u16));
        assert_eq!(msg.header().id(), 100 + i as u16);
        assert_eq!(
            &question_bytes(bytes)[1..3],
            &names[i].as_bytes()[..2],
            "own question case"
        );
        assert_eq!(msg.opt().is_some(), i % 2 == 0, "own EDNS");
    }
    assert_eq!(server.pending_queries(), 0);
}

/// Makes every upstream try fail (ICMP-style errors) so the forwarder answers SERVFAIL.
fn ask_failing(server: &mut Server, ms: u64, id: u16, qname: &str) -> Vec<u8> {
    server.handle_client(at(ms), udp(7000), &query(qname, Rtype::A, id, true, None));
    let mut reply = None;
    for _ in 0..10 {
        let actions = drain(server);
        if let Some((_, b)) = replies(&actions).pop() {
            reply = Some(b);
            break;
        }
        for s in sends(&actions) {
            server.handle_upstream_error(at(ms), s.token, names_core::UpstreamError::Io);
        }
    }
    reply.expect("a reply once every upstream failed")
}

#[test]
fn serve_stale_when_upstreams_fail() {
    let config = CacheConfig {
        serve_stale: Some(3600),
        ..CacheConfig::default()
    };
    let (mut server, store) = cached_server(config);
    ask(
        &mut server,
        0,
        1,
        "s.example",
        Rtype::A,
        Some(&a_reply("s.example", 10)),
    );
    let msg = message(&ask_failing(&mut server, 20_000, 2, "s.example"));
    assert_eq!(msg.header().rcode(), Rcode::NOERROR, "served stale");
    assert_eq!(ttls(&msg), vec![30]);
    assert_eq!(store.stats().stale_served, 1);
    // Past the window: SERVFAIL.
    let msg = message(&ask_failing(
        &mut server,
        10_000 + 3_600_000,
        3,
        "s.example",
    ));
    assert_eq!(msg.header().rcode(), Rcode::SERVFAIL);
}

#[test]
fn without_serve_stale_failures_are_servfail() {
    let (mut server, _) = cached_server(CacheConfig::default());
    ask(
        &mut server,
        0,
        1,
        "s.example",
        Rtype::A,
        Some(&a_reply("s.example", 10)),
    );
    let msg = message(&ask_failing(&mut server, 20_000, 2, "s.example"));
    assert_eq!(msg.header().rcode(), Rcode::SERVFAIL);
}

#[test]
fn unrelated_records_are_not_served_later() {
    let (mut server, _) = cached_server(CacheConfig::default());
    let poisoned = Reply {
        answer: vec![
            ("evil.example".into(), 300, Ipv4Addr::new(192, 0, 2, 66)),
            ("www.bank.example".into(), 300, Ipv4Addr::new(6, 6, 6, 6)),
        ],
        additional: vec![("login.bank.example".into(), 300, Ipv4Addr::new(6, 6, 6, 7))],
        ..Reply::default()
    };
    ask(&mut server, 0, 1, "evil.example", Rtype::A, Some(&poisoned));
    for (i, name) in ["www.bank.example", "login.bank.example"]
        .iter()
        .enumerate()
    {
        let (_, sent) = ask(&mut server, 1_000, 10 + i as u16, name, Rtype::A, None);
        assert_eq!(
            sent, 1,
            "{name} is asked upstream, never taken from another answer"
        );
    }
    let (hit, sent) = ask(&mut server, 1_000, 20, "evil.example", Rtype::A, None);
    assert_eq!(sent, 0);
    let msg = message(&hit.unwrap());
    assert_eq!(
        a_addrs(&msg),
        vec![Ipv4Addr::new(192, 0, 2, 66)],
        "only the question's own records"
    );
    assert_eq!(
        msg.header_counts().arcount(),
        1,
        "no additional data, just OPT"
    );
}

#[test]
fn cname_chains_are_kept_whole() {
    let (mut server, _) = cached_server(CacheConfig::default());
    let reply = Reply {
        cname: Some(("www.example".into(), 100, "web.example".into())),
        answer: vec![("web.example".into(), 50, Ipv4Addr::new(192, 0, 2, 80))],
        ..Reply::default()
    };
    ask(&mut server, 0, 1, "www.example", Rtype::A, Some(&reply));
    let (hit, sent) = ask(&mut server, 10_000, 2, "www.example", Rtype::A, None);
    assert_eq!(sent, 0);
    let msg = message(&hit.unwrap());
    assert_eq!(ttls(&msg), vec![90, 40]);
    assert_eq!(a_addrs(&msg), vec![Ipv4Addr::new(192, 0, 2, 80)]);
    let (_, sent) = ask(&mut server, 50_000, 3, "www.example", Rtype::A, None);
    assert_eq!(sent, 1, "the entry lives as long as its shortest TTL");
}

#[test]
fn ttl_clamps_apply() {
    let (mut server, _) = cached_server(CacheConfig {
        min_ttl: 60,
        max_ttl: 120,
        ..CacheConfig::default()
    });
    ask(
        &mut server,
        0,
        1,
        "big.example",
        Rtype::A,
        Some(&a_reply("big.example", 100_000)),
    );
    let (hit, _) = ask(&mut server, 0, 2, "big.example", Rtype::A, None);
    assert_eq!(ttls(&message(&hit.unwrap())), vec![120]);
    ask(
        &mut server,
        0,
        3,
        "small.example",
        Rtype::A,
        Some(&a_reply("small.example", 1)),
    );
    let (hit, sent) = ask(&mut server, 30_000, 4, "small.example", Rtype::A, None);
    assert_eq!(sent, 0);
    assert_eq!(ttls(&message(&hit.unwrap())), vec![30]);
}

#[test]
fn shared_store_hits_across_servers() {
    let store = Arc::new(Store::new(100, 2));
    let make = || {
        let chain = Chain::new()
            .with(Cache::new(store.clone(), CacheConfig::default()))
            .with(Forwarder::new(vec![upstream()]));
        Server::new(Config::default(), chain, SEED)
    };
    let (mut one, mut two) = (make(), make());
    ask(
        &mut one,
        0,
        1,
        "shared.example",
        Rtype::A,
        Some(&a_reply("shared.example", 300)),
    );
    assert_eq!(
        ask(&mut two, 1_000, 2, "shared.example", Rtype::A, None).1,
        0,
        "a hit on the other worker"
    );
}

#[test]
fn truncated_hit_sets_tc() {
    let (mut server, _) = cached_server(CacheConfig::default());
    let many = Reply {
        answer: (0..60)
            .map(|i| ("many.example".to_string(), 300, Ipv4Addr::new(10, 0, 0, i)))
            .collect(),
        ..Reply::default()
    };
    ask(&mut server, 0, 1, "many.example", Rtype::A, Some(&many));
    server.handle_client(
        at(1),
        udp(9000),
        &query("many.example", Rtype::A, 2, true, None),
    );
    let out = replies(&drain(&mut server));
    let msg = message(&out[0].1);
    assert!(out[0].1.len() <= 512);
    assert!(msg.header().tc());
    assert_eq!(msg.header_counts().ancount(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the queries and upstream replies, a served TTL never exceeds the received
    /// TTL minus the whole seconds elapsed, and the store never exceeds its bound.
    #[test]
    fn ttls_never_exceed_received_minus_elapsed(
        size in 1usize..6,
        steps in prop::collection::vec((0u8..8, 0u32..400, 0u64..5_000, any::<bool>()), 1..60),
    ) {
        let (mut server, store) = cached_server(CacheConfig { size, ..CacheConfig::default() });
        let mut now = 0u64;
        // name -> (time received in ms, TTL received)
        let mut received: std::collections::BTreeMap<u8, (u64, u32)> = Default::default();
        for (i, (n, ttl, advance, answer)) in steps.into_iter().enumerate() {
            now += advance;
            let name = format!("n{n}.example");
            let reply = a_reply(&name, ttl);
            let (out, sent) = ask(&mut server, now, i as u16, &name, Rtype::A, answer.then_some(&reply));
            if sent == 0 {
                let bytes = out.expect("a hit answers at once");
                let (at_ms, ttl0) = *received.get(&n).expect("a hit only for a name received before");
                let elapsed = (now - at_ms) / 1000;
                for ttl in ttls(&message(&bytes)) {
                    prop_assert!(u64::from(ttl) + elapsed <= u64::from(ttl0), "ttl {ttl} after {elapsed}s of {ttl0}");
                }
            } else if answer {
                received.insert(n, (now, ttl));
            } else {
                // Leave the exchange unanswered: let the budget run out.
                now += 6_000;
                server.handle_timeout(at(now));
                drain(&mut server);
            }
            prop_assert!(store.len() <= size);
        }
    }
}

// ---- The RRset cache: trust ranks, rettl, updates, minimal responses, prefetch ----

/// A record of any data, for replies built by hand.
fn rr(owner: &str, ttl: u32, data: impl Into<AllRecordData<Bytes, Name<Bytes>>>) -> names_core::Rr {
    Record::new(name(owner), Class::IN, Ttl::from_secs(ttl), data.into())
}

fn a_rr(owner: &str, ttl: u32, last: u8) -> names_core::Rr {
    rr(owner, ttl, A::new(Ipv4Addr::new(192, 0, 2, last)))
}

/// A reply to `query` with these sections and AA bit.
fn raw_reply(
    query: &[u8],
    aa: bool,
    answer: &[names_core::Rr],
    authority: &[names_core::Rr],
    additional: &[names_core::Rr],
) -> Vec<u8> {
    let q = Message::from_octets(query).unwrap();
    let question = q.sole_question().unwrap();
    let mut b = MessageBuilder::new_vec();
    let h = b.header_mut();
    h.set_id(q.header().id());
    h.set_qr(true);
    h.set_rd(true);
    h.set_ra(true);
    h.set_aa(aa);
    let mut qb = b.question();
    qb.push(question).unwrap();
    let mut ans = qb.answer();
    for r in answer {
        ans.push(r).unwrap();
    }
    let mut auth = ans.authority();
    for r in authority {
        auth.push(r).unwrap();
    }
    let mut add = auth.additional();
    for r in additional {
        add.push(r).unwrap();
    }
    add.finish()
}

type Sections<'a> = (
    bool,
    &'a [names_core::Rr],
    &'a [names_core::Rr],
    &'a [names_core::Rr],
);

/// Asks at `ms` (with DO when `dnssec`: another cache entry for the same RRsets); an
/// upstream query is answered with `reply`. Returns the client's reply and the sends.
fn ask_raw(
    server: &mut Server,
    ms: u64,
    id: u16,
    qname: &str,
    qtype: Rtype,
    dnssec: bool,
    reply: Option<Sections<'_>>,
) -> (Option<Message<Vec<u8>>>, usize) {
    let flags = Flags {
        rd: true,
        cd: false,
        opcode: names_core::domain::base::iana::Opcode::QUERY,
    };
    let q = query_wire(
        &name(qname),
        qtype,
        Class::IN,
        id,
        flags,
        Some((1232, 0, dnssec)),
    );
    server.handle_client(at(ms), udp(5000 + id), &q);
    let actions = drain(server);
    let sent = sends(&actions);
    if let (Some(s), Some((aa, an, ns, ad))) = (sent.first(), reply) {
        let up = raw_reply(&s.message, aa, an, ns, ad);
        server.handle_upstream(at(ms), s.token, s.to, &up);
        let more = drain(server);
        return (replies(&more).pop().map(|(_, b)| message(&b)), sent.len());
    }
    (
        replies(&actions).pop().map(|(_, b)| message(&b)),
        sent.len(),
    )
}

/// The answer section's A addresses (last octet) and TTLs.
fn a_of(msg: &Message<Vec<u8>>) -> Vec<(u8, u32)> {
    msg.answer()
        .unwrap()
        .limit_to::<A>()
        .map(|r| {
            let r = r.unwrap();
            (r.data().addr().octets()[3], r.ttl().as_secs())
        })
        .collect()
}

/// (answer, authority, additional without the OPT) counts.
fn counts(msg: &Message<Vec<u8>>) -> (u16, u16, u16) {
    let c = msg.header_counts();
    let opt = u16::from(msg.opt().is_some());
    (c.ancount(), c.nscount(), c.arcount() - opt)
}

#[test]
fn a_lower_rank_never_replaces_a_higher_one() {
    let (mut server, _) = cached_server(CacheConfig::default());
    // The answer of an authoritative reply.
    let aa_answer = [a_rr("www.example.com", 300, 1)];
    let (first, _) = ask_raw(
        &mut server,
        0,
        1,
        "www.example.com",
        Rtype::A,
        false,
        Some((true, &aa_answer, &[], &[])),
    );
    assert_eq!(a_of(&first.unwrap()), vec![(1, 300)]);
    assert!(!message_aa_leaked(&mut server));
    // The same RRset, other data, from a non-authoritative reply (another cache entry: DO).
    let other = [a_rr("www.example.com", 300, 66)];
    let (reply, sent) = ask_raw(
        &mut server,
        1_000,
        2,
        "www.example.com",
        Rtype::A,
        true,
        Some((false, &other, &[], &[])),
    );
    assert_eq!(sent, 1);
    assert_eq!(
        a_of(&reply.unwrap()),
        vec![(1, 299)],
        "the first reply is built from the cache's better RRset"
    );
    // Glue contradicting the answer: an NS query whose additional names www.example.com.
    let ns = [rr("example.com", 300, Ns::new(name("www.example.com")))];
    let glue = [a_rr("www.example.com", 300, 99)];
    let full = CacheConfig {
        minimal_responses: false,
        ..CacheConfig::default()
    };
    let (mut server2, _) = cached_server(full);
    ask_raw(
        &mut server2,
        0,
        1,
        "www.example.com",
        Rtype::A,
        false,
        Some((false, &aa_answer, &[], &[])),
    );
    let (reply, _) = ask_raw(
        &mut server2,
        0,
        2,
        "example.com",
        Rtype::NS,
        false,
        Some((false, &ns, &[], &glue)),
    );
    let reply = reply.unwrap();
    let glue_served: Vec<u8> = reply
        .additional()
        .unwrap()
        .limit_to::<A>()
        .map(|r| r.unwrap().data().addr().octets()[3])
        .collect();
    assert_eq!(
        glue_served,
        vec![1],
        "the answer-ranked address, not the glue"
    );
    let (hit, sent) = ask_raw(
        &mut server2,
        2_000,
        3,
        "www.example.com",
        Rtype::A,
        false,
        None,
    );
    assert_eq!(sent, 0);
    assert_eq!(a_of(&hit.unwrap()), vec![(1, 298)]);
}

/// Whether any reply so far carried AA (the upstream's AA never reaches a client).
fn message_aa_leaked(server: &mut Server) -> bool {
    let (hit, _) = ask_raw(server, 0, 99, "www.example.com", Rtype::A, false, None);
    hit.unwrap().header().aa()
}

#[test]
fn a_higher_rank_replaces_glue_and_messages_are_rebuilt() {
    let full = CacheConfig {
        minimal_responses: false,
        ..CacheConfig::default()
    };
    let (mut server, _) = cached_server(full);
    let ns = [rr("example.com", 300, Ns::new(name("ns.example.com")))];
    let glue = [a_rr("ns.example.com", 300, 53)];
    let (first, _) = ask_raw(
        &mut server,
        0,
        1,
        "example.com",
        Rtype::NS,
        false,
        Some((false, &ns, &[], &glue)),
    );
    assert_eq!(counts(&first.unwrap()), (1, 0, 1));
    // The address as an answer (higher rank) with other data replaces the glue...
    let answer = [a_rr("ns.example.com", 600, 54)];
    ask_raw(
        &mut server,
        10_000,
        2,
        "ns.example.com",
        Rtype::A,
        false,
        Some((false, &answer, &[], &[])),
    );
    // ... and the cached NS message is rebuilt from it on its next hit.
    let (hit, sent) = ask_raw(
        &mut server,
        20_000,
        3,
        "example.com",
        Rtype::NS,
        false,
        None,
    );
    assert_eq!(sent, 0);
    let hit = hit.unwrap();
    let glue: Vec<(u8, u32)> = hit
        .additional()
        .unwrap()
        .limit_to::<A>()
        .map(|r| {
            let r = r.unwrap();
            (r.data().addr().octets()[3], r.ttl().as_secs())
        })
        .collect();
    assert_eq!(glue, vec![(54, 590)]);
}

#[test]
fn an_equal_copy_does_not_reset_the_ttl() {
    let (mut server, _) = cached_server(CacheConfig::default());
    let answer = [a_rr("www.example.com", 300, 1)];
    ask_raw(
        &mut server,
        0,
        1,
        "www.example.com",
        Rtype::A,
        false,
        Some((false, &answer, &[], &[])),
    );
    // 100 s later the same records come again (through the DO entry): TTL not reset (rrset_rettl).
    let (reply, sent) = ask_raw(
        &mut server,
        100_000,
        2,
        "www.example.com",
        Rtype::A,
        true,
        Some((false, &answer, &[], &[])),
    );
    assert_eq!(sent, 1);
    assert_eq!(a_of(&reply.unwrap()), vec![(1, 200)]);
    let (hit, sent) = ask_raw(
        &mut server,
        100_000,
        3,
        "www.example.com",
        Rtype::A,
        false,
        None,
    );
    assert_eq!(sent, 0);
    assert_eq!(a_of(&hit.unwrap()), vec![(1, 200)]);
    // And it expires when the first copy does: TTLs never grow within a cached lifetime.
    let (_, sent) = ask_raw(
        &mut server,
        300_000,
        4,
        "www.example.com",
        Rtype::A,
        true,
        None,
    );
    assert_eq!(sent, 1);
}

#[test]
fn changed_records_of_equal_rank_replace_the_rrset() {
    let (mut server, _) = cached_server(CacheConfig::default());
    let old = [a_rr("www.example.com", 300, 1)];
    ask_raw(
        &mut server,
        0,
        1,
        "www.example.com",
        Rtype::A,
        false,
        Some((false, &old, &[], &[])),
    );
    let new = [
        a_rr("www.example.com", 300, 2),
        a_rr("www.example.com", 300, 3),
    ];
    let (reply, _) = ask_raw(
        &mut server,
        100_000,
        2,
        "www.example.com",
        Rtype::A,
        true,
        Some((false, &new, &[], &[])),
    );
    assert_eq!(
        a_of(&reply.unwrap()),
        vec![(2, 300), (3, 300)],
        "rrset_updated"
    );
    // The other entry using the RRset serves the new records on its next hit.
    let (hit, sent) = ask_raw(
        &mut server,
        101_000,
        3,
        "www.example.com",
        Rtype::A,
        false,
        None,
    );
    assert_eq!(sent, 0);
    assert_eq!(a_of(&hit.unwrap()), vec![(2, 299), (3, 299)]);
}

#[test]
fn minimal_responses_on_and_off() {
    let answer = [a_rr("www.example.com", 300, 1)];
    let ns = [rr("example.com", 300, Ns::new(name("ns.example.com")))];
    let glue = [a_rr("ns.example.com", 300, 53)];
    for (minimal, expected) in [(true, (1, 0, 0)), (false, (1, 1, 1))] {
        let (mut server, _) = cached_server(CacheConfig {
            minimal_responses: minimal,
            ..CacheConfig::default()
        });
        let (first, _) = ask_raw(
            &mut server,
            0,
            1,
            "www.example.com",
            Rtype::A,
            false,
            Some((false, &answer, &ns, &glue)),
        );
        assert_eq!(
            counts(&first.unwrap()),
            expected,
            "first reply, minimal {minimal}"
        );
        let (hit, sent) = ask_raw(
            &mut server,
            1_000,
            2,
            "www.example.com",
            Rtype::A,
            false,
            None,
        );
        assert_eq!(sent, 0);
        assert_eq!(
            counts(&hit.unwrap()),
            expected,
            "cached reply, minimal {minimal}"
        );
    }
    // A negative answer carries its SOA either way.
    let (mut server, _) = cached_server(CacheConfig::default());
    let nx = Reply {
        rcode: Some(Rcode::NXDOMAIN),
        soa: Some(("example.com".into(), 300, 60)),
        ..Reply::default()
    };
    let (reply, _) = ask(&mut server, 0, 1, "nope.example.com", Rtype::A, Some(&nx));
    assert_eq!(counts(&message(&reply.unwrap())), (0, 1, 0));
}

#[test]
fn prefetch_refreshes_in_the_background_once() {
    let config = CacheConfig {
        prefetch: true,
        ..CacheConfig::default()
    };
    let (mut server, store) = cached_server(config);
    let answer = [a_rr("www.example.com", 100, 1)];
    ask_raw(
        &mut server,
        0,
        1,
        "www.example.com",
        Rtype::A,
        false,
        Some((false, &answer, &[], &[])),
    );
    let (_, sent) = ask_raw(
        &mut server,
        50_000,
        2,
        "www.example.com",
        Rtype::A,
        false,
        None,
    );
    assert_eq!(sent, 0, "not yet in the last tenth");
    // In the last tenth of the TTL: the client is answered at once, and a refresh goes out.
    server.handle_client(
        at(91_000),
        udp(7000),
        &query("www.example.com", Rtype::A, 3, true, Some(1232)),
    );
    let actions = drain(&mut server);
    let out = replies(&actions);
    let sent = sends(&actions);
    assert_eq!((out.len(), sent.len()), (1, 1));
    assert_eq!(a_of(&message(&out[0].1)), vec![(1, 9)]);
    // Asked again before the refresh is answered: no second refresh.
    let (hit, again) = ask_raw(
        &mut server,
        92_000,
        4,
        "www.example.com",
        Rtype::A,
        false,
        None,
    );
    assert_eq!((a_of(&hit.unwrap()), again), (vec![(1, 8)], 0));
    // The refresh's answer goes to the cache only (no client reply), fresh TTL, new data.
    let fresh = [a_rr("www.example.com", 100, 7)];
    let up = raw_reply(&sent[0].message, false, &fresh, &[], &[]);
    server.handle_upstream(at(93_000), sent[0].token, sent[0].to, &up);
    assert!(
        replies(&drain(&mut server)).is_empty(),
        "no client waits for a refresh"
    );
    let (hit, sent) = ask_raw(
        &mut server,
        95_000,
        5,
        "www.example.com",
        Rtype::A,
        false,
        None,
    );
    assert_eq!(sent, 0);
    assert_eq!(a_of(&hit.unwrap()), vec![(7, 98)]);
    assert_eq!(store.stats().prefetches, 1);
    // An unchanged refresh also renews the TTL (it was within its last tenth).
    server.handle_client(
        at(185_000),
        udp(7001),
        &query("www.example.com", Rtype::A, 6, true, Some(1232)),
    );
    let sent = sends(&drain(&mut server));
    assert_eq!(sent.len(), 1);
    let up = raw_reply(&sent[0].message, false, &fresh, &[], &[]);
    server.handle_upstream(at(185_000), sent[0].token, sent[0].to, &up);
    drain(&mut server);
    let (hit, sent) = ask_raw(
        &mut server,
        190_000,
        7,
        "www.example.com",
        Rtype::A,
        false,
        None,
    );
    assert_eq!((a_of(&hit.unwrap()), sent), (vec![(7, 95)], 0));
}

#[test]
fn rrsets_are_shared_and_freed_with_their_last_message() {
    let (mut server, store) = cached_server(CacheConfig {
        size: 2,
        ..CacheConfig::default()
    });
    let www = [a_rr("www.example.com", 300, 1)];
    ask_raw(
        &mut server,
        0,
        1,
        "www.example.com",
        Rtype::A,
        false,
        Some((false, &www, &[], &[])),
    );
    ask_raw(
        &mut server,
        0,
        2,
        "www.example.com",
        Rtype::A,
        true,
        Some((false, &www, &[], &[])),
    );
    assert_eq!(
        (store.stats().entries, store.stats().rrsets),
        (2, 1),
        "two messages, one RRset"
    );
    let other = [a_rr("other.example.com", 300, 2)];
    ask_raw(
        &mut server,
        0,
        3,
        "other.example.com",
        Rtype::A,
        false,
        Some((false, &other, &[], &[])),
    );
    assert_eq!(
        (store.stats().entries, store.stats().rrsets),
        (2, 2),
        "one www message left"
    );
    let third = [a_rr("third.example.com", 300, 3)];
    ask_raw(
        &mut server,
        0,
        4,
        "third.example.com",
        Rtype::A,
        false,
        Some((false, &third, &[], &[])),
    );
    assert_eq!(
        (store.stats().entries, store.stats().rrsets),
        (2, 2),
        "www freed with its last message"
    );
}

#[test]
fn a_reply_with_a_thousand_rrsets_is_cached_in_linear_time() {
    let full = CacheConfig {
        minimal_responses: false,
        ..CacheConfig::default()
    };
    let (mut server, store) = cached_server(full);
    let q = query("example.com", Rtype::NS, 1, true, None);
    server.handle_client(at(0), udp(5001), &q);
    let sent = sends(&drain(&mut server));
    let up = {
        let m = Message::from_octets(sent[0].message.clone()).unwrap();
        let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::new())).unwrap();
        b.header_mut().set_id(m.header().id());
        b.header_mut().set_qr(true);
        let mut qb = b.question();
        qb.push(m.sole_question().unwrap()).unwrap();
        let mut ans = qb.answer();
        let zone: Name<Vec<u8>> = "example.com".parse().unwrap();
        let target = |i: u32| -> Name<Vec<u8>> { format!("n{i}.example.com").parse().unwrap() };
        for i in 0..1000 {
            ans.push((&zone, Class::IN, 300, Ns::new(target(i))))
                .unwrap();
        }
        let mut add = ans.authority().additional();
        for i in 0..1000u32 {
            let addr = Ipv4Addr::from(0x0a00_0000 + i);
            add.push((&target(i), Class::IN, 300, A::new(addr)))
                .unwrap();
        }
        add.finish().into_target()
    };
    let started = std::time::Instant::now();
    server.handle_upstream(at(0), sent[0].token, sent[0].to, &up);
    let out = replies(&drain(&mut server));
    assert_eq!(out.len(), 1);
    assert!(message(&out[0].1).header().tc(), "too big for UDP: TC");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((store.stats().entries, store.stats().rrsets), (1, 1001));
}

#[test]
fn a_cname_chain_to_a_negative_answer_keeps_the_cname_ttl() {
    // RFC 2308 5: the negative TTL covers the negative part only (and its SOA); the
    // CNAME keeps its own TTL, in the first reply and in cache hits.
    for rcode in [Rcode::NXDOMAIN, Rcode::NOERROR] {
        let (mut server, _) = cached_server(CacheConfig::default());
        let reply = Reply {
            rcode: Some(rcode),
            cname: Some(("alias.example".into(), 3600, "gone.example".into())),
            soa: Some(("example.".into(), 3600, 300)),
            ..Reply::default()
        };
        let (first, sent) = ask(&mut server, 0, 1, "alias.example", Rtype::A, Some(&reply));
        assert_eq!(sent, 1);
        let msg = message(&first.unwrap());
        assert_eq!(msg.header().rcode(), rcode);
        assert_eq!(ttls(&msg), vec![3600, 300], "{rcode}: CNAME, then the SOA");
        let (hit, sent) = ask(&mut server, 100_000, 2, "alias.example", Rtype::A, None);
        assert_eq!(sent, 0);
        let msg = message(&hit.unwrap());
        assert_eq!(msg.header().rcode(), rcode);
        assert_eq!(ttls(&msg), vec![3500, 200], "{rcode}: counted down");
        // The CNAME itself, asked for, is a positive answer with its own TTL.
        let (cname, _) = ask(
            &mut server,
            100_000,
            3,
            "alias.example",
            Rtype::CNAME,
            Some(&Reply {
                cname: Some(("alias.example".into(), 3600, "gone.example".into())),
                ..Reply::default()
            }),
        );
        assert_eq!(
            ttls(&message(&cname.unwrap()))[0],
            3500,
            "{rcode}: the RRset cache's copy"
        );
    }
}

#[test]
fn the_negative_ttl_caps_the_soa_and_the_proofs_not_the_chain() {
    use names_core::domain::rdata::dnssec::RtypeBitmap;
    use names_core::domain::rdata::Nsec;
    let (mut server, _) = cached_server(CacheConfig::default());
    let mut types = RtypeBitmap::<Bytes>::builder();
    types.add(Rtype::CNAME).unwrap();
    let bitmap = types.finalize();
    let soa = Soa::new(
        name("example"),
        name("example"),
        Serial(1),
        Ttl::from_secs(3600),
        Ttl::from_secs(600),
        Ttl::from_secs(86400),
        Ttl::from_secs(300),
    );
    let answer = [rr("alias.example", 3600, Cname::new(name("gone.example")))];
    let authority = [
        rr("example", 3600, soa),
        rr(
            "alias.example",
            3600,
            Nsec::new(name("zzz.example"), bitmap),
        ),
    ];
    let reply = (false, &answer[..], &authority[..], &[][..]);
    let (first, sent) = ask_raw(
        &mut server,
        0,
        1,
        "alias.example",
        Rtype::A,
        true,
        Some(reply),
    );
    assert_eq!(sent, 1);
    let first = first.unwrap();
    assert_eq!(ttls(&first), vec![3600, 300, 300], "CNAME, SOA, NSEC");
    let (hit, sent) = ask_raw(
        &mut server,
        60_000,
        2,
        "alias.example",
        Rtype::A,
        true,
        None,
    );
    assert_eq!(sent, 0);
    assert_eq!(ttls(&hit.unwrap()), vec![3540, 240, 240]);
}
