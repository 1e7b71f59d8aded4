//! The simulated world: one [`names_core::Server`] among fake clients, fake upstreams, a spoofer and
//! a lossy network, after quinn's `Pair`. One `Instant` epoch, then only offsets; every
//! event is scheduled at a time and [`World::run`] jumps time to the next event or timer,
//! bounded. What the upstreams do is a model's business ([`Upstreams`]): the scripted,
//! lossy network of [`random`] (the seeded simulation) and the fuzzer's arbitrary
//! behaviours (`crate::fuzz::scenario`) drive the same world, and the byte-level fuzz
//! bodies step it by hand.
//!
//! Invariants are checked as the world runs: a token is used and closed once, no live
//! (ID, port) pair repeats, TCP replies and upstream queries are exact frames, no
//! connection with queries in flight is closed; after every step the bounds: waiting
//! queries, open exchanges, bytes an upstream TCP try holds, and per TCP connection
//! unwritten reply bytes (exactly what the runtime holds), unread input and connections
//! per address, lookups in flight; no reply carries a record an upstream planted for
//! the scrubber to drop ([`planted_reply`]). Lookups are carried by the world's runtime as
//! [`lookup::LookupFaults`] say (late, never, out of order, twice, to unknown ids): an id
//! is never reused, cancelled only while in flight, and each ends once, completed or
//! timed out. [`World::finish`] runs the timers out and checks nothing is left;
//! [`World::check_replies`] checks one reply per tracked query, in time, matching.
//!
//! [`recursion`] puts a recursor in the same world, the in-memory DNS hierarchy as its
//! upstream side.
//!
//! TCP clients may stall (the runtime reports their replies written only once they
//! read), half-close after their queries, and one address may open a flood of idle
//! connections.

mod check;
pub mod lookup;
mod world;

pub mod random;
pub mod recursion;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use names_core::{ConnId, LookupId, Origin, Token, UpstreamError, Via};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

pub use check::{parse_back, planted_in, planted_reply, udp_limit, PLANTED_ADDR, PLANTED_ZONE};
pub use world::World;

/// The most an upstream TCP try may hold: one frame of the largest size and its prefix.
pub const MAX_TCP_HELD: usize = 65535 + 2;

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

    /// One of `options`, each as likely (repeat one to weigh it).
    pub fn pick(&mut self, options: &[f64]) -> f64 {
        options[self.below(options.len() as u64) as usize]
    }

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// 32 random bytes (a server's RNG seed).
    pub fn seed(&mut self) -> [u8; 32] {
        let mut s = [0; 32];
        self.0.fill_bytes(&mut s);
        s
    }
}

/// Something scheduled in the world.
#[derive(Clone, Debug)]
pub enum Event {
    /// A tracked UDP query from a client.
    ClientUdp(usize),
    /// Bytes from a client, untracked, handed over as they are: a datagram, or a TCP
    /// read (even on a closed or paused connection).
    Client(Origin, Vec<u8>),
    TcpOpen(ConnId),
    /// Bytes from a TCP client; the tracked queries whose last byte they carry.
    TcpChunk(ConnId, Vec<u8>, Vec<usize>),
    TcpClose(ConnId),
    /// The client shuts down its sending side.
    TcpEof(ConnId),
    /// A stalled client starts reading: the runtime writes what it held back.
    ClientReads(ConnId),
    /// A datagram or TCP chunk from an upstream (or the spoofer) for a token.
    Upstream(Token, SocketAddr, Vec<u8>),
    UpstreamError(Token, UpstreamError),
    /// The runtime hands back a lookup's result (maybe late, twice, or for an unknown id).
    Lookup(LookupId, lookup::SimResult),
}

/// A tracked client query and what became of it.
#[derive(Debug)]
pub struct ClientQuery {
    pub origin: Origin,
    pub id: u16,
    pub message: Vec<u8>,
    /// When the server got its last byte.
    pub sent: Option<Duration>,
    pub replies: Vec<(Duration, Vec<u8>)>,
    /// When the server took it: its first upstream query (as the model tells), or its
    /// reply. A TCP query can wait in the server's buffer behind the pipelining or
    /// buffering limit.
    pub taken: Option<Duration>,
}

/// A client TCP connection.
#[derive(Debug)]
pub struct Conn {
    pub peer: SocketAddr,
    /// Tracked queries sent on it.
    pub queries: Vec<usize>,
    pub closed: bool,
    pub paused: bool,
    held: Vec<Event>,
    /// Whether the client closes it itself once answered (else the idle timer does).
    pub closes_itself: bool,
    /// The client half-closes after its last query; the server must close it.
    pub half_close: bool,
    /// The client reads nothing before this time.
    pub reads_at: Option<Duration>,
    /// Whether the client is not reading now.
    pub stalled: bool,
    /// Reply bytes the runtime could not write yet (the client does not read).
    pub held_written: usize,
    /// When the server closed it.
    pub closed_by_server: Option<Duration>,
    pub opened_at: Duration,
    pub last_reply: Duration,
}

impl Conn {
    /// A connection from `peer` that reads at once and is closed by the idle timer.
    pub fn new(peer: SocketAddr, opened_at: Duration) -> Conn {
        Conn {
            peer,
            queries: Vec::new(),
            closed: false,
            paused: false,
            held: Vec::new(),
            closes_itself: false,
            half_close: false,
            reads_at: None,
            stalled: false,
            held_written: 0,
            closed_by_server: None,
            opened_at,
            last_reply: Duration::ZERO,
        }
    }
}

/// An upstream query the server asked for, as the world saw it.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub to: SocketAddr,
    pub via: Via,
    /// The query, unframed.
    pub message: Vec<u8>,
    /// The tracked query it serves, if the model said.
    pub query: Option<usize>,
    pub closed: u32,
    /// The runtime reported a failure while it was open.
    pub failed: bool,
    pub sent_at: Duration,
}

/// What the upstreams (and the network to them) do: the world asks the model at every
/// query the server sends and every token it closes; the model schedules the answers.
pub trait Upstreams {
    /// The server sent `token`'s query (`world.tokens[&token]`). Returns the tracked
    /// client query it serves, if the model knows.
    fn on_send(&mut self, world: &mut World, token: Token) -> Option<usize>;

    /// The server closed `token`.
    fn on_close(&mut self, _world: &mut World, _token: Token) {}
}

/// A model whose upstreams never answer (what the server sends is only recorded).
pub struct NoUpstreams;

impl Upstreams for NoUpstreams {
    fn on_send(&mut self, _: &mut World, _: Token) -> Option<usize> {
        None
    }
}

/// Tallies of a run.
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
    /// Lookups asked for, and results the server ignored (late, twice, unknown ids).
    pub lookups: usize,
    pub lookups_late: usize,
    /// Times a connection had more unwritten bytes than `max_tcp_buffered`.
    pub over_buffered: usize,
}

/// `epoch + d`.
fn instant(d: Duration) -> Instant {
    crate::drive::epoch() + d
}
