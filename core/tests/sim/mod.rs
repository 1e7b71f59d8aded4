//! Deterministic simulation of a `Server` in a world of fake clients, fake upstreams,
//! a spoofer and a lossy network, after quinn's `Pair`: one `Instant` epoch, then only
//! offsets; a seeded RNG decides every fault; `run` jumps time to the next event or
//! timer and is bounded.
//!
//! Invariants are checked as the world runs (token closed once, no live (ID, port)
//! repeat, no close of a connection with queries in flight; after every step, the memory
//! bounds of every TCP connection: unwritten reply bytes, unread input, connections per
//! address) and at the end by [`World::check`] (one reply per query, in time, matching,
//! nothing left behind, half-closed connections closed by the server once answered).
//!
//! TCP clients may stall (the runtime reports their replies written only once they read),
//! half-close after their queries, and one address may open a flood of idle connections.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::{
    Action, Chain, Config, ConnId, Forwarder, Origin, Server, Synth, SynthRule, Token,
    UpstreamError, Via,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::common::{
    a_addrs, epoch, framed, parse, query, question_bytes, unframe, upstream_reply, with_id,
};

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
        let pick = |r: &mut Rand, options: &[f64]| options[r.below(options.len() as u64) as usize];
        let faults = Faults {
            loss: pick(&mut r, &[0.0, 0.0, 0.05, 0.2, 0.5]),
            dup: pick(&mut r, &[0.0, 0.1, 0.3]),
            max_delay_ms: pick(&mut r, &[0.0, 20.0, 300.0, 1500.0]) as u64,
            spoof: pick(&mut r, &[0.0, 0.2, 0.8]),
            bind_error: pick(&mut r, &[0.0, 0.0, 0.1]),
            io_error: pick(&mut r, &[0.0, 0.0, 0.05]),
        };
        let budget = pick(&mut r, &[5000.0, 5000.0, 1500.0, 300.0]) as u64;
        let tcp_conns = (0..r.below(4)).map(|_| 1 + r.below(6) as usize).collect();
        let buffered = pick(&mut r, &[65536.0, 65536.0, 400.0, 100.0]) as usize;
        // A small pipelining limit makes the unwritten-bytes bound tight enough to catch a
        // server that takes queries past the buffering limit.
        let pipelined = pick(&mut r, &[64.0, 64.0, 2.0]) as usize;
        Scenario {
            seed,
            faults,
            scripts,
            udp_queries: r.below(25) as usize,
            tcp_conns,
            synth_share: 0.2,
            half_close_share: pick(&mut r, &[0.0, 0.5, 1.0]),
            stall_ms: pick(&mut r, &[0.0, 0.0, 800.0, 4000.0]) as u64,
            flood: pick(&mut r, &[0.0, 0.0, 3.0, 8.0]) as usize,
            config: Config {
                budget: Duration::from_millis(budget),
                max_tcp_buffered: buffered,
                max_pipelined: pipelined,
                max_tcp_per_client: 4,
                ..Config::default()
            },
        }
    }
}

/// A small seeded RNG for the world's decisions.
pub struct Rand(ChaCha8Rng);

impl Rand {
    pub fn new(seed: u64) -> Rand {
        Rand(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn seed(&mut self) -> [u8; 32] {
        let mut s = [0; 32];
        self.0.fill_bytes(&mut s);
        s
    }
}

/// A client query and what became of it.
#[derive(Debug)]
pub struct ClientQuery {
    pub origin: Origin,
    pub id: u16,
    pub message: Vec<u8>,
    /// The lowercased question name, unique per query.
    pub key: String,
    /// A synth name, and the address it must get.
    pub synth: Option<Ipv4Addr>,
    /// When the server got its last byte.
    pub sent: Option<Duration>,
    pub replies: Vec<(Duration, Vec<u8>)>,
    /// When the server took it: its first upstream query, or its reply. A TCP query can
    /// wait in the server's buffer behind the pipelining or buffering limit.
    taken: Option<Duration>,
    /// Upstreams that failed for this query (SERVFAIL delivered, or an error reported).
    failed_at: BTreeSet<SocketAddr>,
}

enum Event {
    /// A UDP query from a client.
    ClientUdp(usize),
    TcpOpen(ConnId),
    /// Bytes from a TCP client; the queries whose last byte they carry.
    TcpChunk(ConnId, Vec<u8>, Vec<usize>),
    TcpClose(ConnId),
    /// The client shuts down its sending side.
    TcpEof(ConnId),
    /// A stalled client starts reading: the runtime writes what it held back.
    ClientReads(ConnId),
    /// A datagram or TCP chunk from an upstream (or the spoofer) for a token.
    Upstream(Token, SocketAddr, Vec<u8>),
    UpstreamError(Token, UpstreamError),
}

struct TokenInfo {
    to: SocketAddr,
    via: Via,
    message: Vec<u8>,
    query: Option<usize>,
    closed: u32,
}

struct Conn {
    peer: SocketAddr,
    queries: Vec<usize>,
    closed: bool,
    paused: bool,
    held: Vec<Event>,
    /// Whether the client closes it itself once answered (else the idle timer does).
    closes_itself: bool,
    /// The client half-closes after its last query; the server must close it.
    half_close: bool,
    /// The client reads nothing before this time.
    reads_at: Option<Duration>,
    /// Reply bytes the runtime could not write yet (the client does not read).
    held_written: usize,
    /// When the server closed it, and whether at once (over a cap).
    closed_by_server: Option<Duration>,
    opened_at: Duration,
    last_reply: Duration,
}

/// Tallies of a finished run.
#[derive(Debug, Default)]
pub struct Report {
    pub by_rcode: BTreeMap<String, usize>,
    pub tokens: usize,
    pub tcp_tries: usize,
    pub steps: usize,
    pub spoofs: usize,
    /// Replies to forwarded (not synth) queries, by rcode.
    pub forwarded: BTreeMap<String, usize>,
    /// The longest time a forwarded query waited for its reply.
    pub max_forward_latency: Duration,
    /// Connections half-closed by their client, stalled clients, flood connections
    /// refused at once, and the most unwritten reply bytes seen on one connection.
    pub half_closed: usize,
    pub stalled: usize,
    pub flood_refused: usize,
    pub max_unwritten: usize,
    /// Times a connection had more unwritten bytes than `max_tcp_buffered`.
    pub over_buffered: usize,
}

/// The world: the server, the clients, the upstreams and the network.
pub struct World {
    pub server: Server,
    scenario: Scenario,
    rand: Rand,
    now: Duration,
    events: BTreeMap<(Duration, u64), Event>,
    seq: u64,
    upstreams: BTreeMap<SocketAddr, (Script, Ipv4Addr)>,
    pub queries: Vec<ClientQuery>,
    udp_index: BTreeMap<SocketAddr, usize>,
    tcp_index: BTreeMap<(ConnId, u16), usize>,
    by_key: BTreeMap<String, usize>,
    conns: BTreeMap<ConnId, Conn>,
    tokens: BTreeMap<Token, TokenInfo>,
    live_pairs: BTreeMap<(u16, u16), Token>,
    report: Report,
    /// The largest TCP reply seen (framed), for the unwritten-bytes bound.
    largest_reply: usize,
}

const SPOOF_FROM: &str = "127.0.66.66:53";
const SYNTH_NET: [u8; 3] = [172, 0, 2];

impl World {
    pub fn new(scenario: Scenario) -> World {
        let mut rand = Rand::new(scenario.seed);
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
        let chain = Chain::new()
            .with(Synth::new(vec![SynthRule::parse("ws=172.0.2").unwrap()]))
            .with(Forwarder::new(servers));
        let server = Server::new(scenario.config.clone(), chain, rand.seed());
        let mut world = World {
            server,
            rand,
            now: Duration::ZERO,
            events: BTreeMap::new(),
            seq: 0,
            upstreams,
            queries: Vec::new(),
            udp_index: BTreeMap::new(),
            tcp_index: BTreeMap::new(),
            by_key: BTreeMap::new(),
            conns: BTreeMap::new(),
            tokens: BTreeMap::new(),
            live_pairs: BTreeMap::new(),
            report: Report::default(),
            largest_reply: 0,
            scenario,
        };
        world.add_clients();
        world
    }

    fn schedule(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }

    fn instant(&self) -> Instant {
        epoch() + self.now
    }

    /// A fresh query with a unique name (random case), synth or forwarded.
    fn new_query(&mut self, origin: Origin, id: u16) -> usize {
        let i = self.queries.len();
        let (base, synth) = if self.rand.chance(self.scenario.synth_share) {
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
                if self.rand.chance(0.5) {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        let edns = match self.rand.below(3) {
            0 => None,
            1 => Some(1232),
            _ => Some(4096),
        };
        let qtype = if synth.is_some() || self.rand.chance(0.8) {
            Rtype::A
        } else {
            Rtype::TXT
        };
        let message = query(id, &mixed, qtype, true, edns);
        self.by_key.insert(base.clone(), i);
        self.queries.push(ClientQuery {
            origin,
            id,
            message,
            key: base,
            synth,
            sent: None,
            replies: Vec::new(),
            taken: None,
            failed_at: BTreeSet::new(),
        });
        i
    }

    fn add_clients(&mut self) {
        for k in 0..self.scenario.udp_queries {
            let peer = SocketAddr::from(([127, 0, 0, 2], 20000 + k as u16));
            let origin = Origin::Udp { listener: 0, peer };
            let id = self.rand.below(65536) as u16;
            let q = self.new_query(origin, id);
            self.udp_index.insert(peer, q);
            let at = Duration::from_millis(self.rand.below(2000));
            self.schedule(at, Event::ClientUdp(q));
        }
        let tcp_conns = self.scenario.tcp_conns.clone();
        for (c, n) in tcp_conns.into_iter().enumerate() {
            let conn = ConnId(c as u64 + 1);
            let open = Duration::from_millis(self.rand.below(1000));
            self.schedule(open, Event::TcpOpen(conn));
            let first_id = self.rand.below(60000) as u16;
            let queries: Vec<usize> = (0..n)
                .map(|k| self.new_query(Origin::Tcp(conn), first_id + k as u16))
                .collect();
            for &q in &queries {
                self.tcp_index.insert((conn, self.queries[q].id), q);
            }
            // Send in a few bursts: all at once (pipelined) or one by one, cut in random chunks.
            let mut t = open;
            let mut last = open;
            let pipelined = self.rand.chance(0.5);
            let mut k = 0;
            while k < n {
                let burst = if pipelined { n - k } else { 1 };
                let bytes: Vec<u8> = queries[k..k + burst]
                    .iter()
                    .flat_map(|&q| framed(&self.queries[q].message))
                    .collect();
                self.schedule_chunks(conn, t, bytes, queries[k..k + burst].to_vec());
                k += burst;
                last = t;
                t += Duration::from_millis(self.rand.below(500));
            }
            let half_close = self.rand.chance(self.scenario.half_close_share);
            if half_close {
                self.report.half_closed += 1;
                self.schedule(last, Event::TcpEof(conn));
            }
            let reads_at = if self.scenario.stall_ms > 0 && self.rand.chance(0.5) {
                self.report.stalled += 1;
                let at = open + Duration::from_millis(1 + self.rand.below(self.scenario.stall_ms));
                self.schedule(at, Event::ClientReads(conn));
                Some(at)
            } else {
                None
            };
            let closes_itself = !half_close && self.rand.chance(0.5);
            self.conns.insert(
                conn,
                Conn {
                    peer: "127.0.0.3:40000".parse().unwrap(),
                    queries,
                    closed: false,
                    paused: false,
                    held: Vec::new(),
                    closes_itself,
                    half_close,
                    reads_at,
                    held_written: 0,
                    closed_by_server: None,
                    opened_at: open,
                    last_reply: Duration::ZERO,
                },
            );
        }
        // One address opens idle connections, more than it may hold.
        for f in 0..self.scenario.flood {
            let conn = ConnId(1000 + f as u64);
            let open = Duration::from_millis(self.rand.below(1000));
            self.schedule(open, Event::TcpOpen(conn));
            self.conns.insert(
                conn,
                Conn {
                    peer: SocketAddr::from(([127, 0, 0, 4], 30000 + f as u16)),
                    queries: Vec::new(),
                    closed: false,
                    paused: false,
                    held: Vec::new(),
                    closes_itself: false,
                    half_close: false,
                    reads_at: None,
                    held_written: 0,
                    closed_by_server: None,
                    opened_at: open,
                    last_reply: Duration::ZERO,
                },
            );
        }
    }

    /// The memory bounds of every open connection, checked after every step: unwritten
    /// reply bytes at most `max_tcp_buffered` plus the replies of the queries that may be
    /// in flight when the limit is reached (`max_pipelined` of the largest reply), unread
    /// input at most `max_tcp_buffered` plus one largest frame, connections per address
    /// at most `max_tcp_per_client`; and the core's count of unwritten bytes is exactly
    /// what the runtime holds.
    fn check_bounds(&mut self) {
        let config = &self.scenario.config;
        let reply_bound = config.max_tcp_buffered + config.max_pipelined * self.largest_reply;
        let mut per_ip: BTreeMap<std::net::IpAddr, usize> = BTreeMap::new();
        for (id, c) in &self.conns {
            if c.closed {
                continue;
            }
            let unwritten = self.server.tcp_unwritten(*id);
            assert_eq!(unwritten, c.held_written, "{id:?}: unwritten bytes");
            assert!(
                unwritten <= reply_bound,
                "{id:?}: {unwritten} unwritten bytes, bound {reply_bound}"
            );
            self.report.max_unwritten = self.report.max_unwritten.max(unwritten);
            if unwritten > config.max_tcp_buffered {
                self.report.over_buffered += 1;
            }
            let unread = self.server.tcp_unread(*id);
            assert!(
                unread <= config.max_tcp_buffered + 65_537,
                "{id:?}: {unread} unread bytes"
            );
            *per_ip.entry(c.peer.ip()).or_default() += 1;
        }
        for (ip, n) in per_ip {
            assert!(
                self.server.connections_from(ip) <= config.max_tcp_per_client,
                "{ip}: {n} connections"
            );
        }
    }

    /// Schedules `bytes` in random chunks at `at`; the queries complete with the last chunk.
    fn schedule_chunks(
        &mut self,
        conn: ConnId,
        at: Duration,
        bytes: Vec<u8>,
        complete: Vec<usize>,
    ) {
        // Where each query's frame ends in the stream: it is sent with the chunk holding its
        // last byte (a chunk may be held back while the connection is paused).
        let mut ends = Vec::new();
        let mut end = 0;
        for &q in &complete {
            end += self.queries[q].message.len() + 2;
            ends.push((end, q));
        }
        let mut rest = &bytes[..];
        let mut offset = 0;
        while !rest.is_empty() {
            let len = if self.rand.chance(0.5) {
                rest.len()
            } else {
                1 + self.rand.below(rest.len() as u64) as usize
            };
            let (chunk, tail) = rest.split_at(len);
            let done = ends
                .iter()
                .filter(|(e, _)| *e > offset && *e <= offset + len)
                .map(|(_, q)| *q)
                .collect();
            self.schedule(at, Event::TcpChunk(conn, chunk.to_vec(), done));
            offset += len;
            rest = tail;
        }
    }

    /// Runs until nothing is scheduled and no timer is armed; panics past `max_steps`.
    pub fn run(&mut self, max_steps: usize) -> &Report {
        for step in 0..max_steps {
            self.drain_actions();
            let timer = self
                .server
                .poll_timeout()
                .map(|t| t.saturating_duration_since(epoch()));
            let event = self.events.keys().next().map(|k| k.0);
            let next = match (timer, event) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => {
                        self.report.steps = step;
                        return &self.report;
                    }
                },
            };
            self.now = self.now.max(next);
            while let Some(entry) = self.events.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let event = entry.remove();
                self.deliver(event);
                self.drain_actions();
                self.check_bounds();
            }
            self.server.handle_timeout(self.instant());
            self.drain_actions();
            self.check_bounds();
        }
        panic!("not quiescent after {max_steps} steps at {:?}", self.now);
    }

    fn deliver(&mut self, event: Event) {
        let now = self.instant();
        match event {
            Event::ClientUdp(q) => {
                self.queries[q].sent = Some(self.now);
                let (origin, message) = (self.queries[q].origin, self.queries[q].message.clone());
                self.server.handle_client(now, origin, &message);
            }
            Event::TcpOpen(conn) => {
                let peer = self.conns[&conn].peer;
                let from_peer = self.server.connections_from(peer.ip());
                self.server.handle_tcp_open(now, conn, peer);
                if from_peer >= self.scenario.config.max_tcp_per_client {
                    // Over the per-address cap: closed at once.
                    let actions: Vec<Action> =
                        std::iter::from_fn(|| self.server.poll_action()).collect();
                    assert!(
                        actions
                            .iter()
                            .any(|a| matches!(a, Action::CloseClient { conn: c } if *c == conn)),
                        "{conn:?} over the per-address cap stays open"
                    );
                    self.report.flood_refused += 1;
                    for a in actions {
                        self.act(a);
                    }
                }
            }
            Event::TcpEof(conn) => {
                let c = self.conns.get_mut(&conn).unwrap();
                if c.closed {
                    return;
                }
                if c.paused {
                    c.held.push(Event::TcpEof(conn));
                    return;
                }
                self.server.handle_tcp_eof(now, conn);
            }
            Event::ClientReads(conn) => {
                let c = self.conns.get_mut(&conn).unwrap();
                let held = std::mem::take(&mut c.held_written);
                if !c.closed && held > 0 {
                    self.server.handle_tcp_written(now, conn, held);
                }
            }
            Event::TcpChunk(conn, bytes, done) => {
                let c = self.conns.get_mut(&conn).unwrap();
                assert!(!c.closed, "the client sends only on an open connection");
                if c.paused {
                    c.held.push(Event::TcpChunk(conn, bytes, done));
                    return;
                }
                for q in done {
                    self.queries[q].sent = Some(self.now);
                }
                self.server.handle_client(now, Origin::Tcp(conn), &bytes);
            }
            Event::TcpClose(conn) => {
                let c = self.conns.get_mut(&conn).unwrap();
                if !c.closed {
                    c.closed = true;
                    self.server.handle_tcp_closed(now, conn);
                }
            }
            Event::Upstream(token, from, bytes) => {
                self.server.handle_upstream(now, token, from, &bytes);
            }
            Event::UpstreamError(token, err) => {
                if let Some(q) = self.tokens.get(&token).and_then(|t| t.query) {
                    if self.tokens[&token].closed == 0 {
                        let to = self.tokens[&token].to;
                        self.queries[q].failed_at.insert(to);
                    }
                }
                self.server.handle_upstream_error(now, token, err);
            }
        }
    }

    fn drain_actions(&mut self) {
        while let Some(action) = self.server.poll_action() {
            self.act(action);
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Reply { to, bytes } => self.on_reply(to, bytes),
            Action::SendUpstream {
                token,
                to,
                via,
                bytes,
            } => self.on_send(token, to, via, bytes),
            Action::CloseUpstream { token } => self.on_close(token),
            Action::CloseClient { conn } => {
                let c = self.conns.get_mut(&conn).expect("known connection");
                assert!(!c.closed, "{conn:?} closed twice");
                c.closed = true;
                c.closed_by_server = Some(self.now);
                c.held_written = 0;
                for &q in &c.queries {
                    assert_eq!(
                        self.queries[q].replies.len(),
                        1,
                        "{conn:?} closed with query {q} unanswered"
                    );
                }
            }
            Action::PauseRead { conn } => {
                let c = self.conns.get_mut(&conn).unwrap();
                assert!(!c.paused);
                c.paused = true;
            }
            Action::ResumeRead { conn } => {
                let c = self.conns.get_mut(&conn).unwrap();
                assert!(c.paused);
                c.paused = false;
                let held = std::mem::take(&mut c.held);
                let now = self.now;
                for e in held {
                    self.schedule(now, e);
                }
            }
            Action::Log(_) => {}
        }
    }

    fn on_reply(&mut self, to: Origin, bytes: Vec<u8>) {
        let bytes_len = bytes.len();
        let (q, message) = match to {
            Origin::Udp { peer, .. } => (self.udp_index[&peer], bytes),
            Origin::Tcp(conn) => {
                let message = unframe(&bytes).to_vec();
                let id = u16::from_be_bytes([message[0], message[1]]);
                let q = *self
                    .tcp_index
                    .get(&(conn, id))
                    .unwrap_or_else(|| panic!("reply with unknown id {id} on {conn:?}"));
                (q, message)
            }
        };
        let rcode = parse(&message).header().rcode();
        *self.report.by_rcode.entry(rcode.to_string()).or_default() += 1;
        self.queries[q].replies.push((self.now, message));
        self.queries[q].taken.get_or_insert(self.now);
        if let Origin::Tcp(conn) = to {
            self.largest_reply = self.largest_reply.max(bytes_len);
            let now = self.now;
            let c = self.conns.get_mut(&conn).unwrap();
            c.last_reply = now;
            // The runtime writes a reply only once its client reads.
            if c.reads_at.is_some_and(|t| now < t) {
                c.held_written += bytes_len;
            } else {
                self.server
                    .handle_tcp_written(self.instant(), conn, bytes_len);
            }
            let c = &self.conns[&conn];
            let all = c
                .queries
                .iter()
                .all(|&q| !self.queries[q].replies.is_empty());
            if all && c.closes_itself {
                let at = self.now + Duration::from_millis(self.rand.below(50));
                self.schedule(at, Event::TcpClose(conn));
            }
        }
    }

    fn on_send(&mut self, token: Token, to: SocketAddr, via: Via, bytes: Vec<u8>) {
        self.report.tokens += 1;
        let message = match via {
            Via::Tcp => {
                self.report.tcp_tries += 1;
                unframe(&bytes).to_vec()
            }
            Via::Udp { local_port } => {
                assert!(local_port >= 1024, "port {local_port}");
                let id = u16::from_be_bytes([bytes[0], bytes[1]]);
                if let Some(other) = self.live_pairs.insert((id, local_port), token) {
                    panic!("(id {id}, port {local_port}) of {token:?} repeats live {other:?}");
                }
                bytes
            }
        };
        let msg = parse(&message);
        let key = msg
            .sole_question()
            .expect("one question upstream")
            .qname()
            .to_string()
            .to_ascii_lowercase();
        let query = self.by_key.get(&key).copied();
        assert!(query.is_some(), "upstream query for unknown name {key}");
        if let Some(q) = query {
            self.queries[q].taken.get_or_insert(self.now);
        }
        let old = self.tokens.insert(
            token,
            TokenInfo {
                to,
                via,
                message: message.clone(),
                query,
                closed: 0,
            },
        );
        assert!(old.is_none(), "{token:?} reused");
        // The runtime may fail to carry it out.
        if matches!(via, Via::Udp { .. }) && self.rand.chance(self.scenario.faults.bind_error) {
            self.schedule(self.now, Event::UpstreamError(token, UpstreamError::Bind));
            return;
        }
        if self.rand.chance(self.scenario.faults.io_error) {
            let at = self.now + self.delay();
            self.schedule(at, Event::UpstreamError(token, UpstreamError::Io));
            return;
        }
        let (script, ip) = *self.upstreams.get(&to).expect("a configured upstream");
        let tcp = matches!(via, Via::Tcp);
        if !tcp && self.rand.chance(self.scenario.faults.spoof) {
            self.spoof(token, to, &message);
        }
        if !tcp && self.rand.chance(self.scenario.faults.loss) {
            return; // the query is lost
        }
        let mut at = self.now + self.delay();
        let reply = match script {
            Script::Silent => return,
            Script::Answer => upstream_reply(&message, Rcode::NOERROR, &[ip], false),
            Script::Slow(ms) => {
                at += Duration::from_millis(ms);
                upstream_reply(&message, Rcode::NOERROR, &[ip], false)
            }
            Script::Servfail => upstream_reply(&message, Rcode::SERVFAIL, &[], false),
            Script::TcThenTcp if !tcp => upstream_reply(&message, Rcode::NOERROR, &[], true),
            Script::TcThenTcp => upstream_reply(&message, Rcode::NOERROR, &[ip], false),
        };
        if tcp {
            // Reliable and in order, in arbitrary chunks.
            let stream = framed(&reply);
            let mut rest = &stream[..];
            while !rest.is_empty() {
                let len = 1 + self.rand.below(rest.len() as u64) as usize;
                let (chunk, tail) = rest.split_at(len);
                self.schedule(at, Event::Upstream(token, to, chunk.to_vec()));
                rest = tail;
            }
            return;
        }
        if self.rand.chance(self.scenario.faults.loss) {
            return; // the reply is lost
        }
        if script == Script::Servfail {
            if let Some(q) = query {
                self.queries[q].failed_at.insert(to);
            }
        }
        self.schedule(at, Event::Upstream(token, to, reply.clone()));
        if self.rand.chance(self.scenario.faults.dup) {
            let again = at + self.delay();
            self.schedule(again, Event::Upstream(token, to, reply));
        }
    }

    fn delay(&mut self) -> Duration {
        let max = self.scenario.faults.max_delay_ms;
        Duration::from_millis(1 + self.rand.below(max + 1))
    }

    /// A reply that must be ignored, arriving before the real one could.
    fn spoof(&mut self, token: Token, to: SocketAddr, message: &[u8]) {
        self.report.spoofs += 1;
        let good = upstream_reply(message, Rcode::NOERROR, &[Ipv4Addr::new(6, 6, 6, 6)], false);
        let id = u16::from_be_bytes([message[0], message[1]]);
        let (from, bytes) = match self.rand.below(5) {
            0 => (SPOOF_FROM.parse().unwrap(), good),
            1 => (SocketAddr::new(to.ip(), to.port() + 1), good),
            2 => (
                to,
                with_id(&good, id.wrapping_add(1 + self.rand.below(65535) as u16)),
            ),
            3 => {
                let other = query(id, "evil.example", Rtype::A, true, None);
                (
                    to,
                    upstream_reply(&other, Rcode::NOERROR, &[Ipv4Addr::new(6, 6, 6, 6)], false),
                )
            }
            _ => {
                let len = self.rand.below(40) as usize;
                let junk = (0..len).map(|_| self.rand.below(256) as u8).collect();
                (to, junk)
            }
        };
        let at = self.now + Duration::from_millis(self.rand.below(2));
        self.schedule(at, Event::Upstream(token, from, bytes));
    }

    fn on_close(&mut self, token: Token) {
        let info = self
            .tokens
            .get_mut(&token)
            .unwrap_or_else(|| panic!("close of unknown {token:?}"));
        info.closed += 1;
        assert_eq!(info.closed, 1, "{token:?} closed twice");
        if let Via::Udp { local_port } = info.via {
            let id = u16::from_be_bytes([info.message[0], info.message[1]]);
            assert_eq!(self.live_pairs.remove(&(id, local_port)), Some(token));
        }
        // The spoofer (or a slow server) hits the closed token with a perfect reply.
        let (to, message) = (info.to, info.message.clone());
        if self.rand.chance(self.scenario.faults.spoof) {
            self.report.spoofs += 1;
            let at = self.now + self.delay();
            let reply = upstream_reply(
                &message,
                Rcode::NOERROR,
                &[Ipv4Addr::new(6, 6, 6, 6)],
                false,
            );
            self.schedule(at, Event::Upstream(token, to, reply));
        }
    }

    /// The end-of-run invariants.
    pub fn check(&self) {
        let budget = self.scenario.config.budget;
        let epsilon = Duration::from_millis(1);
        let all_fail = self.upstreams.values().all(|(s, _)| *s == Script::Servfail);
        let prompt: Vec<Ipv4Addr> = self
            .upstreams
            .values()
            .filter(|(s, _)| s.answers_promptly())
            .map(|(_, ip)| *ip)
            .collect();
        let answering: Vec<Ipv4Addr> = self
            .upstreams
            .values()
            .filter(|(s, _)| !matches!(s, Script::Silent | Script::Servfail))
            .map(|(_, ip)| *ip)
            .collect();
        for (i, q) in self.queries.iter().enumerate() {
            let what = format!("query {i} ({}, {:?})", q.key, q.origin);
            let sent = q.sent.unwrap_or_else(|| panic!("{what} never sent"));
            // The budget runs from when the server took the query.
            let taken_by = q.taken.unwrap_or(sent);
            assert!(taken_by >= sent, "{what}: taken before it was sent");
            if matches!(q.origin, Origin::Udp { .. }) {
                assert_eq!(taken_by, sent, "{what}: a datagram is taken at once");
            }
            assert_eq!(q.replies.len(), 1, "{what}: exactly one reply");
            let (at, bytes) = &q.replies[0];
            let reply = parse(bytes);
            assert_eq!(reply.header().id(), q.id, "{what}: ID");
            assert!(reply.header().qr());
            assert_eq!(
                question_bytes(bytes),
                question_bytes(&q.message),
                "{what}: question"
            );
            assert!(*at >= sent);
            assert!(
                *at <= taken_by + budget + epsilon,
                "{what}: replied at {at:?}, sent {sent:?}, taken by {taken_by:?}, budget {budget:?}"
            );
            let rcode = reply.header().rcode();
            if let Some(addr) = q.synth {
                assert_eq!(rcode, Rcode::NOERROR, "{what}");
                assert_eq!(a_addrs(&reply), vec![addr], "{what}");
                continue;
            }
            if rcode == Rcode::SERVFAIL {
                let out_of_time = *at + epsilon >= sent + budget;
                let every_upstream_failed = self.upstreams.keys().all(|u| q.failed_at.contains(u));
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
            if self.scenario.faults.lossless()
                && self.scenario.faults.max_delay_ms <= 300
                && !prompt.is_empty()
                && budget >= Duration::from_millis(5000)
            {
                assert_eq!(
                    rcode,
                    Rcode::NOERROR,
                    "{what}: an upstream answers and nothing is lost"
                );
            }
        }
        for (t, info) in &self.tokens {
            assert_eq!(info.closed, 1, "{t:?} closed exactly once");
        }
        assert!(self.live_pairs.is_empty());
        assert_eq!(self.server.pending_queries(), 0, "pending queries left");
        assert_eq!(self.server.open_exchanges(), 0, "exchanges left");
        assert_eq!(self.server.open_upstream_tokens(), 0, "tokens left");
        assert_eq!(self.server.open_connections(), 0, "connections left");
        for (id, c) in &self.conns {
            assert!(c.closed, "{id:?} still open");
            if c.half_close {
                // Closed by the server as soon as everything read was answered and written.
                let closed = c
                    .closed_by_server
                    .unwrap_or_else(|| panic!("{id:?} not closed by the server"));
                let ready = c
                    .last_reply
                    .max(c.reads_at.unwrap_or_default())
                    .max(c.opened_at);
                assert!(
                    closed <= ready,
                    "{id:?} half-closed: closed at {closed:?}, all answered and written at {ready:?}"
                );
            }
        }
        assert_eq!(self.server.poll_timeout(), None, "no timer left");
    }

    /// Tallies the forwarded queries' outcomes into the report.
    fn summarize(&mut self) {
        for q in self.queries.iter().filter(|q| q.synth.is_none()) {
            let (at, bytes) = &q.replies[0];
            let rcode = parse(bytes).header().rcode().to_string();
            *self.report.forwarded.entry(rcode).or_default() += 1;
            let latency = *at - q.sent.unwrap_or_default();
            self.report.max_forward_latency = self.report.max_forward_latency.max(latency);
        }
    }
}

/// Runs a scenario to the end and checks every invariant.
pub fn simulate(scenario: Scenario) -> Report {
    let mut world = World::new(scenario);
    world.run(100_000);
    world.check();
    world.summarize();
    std::mem::take(&mut world.report)
}
