//! [`World`]: the state of the simulated world, its event loop and its bookkeeping.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use domain::base::Message;
use names_core::{
    Action, Chain, Config, ConnId, LookupId, Origin, Payload, Server, Token, UpstreamError, Via,
};

use super::lookup::{lookup_addr, LookupFaults, LookupJob, LookupResult, LookupState, SimResult};

use super::MAX_TCP_HELD;
use super::{instant, ClientQuery, Conn, Event, NoUpstreams, Rand, Report, TokenInfo, Upstreams};
use crate::build::unframe;

/// The world: the server, the clients, the upstreams and the network.
pub struct World {
    pub server: Server,
    pub config: Config,
    /// Decides every random thing in the world; seeded.
    pub rand: Rand,
    /// Time since the epoch.
    pub now: Duration,
    events: BTreeMap<(Duration, u64), Event>,
    seq: u64,
    /// Tracked client queries.
    pub queries: Vec<ClientQuery>,
    udp_index: BTreeMap<SocketAddr, usize>,
    tcp_index: BTreeMap<(ConnId, u16), usize>,
    pub conns: BTreeMap<ConnId, Conn>,
    pub tokens: BTreeMap<Token, TokenInfo>,
    /// Tokens in the order the server sent their queries.
    pub sent: Vec<Token>,
    live_pairs: BTreeMap<(u16, u16), Token>,
    /// Every reply, in order: where to, the message (unframed) and when.
    pub replies: Vec<(Origin, Vec<u8>, Duration)>,
    pub report: Report,
    /// The largest TCP reply seen (framed), for the unwritten-bytes bound.
    pub largest_reply: usize,
    /// Every action since the last [`World::take_actions`], once stepping by hand
    /// began (the `*_at` methods).
    log: Option<Vec<Action>>,
    model: Option<Box<dyn Upstreams>>,
    /// What the runtime does with lookups.
    pub lookup_faults: LookupFaults,
    /// Every lookup the server asked for.
    pub lookups: BTreeMap<LookupId, LookupState>,
    /// Whether a reply naming the planted zone or address fails the run (true): off only
    /// where that data is the server's own (a fuzzed zone may be the planted zone).
    pub planted_check: bool,
}

impl World {
    /// A world around a server with this configuration and chain; its upstreams do what
    /// `model` says. `seed` seeds the world's RNG (and the server's).
    pub fn new(config: Config, chain: Chain, seed: u64, model: Box<dyn Upstreams>) -> World {
        let mut rand = Rand::new(seed);
        World {
            server: Server::new(config.clone(), chain, rand.seed()),
            config,
            rand,
            now: Duration::ZERO,
            events: BTreeMap::new(),
            seq: 0,
            queries: Vec::new(),
            udp_index: BTreeMap::new(),
            tcp_index: BTreeMap::new(),
            conns: BTreeMap::new(),
            tokens: BTreeMap::new(),
            sent: Vec::new(),
            live_pairs: BTreeMap::new(),
            replies: Vec::new(),
            report: Report::default(),
            largest_reply: 0,
            log: None,
            model: Some(model),
            lookup_faults: LookupFaults::NONE,
            lookups: BTreeMap::new(),
            planted_check: true,
        }
    }

    /// A world stepped by hand: upstreams that never answer unless told.
    pub fn manual(config: Config, chain: Chain) -> World {
        World::new(config, chain, 0, Box::new(NoUpstreams))
    }

    pub fn schedule(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }

    /// Tracks a client query: its reply is matched to it by UDP peer, or by connection
    /// and ID.
    pub fn track(&mut self, origin: Origin, message: Vec<u8>) -> usize {
        let i = self.queries.len();
        let id = u16::from_be_bytes([message[0], message[1]]);
        match origin {
            Origin::Udp { peer, .. } => {
                self.udp_index.insert(peer, i);
            }
            Origin::Tcp(conn) => {
                self.tcp_index.insert((conn, id), i);
            }
        }
        self.queries.push(ClientQuery {
            origin,
            id,
            message,
            sent: None,
            replies: Vec::new(),
            taken: None,
        });
        i
    }

    /// Schedules `bytes` on `conn` in random chunks at `at`; the queries complete with the
    /// chunk holding their last byte (a chunk may be held back while the connection is
    /// paused).
    pub fn schedule_chunks(
        &mut self,
        conn: ConnId,
        at: Duration,
        bytes: Vec<u8>,
        complete: Vec<usize>,
    ) {
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

    /// Schedules a TCP stream from an upstream for `token` at `at`: reliable and in order,
    /// in arbitrary chunks.
    pub fn schedule_stream(&mut self, at: Duration, token: Token, from: SocketAddr, stream: &[u8]) {
        let mut rest = stream;
        while !rest.is_empty() {
            let len = 1 + self.rand.below(rest.len() as u64) as usize;
            let (chunk, tail) = rest.split_at(len);
            self.schedule(at, Event::Upstream(token, from, chunk.to_vec()));
            rest = tail;
        }
    }

    /// Delivers `event` now, then takes the actions and checks the bounds.
    pub fn push(&mut self, event: Event) {
        self.deliver(event);
        self.drain_actions();
        self.check_bounds();
    }

    /// Moves time on by `by` and runs the timers due.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.server.handle_timeout(instant(self.now));
        self.drain_actions();
        self.check_bounds();
    }

    /// The actions the server took since the last call, in order (the world has done
    /// its part with them already: bookkeeping, checks, writes).
    pub fn take_actions(&mut self) -> Vec<Action> {
        self.log.replace(Vec::new()).unwrap_or_default()
    }

    /// Moves time to `ms` after the epoch (never back), and keeps the actions from now
    /// on for [`World::take_actions`].
    fn move_to(&mut self, ms: u64) {
        self.log.get_or_insert_with(Vec::new);
        let t = Duration::from_millis(ms);
        assert!(
            t >= self.now,
            "time runs forward: {t:?} after {:?}",
            self.now
        );
        self.now = t;
    }

    /// At `ms`: bytes from a client. Returns the actions they caused.
    pub fn client_at(&mut self, ms: u64, origin: Origin, bytes: &[u8]) -> Vec<Action> {
        self.move_to(ms);
        self.push(Event::Client(origin, bytes.to_vec()));
        self.take_actions()
    }

    /// At `ms`: bytes from `from` for `token`. Returns the actions they caused.
    pub fn upstream_at(
        &mut self,
        ms: u64,
        token: Token,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Vec<Action> {
        self.move_to(ms);
        self.push(Event::Upstream(token, from, bytes.to_vec()));
        self.take_actions()
    }

    /// At `ms`: the runtime reports `token` failed. Returns the actions that caused.
    pub fn error_at(&mut self, ms: u64, token: Token, err: UpstreamError) -> Vec<Action> {
        self.move_to(ms);
        self.push(Event::UpstreamError(token, err));
        self.take_actions()
    }

    /// At `ms`: the timers due run. Returns the actions they caused.
    pub fn timeout_at(&mut self, ms: u64) -> Vec<Action> {
        self.move_to(ms);
        self.advance(Duration::ZERO);
        self.take_actions()
    }

    /// The replies sent to `origin`, in order.
    pub fn replies_to(&self, origin: Origin) -> Vec<&[u8]> {
        self.replies
            .iter()
            .filter(|(to, _, _)| *to == origin)
            .map(|(_, b, _)| b.as_slice())
            .collect()
    }

    /// Runs until nothing is scheduled and no timer is armed; panics past `max_steps`.
    pub fn run(&mut self, max_steps: usize) -> &Report {
        for step in 0..max_steps {
            self.drain_actions();
            let timer = self
                .server
                .poll_timeout()
                .map(|t| t.saturating_duration_since(crate::drive::epoch()));
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
                self.push(event);
            }
            self.server.handle_timeout(instant(self.now));
            self.drain_actions();
            self.check_bounds();
        }
        panic!("not quiescent after {max_steps} steps at {:?}", self.now);
    }

    /// Runs to the end, then checks that nothing is left behind: no query, exchange,
    /// token, timer or connection; every token closed exactly once; every connection
    /// closed, a half-closed one by the server as soon as all it read was answered.
    pub fn finish(&mut self) {
        self.run(100_000);
        self.assert_clean();
        assert_eq!(self.server.open_connections(), 0, "connections left");
        for (id, c) in &self.conns {
            assert!(c.closed, "{id:?} still open");
            if c.half_close {
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

    /// The runtime takes lookup `id`: schedules its result as the faults say.
    fn on_lookup(&mut self, id: LookupId, job: Payload) {
        assert!(
            self.lookups.insert(id, LookupState::default()).is_none(),
            "{id:?} reused"
        );
        self.report.lookups += 1;
        let f = self.lookup_faults;
        if let Some(job) = job.downcast_ref::<LookupJob>() {
            self.mark_taken(&job.key);
        }
        let result = match job.downcast::<LookupJob>() {
            Err(_) => SimResult::Foreign,
            Ok(_) if self.rand.chance(f.foreign) => SimResult::Foreign,
            Ok(_) if self.rand.chance(f.pass) => SimResult::Result(LookupResult::Pass),
            Ok(job) if job.round == 0 && self.rand.chance(f.again) => {
                SimResult::Result(LookupResult::Again)
            }
            Ok(job) => SimResult::Result(LookupResult::Addr(lookup_addr(&job.key))),
        };
        if !self.rand.chance(f.never) {
            let at = self.now + self.delay_ms(f.max_delay_ms);
            self.schedule(at, Event::Lookup(id, result));
            if self.rand.chance(f.twice) {
                let again = at + self.delay_ms(f.max_delay_ms);
                self.schedule(again, Event::Lookup(id, result));
            }
        }
        if self.rand.chance(f.unknown_id) {
            let at = self.now + self.delay_ms(f.max_delay_ms);
            self.schedule(at, Event::Lookup(LookupId(id.0 | 1 << 40), result));
        }
    }

    /// The queries sent and not yet answered whose first label is `key` were taken now
    /// (the server asked a lookup for them).
    fn mark_taken(&mut self, key: &str) {
        let now = self.now;
        for q in &mut self.queries {
            if q.sent.is_none() || q.taken.is_some() || !q.replies.is_empty() {
                continue;
            }
            let first = q.message.get(12).map_or(0, |&n| usize::from(n));
            let label = q.message.get(13..13 + first).unwrap_or_default();
            if label.eq_ignore_ascii_case(key.as_bytes()) {
                q.taken = Some(now);
            }
        }
    }

    fn delay_ms(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.rand.below(max + 1))
    }

    /// No upstream work left: every token closed exactly once, no live (ID, port) pair,
    /// no query waiting, no exchange or token open; every lookup ended once, and the
    /// server's lookup counters agree with what the world saw.
    pub fn assert_clean(&self) {
        assert_eq!(self.server.open_lookups(), 0, "lookups left");
        for (id, s) in &self.lookups {
            assert!(s.completed != s.cancelled, "{id:?} ended once: {s:?}");
        }
        let stats = self.server.stats();
        let completed = self.lookups.values().filter(|s| s.completed).count() as u64;
        assert_eq!(stats.lookups_started, self.lookups.len() as u64);
        assert_eq!(stats.lookups_completed, completed);
        assert_eq!(stats.lookups_timed_out, stats.lookups_started - completed);
        assert_eq!(stats.lookups_late, self.report.lookups_late as u64);
        for (t, info) in &self.tokens {
            assert_eq!(info.closed, 1, "{t:?} closed exactly once");
        }
        assert!(self.live_pairs.is_empty(), "live (ID, port) pairs left");
        assert_eq!(self.server.pending_queries(), 0, "pending queries left");
        assert_eq!(self.server.open_exchanges(), 0, "exchanges left");
        assert_eq!(self.server.open_upstream_tokens(), 0, "tokens left");
    }

    fn deliver(&mut self, event: Event) {
        let now = instant(self.now);
        match event {
            Event::ClientUdp(q) => {
                // A datagram is taken as it arrives.
                self.queries[q].sent = Some(self.now);
                self.queries[q].taken = Some(self.now);
                let (origin, message) = (self.queries[q].origin, self.queries[q].message.clone());
                self.server.handle_client(now, origin, &message);
            }
            Event::Client(origin, bytes) => self.server.handle_client(now, origin, &bytes),
            Event::TcpOpen(conn) => {
                let peer = self.conns[&conn].peer;
                let from_peer = self.server.connections_from(peer.ip());
                self.server.handle_tcp_open(now, conn, peer);
                if from_peer >= self.config.max_tcp_per_client {
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
                let c = self.conns.get_mut(&conn).expect("a known connection");
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
                let c = self.conns.get_mut(&conn).expect("a known connection");
                c.stalled = false;
                let held = std::mem::take(&mut c.held_written);
                if !c.closed && held > 0 {
                    self.server.handle_tcp_written(now, conn, held);
                }
            }
            Event::TcpChunk(conn, bytes, done) => {
                let c = self.conns.get_mut(&conn).expect("a known connection");
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
                let c = self.conns.get_mut(&conn).expect("a known connection");
                if !c.closed {
                    c.closed = true;
                    self.server.handle_tcp_closed(now, conn);
                }
            }
            Event::Upstream(token, from, bytes) => {
                self.server.handle_upstream(now, token, from, &bytes);
            }
            Event::Lookup(id, result) => {
                match self.lookups.get_mut(&id) {
                    Some(s) if !s.completed && !s.cancelled => s.completed = true,
                    _ => self.report.lookups_late += 1,
                }
                self.server.handle_lookup(now, id, result.payload());
            }
            Event::UpstreamError(token, err) => {
                if let Some(info) = self.tokens.get_mut(&token) {
                    info.failed |= info.closed == 0;
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
        if let Some(log) = &mut self.log {
            log.push(copy_action(&action));
        }
        match action {
            Action::Reply { to, bytes } => self.on_reply(to, bytes),
            Action::SendUpstream {
                token,
                to,
                via,
                bytes,
            } => self.on_send(token, to, via, bytes),
            Action::CloseUpstream { token } => self.on_close(token),
            Action::Lookup { id, job } => self.on_lookup(id, job),
            Action::CancelLookup { id } => {
                let state = self.lookups.get_mut(&id);
                let state = state.unwrap_or_else(|| panic!("{id:?} cancelled, never asked"));
                assert!(!state.completed, "{id:?} cancelled after it completed");
                assert!(!state.cancelled, "{id:?} cancelled twice");
                state.cancelled = true;
            }
            Action::CloseClient { conn } => {
                let now = self.now;
                let c = self.conns.get_mut(&conn).expect("known connection");
                assert!(!c.closed, "{conn:?} closed twice");
                c.closed = true;
                c.closed_by_server = Some(now);
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
                let c = self.conns.get_mut(&conn).expect("known connection");
                assert!(!c.paused, "{conn:?} paused twice");
                c.paused = true;
            }
            Action::ResumeRead { conn } => {
                let c = self.conns.get_mut(&conn).expect("known connection");
                assert!(c.paused, "{conn:?} resumed but not paused");
                c.paused = false;
                let held = std::mem::take(&mut c.held);
                let now = self.now;
                for e in held {
                    self.schedule(now, e);
                }
            }
            Action::Log(_) | Action::Notified { .. } => {}
        }
    }

    fn on_reply(&mut self, to: Origin, bytes: Vec<u8>) {
        let framed_len = bytes.len();
        let (q, message) = match to {
            Origin::Udp { peer, .. } => (self.udp_index.get(&peer).copied(), bytes),
            Origin::Tcp(conn) => {
                let message = unframe(&bytes).to_vec();
                let id = u16::from_be_bytes([message[0], message[1]]);
                let q = self.tcp_index.get(&(conn, id)).copied();
                let tracked = self.conns.get(&conn).is_some_and(|c| !c.queries.is_empty());
                assert!(
                    q.is_some() || !tracked,
                    "reply with unknown id {id} on {conn:?}"
                );
                (q, message)
            }
        };
        if let Some(planted) = super::planted_in(&message).filter(|_| self.planted_check) {
            panic!("a planted record reached a client ({to:?}): {planted}");
        }
        if let Ok(m) = Message::from_octets(&message[..]) {
            let rcode = m.header().rcode().to_string();
            *self.report.by_rcode.entry(rcode).or_default() += 1;
        }
        self.replies.push((to, message.clone(), self.now));
        if let Some(q) = q {
            self.queries[q].replies.push((self.now, message));
            self.queries[q].taken.get_or_insert(self.now);
        }
        if let Origin::Tcp(conn) = to {
            self.largest_reply = self.largest_reply.max(framed_len);
            let now = self.now;
            let c = self.conns.get_mut(&conn).expect("a known connection");
            c.last_reply = now;
            // The runtime writes a reply only once its client reads.
            if c.stalled || c.reads_at.is_some_and(|t| now < t) {
                c.held_written += framed_len;
            } else {
                self.server
                    .handle_tcp_written(instant(now), conn, framed_len);
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
        let old = self.tokens.insert(
            token,
            TokenInfo {
                to,
                via,
                message,
                query: None,
                closed: 0,
                failed: false,
                sent_at: self.now,
            },
        );
        assert!(old.is_none(), "{token:?} reused");
        self.sent.push(token);
        let mut model = self.model.take().expect("the model is not in use");
        let query = model.on_send(self, token);
        self.model = Some(model);
        if let Some(q) = query {
            self.queries[q].taken.get_or_insert(self.now);
            self.tokens.get_mut(&token).expect("just added").query = Some(q);
        }
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
        let mut model = self.model.take().expect("the model is not in use");
        model.on_close(self, token);
        self.model = Some(model);
    }

    /// The bounds, after every step: waiting queries at most `max_waiting`, open
    /// exchanges at most `max_exchanges`, an upstream TCP try holding at most one
    /// largest frame; per open connection unwritten reply bytes at most
    /// `max_tcp_buffered` plus the replies of the queries that may be in flight when the
    /// limit is reached (`max_pipelined` of the largest reply) and exactly what the
    /// runtime holds, unread input at most `max_tcp_buffered` plus one largest frame;
    /// connections per address at most `max_tcp_per_client`.
    fn check_bounds(&mut self) {
        let config = &self.config;
        let server = &self.server;
        assert!(
            server.pending_queries() <= config.max_waiting,
            "{} queries waiting, over the bound of {}",
            server.pending_queries(),
            config.max_waiting
        );
        assert!(
            server.open_exchanges() <= config.max_exchanges,
            "{} exchanges open, over the bound of {}",
            server.open_exchanges(),
            config.max_exchanges
        );
        let live = self.lookups.values();
        let live = live.filter(|s| !s.completed && !s.cancelled).count();
        assert_eq!(server.open_lookups(), live, "lookups in flight");
        assert!(
            live <= config.max_lookups,
            "{live} lookups in flight, over the bound of {}",
            config.max_lookups
        );
        assert!(
            server.upstream_buffered_bytes() <= MAX_TCP_HELD,
            "an upstream TCP try holds {} bytes",
            server.upstream_buffered_bytes()
        );
        let reply_bound = config.max_tcp_buffered + config.max_pipelined * self.largest_reply;
        let mut per_ip: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for (id, c) in &self.conns {
            if c.closed {
                continue;
            }
            let unwritten = server.tcp_unwritten(*id);
            assert_eq!(unwritten, c.held_written, "{id:?}: unwritten bytes");
            assert!(
                unwritten <= reply_bound,
                "{id:?}: {unwritten} unwritten bytes, bound {reply_bound}"
            );
            self.report.max_unwritten = self.report.max_unwritten.max(unwritten);
            if unwritten > config.max_tcp_buffered {
                self.report.over_buffered += 1;
            }
            let unread = server.tcp_unread(*id);
            assert!(
                unread <= config.max_tcp_buffered + 65_537,
                "{id:?}: {unread} unread bytes"
            );
            *per_ip.entry(c.peer.ip()).or_default() += 1;
        }
        for (ip, n) in per_ip {
            assert!(
                server.connections_from(ip) <= config.max_tcp_per_client,
                "{ip}: {n} connections"
            );
        }
    }
}

/// A copy of `action` for the log (`Action` is not `Clone`: a lookup's job is the user's
/// type; the world's jobs are [`LookupJob`]s, anything else is logged as `()`).
fn copy_action(action: &Action) -> Action {
    match action {
        Action::Reply { to, bytes } => Action::Reply {
            to: *to,
            bytes: bytes.clone(),
        },
        Action::SendUpstream {
            token,
            to,
            via,
            bytes,
        } => Action::SendUpstream {
            token: *token,
            to: *to,
            via: *via,
            bytes: bytes.clone(),
        },
        Action::CloseUpstream { token } => Action::CloseUpstream { token: *token },
        Action::CloseClient { conn } => Action::CloseClient { conn: *conn },
        Action::PauseRead { conn } => Action::PauseRead { conn: *conn },
        Action::ResumeRead { conn } => Action::ResumeRead { conn: *conn },
        Action::Log(entry) => Action::Log(entry.clone()),
        Action::Notified { zone, from } => Action::Notified {
            zone: zone.clone(),
            from: *from,
        },
        Action::Lookup { id, job } => Action::Lookup {
            id: *id,
            job: match job.downcast_ref::<LookupJob>() {
                Some(j) => Payload::new(j.clone()),
                None => Payload::new(()),
            },
        },
        Action::CancelLookup { id } => Action::CancelLookup { id: *id },
    }
}
