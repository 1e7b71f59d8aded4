//! The exchange engine: puts a question to upstream servers on a query's behalf.
//!
//! It owns everything RFC 5452 asks of a forwarder: a fresh random ID and source port
//! per try; a reply accepted only from the queried address with the same ID and
//! question (anything else is ignored while the real reply is still awaited), an error
//! reply without a question (FORMERR, SERVFAIL, NOTIMP or REFUSED, no answer or authority
//! records: it carries no data) failing the try at once like the same rcode; a retry
//! on the next server after the per-try timeout, earlier tries staying open so a late
//! reply still counts; SERVFAIL/REFUSED/NOTIMP moving on to the next server; FORMERR to
//! a query with EDNS retried once on the same server without it; TC=1 over UDP retried
//! over TCP; and the query's total budget. An iterative exchange (a recursor's, to one
//! authoritative server) ends with any reply whatever its rcode, or at its try's timeout.
//!
//! Nothing an upstream sends can make it fail or grow without bound: every message is
//! matched to its try by token (a try may end with any message), a TCP try holds at most
//! one frame of the largest size, and a zero-length, garbage or foreign frame ends the
//! TCP try like an I/O error (a TCP peer cannot be spoofed: it is broken). Client queries
//! waiting on exchanges are bounded per exchange and in total.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use domain::base::iana::{OptRcode, Rcode, Rtype};
use domain::base::Message;

use crate::action::{Action, Token, UpstreamError, Via};
use crate::client::Expected;
use crate::config::{Config, InFlight, MAX_OPEN_TRIES, MAX_WAITERS_PER_EXCHANGE};
use crate::fasthash::{FastMap, FastSet};
use crate::message::{encode_query, is_upstream_failure, QuerySpec};
use crate::resolver::{Exchange, ExchangeFailure, Exchanged};
use crate::rng::Rng;
use crate::stats::Stats;
use crate::tcp::{frame, EmptyFrame, Framer};
use crate::timers::{TimerKey, Timers, Wake};

/// Source ports drawn again when the runtime cannot bind one.
const MAX_BIND_RETRIES: u8 = 3;

/// Everything the engine touches besides its own tables.
pub(crate) struct Io<'a> {
    pub actions: &'a mut VecDeque<Action>,
    pub timers: &'a mut Timers<Wake>,
    pub rng: &'a mut Rng,
    pub stats: &'a mut Stats,
    pub config: &'a Config,
}

/// An exchange that ended, and the queries waiting for it.
pub(crate) struct Finished {
    pub waiters: Vec<u64>,
    pub outcome: Exchanged,
}

struct Try {
    token: Token,
    server: usize,
    id: u16,
    via: Via,
    /// Whether the query carried an OPT record.
    edns: bool,
    framer: Option<Framer>,
    bind_retries: u8,
    /// When the try was sent, for the per-upstream latency histogram.
    sent: Instant,
}

struct State {
    spec: Exchange,
    /// Key in `by_question`.
    question_key: Box<[u8]>,
    waiters: Vec<u64>,
    deadline: Instant,
    budget_timer: TimerKey,
    try_timer: Option<TimerKey>,
    /// Index of the server the next try goes to.
    next_server: usize,
    /// Per server: what this exchange learnt of it (one allocation for both flags).
    servers: Vec<ServerState>,
    /// Open tries, oldest first.
    tries: Vec<Try>,
}

/// What an exchange learnt of one of its servers.
#[derive(Clone, Copy, Default)]
struct ServerState {
    /// It answered SERVFAIL/REFUSED/NOTIMP, broke its TCP stream, or could not be reached.
    failed: bool,
    /// It answered FORMERR to a query with EDNS: asked without it from then on.
    no_edns: bool,
}

/// Where a new try goes.
#[derive(Clone, Copy)]
enum Target {
    /// Over UDP to the next server that has not failed.
    Next,
    /// To this server, over TCP or UDP.
    Same { server: usize, tcp: bool },
}

/// What reading a TCP try's stream gives next.
enum Step {
    Message(Bytes),
    NeedMore,
    Broken,
}

pub(crate) struct Engine {
    exchanges: FastMap<u64, State>,
    /// Open exchanges by question, so identical questions in flight share one.
    by_question: HashMap<Box<[u8]>, u64>,
    tokens: FastMap<Token, u64>,
    ports: FastSet<u16>,
    next_token: u64,
    next_exchange: u64,
    /// Client queries waiting on the open exchanges (bounded by `Config::max_waiting`).
    waiting: usize,
    /// The in-flight count shared with the other servers of the process (what this engine
    /// added is given back if it is dropped busy).
    in_flight: InFlight,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.in_flight.sub(self.exchanges.len());
    }
}

impl Engine {
    /// An engine counting its exchanges in `in_flight` too.
    pub fn new(in_flight: InFlight) -> Engine {
        Engine {
            exchanges: FastMap::default(),
            by_question: HashMap::new(),
            tokens: FastMap::default(),
            ports: FastSet::default(),
            next_token: 0,
            next_exchange: 0,
            waiting: 0,
            in_flight,
        }
    }

    pub fn len(&self) -> usize {
        self.exchanges.len()
    }

    pub fn open_tokens(&self) -> usize {
        self.tokens.len()
    }

    /// The most bytes any upstream TCP try holds unframed.
    #[allow(clippy::disallowed_methods)] // the maximum does not depend on the order
    pub fn buffered_bytes(&self) -> usize {
        self.exchanges
            .values()
            .flat_map(|st| &st.tries)
            .filter_map(|t| t.framer.as_ref())
            .map(Framer::held)
            .max()
            .unwrap_or(0)
    }

    /// Starts an exchange for `waiter`, due by `deadline`.
    pub fn start(
        &mut self,
        now: Instant,
        spec: Exchange,
        waiter: u64,
        deadline: Instant,
        io: &mut Io<'_>,
    ) -> Result<(), ExchangeFailure> {
        if spec.servers.is_empty() {
            return Err(ExchangeFailure::NoServers);
        }
        if deadline <= now {
            return Err(ExchangeFailure::TimedOut);
        }
        if self.waiting >= io.config.max_waiting {
            io.stats.overloaded += 1;
            return Err(ExchangeFailure::Overloaded);
        }
        let question_key = question_key(&spec);
        // Joining an exchange in flight costs no exchange: checked before that limit.
        if let Some(&xid) = self.by_question.get(&question_key) {
            if let Some(st) = self.exchanges.get_mut(&xid) {
                if st.waiters.len() >= MAX_WAITERS_PER_EXCHANGE {
                    io.stats.overloaded += 1;
                    return Err(ExchangeFailure::Overloaded);
                }
                st.waiters.push(waiter);
                self.waiting += 1;
                io.stats.coalesced += 1;
                // A query that came earlier (and was delayed, e.g. by a lookup) joins with
                // less budget left: the exchange ends by the earliest deadline of its
                // waiters, so no waiter is ever answered after its own budget.
                if deadline < st.deadline {
                    io.timers.cancel(st.budget_timer);
                    st.deadline = deadline;
                    st.budget_timer = io.timers.arm(deadline, Wake::Budget(xid));
                }
                return Ok(());
            }
        }
        if self.in_flight.get() >= io.config.max_exchanges {
            io.stats.overloaded += 1;
            return Err(ExchangeFailure::Overloaded);
        }
        self.next_exchange += 1;
        let xid = self.next_exchange;
        self.by_question.insert(question_key.clone(), xid);
        self.in_flight.add(1);
        let state = State {
            question_key,
            servers: vec![ServerState::default(); spec.servers.len()],
            spec,
            waiters: vec![waiter],
            deadline,
            budget_timer: io.timers.arm(deadline, Wake::Budget(xid)),
            try_timer: None,
            next_server: 0,
            tries: Vec::new(),
        };
        self.exchanges.insert(xid, state);
        self.waiting += 1;
        self.send_try(now, xid, Target::Next, io);
        Ok(())
    }

    /// Sends a new try to `target`.
    fn send_try(&mut self, now: Instant, xid: u64, target: Target, io: &mut Io<'_>) {
        let Some(st) = self.exchanges.get_mut(&xid) else {
            return;
        };
        let (server, tcp) = match target {
            Target::Same { server, tcp } => (server, tcp),
            Target::Next => {
                let n = st.spec.servers.len();
                let Some(s) = (0..n)
                    .map(|k| (st.next_server + k) % n)
                    .find(|&s| !st.servers[s].failed)
                else {
                    return;
                };
                st.next_server = (s + 1) % n;
                (s, false)
            }
        };
        let (Some(&to), Some(&known)) = (st.spec.servers.get(server), st.servers.get(server))
        else {
            return;
        };
        if st.tries.len() >= MAX_OPEN_TRIES {
            let oldest = st.tries.remove(0);
            close_try(&mut self.tokens, &mut self.ports, oldest, io);
        }
        self.next_token += 1;
        let token = Token(self.next_token);
        let id = io.rng.id();
        let via = if tcp {
            Via::Tcp
        } else {
            Via::Udp {
                local_port: fresh_port(&mut self.ports, io.rng),
            }
        };
        let edns = st.spec.edns && !known.no_edns;
        let spec = &st.spec;
        let query = encode_query(&QuerySpec {
            id,
            qname: &spec.qname,
            qtype: spec.qtype,
            qclass: spec.qclass,
            rd: spec.recursion_desired,
            cd: spec.checking_disabled,
            edns: edns.then_some((io.config.edns_udp_size, spec.dnssec_ok)),
        });
        let bytes = match via {
            Via::Tcp => frame(&query),
            Via::Udp { .. } => query,
        };
        io.actions.push_back(Action::SendUpstream {
            token,
            to,
            via,
            bytes,
        });
        io.stats.upstream_sent += 1;
        st.tries.push(Try {
            token,
            server,
            id,
            via,
            edns,
            framer: tcp.then(Framer::default),
            bind_retries: 0,
            sent: now,
        });
        self.tokens.insert(token, xid);
        if let Some(old) = st.try_timer.take() {
            io.timers.cancel(old);
        }
        let try_timeout = st.spec.try_timeout.unwrap_or(io.config.try_timeout);
        let at = (now + try_timeout).min(st.deadline);
        st.try_timer = Some(io.timers.arm(at, Wake::Try(xid)));
    }

    /// Bytes from an upstream socket: a datagram, or a chunk of a TCP try's stream.
    pub fn on_reply(
        &mut self,
        now: Instant,
        token: Token,
        from: SocketAddr,
        bytes: &[u8],
        io: &mut Io<'_>,
    ) -> Option<Finished> {
        let Some(&xid) = self.tokens.get(&token) else {
            io.stats.spoofed_ignored += 1; // stale: the exchange is over
            return None;
        };
        let st = self.exchanges.get(&xid)?;
        let t = st.tries.iter().find(|t| t.token == token)?;
        if !expected(&st.spec, t).is_some_and(|e| e.sent_by(from)) {
            io.stats.spoofed_ignored += 1;
            return None;
        }
        if t.framer.is_none() {
            return self.on_message(now, xid, token, Bytes::copy_from_slice(bytes), io);
        }
        // A frame may end the try (or the exchange): the try is looked up again for each
        // one, and what follows a try that is gone is dropped unread.
        let mut rest = bytes;
        loop {
            let step = {
                let framer = self.framer_mut(xid, token)?;
                match framer.next_frame() {
                    Ok(Some(m)) => Step::Message(Bytes::copy_from_slice(m)),
                    Ok(None) if rest.is_empty() => return None,
                    Ok(None) => {
                        // Only as much as completes the frame being read: one frame at most.
                        let n = framer.push_some(rest);
                        rest = &rest[n..];
                        Step::NeedMore
                    }
                    Err(EmptyFrame) => Step::Broken,
                }
            };
            match step {
                Step::NeedMore => {}
                Step::Message(msg) => {
                    if let Some(done) = self.on_message(now, xid, token, msg, io) {
                        return Some(done);
                    }
                }
                Step::Broken => return self.fail_try(now, xid, token, io),
            }
        }
    }

    fn framer_mut(&mut self, xid: u64, token: Token) -> Option<&mut Framer> {
        let st = self.exchanges.get_mut(&xid)?;
        let t = st.tries.iter_mut().find(|t| t.token == token)?;
        t.framer.as_mut()
    }

    /// One message from the try `token`, which is open.
    fn on_message(
        &mut self,
        now: Instant,
        xid: u64,
        token: Token,
        msg: Bytes,
        io: &mut Io<'_>,
    ) -> Option<Finished> {
        let st = self.exchanges.get_mut(&xid)?;
        let index = st.tries.iter().position(|t| t.token == token)?;
        let t = &st.tries[index];
        let reply = expected(&st.spec, t).and_then(|e| e.reply(msg));
        let Some((reply, rcode)) = reply.and_then(readable) else {
            io.stats.spoofed_ignored += 1;
            if matches!(t.via, Via::Tcp) {
                // Nobody can spoof our own TCP connection: the upstream is broken.
                return self.fail_try(now, xid, token, io);
            }
            return None;
        };
        let (server, via, edns) = (t.server, t.via, t.edns);
        if let Some(&addr) = st.spec.servers.get(server) {
            io.stats
                .observe_upstream(addr, now.saturating_duration_since(t.sent));
        }
        let tcp = matches!(via, Via::Tcp);
        if reply.header_counts().qdcount() == 0 {
            // An error without a question (the matching let no other reply through): no
            // data to use, but this try's failure at once, as the same rcode with a question.
            if edns && reply.header().rcode() == Rcode::FORMERR {
                if let Some(state) = st.servers.get_mut(server) {
                    state.no_edns = true;
                }
                self.retry_on(now, xid, token, server, tcp, io);
                return None;
            }
            if st.spec.iterative {
                return self.finish(xid, Exchanged::Reply(reply), io);
            }
            return self.fail_try(now, xid, token, io);
        }
        if reply.header().tc() && !tcp {
            io.stats.tcp_fallbacks += 1;
            self.retry_on(now, xid, token, server, true, io);
            return None;
        }
        if edns && rcode == OptRcode::FORMERR {
            // An upstream that does not know EDNS (RFC 6891 section 7): once more without it.
            if let Some(state) = st.servers.get_mut(server) {
                state.no_edns = true;
            }
            self.retry_on(now, xid, token, server, tcp, io);
            return None;
        }
        if is_upstream_failure(rcode) && !st.spec.iterative {
            return self.fail_try(now, xid, token, io);
        }
        self.finish(xid, Exchanged::Reply(reply), io)
    }

    /// Ends the try `token` and marks its server failed.
    fn fail_try(
        &mut self,
        now: Instant,
        xid: u64,
        token: Token,
        io: &mut Io<'_>,
    ) -> Option<Finished> {
        let st = self.exchanges.get_mut(&xid)?;
        let index = st.tries.iter().position(|t| t.token == token)?;
        let t = st.tries.remove(index);
        if let Some(state) = st.servers.get_mut(t.server) {
            state.failed = true;
        }
        close_try(&mut self.tokens, &mut self.ports, t, io);
        self.after_failure(now, xid, io)
    }

    /// The runtime could not carry out a try.
    pub fn on_error(
        &mut self,
        now: Instant,
        token: Token,
        err: UpstreamError,
        io: &mut Io<'_>,
    ) -> Option<Finished> {
        let &xid = self.tokens.get(&token)?;
        let st = self.exchanges.get(&xid)?;
        let t = st.tries.iter().find(|t| t.token == token)?;
        let (server, retries) = (t.server, t.bind_retries);
        let udp = matches!(t.via, Via::Udp { .. });
        if err == UpstreamError::Bind && udp && retries < MAX_BIND_RETRIES {
            // Same server, new port (and ID).
            self.retry_on(now, xid, token, server, false, io);
            if let Some(t) = self
                .exchanges
                .get_mut(&xid)
                .and_then(|st| st.tries.last_mut())
            {
                t.bind_retries = retries + 1;
            }
            return None;
        }
        self.fail_try(now, xid, token, io)
    }

    /// Closes the try `token` and sends another to `server` in its place (over TCP or UDP):
    /// the fallback to TCP after TC, the retry without EDNS, a new port after a bind failure.
    fn retry_on(
        &mut self,
        now: Instant,
        xid: u64,
        token: Token,
        server: usize,
        tcp: bool,
        io: &mut Io<'_>,
    ) {
        let Some(st) = self.exchanges.get_mut(&xid) else {
            return;
        };
        if let Some(index) = st.tries.iter().position(|t| t.token == token) {
            let t = st.tries.remove(index);
            close_try(&mut self.tokens, &mut self.ports, t, io);
        }
        self.send_try(now, xid, Target::Same { server, tcp }, io);
    }

    /// A server failed: try the next one at once, or give up when all have failed.
    fn after_failure(&mut self, now: Instant, xid: u64, io: &mut Io<'_>) -> Option<Finished> {
        let st = self.exchanges.get(&xid)?;
        if st.servers.iter().all(|s| s.failed) {
            if st.tries.is_empty() {
                return self.finish(xid, Exchanged::Failed(ExchangeFailure::AllFailed), io);
            }
            return None; // a TCP try or a late reply may still succeed
        }
        self.send_try(now, xid, Target::Next, io);
        None
    }

    /// The per-try timer fired: try the next server, earlier tries staying open.
    pub fn on_try_timeout(&mut self, now: Instant, xid: u64, io: &mut Io<'_>) -> Option<Finished> {
        let st = self.exchanges.get_mut(&xid)?;
        st.try_timer = None;
        if now >= st.deadline {
            return None; // the budget timer ends it
        }
        io.stats.upstream_timeouts += 1;
        if st.spec.iterative {
            // The resolver picks the next server itself.
            return self.finish(xid, Exchanged::Failed(ExchangeFailure::TimedOut), io);
        }
        if st.servers.iter().all(|s| s.failed) {
            return None;
        }
        self.send_try(now, xid, Target::Next, io);
        None
    }

    /// The budget ran out.
    pub fn on_budget(&mut self, xid: u64, io: &mut Io<'_>) -> Option<Finished> {
        self.finish(xid, Exchanged::Failed(ExchangeFailure::TimedOut), io)
    }

    fn finish(&mut self, xid: u64, outcome: Exchanged, io: &mut Io<'_>) -> Option<Finished> {
        let st = self.exchanges.remove(&xid)?;
        self.by_question.remove(&st.question_key);
        self.waiting = self.waiting.saturating_sub(st.waiters.len());
        self.in_flight.sub(1);
        io.timers.cancel(st.budget_timer);
        if let Some(k) = st.try_timer {
            io.timers.cancel(k);
        }
        for t in st.tries {
            close_try(&mut self.tokens, &mut self.ports, t, io);
        }
        Some(Finished {
            waiters: st.waiters,
            outcome,
        })
    }
}

fn close_try(tokens: &mut FastMap<Token, u64>, ports: &mut FastSet<u16>, t: Try, io: &mut Io<'_>) {
    tokens.remove(&t.token);
    if let Via::Udp { local_port } = t.via {
        ports.remove(&local_port);
    }
    io.actions
        .push_back(Action::CloseUpstream { token: t.token });
}

/// A source port not in use by another live try (a few draws, then accept a repeat:
/// the runtime reports a bind failure and another port is drawn).
fn fresh_port(ports: &mut FastSet<u16>, rng: &mut Rng) -> u16 {
    let mut port = rng.port();
    for _ in 0..8 {
        if !ports.contains(&port) {
            break;
        }
        port = rng.port();
    }
    ports.insert(port);
    port
}

/// What makes two exchanges the same: servers, lower-cased name, type, class and flags.
fn question_key(spec: &Exchange) -> Box<[u8]> {
    let mut key = Vec::with_capacity(spec.qname.as_slice().len() + 32);
    if spec.iterative {
        // A recursor makes a fresh server list per exchange: the same server is the same.
        for server in spec.servers.iter() {
            key.extend_from_slice(server.to_string().as_bytes());
            key.push(0);
        }
    } else {
        key.extend_from_slice(
            &(std::sync::Arc::as_ptr(&spec.servers) as *const SocketAddr as usize).to_ne_bytes(),
        );
    }
    key.extend(spec.qname.as_slice().iter().map(u8::to_ascii_lowercase));
    key.extend_from_slice(&spec.qtype.to_int().to_be_bytes());
    key.extend_from_slice(&spec.qclass.to_int().to_be_bytes());
    key.push(
        u8::from(spec.recursion_desired)
            | u8::from(spec.dnssec_ok) << 1
            | u8::from(spec.checking_disabled) << 2
            | u8::from(spec.edns) << 3
            | u8::from(spec.iterative) << 4,
    );
    key.into_boxed_slice()
}

/// What the reply to the try `t` must carry: the one check the client makes too.
fn expected<'a>(spec: &'a Exchange, t: &Try) -> Option<Expected<'a>> {
    Some(Expected {
        server: *spec.servers.get(t.server)?,
        id: t.id,
        qname: &spec.qname,
        qtype: spec.qtype,
        qclass: spec.qclass,
    })
}

/// The reply with its full rcode (the OPT's extended bits), if every record is readable:
/// otherwise it is garbage.
fn readable(msg: Message<Bytes>) -> Option<(Message<Bytes>, OptRcode)> {
    let mut ext = 0;
    for item in msg.iter() {
        let (rr, _) = item.ok()?;
        if rr.rtype() == Rtype::OPT {
            ext = (rr.ttl().as_secs() >> 24) as u8;
        }
    }
    let rcode = OptRcode::from_parts(msg.header().rcode(), ext);
    Some((msg, rcode))
}
