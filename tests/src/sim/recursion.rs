//! The recursion simulation: a `Server` with a cache and a recursor in the simulated
//! [`World`], its upstream side the in-memory hierarchy of [`crate::hierarchy`] (every
//! query answered by its destination address from that server's zones), behind a network
//! that loses, delays, reorders and duplicates replies, with hostile authoritative servers
//! that plant out-of-bailiwick records in every reply and a spoofer racing forged replies
//! to the recursor's queries. Everything planted names [`PLANTED_ZONE`] or
//! [`PLANTED_ADDR`], so the world's check that no planted record reaches a client
//! applies; after the run, the names the hostile servers tried to poison are asked again
//! on a calm network and must get their real data.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::name::FlattenInto;
use domain::base::{Message, ParsedName, Record, Ttl};
use domain::rdata::{AllRecordData, Ns, A};
use names_core::cache::CacheConfig;
use names_core::recursor::{RecursorConfig, RecursorStats, RootHints};
use names_core::setup::Setup;
use names_core::{Config, Rr, Token, Via};

use super::{Event, Rand, Upstreams, World, PLANTED_ADDR, PLANTED_ZONE};
use crate::build::{frame, name, query, reply_sections, unframe, with_id};
use crate::drive::udp_from;
use crate::hierarchy::{self, HINTS};
use crate::parse::{message, try_parse};

/// The network's faults between the recursor and the authoritative servers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetFaults {
    /// UDP datagrams lost, each way.
    pub loss: f64,
    /// UDP replies duplicated.
    pub dup: f64,
    /// The most extra delay of a reply, in ms (replies overtake each other).
    pub max_delay_ms: u64,
    /// Chance the spoofer races forged replies to a UDP query (and hits it once closed).
    pub spoof: f64,
}

/// One seeded run.
#[derive(Clone, Debug)]
pub struct RecursionScenario {
    pub seed: u64,
    pub faults: NetFaults,
    /// Whether the hostile servers plant records (else they answer honestly).
    pub hostile: bool,
    /// Client UDP queries, sent within the first second.
    pub clients: usize,
    pub config: Config,
    pub recursor: RecursorConfig,
}

impl RecursionScenario {
    /// A scenario drawn from `seed`.
    pub fn random(seed: u64) -> RecursionScenario {
        let mut r = Rand::new(seed ^ 0x2ec0_5e00);
        let faults = NetFaults {
            loss: r.pick(&[0.0, 0.0, 0.05, 0.2, 0.4]),
            dup: r.pick(&[0.0, 0.1, 0.3]),
            max_delay_ms: r.pick(&[0.0, 20.0, 150.0, 600.0]) as u64,
            spoof: r.pick(&[0.0, 0.3, 0.9]),
        };
        let budget = r.pick(&[5000.0, 5000.0, 1500.0]) as u64;
        let mut s = RecursionScenario {
            seed,
            faults,
            hostile: r.chance(0.8),
            clients: 20 + r.below(41) as usize,
            config: Config {
                budget: Duration::from_millis(budget),
                ..Config::default()
            },
            recursor: RecursorConfig {
                root_hints: RootHints::parse(HINTS).expect("the hierarchy's hints"),
                query_localhost: false,
                qname_minimisation: r.chance(0.8),
                // Now and then few enough exchanges that the limit bites.
                max_sends: r.pick(&[32.0, 32.0, 32.0, 6.0]) as u32,
                ..RecursorConfig::default()
            },
        };
        if seed.is_multiple_of(4) {
            // A clean network (spoofer and duplicates aside) for a quarter of the seeds.
            s.faults.loss = 0.0;
            s.faults.max_delay_ms = s.faults.max_delay_ms.min(20);
            s.config.budget = Duration::from_millis(5000);
            s.recursor.max_sends = RecursorConfig::default().max_sends;
        }
        s
    }

    /// Whether every client query must get exactly the zones' data: nothing lost, replies
    /// well within a server's first timeout, the whole budget and the default exchanges.
    pub fn clean(&self) -> bool {
        self.faults.loss == 0.0
            && self.recursor.max_sends >= RecursorConfig::default().max_sends
            && self.faults.max_delay_ms <= 20
            && self.config.budget >= Duration::from_millis(5000)
    }
}

/// The reply the hierarchy's data gives.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// NOERROR, the final address `192.0.2.last`.
    Addr(u8),
    /// This rcode, no address.
    Rcode(Rcode),
    /// Any outcome: only the bounds are checked.
    Any,
}

use Want::{Addr, Any};
const NOERROR: Want = Want::Rcode(Rcode::NOERROR);
const NXDOMAIN: Want = Want::Rcode(Rcode::NXDOMAIN);
const SERVFAIL: Want = Want::Rcode(Rcode::SERVFAIL);

/// What a client asks and the reply it must get.
type Case = (&'static str, Rtype, Want);

/// The client questions: plain, missing, NODATA, CNAME and DNAME across zones, deep
/// referrals, glueless, lame and dead servers, TC, no EDNS, upward referral, a loop,
/// loopback servers (never asked), the NXNS delegation.
const CASES: &[Case] = &[
    ("host.example.com", Rtype::A, Addr(200)),
    ("missing.example.com", Rtype::A, NXDOMAIN),
    ("host.example.com", Rtype::MX, NOERROR),
    ("www.example.com", Rtype::A, Addr(202)),
    ("x.dname.example.com", Rtype::A, Addr(203)),
    ("www.sub.example.com", Rtype::A, Addr(201)),
    (
        "a.b.c.d.e.f.g.h.i.j.k.l.deep.example.com",
        Rtype::A,
        Addr(212),
    ),
    ("www.glueless.com", Rtype::A, Addr(204)),
    ("nothing.example.net", Rtype::A, NXDOMAIN),
    ("www.lame.com", Rtype::A, Addr(205)),
    ("www.up.com", Rtype::A, Addr(208)),
    ("www.old.com", Rtype::A, Addr(207)),
    ("www.tc.com", Rtype::A, Addr(206)),
    ("nope.invalid", Rtype::A, NXDOMAIN),
    ("www.loop1.com", Rtype::A, SERVFAIL),
    ("www.lo.com", Rtype::A, SERVFAIL),
    ("nxns.com", Rtype::A, Any),
];

/// Zones a fresh, missing name is asked in (a cold resolution each time).
const FRESH_ZONES: &[&str] = &[
    "example.com",
    "sub.example.com",
    "example.net",
    "glueless.com",
    "lame.com",
    "up.com",
    "old.com",
];

/// The names the hostile servers try to poison, asked after the run, and their real
/// data.
const VICTIMS: &[Case] = &[
    ("host.example.com", Rtype::A, Addr(200)),
    ("ns1.example.com", Rtype::A, Addr(40)),
    ("www.example.net", Rtype::A, Addr(202)),
    ("ns.example.net", Rtype::A, Addr(60)),
    ("a.gtld-servers.net", Rtype::A, Addr(2)),
    ("www.sub.example.com", Rtype::A, Addr(201)),
    ("example.com", Rtype::NS, NOERROR),
    ("example.net", Rtype::NS, NOERROR),
    ("www.planted.invalid", Rtype::A, NXDOMAIN),
    ("ns.planted.invalid", Rtype::A, NXDOMAIN),
];

/// The hostile servers (`192.0.2.last`) and the records out of their bailiwick each
/// plants, beside the planted zone's own: `(owner, rtype)`, an A of [`PLANTED_ADDR`] or
/// an NS of `ns.planted.invalid`.
const HOSTILE: &[(u8, &[(&str, Rtype)])] = &[
    // example.com's second server: another zone's answer, its NS and its server's glue.
    (
        41,
        &[
            ("www.example.net", Rtype::A),
            ("example.net", Rtype::NS),
            ("ns.example.net", Rtype::A),
            ("a.gtld-servers.net", Rtype::A),
        ],
    ),
    // sub.example.com's: its parent's data.
    (
        50,
        &[
            ("host.example.com", Rtype::A),
            ("example.com", Rtype::NS),
            ("ns1.example.com", Rtype::A),
        ],
    ),
    // example.net's and glueless.com's: a third zone's.
    (
        60,
        &[
            ("host.example.com", Rtype::A),
            ("example.com", Rtype::NS),
            ("ns1.example.com", Rtype::A),
            ("www.sub.example.com", Rtype::A),
        ],
    ),
];

/// The hierarchy behind the lossy network, the hostile servers and the spoofer.
struct Net {
    tree: hierarchy::World,
    faults: NetFaults,
    hostile: bool,
    /// Set after the run: no loss, delay or spoofing (the hostile servers stay hostile).
    calm: Rc<Cell<bool>>,
}

impl Net {
    fn delay(&self, rand: &mut Rand) -> Duration {
        Duration::from_millis(1 + rand.below(self.faults.max_delay_ms + 1))
    }

    /// Forged replies to `message` (sent to `to`) carrying poison: a guessed, wrong ID from
    /// the server's address; the right ID from another address or port; the right ID and
    /// address for another question. A correct guess of ID and port is not tried: no
    /// resolver without DNSSEC can tell it from the real reply.
    fn spoof(&self, w: &mut World, token: Token, to: SocketAddr, message: &[u8]) {
        let Some(forged) = poisoned_answer(message) else {
            return;
        };
        let id = u16::from_be_bytes([message[0], message[1]]);
        for _ in 0..1 + w.rand.below(3) {
            w.report.spoofs += 1;
            let (from, bytes) = match w.rand.below(4) {
                0 => {
                    let guess = id.wrapping_add(1 + w.rand.below(65535) as u16);
                    (to, with_id(&forged, guess))
                }
                1 => (
                    SocketAddr::new(IpAddr::V4(PLANTED_ADDR), 53),
                    forged.clone(),
                ),
                2 => (SocketAddr::new(to.ip(), to.port() ^ 1), forged.clone()),
                _ => {
                    let other = query(&format!("www.{PLANTED_ZONE}"), Rtype::A, id, false, None);
                    match poisoned_answer(&other) {
                        Some(bytes) => (to, bytes),
                        None => continue,
                    }
                }
            };
            let at = w.now + Duration::from_millis(w.rand.below(2));
            w.schedule(at, Event::Upstream(token, from, bytes));
        }
    }
}

impl Upstreams for Net {
    fn on_send(&mut self, w: &mut World, token: Token) -> Option<usize> {
        let info = w.tokens[&token].clone();
        let tcp = matches!(info.via, Via::Tcp);
        let calm = self.calm.get();
        if !tcp && !calm && w.rand.chance(self.faults.spoof) {
            self.spoof(w, token, info.to, &info.message);
        }
        if !tcp && !calm && w.rand.chance(self.faults.loss) {
            return None; // the query is lost
        }
        let wire = if tcp {
            frame(&info.message)
        } else {
            info.message.clone()
        };
        let mut reply = self.tree.answer(info.to, info.via, &wire)?;
        if self.hostile {
            if let Some(planted) = planted_for(info.to.ip()) {
                let honest = if tcp { unframe(&reply).to_vec() } else { reply };
                let poisoned = poison(&info.message, &honest, planted).expect("a reply to poison");
                reply = if tcp { frame(&poisoned) } else { poisoned };
            }
        }
        let at = if calm {
            w.now + Duration::from_millis(1)
        } else {
            w.now + self.delay(&mut w.rand)
        };
        if tcp {
            w.schedule_stream(at, token, info.to, &reply);
            return None;
        }
        if !calm && w.rand.chance(self.faults.loss) {
            return None; // the reply is lost
        }
        w.schedule(at, Event::Upstream(token, info.to, reply.clone()));
        if !calm && w.rand.chance(self.faults.dup) {
            let again = at + self.delay(&mut w.rand);
            w.schedule(again, Event::Upstream(token, info.to, reply));
        }
        None
    }

    /// The spoofer hits a closed token with a forged reply that would be perfect.
    fn on_close(&mut self, w: &mut World, token: Token) {
        if self.calm.get() || !w.rand.chance(self.faults.spoof) {
            return;
        }
        let info = &w.tokens[&token];
        let (to, via) = (info.to, info.via);
        if let Some(forged) = poisoned_answer(&info.message) {
            w.report.spoofs += 1;
            let bytes = if matches!(via, Via::Tcp) {
                frame(&forged)
            } else {
                forged
            };
            let at = w.now + self.delay(&mut w.rand);
            w.schedule(at, Event::Upstream(token, to, bytes));
        }
    }
}

/// What the hostile server at `ip` plants out of its bailiwick, if it is one.
fn planted_for(ip: IpAddr) -> Option<&'static [(&'static str, Rtype)]> {
    HOSTILE
        .iter()
        .find(|(last, _)| ip == hierarchy::ip(*last))
        .map(|(_, planted)| *planted)
}

/// An A record of [`PLANTED_ADDR`] or an NS record of `ns.planted.invalid` at `owner`.
fn planted_rr(owner: &str, rtype: Rtype) -> Rr {
    let data = if rtype == Rtype::NS {
        AllRecordData::Ns(Ns::new(name(&format!("ns.{PLANTED_ZONE}"))))
    } else {
        AllRecordData::A(A::new(PLANTED_ADDR))
    };
    Record::new(name(owner), Class::IN, Ttl::from_secs(3600), data)
}

/// A forged authoritative answer to `query`: its name at [`PLANTED_ADDR`], the planted
/// zone's server as glue.
fn poisoned_answer(query: &[u8]) -> Option<Vec<u8>> {
    let msg = Message::from_octets(Bytes::copy_from_slice(query)).ok()?;
    let qname = match msg.sole_question().ok()?.qname().to_string() {
        root if root.is_empty() => ".".to_string(),
        qname => qname,
    };
    let answer = [planted_rr(&qname, Rtype::A)];
    let authority = [planted_rr(&qname, Rtype::NS)];
    let additional = [planted_rr(&format!("ns.{PLANTED_ZONE}"), Rtype::A)];
    Some(reply_sections(
        query,
        Rcode::NOERROR,
        true,
        [&answer, &authority, &additional],
    ))
}

/// `honest` (a reply to `query`) with the planted zone's records and `planted` added: an
/// A in the answer, the NS in authority, the addresses in additional. RA stays clear.
fn poison(query: &[u8], honest: &[u8], planted: &[(&str, Rtype)]) -> Option<Vec<u8>> {
    let msg = Message::from_octets(Bytes::copy_from_slice(honest)).ok()?;
    let [mut answer, mut authority, mut additional] = sections(&msg)?;
    let www = format!("www.{PLANTED_ZONE}");
    let ns = format!("ns.{PLANTED_ZONE}");
    answer.push(planted_rr(&www, Rtype::A));
    authority.push(planted_rr(PLANTED_ZONE, Rtype::NS));
    additional.push(planted_rr(&ns, Rtype::A));
    for (owner, rtype) in planted {
        let rr = planted_rr(owner, *rtype);
        match *rtype {
            Rtype::NS => authority.push(rr),
            _ if owner.starts_with("www") || owner.starts_with("host") => answer.push(rr),
            _ => additional.push(rr),
        }
    }
    let (rcode, aa) = (msg.header().rcode(), msg.header().aa());
    let mut reply = reply_sections(query, rcode, aa, [&answer, &authority, &additional]);
    reply[3] &= !0x80; // an authoritative server does not recurse
    Some(reply)
}

/// The answer, authority and additional records of `msg`, OPT left out.
fn sections(msg: &Message<Bytes>) -> Option<[Vec<Rr>; 3]> {
    let mut out: [Vec<Rr>; 3] = Default::default();
    let mut section = msg.answer().ok()?;
    for slot in &mut out {
        for rr in &mut section {
            let rr = rr.ok()?;
            if rr.rtype() == Rtype::OPT {
                continue;
            }
            let rec = rr
                .to_any_record::<AllRecordData<Bytes, ParsedName<Bytes>>>()
                .ok()?;
            slot.push(rec.flatten_into());
        }
        match section.next_section().ok()? {
            Some(next) => section = next,
            None => break,
        }
    }
    Some(out)
}

/// What a run found.
#[derive(Debug, Default)]
pub struct RecursionReport {
    /// Client queries, and of them answered with the zones' data.
    pub queries: usize,
    pub exact: usize,
    pub servfails: usize,
    /// Packets the recursor sent (UDP and TCP tries) and forged replies thrown at it.
    pub packets: usize,
    pub spoofs: usize,
    pub recursor: RecursorStats,
}

/// A run: the world and, per tracked query, what it asked.
struct Run {
    world: World,
    setup: Setup,
    calm: Rc<Cell<bool>>,
    asked: Vec<(String, Rtype, Want)>,
    next_port: u16,
}

impl Run {
    fn new(s: &RecursionScenario) -> Run {
        let setup = Setup::new()
            .cache(CacheConfig::default(), 1)
            .recurse(s.recursor.clone());
        let calm = Rc::new(Cell::new(false));
        let net = Net {
            tree: hierarchy::World::standard(),
            faults: s.faults,
            hostile: s.hostile,
            calm: calm.clone(),
        };
        let world = World::new(s.config.clone(), setup.build(), s.seed, Box::new(net));
        Run {
            world,
            setup,
            calm,
            asked: Vec::new(),
            next_port: 20000,
        }
    }

    /// A client asks `qname` `qtype` at `at`, wanting `want`.
    fn ask(&mut self, (qname, qtype, want): (&str, Rtype, Want), at: Duration) {
        let id = self.world.rand.below(65536) as u16;
        let edns = [None, Some(1232), Some(4096)][self.world.rand.below(3) as usize];
        let peer = SocketAddr::from(([127, 0, 0, 2], self.next_port));
        self.next_port += 1;
        let q = self
            .world
            .track(udp_from(peer), query(qname, qtype, id, true, edns));
        self.asked.push((qname.to_string(), qtype, want));
        self.world.schedule(at, Event::ClientUdp(q));
    }
}

/// Runs a scenario and checks it: the world's checks (one reply per query within the
/// budget plus `slack`, no planted record in any reply, nothing left over); exchanges per
/// client query at most `max_sends` and packets at most three per exchange; the loopback
/// server never asked; every reply either the zones' data or SERVFAIL (exactly the data on
/// a clean network); then, on a calm network, every poisoned name its real data.
pub fn simulate_recursion(s: &RecursionScenario, slack: Duration) -> RecursionReport {
    let mut run = Run::new(s);
    for i in 0..s.clients {
        let at = Duration::from_millis(run.world.rand.below(1000));
        if run.world.rand.chance(0.3) {
            // A name nobody asked before, missing in a zone down the tree.
            let zone = FRESH_ZONES[run.world.rand.below(FRESH_ZONES.len() as u64) as usize];
            run.ask((&format!("fresh{i}.{zone}"), Rtype::A, NXDOMAIN), at);
        } else {
            let case = CASES[run.world.rand.below(CASES.len() as u64) as usize];
            run.ask(case, at);
        }
    }
    run.world.finish();
    let stormy = run.world.queries.len();
    run.calm.set(true);
    let start = run.world.now + Duration::from_secs(1);
    for (i, &case) in VICTIMS.iter().enumerate() {
        run.ask(case, start + Duration::from_millis(10 * i as u64));
    }
    run.world.finish();
    run.world.check_replies(slack);

    let w = &run.world;
    let mut report = RecursionReport {
        queries: w.queries.len(),
        packets: w.report.tokens,
        spoofs: w.report.spoofs,
        recursor: run.setup.recursor_stats().expect("a recursor"),
        ..RecursionReport::default()
    };
    let r = &report.recursor;
    let max_sends = u64::from(s.recursor.max_sends);
    assert_eq!(
        r.sends[r.sends.len() - 1],
        0,
        "a resolution over max_sends: {r:?}"
    );
    assert!(r.sends_sum <= max_sends * r.resolutions, "{r:?}");
    // Every exchange is at most a UDP try, a retry without EDNS and a TCP try, and every
    // resolution is counted, those the budget ended too: the packets are bounded by the
    // exchanges counted, and per client query.
    assert!(
        w.report.tokens as u64 <= 3 * r.sends_sum,
        "{} packets for {} exchanges counted: {r:?}",
        w.report.tokens,
        r.sends_sum
    );
    assert!(
        w.report.tokens as u64 <= 3 * max_sends * w.queries.len() as u64,
        "{} packets for {} client queries",
        w.report.tokens,
        w.queries.len()
    );
    for info in w.tokens.values() {
        assert!(
            !info.to.ip().is_loopback(),
            "a loopback server asked: {}",
            info.to
        );
        assert_ne!(
            info.to.ip(),
            IpAddr::V4(PLANTED_ADDR),
            "a planted server asked"
        );
    }
    for (i, (q, case)) in w.queries.iter().zip(&run.asked).enumerate() {
        let (qname, qtype, want) = case;
        let what = format!(
            "query {i}: {qname} {qtype} (seed {}, {:?})",
            s.seed, s.faults
        );
        let reply = try_parse(&q.replies[0].1).unwrap_or_else(|e| panic!("{what}: {e}"));
        let rcode = message(&q.replies[0].1).header().rcode();
        if rcode == Rcode::SERVFAIL {
            report.servfails += 1;
        }
        let (want_rcode, want_addrs) = match *want {
            Addr(last) => (Rcode::NOERROR, vec![Ipv4Addr::new(192, 0, 2, last)]),
            Want::Rcode(rcode) => (rcode, Vec::new()),
            Any => continue,
        };
        let exact = rcode == want_rcode && reply.a_addrs() == want_addrs;
        if exact {
            report.exact += 1;
            continue;
        }
        assert_eq!(rcode, Rcode::SERVFAIL, "{what}: wrong data: {reply:?}");
        assert!(
            i < stormy && !s.clean(),
            "{what}: SERVFAIL on a {} network",
            if i < stormy { "clean" } else { "calm" }
        );
    }
    report
}
