//! Unbound's RRset scenarios through the core under simulated time (exact TTLs, time
//! jumps of minutes), and a property against a reference model of the RRset cache's
//! rules: every reply shows the RRsets the model holds, with their remaining TTLs, so no
//! TTL grows within a cached lifetime and no lower-ranked data replaces higher-ranked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use names_core::cache::{Cache, CacheConfig, Store};
use names_core::{Chain, Config, Forwarder, Server};
use names_tests::build::query;
use names_tests::drive::*;
use names_tests::parse::{parse, Parsed};
use names_tests::scenario::{expect, Canned, Expected};
use names_tests::Rtype;
use proptest::prelude::*;

fn up() -> SocketAddr {
    upstream_addr(1)
}

/// A forwarder with a cache, `minimal-responses: no` as the scenarios configure it.
fn full_replies() -> Server {
    let config = CacheConfig {
        minimal_responses: false,
        ..CacheConfig::default()
    };
    let store = Arc::new(Store::new(config.size, 1));
    let chain = Chain::new()
        .with(Cache::new(store, config))
        .with(Forwarder::new(vec![up()]));
    Server::new(Config::default(), chain, SEED)
}

/// A client asks `qname A` at `ms`; a query that goes upstream is answered with `reply`
/// (it must be given then). Returns the client's reply and whether it went upstream.
fn step(
    server: &mut Server,
    ms: u64,
    id: u16,
    qname: &str,
    reply: Option<&Canned>,
) -> (Parsed, bool) {
    server.handle_client(
        at(ms),
        udp(6000 + id),
        &query(qname, Rtype::A, id, true, None),
    );
    let actions = drain(server);
    let sent = sends(&actions);
    if let Some(s) = sent.first() {
        let canned = reply.unwrap_or_else(|| panic!("{qname} at {ms} ms went upstream"));
        let bytes = canned.reply_to(&s.message).expect("a reply");
        server.handle_upstream(at(ms), s.token, s.to, &bytes);
        let more = drain(server);
        let (_, r) = replies(&more).pop().expect("a reply to the client");
        return (parse(&r), true);
    }
    let (_, r) = replies(&actions).pop().expect("a reply from the cache");
    (parse(&r), false)
}

// rrset_rettl.rpl with exact time: no time passes, so the TTLs are exactly 100.
#[test]
fn rrset_rettl_exact() {
    let mut s = full_replies();
    let www = Canned::new(
        "www.example.com. IN A 10.20.30.40",
        "example.com. 100 IN NS ns.example.com.",
        "ns.example.com. IN A 10.20.30.50",
    )
    .aa();
    let bla = Canned::new(
        "bla.example.com. IN A 10.20.30.140",
        "example.com. 200 IN NS ns.example.com.",
        "ns.example.com. IN A 10.20.30.50",
    )
    .aa();
    let want_www = Expected::new(
        "www.example.com. IN A 10.20.30.40",
        "example.com. 100 IN NS ns.example.com.",
        "ns.example.com. IN A 10.20.30.50",
    )
    .ttl();
    let (r, upstream) = step(&mut s, 0, 1, "www.example.com", Some(&www));
    assert!(upstream);
    expect(&r, &want_www, 0, "step 4");
    let (r, _) = step(&mut s, 0, 2, "bla.example.com", Some(&bla));
    expect(
        &r,
        &Expected::new(
            "bla.example.com. IN A 10.20.30.140",
            "example.com. 100 IN NS ns.example.com.",
            "ns.example.com. IN A 10.20.30.50",
        )
        .ttl(),
        0,
        "step 9",
    );
    let (r, upstream) = step(&mut s, 0, 3, "www.example.com", None);
    assert!(!upstream);
    expect(&r, &want_www, 0, "step 11");
}

/// One step of the property: at `dt` seconds after the last, a client asks for `name`
/// (0 `a`, 1 `b`, 2 `ns`, all in example.com); if it goes upstream, the reply has the
/// answer `10.0.0.<addr>` with `ttl`, example.com's NS (same name server always) with
/// `ns_ttl` and the name server's address `10.0.1.<glue>` with `glue_ttl` as glue.
#[derive(Clone, Debug)]
struct Step {
    dt: u64,
    name: usize,
    addr: u8,
    ttl: u32,
    ns_ttl: u32,
    glue: u8,
    glue_ttl: u32,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let ttl = || prop::sample::select(vec![30u32, 60, 120]);
    let step = (
        prop::sample::select(vec![0u64, 1, 10, 29, 31, 59, 61]),
        0..3usize,
        1..3u8,
        ttl(),
        ttl(),
        1..3u8,
        ttl(),
    )
        .prop_map(|(dt, name, addr, ttl, ns_ttl, glue, glue_ttl)| Step {
            dt,
            name,
            addr,
            ttl,
            ns_ttl,
            glue,
            glue_ttl,
        });
    prop::collection::vec(step, 1..40)
}

/// One state the reference model allows an RRset to be in: data, rank, expiry (ms).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    data: String,
    rank: u8,
    expires: u64,
}

/// The reference model: per RRset the states the cache may be in (more than one where the
/// rules leave a choice) and how often it was replaced; per question its cached message's
/// expiry and the RRsets it refers to (each as replaced so far).
#[derive(Default)]
struct Model {
    rrsets: BTreeMap<String, (u64, Vec<Held>)>,
    messages: BTreeMap<String, (u64, Vec<(String, u64)>)>,
}

impl Model {
    /// The earliest expiry any state of `key` allows.
    fn earliest(&self, key: &str) -> u64 {
        self.rrsets
            .get(key)
            .and_then(|(_, states)| states.iter().map(|h| h.expires).min())
            .unwrap_or(0)
    }

    /// Whether a message alive at `now` refers to the RRset `key` as it is now (one
    /// stored before `key` was replaced refers to the old RRset until it is rebuilt). A
    /// message lives as long as its shortest RRset, as stored or as replaced since (the
    /// earliest any state allows: the model stays permissive).
    fn referenced(&self, key: &str, now: u64) -> bool {
        let version = self.rrsets.get(key).map_or(0, |(v, _)| *v);
        self.messages.values().any(|(stored, keys)| {
            let current = keys
                .iter()
                .map(|(k, _)| self.earliest(k))
                .min()
                .unwrap_or(0);
            (*stored).min(current) > now && keys.iter().any(|(k, v)| k == key && *v == version)
        })
    }

    /// An upstream's copy of the RRset `key`, by the rules: an expired or absent
    /// RRset is stored; a higher rank replaces; an equal rank replaces only with changed
    /// records (the same records keep their TTL); a lower rank never replaces. An RRset no
    /// live message refers to may have been freed with the last one, so the copy may
    /// also be stored afresh then.
    fn offer(&mut self, key: &str, data: String, rank: u8, ttl: u32, now: u64) {
        let new = Held {
            data,
            rank,
            expires: now + u64::from(ttl) * 1000,
        };
        let referenced = self.referenced(key, now);
        let (mut version, old) = self.rrsets.remove(key).unwrap_or_default();
        let mut next: Vec<Held> = Vec::new();
        let mut replaced = old.is_empty();
        for held in old {
            let replaces = held.expires <= now
                || rank > held.rank
                || (rank == held.rank && new.data != held.data);
            if replaces {
                replaced = true;
            } else {
                next.push(held);
                if !referenced {
                    replaced = true;
                }
            }
        }
        if replaced {
            next.push(new);
            version += 1;
        }
        next.sort_by(|a, b| (a.expires, &a.data, a.rank).cmp(&(b.expires, &b.data, b.rank)));
        next.dedup();
        self.rrsets.insert(key.to_string(), (version, next));
    }

    /// The message for `qname` stored at `now` over these RRsets: it lives as long as
    /// its shortest RRset (the earliest any state allows, to stay permissive).
    fn store(&mut self, qname: &str, keys: Vec<String>, now: u64) {
        let expires = keys.iter().map(|k| self.earliest(k)).min().unwrap_or(now);
        let keys = keys
            .into_iter()
            .map(|k| {
                let version = self.rrsets.get(&k).map_or(0, |(v, _)| *v);
                (k, version)
            })
            .collect();
        self.messages.insert(qname.to_string(), (expires, keys));
    }

    /// A reply shows `data` with `ttl` for `key` at `now`: some allowed state must be
    /// alive with that data and that remaining TTL (whole seconds, within one); the model
    /// keeps only the states that agree.
    fn observe(&mut self, key: &str, data: &str, ttl: u32, now: u64) -> Result<(), String> {
        let (_, states) = self
            .rrsets
            .get_mut(key)
            .ok_or(format!("{key} shown, never offered"))?;
        let fits = |h: &Held| {
            let left = h.expires.saturating_sub(now) / 1000;
            h.expires > now
                && h.data == data
                && u64::from(ttl) <= left + 1
                && u64::from(ttl) + 1 >= left
        };
        let kept: Vec<Held> = states.iter().filter(|h| fits(h)).cloned().collect();
        if kept.is_empty() {
            return Err(format!(
                "{key} {data} TTL {ttl} at {now} ms; allowed: {states:?}"
            ));
        }
        *states = kept;
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Every record a reply shows is in a state the model allows for its RRset, with
    /// the remaining TTL of that state: no TTL grows within a cached lifetime, an equal
    /// copy does not reset it, and glue never replaces an answer's address.
    #[test]
    fn replies_follow_the_rrset_cache_rules(steps in steps(), aa in any::<bool>()) {
        let mut s = full_replies();
        let mut model = Model::default();
        let mut now = 0u64;
        let names = ["a.example.com", "b.example.com", "ns.example.com"];
        // Ranks when the upstream's AA bit is the same for all replies: answer, authority, glue.
        let (answer_rank, auth_rank, glue_rank) = (3, 2, 1);
        for (i, st) in steps.iter().enumerate() {
            now += st.dt * 1000;
            let qname = names[st.name];
            let mut canned = Canned::new(
                &format!("{qname}. {} IN A 10.0.0.{}", st.ttl, st.addr),
                &format!("example.com. {} IN NS ns.example.com.", st.ns_ttl),
                &format!("ns.example.com. {} IN A 10.0.1.{}", st.glue_ttl, st.glue),
            );
            if st.name == 2 {
                // The name server's own address is the answer: no glue beside it.
                canned.additional.clear();
            }
            if aa {
                canned = canned.aa();
            }
            let (r, upstream) = step(&mut s, now, i as u16 + 1, qname, Some(&canned));
            if upstream {
                let answer = format!("{qname} A");
                model.offer(&answer, format!("10.0.0.{}", st.addr), answer_rank, st.ttl, now);
                model.offer("example.com NS", "ns.example.com.".into(), auth_rank, st.ns_ttl, now);
                let mut keys = vec![answer, "example.com NS".to_string()];
                if st.name != 2 {
                    let glue = format!("10.0.1.{}", st.glue);
                    model.offer("ns.example.com A", glue, glue_rank, st.glue_ttl, now);
                    keys.push("ns.example.com A".to_string());
                }
                model.store(qname, keys, now);
            }
            prop_assert_eq!(r.rcode, 0);
            for rr in r.answers.iter().chain(&r.authority).chain(&r.additional) {
                let kind = if rr.rtype == Rtype::NS.to_int() { "NS" } else { "A" };
                let key = format!("{} {kind}", rr.owner.to_ascii_lowercase());
                if let Err(e) = model.observe(&key, &rr.rdata, rr.ttl, now) {
                    prop_assert!(false, "step {} ({}): {}", i, qname, e);
                }
            }
            prop_assert!(
                r.answers.iter().any(|a| a.owner.eq_ignore_ascii_case(qname)),
                "step {}: the answer for {}: {:?}", i, qname, r
            );
        }
    }
}
