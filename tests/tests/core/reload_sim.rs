//! Deterministic simulation of reloads interleaved with queries: a zone resolver whose
//! snapshot is replaced at random points (often several times in a row, with no query in
//! between), queries over UDP and TCP in random case, and a model of what the zone holds
//! after the last store. Every answer must come from the data stored last; the audit found
//! answers encoded from an earlier set served after two reloads in a row.
//!
//! The run happens in the harness's simulated world (`names_tests::sim::World`), whose
//! seeded RNG also decides the reloads and the queries, and whose bounds and end checks
//! (nothing left pending, the TCP connection closed cleanly) hold throughout.
//!
//! `RELOAD_SIM_SEEDS=N` changes the number of seeds (default 300).

use std::collections::BTreeMap;

use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::zone::{load_zone, Snapshot, ZoneResolver, ZoneSet};
use names_core::{Chain, Config, ConnId, Origin};
use names_tests::build::*;
use names_tests::drive::*;
use names_tests::parse::{a_addrs, message};
use names_tests::sim::{Conn, Event, NoUpstreams, Rand, World};

const NAMES: [&str; 4] = ["www", "mail", "a.b", "deep.a.b"];

/// One version of the zone: an address per name, or no such name.
type Version = BTreeMap<&'static str, Option<u8>>;

fn zone_text(serial: u32, version: &Version) -> String {
    let mut text =
        format!("$ORIGIN sim.test.\n@ 300 SOA ns h {serial} 1 1 1 60\n@ NS ns\nns A 192.0.2.250\n");
    for (name, addr) in version {
        if let Some(a) = addr {
            text.push_str(&format!("{name} 60 A 192.0.2.{a}\n"));
        }
    }
    text
}

fn random_version(rng: &mut Rand) -> Version {
    NAMES
        .iter()
        .map(|&n| {
            let r = rng.below(1 << 32) as u32;
            (
                n,
                (!r.is_multiple_of(4)).then_some((r >> 8) as u8 % 200 + 1),
            )
        })
        .collect()
}

fn store(shared: &Snapshot<ZoneSet>, serial: u32, version: &Version) {
    let text = zone_text(serial, version);
    let zone = load_zone("sim.zone", &text, &mut |_, _| Err("no includes".into())).unwrap();
    shared.store(ZoneSet::new(vec![zone]).unwrap());
}

/// A name in random case (the encoded answers are keyed case-insensitively).
fn mixed_case(rng: &mut Rand, name: &str) -> String {
    name.chars()
        .map(|c| match rng.below(2) {
            0 => c.to_ascii_uppercase(),
            _ => c,
        })
        .collect()
}

fn run(seed: u64) {
    let shared = Snapshot::new(ZoneSet::new(vec![]).unwrap());
    let chain = Chain::new().with(ZoneResolver::new(shared.clone()));
    let mut w = World::new(Config::default(), chain, seed, Box::new(NoUpstreams));
    let mut version = random_version(&mut w.rand);
    let mut serial = 1;
    store(&shared, serial, &version);
    let conn = ConnId(1);
    w.conns.insert(conn, Conn::new(tcp_peer(), w.now));
    w.push(Event::TcpOpen(conn));
    for step in 0..200u64 {
        w.advance(std::time::Duration::from_millis(1));
        match w.rand.below(10) {
            // A reload, often followed by more before any query.
            0..=2 => {
                serial += 1;
                version = random_version(&mut w.rand);
                store(&shared, serial, &version);
            }
            _ => {
                let name = NAMES[w.rand.below(NAMES.len() as u64) as usize];
                let asked = format!("{}.sim.test", mixed_case(&mut w.rand, name));
                let id = step as u16;
                let bytes = query(&asked, Rtype::A, id, false, Some(1232));
                let origin = if w.rand.below(3) == 0 {
                    w.push(Event::Client(Origin::Tcp(conn), frame(&bytes)));
                    Origin::Tcp(conn)
                } else {
                    w.push(Event::Client(udp(4000), bytes));
                    udp(4000)
                };
                let out: Vec<_> = w.replies.iter().filter(|r| r.2 == w.now).collect();
                assert_eq!(out.len(), 1, "seed {seed} step {step}: one reply");
                assert_eq!(out[0].0, origin);
                let reply = message(&out[0].1);
                assert_eq!(reply.header().id(), id);
                match version[name] {
                    Some(a) => {
                        assert_eq!(
                            reply.header().rcode(),
                            Rcode::NOERROR,
                            "seed {seed} step {step}"
                        );
                        let want = vec![std::net::Ipv4Addr::new(192, 0, 2, a)];
                        assert_eq!(
                            a_addrs(&reply),
                            want,
                            "seed {seed} step {step}: {asked} at serial {serial}"
                        );
                    }
                    None => {
                        // A name with data below it exists (empty non-terminal): NODATA.
                        let below = format!(".{name}");
                        let exists = version
                            .iter()
                            .any(|(n, a)| a.is_some() && n.ends_with(&below));
                        let want = if exists {
                            Rcode::NOERROR
                        } else {
                            Rcode::NXDOMAIN
                        };
                        assert_eq!(
                            reply.header().rcode(),
                            want,
                            "seed {seed} step {step}: {asked} at serial {serial}"
                        );
                        assert!(a_addrs(&reply).is_empty());
                    }
                }
            }
        }
    }
    assert_eq!(w.server.pending_queries(), 0);
    w.push(Event::TcpClose(conn));
    w.finish();
}

#[test]
fn answers_always_come_from_the_data_stored_last() {
    let seeds: u64 = std::env::var("RELOAD_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for seed in 0..seeds {
        run(seed);
    }
}
