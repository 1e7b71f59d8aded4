//! Replaying a journal: fresh servers fed its inputs at their times, their actions
//! collected per worker.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Entry, Input, Record};
use crate::action::Action;
use crate::server::Server;

/// The latest time offset a replay accepts (a century).
const MAX_OFFSET: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Feeds a lookup outcome from the journal to a server: the runtime decodes it with its
/// [`LookupCodec`](super::LookupCodec) and hands it over (`Err`: the bytes are not an outcome).
pub type LookupFeeder = Box<dyn FnMut(&mut Server, Instant, u64, &[u8]) -> Result<(), String>>;

/// Replays a journal's entries: a fresh server per recorded worker (made by the runtime
/// when the worker's start entry comes, with its seed), inputs fed in order at
/// `start + at`, and the actions each server produces collected per worker, in order.
pub struct Replayer {
    make_server: Box<dyn FnMut(u16, [u8; 32]) -> Server>,
    servers: Vec<Option<Server>>,
    produced: Vec<VecDeque<Action>>,
    start: Instant,
    on_lookup: Option<LookupFeeder>,
}

impl Replayer {
    /// A replayer for `workers` workers; `make_server(worker, seed)` builds each one's
    /// server as recorded (configuration and chain from the header). `start` stands for
    /// the moment the recording started (any instant: only differences matter).
    pub fn new(
        start: Instant,
        workers: u16,
        make_server: impl FnMut(u16, [u8; 32]) -> Server + 'static,
    ) -> Replayer {
        Replayer {
            make_server: Box::new(make_server),
            servers: (0..workers).map(|_| None).collect(),
            produced: (0..workers).map(|_| VecDeque::new()).collect(),
            start,
            on_lookup: None,
        }
    }

    /// How lookup outcomes are handed back (without it, a lookup entry is an error).
    pub fn on_lookup(&mut self, feed: LookupFeeder) {
        self.on_lookup = Some(feed);
    }

    /// Feeds one entry. An input goes to its worker's server and the actions it produces
    /// are queued ([`Replayer::next_produced`]); an action entry is left to the caller.
    pub fn feed(&mut self, entry: &Entry<'_>) -> Result<(), String> {
        let w = usize::from(entry.worker);
        if w >= self.servers.len() {
            return Err(format!(
                "worker {w} is not one of the {} recorded",
                self.servers.len()
            ));
        }
        let Record::Input(input) = &entry.record else {
            return Ok(());
        };
        // A hostile journal's times stay within a century of the start.
        let now = match self.start.checked_add(entry.at) {
            Some(now) if entry.at <= MAX_OFFSET => now,
            _ => return Err(format!("time offset {:?} out of range", entry.at)),
        };
        if let Input::Start { seed } = input {
            if self.servers[w].is_some() {
                return Err(format!("worker {w} starts twice"));
            }
            self.servers[w] = Some((self.make_server)(entry.worker, *seed));
            return Ok(());
        }
        let Some(server) = self.servers[w].as_mut() else {
            return Err(format!("worker {w} has input before its start"));
        };
        match *input {
            Input::Start { .. } => {}
            Input::Client { from, bytes } => server.handle_client(now, from, bytes),
            Input::TcpOpen { conn, peer } => server.handle_tcp_open(now, conn, peer),
            Input::TcpWritten { conn, bytes } => server.handle_tcp_written(now, conn, bytes),
            Input::TcpEof { conn } => server.handle_tcp_eof(now, conn),
            Input::TcpClosed { conn } => server.handle_tcp_closed(now, conn),
            Input::Upstream { token, from, bytes } => {
                server.handle_upstream(now, token, from, bytes)
            }
            Input::UpstreamError { token, err } => server.handle_upstream_error(now, token, err),
            Input::Timeout => server.handle_timeout(now),
            Input::Lookup { id, outcome } => {
                let Some(bytes) = outcome else {
                    return Err(format!(
                        "lookup {id}: its outcome was not recorded (no codec could encode it)"
                    ));
                };
                match self.on_lookup.as_mut() {
                    Some(feed) => feed(server, now, id, bytes)?,
                    None => return Err(format!("lookup {id}: no way to replay lookup outcomes")),
                }
            }
        }
        while let Some(action) = server.poll_action() {
            if !matches!(action, Action::Log(_) | Action::Notified { .. }) {
                self.produced[w].push_back(action);
            }
        }
        Ok(())
    }

    /// The oldest action worker `worker`'s server produced and nobody took yet.
    pub fn next_produced(&mut self, worker: u16) -> Option<Action> {
        self.produced.get_mut(usize::from(worker))?.pop_front()
    }

    /// Actions of `worker`'s server not taken yet.
    pub fn pending(&self, worker: u16) -> usize {
        self.produced
            .get(usize::from(worker))
            .map_or(0, VecDeque::len)
    }

    /// The server of `worker`, once started.
    pub fn server(&self, worker: u16) -> Option<&Server> {
        self.servers.get(usize::from(worker))?.as_ref()
    }
}
