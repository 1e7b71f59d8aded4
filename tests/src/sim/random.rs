//! The seeded simulation: a [`Scenario`] drawn from a seed (upstream [`Script`]s, network
//! [`Faults`], a client mix of UDP queries, pipelining TCP clients that stall or
//! half-close, and a flood of idle connections from one address), run in the [`World`],
//! then checked: on top of the world's own checks, synth names get their address, a
//! SERVFAIL comes only out of time or after every upstream failed, answers come only
//! from real upstreams, and nothing is lost on a clean network. Every upstream answer
//! carries planted records beside the real one, which no reply may show.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use domain::base::iana::{Rcode, Rtype};
use names_core::{Config, ConnId, Origin, Token, UpstreamError, Via};

use super::lookup::{lookup_addr, Asker, LookupFaults, LookupScenario, OnTimeout};
use super::{planted_reply, Conn, Event, Rand, Report, Upstreams, World};
use crate::build::{frame, query, upstream_reply, with_id};
use crate::drive::{synth_chain, udp_from};
use crate::parse::{a_addrs, message};

/// What a fake upstream does with each query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    /// Answers with its own address.
    Answer,
    /// Never answers.
    Silent,
    /// TC=1 over UDP, the full answer over TCP.
    TcThenTcp,
    /// Answers SERVFAIL.
    Servfail,
    /// Answers, this many milliseconds late.
    Slow(u64),
}

impl Script {
    /// Whether this upstream gives a usable answer fast enough for any budget we use.
    fn answers_promptly(self) -> bool {
        matches!(self, Script::Answer | Script::TcThenTcp)
    }
}

/// Fault probabilities and delays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    /// Upstream UDP datagrams lost (each way).
    pub loss: f64,
    /// Upstream UDP datagrams duplicated.
    pub dup: f64,
    /// Maximum extra one-way delay (reordering comes from it), in ms.
    pub max_delay_ms: u64,
    /// Chance the spoofer attacks a try (and a closed token).
    pub spoof: f64,
    /// Chance the runtime reports a bind failure for a UDP try.
    pub bind_error: f64,
    /// Chance the runtime reports an I/O failure for a try.
    pub io_error: f64,
}

impl Faults {
    pub const NONE: Faults = Faults {
        loss: 0.0,
        dup: 0.0,
        max_delay_ms: 0,
        spoof: 0.0,
        bind_error: 0.0,
        io_error: 0.0,
    };

    fn lossless(&self) -> bool {
        self.loss == 0.0 && self.bind_error == 0.0 && self.io_error == 0.0
    }
}

/// Everything a run is made of.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub faults: Faults,
    pub scripts: Vec<Script>,
    pub udp_queries: usize,
    /// Queries per TCP connection.
    pub tcp_conns: Vec<usize>,
    /// Chance a query is for a synth name.
    pub synth_share: f64,
    /// Chance a TCP client shuts down its sending side after its last query.
    pub half_close_share: f64,
    /// A TCP client may not read for up to this long after it opens (0: all read at once).
    pub stall_ms: u64,
    /// Idle connections opened from one flooding address.
    pub flood: usize,
    /// Queries for names an [`Asker`] looks up, and how the runtime carries them.
    pub lookups: Option<LookupScenario>,
    pub config: Config,
}

impl Scenario {
    /// A scenario drawn from `seed`: upstream scripts, fault rates, client mix.
    pub fn random(seed: u64) -> Scenario {
        let mut r = Rand::new(seed ^ 0x5eed);
        let n_up = r.below(4) as usize; // 0 to 3 upstreams
        let scripts = (0..n_up)
            .map(|_| match r.below(6) {
                0 | 1 => Script::Answer,
                2 => Script::Silent,
                3 => Script::TcThenTcp,
                4 => Script::Servfail,
                _ => Script::Slow(500 + r.below(4000)),
            })
            .collect();
        let faults = Faults {
            loss: r.pick(&[0.0, 0.0, 0.05, 0.2, 0.5]),
            dup: r.pick(&[0.0, 0.1, 0.3]),
            max_delay_ms: r.pick(&[0.0, 20.0, 300.0, 1500.0]) as u64,
            spoof: r.pick(&[0.0, 0.2, 0.8]),
            bind_error: r.pick(&[0.0, 0.0, 0.1]),
            io_error: r.pick(&[0.0, 0.0, 0.05]),
        };
        let budget = r.pick(&[5000.0, 5000.0, 1500.0, 300.0]) as u64;
        let tcp_conns = (0..r.below(4)).map(|_| 1 + r.below(6) as usize).collect();
        let buffered = r.pick(&[65536.0, 65536.0, 400.0, 100.0]) as usize;
        // A small pipelining limit makes the unwritten-bytes bound tight enough to catch a
        // server that takes queries past the buffering limit.
        let pipelined = r.pick(&[64.0, 64.0, 2.0]) as usize;
        let lookups = lookup_scenario(seed);
        let max_lookups = lookups.map_or(Config::default().max_lookups, |l| l.max_lookups);
        Scenario {
            seed,
            faults,
            scripts,
            udp_queries: r.below(25) as usize,
            tcp_conns,
            synth_share: 0.2,
            half_close_share: r.pick(&[0.0, 0.5, 1.0]),
            stall_ms: r.pick(&[0.0, 0.0, 800.0, 4000.0]) as u64,
            flood: r.pick(&[0.0, 0.0, 3.0, 8.0]) as usize,
            lookups,
            config: Config {
                budget: Duration::from_millis(budget),
                max_lookups,
                max_tcp_buffered: buffered,
                max_pipelined: pipelined,
                max_tcp_per_client: 4,
                ..Config::default()
            },
        }
    }
}

/// Lookups for half the seeds, drawn apart from the rest so that the other half runs as
/// before lookups existed.
fn lookup_scenario(seed: u64) -> Option<LookupScenario> {
    let mut r = Rand::new(seed ^ 0x0100_c0b5);
    if r.chance(0.5) {
        return None;
    }
    let faults = if r.chance(0.3) {
        LookupFaults {
            max_delay_ms: r.pick(&[0.0, 50.0, 400.0]) as u64,
            ..LookupFaults::NONE
        }
    } else {
        LookupFaults {
            never: r.pick(&[0.0, 0.1, 0.5]),
            twice: r.pick(&[0.0, 0.2]),
            unknown_id: r.pick(&[0.0, 0.2]),
            foreign: r.pick(&[0.0, 0.1]),
            pass: r.pick(&[0.0, 0.3]),
            again: r.pick(&[0.0, 0.3]),
            max_delay_ms: r.pick(&[0.0, 300.0, 3000.0, 8000.0]) as u64,
        }
    };
    let on_timeout = [
        OnTimeout::Default,
        OnTimeout::Answer,
        OnTimeout::Again,
        OnTimeout::Pass,
    ][r.below(4) as usize];
    Some(LookupScenario {
        share: r.pick(&[0.2, 0.5, 0.9]),
        faults,
        on_timeout,
        max_lookups: r.pick(&[4096.0, 4096.0, 3.0]) as usize,
    })
}

const SPOOF_FROM: &str = "127.0.66.66:53";
const SYNTH_NET: [u8; 3] = [172, 0, 2];

/// The scripted upstreams and the lossy network to them.
struct Scripted {
    faults: Faults,
    upstreams: BTreeMap<SocketAddr, (Script, Ipv4Addr)>,
    known: Rc<RefCell<Known>>,
}

/// What the run and its checks share.
#[derive(Default)]
struct Known {
    /// Lowercased question name to tracked query (names are unique per query).
    by_key: BTreeMap<String, usize>,
    /// Upstreams that sent a SERVFAIL for a query.
    servfails: BTreeSet<(usize, SocketAddr)>,
}

impl Scripted {
    fn delay(&self, rand: &mut Rand) -> Duration {
        Duration::from_millis(1 + rand.below(self.faults.max_delay_ms + 1))
    }

    /// A reply that must be ignored, arriving before the real one could.
    fn spoof(&self, w: &mut World, token: Token, to: SocketAddr, message: &[u8]) {
        w.report.spoofs += 1;
        let good = upstream_reply(message, Rcode::NOERROR, &[Ipv4Addr::new(6, 6, 6, 6)], false);
        let id = u16::from_be_bytes([message[0], message[1]]);
        let (from, bytes) = match w.rand.below(5) {
            0 => (SPOOF_FROM.parse().unwrap(), good),
            1 => (SocketAddr::new(to.ip(), to.port() + 1), good),
            2 => (
                to,
                with_id(&good, id.wrapping_add(1 + w.rand.below(65535) as u16)),
            ),
            3 => {
                let other = query("evil.example", Rtype::A, id, true, None);
                (
                    to,
                    upstream_reply(&other, Rcode::NOERROR, &[Ipv4Addr::new(6, 6, 6, 6)], false),
                )
            }
            _ => {
                let len = w.rand.below(40) as usize;
                let junk = (0..len).map(|_| w.rand.below(256) as u8).collect();
                (to, junk)
            }
        };
        let at = w.now + Duration::from_millis(w.rand.below(2));
        w.schedule(at, Event::Upstream(token, from, bytes));
    }
}

/// An upstream's answer with its own address, and records planted beside it that no
/// client may ever see (the world checks every reply).
fn planted(message: &[u8], ip: Ipv4Addr) -> Vec<u8> {
    planted_reply(message, &[ip]).expect("one question upstream")
}

impl Upstreams for Scripted {
    fn on_send(&mut self, w: &mut World, token: Token) -> Option<usize> {
        let info = w.tokens[&token].clone();
        let (to, via, message) = (info.to, info.via, info.message);
        let key = crate::parse::message(&message)
            .sole_question()
            .expect("one question upstream")
            .qname()
            .to_string()
            .to_ascii_lowercase();
        let query = self.known.borrow().by_key.get(&key).copied();
        assert!(query.is_some(), "upstream query for unknown name {key}");
        // The runtime may fail to carry it out.
        if matches!(via, Via::Udp { .. }) && w.rand.chance(self.faults.bind_error) {
            w.schedule(w.now, Event::UpstreamError(token, UpstreamError::Bind));
            return query;
        }
        if w.rand.chance(self.faults.io_error) {
            let at = w.now + self.delay(&mut w.rand);
            w.schedule(at, Event::UpstreamError(token, UpstreamError::Io));
            return query;
        }
        let (script, ip) = *self.upstreams.get(&to).expect("a configured upstream");
        let tcp = matches!(via, Via::Tcp);
        if !tcp && w.rand.chance(self.faults.spoof) {
            self.spoof(w, token, to, &message);
        }
        if !tcp && w.rand.chance(self.faults.loss) {
            return query; // the query is lost
        }
        let mut at = w.now + self.delay(&mut w.rand);
        let reply = match script {
            Script::Silent => return query,
            Script::Answer => planted(&message, ip),
            Script::Slow(ms) => {
                at += Duration::from_millis(ms);
                planted(&message, ip)
            }
            Script::Servfail => upstream_reply(&message, Rcode::SERVFAIL, &[], false),
            Script::TcThenTcp if !tcp => upstream_reply(&message, Rcode::NOERROR, &[], true),
            Script::TcThenTcp => planted(&message, ip),
        };
        if tcp {
            w.schedule_stream(at, token, to, &frame(&reply));
            return query;
        }
        if w.rand.chance(self.faults.loss) {
            return query; // the reply is lost
        }
        if script == Script::Servfail {
            if let Some(q) = query {
                self.known.borrow_mut().servfails.insert((q, to));
            }
        }
        w.schedule(at, Event::Upstream(token, to, reply.clone()));
        if w.rand.chance(self.faults.dup) {
            let again = at + self.delay(&mut w.rand);
            w.schedule(again, Event::Upstream(token, to, reply));
        }
        query
    }

    /// The spoofer (or a slow server) hits the closed token with a perfect reply.
    fn on_close(&mut self, w: &mut World, token: Token) {
        let (to, message) = (w.tokens[&token].to, w.tokens[&token].message.clone());
        if w.rand.chance(self.faults.spoof) {
            w.report.spoofs += 1;
            let at = w.now + self.delay(&mut w.rand);
            let reply = upstream_reply(
                &message,
                Rcode::NOERROR,
                &[Ipv4Addr::new(6, 6, 6, 6)],
                false,
            );
            w.schedule(at, Event::Upstream(token, to, reply));
        }
    }
}

/// A run of a [`Scenario`]: the world and what the checks need to know of it.
struct Run {
    world: World,
    scenario: Scenario,
    upstreams: BTreeMap<SocketAddr, (Script, Ipv4Addr)>,
    known: Rc<RefCell<Known>>,
    /// Per tracked query: its lowercased name, and for a synth name its address.
    keys: Vec<String>,
    synth: Vec<Option<Ipv4Addr>>,
    /// Per tracked query: whether its name is looked up (by the [`Asker`]).
    lookup: Vec<bool>,
}

impl Run {
    fn new(scenario: Scenario) -> Run {
        let upstreams: BTreeMap<SocketAddr, (Script, Ipv4Addr)> = scenario
            .scripts
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let addr = SocketAddr::from(([127, 0, 1, 1 + i as u8], 53));
                (addr, (*s, Ipv4Addr::new(10, 99, 0, 1 + i as u8)))
            })
            .collect();
        let servers: Vec<SocketAddr> = upstreams.keys().copied().collect();
        let mut chain = synth_chain("ws=172.0.2", &[]);
        if let Some(l) = &scenario.lookups {
            chain = chain.with(Asker::new(l.on_timeout));
        }
        chain = chain.with(names_core::Forwarder::new(servers));
        let known = Rc::new(RefCell::new(Known::default()));
        let model = Scripted {
            faults: scenario.faults,
            upstreams: upstreams.clone(),
            known: known.clone(),
        };
        let mut world = World::new(
            scenario.config.clone(),
            chain,
            scenario.seed,
            Box::new(model),
        );
        if let Some(l) = &scenario.lookups {
            world.lookup_faults = l.faults;
        }
        let mut run = Run {
            world,
            scenario,
            upstreams,
            known,
            keys: Vec::new(),
            synth: Vec::new(),
            lookup: Vec::new(),
        };
        run.add_clients();
        run
    }

    /// A fresh query with a unique name (random case), synth or forwarded.
    fn new_query(&mut self, origin: Origin, id: u16) -> usize {
        let w = &mut self.world;
        let i = w.queries.len();
        let lookup_share = self.scenario.lookups.map_or(0.0, |l| l.share);
        let lookup = w.rand.chance(lookup_share);
        let (base, synth) = if lookup {
            (format!("lk{i}.svc.example"), None)
        } else if w.rand.chance(self.scenario.synth_share) {
            let n = (i % 256) as u8;
            let [a, b, c] = SYNTH_NET;
            (
                format!("ws{n}.q{i}.example"),
                Some(Ipv4Addr::new(a, b, c, n)),
            )
        } else {
            (format!("host{i}.example.com"), None)
        };
        let mixed: String = base
            .chars()
            .map(|c| {
                if w.rand.chance(0.5) {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        let edns = match w.rand.below(3) {
            0 => None,
            1 => Some(1232),
            _ => Some(4096),
        };
        let qtype = if lookup || synth.is_some() || w.rand.chance(0.8) {
            Rtype::A
        } else {
            Rtype::TXT
        };
        let q = w.track(origin, query(&mixed, qtype, id, true, edns));
        self.known.borrow_mut().by_key.insert(base.clone(), q);
        self.keys.push(base);
        self.synth.push(synth);
        self.lookup.push(lookup);
        q
    }

    fn add_clients(&mut self) {
        for k in 0..self.scenario.udp_queries {
            let peer = SocketAddr::from(([127, 0, 0, 2], 20000 + k as u16));
            let origin = udp_from(peer);
            let id = self.world.rand.below(65536) as u16;
            let q = self.new_query(origin, id);
            let at = Duration::from_millis(self.world.rand.below(2000));
            self.world.schedule(at, Event::ClientUdp(q));
        }
        let tcp_conns = self.scenario.tcp_conns.clone();
        for (c, n) in tcp_conns.into_iter().enumerate() {
            let conn = ConnId(c as u64 + 1);
            let open = Duration::from_millis(self.world.rand.below(1000));
            self.world.schedule(open, Event::TcpOpen(conn));
            let first_id = self.world.rand.below(60000) as u16;
            let queries: Vec<usize> = (0..n)
                .map(|k| self.new_query(Origin::Tcp(conn), first_id + k as u16))
                .collect();
            let w = &mut self.world;
            // Send in a few bursts: all at once (pipelined) or one by one, cut in random chunks.
            let mut t = open;
            let mut last = open;
            let pipelined = w.rand.chance(0.5);
            let mut k = 0;
            while k < n {
                let burst = if pipelined { n - k } else { 1 };
                let bytes: Vec<u8> = queries[k..k + burst]
                    .iter()
                    .flat_map(|&q| frame(&w.queries[q].message))
                    .collect();
                w.schedule_chunks(conn, t, bytes, queries[k..k + burst].to_vec());
                k += burst;
                last = t;
                t += Duration::from_millis(w.rand.below(500));
            }
            let half_close = w.rand.chance(self.scenario.half_close_share);
            if half_close {
                w.report.half_closed += 1;
                w.schedule(last, Event::TcpEof(conn));
            }
            let reads_at = if self.scenario.stall_ms > 0 && w.rand.chance(0.5) {
                w.report.stalled += 1;
                let at = open + Duration::from_millis(1 + w.rand.below(self.scenario.stall_ms));
                w.schedule(at, Event::ClientReads(conn));
                Some(at)
            } else {
                None
            };
            let closes_itself = !half_close && w.rand.chance(0.5);
            let mut c = Conn::new("127.0.0.3:40000".parse().unwrap(), open);
            c.queries = queries;
            c.closes_itself = closes_itself;
            c.half_close = half_close;
            c.reads_at = reads_at;
            w.conns.insert(conn, c);
        }
        // One address opens idle connections, more than it may hold.
        for f in 0..self.scenario.flood {
            let w = &mut self.world;
            let conn = ConnId(1000 + f as u64);
            let open = Duration::from_millis(w.rand.below(1000));
            w.schedule(open, Event::TcpOpen(conn));
            let peer = SocketAddr::from(([127, 0, 0, 4], 30000 + f as u16));
            w.conns.insert(conn, Conn::new(peer, open));
        }
    }

    /// The scenario's own end-of-run invariants, on top of the world's.
    fn check(&self) {
        let w = &self.world;
        w.check_replies(Duration::from_millis(1));
        let budget = w.config.budget;
        let epsilon = Duration::from_millis(1);
        let all_fail = self.upstreams.values().all(|(s, _)| *s == Script::Servfail);
        let prompt = self.upstreams.values().any(|(s, _)| s.answers_promptly());
        let answering: Vec<Ipv4Addr> = self
            .upstreams
            .values()
            .filter(|(s, _)| !matches!(s, Script::Silent | Script::Servfail))
            .map(|(_, ip)| *ip)
            .collect();
        // Upstreams that failed a query: a SERVFAIL sent, or a failure reported while open.
        let mut failed_at: BTreeSet<(usize, SocketAddr)> = self.known.borrow().servfails.clone();
        for info in w.tokens.values().filter(|t| t.failed) {
            if let Some(q) = info.query {
                failed_at.insert((q, info.to));
            }
        }
        for (i, q) in w.queries.iter().enumerate() {
            let what = format!("query {i} ({}, {:?})", self.keys[i], q.origin);
            let sent = q.sent.expect("checked by the world");
            let (at, bytes) = &q.replies[0];
            let reply = message(bytes);
            let rcode = reply.header().rcode();
            if let Some(addr) = self.synth[i] {
                assert_eq!(rcode, Rcode::NOERROR, "{what}");
                assert_eq!(a_addrs(&reply), vec![addr], "{what}");
                continue;
            }
            if self.lookup[i] {
                self.check_lookup(&what, i, sent, *at, &reply, &answering);
                continue;
            }
            if rcode == Rcode::SERVFAIL {
                let out_of_time = *at + epsilon >= sent + budget;
                let every_upstream_failed =
                    self.upstreams.keys().all(|u| failed_at.contains(&(i, *u)));
                assert!(
                    out_of_time || every_upstream_failed || all_fail,
                    "{what}: SERVFAIL at {at:?} (sent {sent:?}) though not every upstream failed"
                );
            } else {
                assert_eq!(rcode, Rcode::NOERROR, "{what}");
                assert!(!reply.header().aa(), "{what}: AA never forwarded");
                assert!(!reply.header().tc(), "{what}: small answers fit");
                for addr in a_addrs(&reply) {
                    assert!(
                        answering.contains(&addr),
                        "{what}: answer {addr} from a real upstream"
                    );
                }
            }
            let faults = self.scenario.faults;
            if faults.lossless()
                && faults.max_delay_ms <= 300
                && prompt
                && budget >= Duration::from_millis(5000)
            {
                assert_eq!(
                    rcode,
                    Rcode::NOERROR,
                    "{what}: an upstream answers and nothing is lost"
                );
            }
        }
    }

    /// A looked-up name: its address (AA); or after the budget the resolver's own answer;
    /// or, passed on, an upstream's; SERVFAIL only out of time, when the runtime may fail
    /// it (a foreign result, a pass to failing upstreams) or over `max_lookups`.
    fn check_lookup(
        &self,
        what: &str,
        i: usize,
        sent: Duration,
        at: Duration,
        reply: &domain::base::Message<Vec<u8>>,
        answering: &[Ipv4Addr],
    ) {
        let l = self.scenario.lookups.expect("a lookup scenario");
        let w = &self.world;
        let out_of_time = at + Duration::from_millis(1) >= sent + w.config.budget;
        let addrs = a_addrs(reply);
        let key = format!("lk{i}");
        match reply.header().rcode() {
            Rcode::NOERROR if reply.header().aa() => {
                let timeout_answer = Ipv4Addr::new(192, 0, 2, 99);
                if addrs == [timeout_answer] {
                    assert!(out_of_time && l.on_timeout == OnTimeout::Answer, "{what}");
                } else {
                    assert_eq!(addrs, [lookup_addr(&key)], "{what}: the looked-up address");
                }
            }
            Rcode::NOERROR => {
                assert!(l.faults.pass > 0.0, "{what}: forwarded, never passed");
                for addr in addrs {
                    assert!(answering.contains(&addr), "{what}: {addr} from an upstream");
                }
            }
            Rcode::SERVFAIL => assert!(
                out_of_time
                    || l.faults.foreign > 0.0
                    || l.faults.pass > 0.0
                    || w.server.stats().overloaded > 0,
                "{what}: SERVFAIL at {at:?} (sent {sent:?})"
            ),
            other => panic!("{what}: {other}"),
        }
    }

    /// Tallies the forwarded queries' outcomes into the report.
    fn summarize(&mut self) {
        let w = &mut self.world;
        for (i, q) in w.queries.iter().enumerate() {
            if self.synth[i].is_some() || self.lookup[i] {
                continue;
            }
            let (at, bytes) = &q.replies[0];
            let rcode = message(bytes).header().rcode().to_string();
            *w.report.forwarded.entry(rcode).or_default() += 1;
            let latency = *at - q.sent.unwrap_or_default();
            w.report.max_forward_latency = w.report.max_forward_latency.max(latency);
        }
    }
}

/// Runs a scenario to the end and checks every invariant.
pub fn simulate(scenario: Scenario) -> Report {
    let mut run = Run::new(scenario);
    run.world.finish();
    run.check();
    run.summarize();
    std::mem::take(&mut run.world.report)
}
