//! `Server`: the sans-IO state machine. Bytes and time in, actions out.
//!
//! It admits client messages (`request.rs`), walks the resolver chain, and parks queries
//! on upstream exchanges (`upstream.rs`) and on lookups (`lookups.rs`); client TCP connections are accounted in
//! `tcp_clients.rs`, replies encoded and queued in `reply.rs`. It never reads a clock or
//! touches a socket.

mod lookups;
mod reply;
mod tcp_clients;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::action::{Action, ConnId, Origin, Token, UpstreamError};
use crate::config::{Config, InFlight};
use crate::fasthash::FastMap;
use crate::request::{admit_with, Admission, Request};
use crate::resolver::{Answer, Chain, Context, Exchange, Exchanged, Query, Resolution};
use crate::rng::Rng;
use crate::stats::{question_type, Stats};
use crate::tcp::{ClientConns, MAX_MESSAGE};
use crate::timers::{Timers, Wake};
use crate::tsig::{verify_request, KeyRing, UnixClock, Verified};
use crate::upstream::{Engine, Finished, Io};

/// Spare reply buffers kept, and the largest kept (bigger ones are freed).
const MAX_SPARE_BUFFERS: usize = 64;
const MAX_SPARE_CAPACITY: usize = 4096;

/// How many times in a row a resolver may ask for an exchange that fails at once.
const MAX_IMMEDIATE_EXCHANGES: u8 = 4;

/// A query parked on an upstream exchange.
struct Pending {
    request: Request,
    /// Index in the chain of the resolver that asked for the exchange.
    resolver: usize,
}

/// The DNS server state machine. One per worker thread; no locks inside.
///
/// Drive it like this: feed every input with the current time (`handle_*`), then
/// drain [`poll_action`](Server::poll_action) until it returns `None`, then sleep until
/// [`poll_timeout`](Server::poll_timeout) or the next input, whichever comes first, and
/// call [`handle_timeout`](Server::handle_timeout) when woken.
///
/// A client TCP connection is driven with [`handle_tcp_open`](Server::handle_tcp_open),
/// [`handle_client`](Server::handle_client) for the bytes read,
/// [`handle_tcp_written`](Server::handle_tcp_written) for the reply bytes written to the
/// socket (until then they count against `max_tcp_buffered`),
/// [`handle_tcp_eof`](Server::handle_tcp_eof) when the client half-closes, and
/// [`handle_tcp_closed`](Server::handle_tcp_closed) on a reset or error; the runtime
/// obeys [`Action::PauseRead`] and [`Action::ResumeRead`]. So the memory a connection
/// holds is bounded by the core: at most `max_tcp_buffered` plus the replies of the
/// `max_pipelined` queries that may be in flight when it is reached (a zone transfer
/// counts as one reply) in replies, and `max_tcp_buffered` plus one largest frame
/// (65,537 bytes) of unread input.
pub struct Server {
    config: Config,
    chain: Chain,
    recursion_available: bool,
    rng: Rng,
    /// Randomness for resolvers ([`Context`]), apart from the IDs and ports of `rng`.
    resolver_rng: Rng,
    now: Option<Instant>,
    pending: FastMap<u64, Pending>,
    next_pending: u64,
    /// Queries parked on lookups, by lookup id.
    lookups: FastMap<u64, lookups::Parked>,
    next_lookup: u64,
    engine: Engine,
    conns: ClientConns,
    timers: Timers<Wake>,
    actions: VecDeque<Action>,
    stats: Stats,
    /// Connections whose buffered frames may be read now that replies drained.
    to_pump: Vec<ConnId>,
    /// Spare reply buffers: taken for each reply, given back by the runtime via
    /// [`Server::recycle`], so a steady state allocates none.
    buffers: Vec<Vec<u8>>,
    /// Question names of requests are copied here (see `request::admit_with`).
    name_arena: bytes::BytesMut,
    /// Answers per chain position; the extra last slot counts "no resolver answered".
    answers_by_source: Vec<u64>,
    /// Whether the sweep that closes idle connections under pressure is armed.
    sweep_armed: bool,
    /// Which NOTIFYs are taken; without a policy NOTIFY is an opcode like the others (NOTIMP).
    notify: Option<crate::secondary::NotifyPolicy>,
    /// TSIG keys signed requests are verified with.
    tsig_keys: KeyRing,
    /// Wall-clock time for TSIG; until set, the Unix epoch.
    unix_clock: Option<UnixClock>,
}

impl Server {
    /// A server asking `chain` in order. `seed` feeds the CSPRNG for upstream IDs and ports:
    /// fill it from the operating system's RNG in production, fix it in tests.
    ///
    /// Its upstream exchanges are bounded by `config.max_exchanges` alone; servers of one
    /// process that share the bound are made with [`Server::with_shared`].
    pub fn new(config: Config, chain: Chain, seed: [u8; 32]) -> Server {
        Server::with_shared(config, chain, seed, &InFlight::new())
    }

    /// A server like [`Server::new`] whose upstream exchanges count in `in_flight` too: give
    /// every worker's server the same count, and `config.max_exchanges` bounds their sum.
    pub fn with_shared(
        config: Config,
        chain: Chain,
        seed: [u8; 32],
        in_flight: &InFlight,
    ) -> Server {
        let chain_len = chain.len();
        Server {
            recursion_available: chain.recursion_available(),
            config,
            chain,
            rng: Rng::new(seed),
            resolver_rng: Rng::new(resolver_seed(seed)),
            now: None,
            pending: FastMap::default(),
            next_pending: 0,
            lookups: FastMap::default(),
            next_lookup: 0,
            engine: Engine::new(in_flight.clone()),
            conns: ClientConns::default(),
            timers: Timers::new(),
            actions: VecDeque::new(),
            stats: Stats::default(),
            to_pump: Vec::new(),
            buffers: Vec::new(),
            name_arena: bytes::BytesMut::new(),
            answers_by_source: vec![0; chain_len + 1],
            sweep_armed: false,
            notify: None,
            tsig_keys: KeyRing::default(),
            unix_clock: None,
        }
    }

    /// The TSIG keys (RFC 8945) this server knows. A signed request is verified before any
    /// resolver sees it: signed with an unknown key, or a wrong MAC, or out of time, it is
    /// answered NOTAUTH with BADKEY, BADSIG or BADTIME; verified, every message of its
    /// reply is signed with the same key, and resolvers see the key
    /// ([`Query::tsig_key`](crate::Query::tsig_key)). Without keys every signed request
    /// gets BADKEY.
    pub fn set_tsig_keys(&mut self, keys: KeyRing) {
        self.tsig_keys = keys;
    }

    /// Tells the server the wall-clock time: `now` was `unix_secs` seconds after
    /// 1970-01-01 UTC. TSIG signs and checks times in seconds (RFC 8945 5.2.3, a fudge of
    /// 300 s); the server derives them from `Instant`s from here on. A runtime sets it at
    /// start (and may again, e.g. after the system clock was stepped); until then the
    /// time is the epoch, so every signed request gets BADTIME.
    pub fn set_unix_time(&mut self, now: Instant, unix_secs: u64) {
        self.unix_clock = Some(UnixClock::new(now, unix_secs));
    }

    /// The Unix time at `now`, in seconds (0 until [`set_unix_time`](Server::set_unix_time)).
    pub fn unix_time(&self, now: Instant) -> u64 {
        self.unix_clock.map_or(0, |c| c.unix_secs(now))
    }

    /// Takes NOTIFY (RFC 1996) for the secondary zones of `policy`: an accepted one is
    /// answered and reported as [`Action::Notified`], one for another zone is NOTAUTH.
    /// Without a policy a NOTIFY is answered NOTIMP, as every opcode but QUERY.
    pub fn accept_notify(&mut self, policy: crate::secondary::NotifyPolicy) {
        self.notify = Some(policy);
    }

    /// A client UDP datagram (`Origin::Udp`), or bytes read from a client TCP connection
    /// (`Origin::Tcp`, any chunking: the core reassembles the 2-byte-framed messages).
    ///
    /// A runtime stops reading a connection on [`Action::PauseRead`]; one that goes on
    /// until the connection holds more than `max_tcp_buffered` plus one largest frame
    /// (65,537 bytes) of unread input has the connection closed (counted in `tcp_overrun`).
    pub fn handle_client(&mut self, now: Instant, from: Origin, bytes: &[u8]) {
        let now = self.tick(now);
        match from {
            Origin::Udp { .. } => self.on_message(now, from, bytes),
            Origin::Tcp(conn) => {
                if let Some(c) = self.conns.conns.get_mut(&conn) {
                    if c.eof {
                        return; // nothing is read after the end of the stream
                    }
                    c.framer.push(bytes);
                    if c.framer.buffered() > self.config.max_tcp_buffered + MAX_MESSAGE + 2 {
                        self.stats.tcp_overrun += 1;
                        self.close_client(conn);
                    } else {
                        self.pump(now, conn);
                    }
                }
            }
        }
        self.pump_drained(now);
    }

    /// Bytes from the upstream socket of `token` (a datagram, or a chunk of a TCP stream).
    pub fn handle_upstream(&mut self, now: Instant, token: Token, from: SocketAddr, bytes: &[u8]) {
        let now = self.tick(now);
        let done = {
            let mut io = io!(self);
            self.engine.on_reply(now, token, from, bytes, &mut io)
        };
        self.complete(now, done);
        self.pump_drained(now);
    }

    /// The runtime could not carry out the `SendUpstream` of `token`.
    pub fn handle_upstream_error(&mut self, now: Instant, token: Token, err: UpstreamError) {
        let now = self.tick(now);
        let done = {
            let mut io = io!(self);
            self.engine.on_error(now, token, err, &mut io)
        };
        self.complete(now, done);
        self.pump_drained(now);
    }

    /// Runs every timer due at `now`. Extra calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.tick(now);
        while let Some(wake) = self.timers.pop_due(now) {
            let done = match wake {
                Wake::Try(xid) => {
                    let mut io = io!(self);
                    self.engine.on_try_timeout(now, xid, &mut io)
                }
                Wake::Budget(xid) => {
                    let mut io = io!(self);
                    self.engine.on_budget(xid, &mut io)
                }
                Wake::Lookup(id) => {
                    self.lookup_timed_out(now, id);
                    None
                }
                Wake::TcpIdle(conn) => {
                    self.check_idle(now, conn);
                    None
                }
                Wake::TcpSweep => {
                    self.sweep_idle(now);
                    None
                }
            };
            self.complete(now, done);
        }
        self.pump_drained(now);
    }

    /// The next action for the runtime, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Client queries waiting for an upstream (those waiting for a lookup:
    /// [`open_lookups`](Server::open_lookups)).
    pub fn pending_queries(&self) -> usize {
        self.pending.len()
    }

    /// Upstream exchanges in flight.
    pub fn open_exchanges(&self) -> usize {
        self.engine.len()
    }

    /// Upstream tokens not yet closed.
    pub fn open_upstream_tokens(&self) -> usize {
        self.engine.open_tokens()
    }

    /// The most bytes any upstream TCP try holds while reassembling frames (for the
    /// memory-bound checks of the tests and fuzzers).
    #[doc(hidden)]
    pub fn upstream_buffered_bytes(&self) -> usize {
        self.engine.buffered_bytes()
    }

    /// Answers given by each resolver of the chain, by name, in chain order; the last entry,
    /// `none`, counts the REFUSED replies when no resolver answered.
    pub fn answers_by_source(&self) -> Vec<(&str, u64)> {
        let mut names = self.chain.names();
        names.push("none");
        names
            .into_iter()
            .zip(self.answers_by_source.iter().copied())
            .collect()
    }

    /// Gives back the buffer of a carried-out [`Action::Reply`] for reuse (optional: a
    /// runtime that drops its buffers just costs an allocation per reply).
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.buffers.len() < MAX_SPARE_BUFFERS && buf.capacity() <= MAX_SPARE_CAPACITY {
            buf.clear();
            self.buffers.push(buf);
        }
    }

    fn take_buffer(&mut self) -> Vec<u8> {
        self.buffers
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(512))
    }

    /// Counters since creation.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The resolvers' names, in chain order.
    pub fn chain_names(&self) -> Vec<&str> {
        self.chain.names()
    }

    /// Time never goes backwards inside the core.
    fn tick(&mut self, now: Instant) -> Instant {
        let now = self.now.map_or(now, |last| last.max(now));
        self.now = Some(now);
        now
    }

    /// One client message: admitted, rejected or dropped.
    fn on_message(&mut self, now: Instant, origin: Origin, bytes: &[u8]) {
        let client = match origin {
            Origin::Udp { peer, .. } => peer,
            Origin::Tcp(conn) => match self.conns.conns.get(&conn) {
                Some(c) => c.peer,
                None => return,
            },
        };
        if self.notify.is_some() && crate::secondary::is_notify(bytes) {
            return self.on_notify(now, origin, client, bytes);
        }
        match admit_with(
            &mut self.name_arena,
            bytes,
            origin,
            client,
            now,
            self.config.edns_udp_size,
        ) {
            Admission::Drop => {
                self.stats.dropped += 1;
                if let Origin::Tcp(conn) = origin {
                    if let Some(c) = self.conns.conns.get_mut(&conn) {
                        c.in_flight -= 1;
                    }
                }
            }
            Admission::Reject(mut reply) => {
                self.stats.queries += 1;
                if self.recursion_available && reply.len() > 3 {
                    reply[3] |= 0x80; // RA tells the truth in error replies too
                }
                let rcode = reply.get(3).map_or(0, |b| u16::from(b & 0x0f));
                let qtype = question_type(&reply);
                self.send(now, origin, reply, qtype, rcode);
            }
            Admission::Query(mut request) => {
                self.stats.queries += 1;
                if request.signed {
                    match verify_request(&self.tsig_keys, bytes, self.unix_time(now)) {
                        Verified::Signed(signer) => request.tsig = Some(signer),
                        Verified::Unsigned => {}
                        Verified::Rejected { reply, .. } => {
                            self.stats.tsig_rejected += 1;
                            let rcode = reply.get(3).map_or(0, |b| u16::from(b & 0x0f));
                            let qtype = Some(request.qtype.to_int());
                            return self.send(now, origin, reply, qtype, rcode);
                        }
                    }
                }
                self.resolve_from(now, request, 0, 0);
            }
        }
    }

    /// A NOTIFY: answered here, never by the chain.
    fn on_notify(&mut self, now: Instant, origin: Origin, client: SocketAddr, bytes: &[u8]) {
        let unix = self.unix_time(now);
        let answered = self
            .notify
            .as_ref()
            .and_then(|policy| crate::secondary::answer_notify(policy, client, bytes, unix));
        let Some((reply, zone)) = answered else {
            self.stats.dropped += 1;
            if let Origin::Tcp(conn) = origin {
                if let Some(c) = self.conns.conns.get_mut(&conn) {
                    c.in_flight -= 1;
                }
            }
            return;
        };
        self.stats.queries += 1;
        let rcode = reply.get(3).map_or(0, |b| u16::from(b & 0x0f));
        let qtype = question_type(&reply);
        self.send(now, origin, reply, qtype, rcode);
        if let Some(zone) = zone {
            self.actions
                .push_back(Action::Notified { zone, from: client });
        }
    }

    /// Asks the chain from `start` on.
    fn resolve_from(&mut self, now: Instant, mut request: Request, start: usize, depth: u8) {
        let mut index = start;
        loop {
            let random = self.resolver_rng.next_u64();
            let Some(resolver) = self.chain.get_mut(index) else {
                return self.answer(now, &request, Answer::refused(), index);
            };
            let mut cx = Context::of(now, &mut request, random);
            let resolution = resolver.resolve(&Query::new(&request), &mut cx);
            cx.give_back(&mut request);
            match resolution {
                Resolution::Pass => index += 1,
                other => {
                    if let (Some(error), Some(signer)) = (cx.tsig_error(), &mut request.tsig) {
                        signer.refuse(error);
                    }
                    // A cache hit near expiry: the client is answered now, and the same
                    // question goes on, without a client, to the resolvers after it.
                    let refresh = (cx.prefetch_asked() && !request.background).then(|| Request {
                        background: true,
                        received: now,
                        ..request.clone()
                    });
                    self.follow(now, request, index, other, depth);
                    if let Some(refresh) = refresh {
                        self.resolve_from(now, refresh, index + 1, depth);
                    }
                    return;
                }
            }
        }
    }

    /// Carries out the resolution of the resolver at `resolver`: reply, ask the next
    /// resolver, or park the query on an exchange or a lookup.
    fn follow(
        &mut self,
        now: Instant,
        request: Request,
        resolver: usize,
        resolution: Resolution,
        depth: u8,
    ) {
        match resolution {
            Resolution::Answer(answer) => self.answer(now, &request, answer, resolver),
            Resolution::Prebuilt(wire) => self.answer_wire(now, &request, wire, resolver),
            Resolution::Pass => self.resolve_from(now, request, resolver + 1, depth),
            Resolution::Exchange(_) if depth >= MAX_IMMEDIATE_EXCHANGES => {
                self.answer(now, &request, Answer::servfail(), resolver)
            }
            Resolution::Exchange(spec) => self.exchange(now, request, resolver, spec, depth),
            Resolution::Lookup(job) => self.lookup(now, request, resolver, job),
        }
    }

    fn exchange(
        &mut self,
        now: Instant,
        request: Request,
        resolver: usize,
        spec: Exchange,
        depth: u8,
    ) {
        let deadline = request.received + self.config.budget;
        if now >= deadline {
            // Asked again after the budget (a resolver resumed by a timeout): too late.
            return self.answer(now, &request, Answer::servfail(), resolver);
        }
        self.next_pending += 1;
        let key = self.next_pending;
        let started = {
            let mut io = io!(self);
            self.engine.start(now, spec, key, deadline, &mut io)
        };
        match started {
            Ok(()) => {
                self.pending.insert(key, Pending { request, resolver });
            }
            Err(failure) => self.resume(
                now,
                request,
                resolver,
                Exchanged::Failed(failure),
                depth + 1,
            ),
        }
    }

    /// Gives an exchange's outcome to the resolver that asked for it.
    fn resume(
        &mut self,
        now: Instant,
        mut request: Request,
        resolver: usize,
        done: Exchanged,
        depth: u8,
    ) {
        let random = self.resolver_rng.next_u64();
        let Some(r) = self.chain.get_mut(resolver) else {
            return;
        };
        let mut cx = Context::of(now, &mut request, random);
        let resolution = r.on_exchange(&Query::new(&request), done, &mut cx);
        cx.give_back(&mut request);
        self.follow(now, request, resolver, resolution, depth);
    }

    fn complete(&mut self, now: Instant, done: Option<Finished>) {
        let Some(done) = done else { return };
        for key in done.waiters {
            if let Some(p) = self.pending.remove(&key) {
                self.resume(now, p.request, p.resolver, done.outcome.clone(), 0);
            }
        }
    }
}

/// The seed of the resolvers' RNG: the server's seed, changed so the two streams differ.
fn resolver_seed(mut seed: [u8; 32]) -> [u8; 32] {
    for (i, b) in seed.iter_mut().enumerate() {
        *b ^= 0x5a ^ i as u8;
    }
    seed
}

/// Borrows the server's parts the exchange engine needs, beside `self.engine`.
macro_rules! io {
    ($s:ident) => {
        Io {
            actions: &mut $s.actions,
            timers: &mut $s.timers,
            rng: &mut $s.rng,
            stats: &mut $s.stats,
            config: &$s.config,
        }
    };
}
use io;
