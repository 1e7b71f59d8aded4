//! Deterministic simulation of reloads interleaved with queries: a zone resolver whose
//! snapshot is replaced at random points (often several times in a row, with no query in
//! between), queries over UDP and TCP in random case, and a model of what the zone holds
//! after the last store. Every answer must come from the data stored last; the audit found
//! answers encoded from an earlier set served after two reloads in a row.
//!
//! `RELOAD_SIM_SEEDS=N` changes the number of seeds (default 300).

use std::collections::BTreeMap;

use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::zone::{load_zone, Snapshot, ZoneResolver, ZoneSet};
use names_core::{Chain, Config, ConnId, Server};
use names_tests::build::*;
use names_tests::drive::*;
use names_tests::parse::{a_addrs, message};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

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

fn random_version(rng: &mut ChaCha8Rng) -> Version {
    NAMES
        .iter()
        .map(|&n| {
            let r = rng.next_u32();
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
fn mixed_case(rng: &mut ChaCha8Rng, name: &str) -> String {
    name.chars()
        .map(|c| match rng.next_u32() % 2 {
            0 => c.to_ascii_uppercase(),
            _ => c,
        })
        .collect()
}

fn run(seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut version = random_version(&mut rng);
    let mut serial = 1;
    let shared = Snapshot::new(ZoneSet::new(vec![]).unwrap());
    store(&shared, serial, &version);
    let chain = Chain::new().with(ZoneResolver::new(shared.clone()));
    let mut server = Server::new(Config::default(), chain, [3; 32]);
    let conn = ConnId(1);
    server.handle_tcp_open(at(0), conn, tcp_peer());
    for step in 0..200u64 {
        match rng.next_u32() % 10 {
            // A reload, often followed by more before any query.
            0..=2 => {
                serial += 1;
                version = random_version(&mut rng);
                store(&shared, serial, &version);
            }
            _ => {
                let name = NAMES[rng.next_u32() as usize % NAMES.len()];
                let asked = format!("{}.sim.test", mixed_case(&mut rng, name));
                let id = step as u16;
                let bytes = query(&asked, Rtype::A, id, false, Some(1232));
                let tcp = rng.next_u32() % 3 == 0;
                if tcp {
                    server.handle_client(at(step), names_core::Origin::Tcp(conn), &frame(&bytes));
                } else {
                    server.handle_client(at(step), udp(4000), &bytes);
                }
                let out = replies(&drain(&mut server));
                assert_eq!(out.len(), 1, "seed {seed} step {step}: one reply");
                let reply = if tcp {
                    message(unframe(&out[0].1))
                } else {
                    message(&out[0].1)
                };
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
    assert_eq!(server.pending_queries(), 0);
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
