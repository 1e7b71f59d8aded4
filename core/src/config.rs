//! Limits and timeouts of a [`Server`](crate::Server), each with its documented default.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Client queries one upstream exchange carries at most (the first and those that joined
/// it because they ask the same question); beyond it they get SERVFAIL at once.
pub const MAX_WAITERS_PER_EXCHANGE: usize = 64;

/// Server configuration. `Config::default()` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Total time a client query may take before it is answered SERVFAIL (`--timeout`, 5000 ms).
    pub budget: Duration,
    /// Time one upstream try is given before the next upstream is tried (`--try-timeout`,
    /// 1000 ms), capped by the budget left.
    pub try_timeout: Duration,
    /// A client TCP connection with nothing in flight is closed after this long without a
    /// complete query or a reply written (`--tcp-idle-ms`, 10000 ms); a tenth of it while
    /// 90% of `max_tcp` are open, so idle clients cannot hold the slots.
    pub tcp_idle: Duration,
    /// Open client TCP connections beyond this are closed at once (`--max-tcp`, 1024).
    pub max_tcp: usize,
    /// Open client TCP connections from one IP address; one more is closed at once
    /// (`--max-tcp-per-client`, 32).
    pub max_tcp_per_client: usize,
    /// Queries in flight on one TCP connection before it is no longer read (`--max-pipelined`, 64).
    pub max_pipelined: usize,
    /// Bytes of replies queued to one TCP connection and not yet reported written
    /// ([`Server::handle_tcp_written`](crate::Server::handle_tcp_written)) above which no
    /// further query is taken from it (`--max-tcp-buffered`, 64 KiB). Also bounds the
    /// connection's unread input: see [`Server::handle_client`](crate::Server::handle_client).
    pub max_tcp_buffered: usize,
    /// Upstream exchanges in flight; a query beyond it gets SERVFAIL (`--max-inflight`, 4096).
    /// The bound applies to the sum over every server sharing one [`InFlight`] count
    /// ([`Server::with_shared`](crate::Server::with_shared)), so one per worker bounds the
    /// whole process.
    pub max_exchanges: usize,
    /// Client queries waiting for an upstream exchange, per server (one per worker); a query
    /// beyond it gets SERVFAIL at once and counts as `overloaded` (`--max-waiting`, 16384,
    /// 4 x the default `max_exchanges`). One exchange also takes at most
    /// [`MAX_WAITERS_PER_EXCHANGE`] queries: identical questions beyond it get SERVFAIL too.
    pub max_waiting: usize,
    /// Lookups in flight per server (jobs a resolver asked its runtime to run:
    /// [`Resolution::Lookup`](crate::Resolution::Lookup)); a query asking for one more gets
    /// SERVFAIL at once and counts as `overloaded` (4096).
    pub max_lookups: usize,
    /// EDNS UDP payload size advertised to clients and upstreams, and the most sent to a
    /// client over UDP (1232, the DNS flag day 2020 value).
    pub edns_udp_size: u16,
    /// Emit an [`Action::Log`](crate::Action::Log) for every answered query (`--log-queries`, off).
    pub log_queries: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            budget: Duration::from_millis(5000),
            try_timeout: Duration::from_millis(1000),
            tcp_idle: Duration::from_millis(10_000),
            max_tcp: 1024,
            max_tcp_per_client: 32,
            max_pipelined: 64,
            max_tcp_buffered: 64 * 1024,
            max_exchanges: 4096,
            max_waiting: 16384,
            max_lookups: 4096,
            edns_udp_size: 1232,
            log_queries: false,
        }
    }
}

/// Upstream tries one exchange keeps open at most (each one a socket in the runtime): a
/// late reply to an earlier try still counts, and the oldest is closed beyond this.
pub const MAX_OPEN_TRIES: usize = 6;

impl Config {
    /// File descriptors the runtime may need for client connections and upstream sockets at
    /// these limits: one per TCP connection, [`MAX_OPEN_TRIES`] per exchange in flight.
    pub fn descriptors_needed(&self) -> usize {
        self.max_tcp
            .saturating_add(self.max_exchanges.saturating_mul(MAX_OPEN_TRIES))
    }
}

/// The upstream exchanges in flight, counted across every [`Server`](crate::Server) given
/// this handle: create one and pass it to each worker's
/// [`Server::with_shared`](crate::Server::with_shared), so [`Config::max_exchanges`] bounds
/// the process, not each worker. Clones share the count.
#[derive(Clone, Debug, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// A count of zero, shared by nobody yet.
    pub fn new() -> InFlight {
        InFlight::default()
    }

    /// Exchanges in flight now, summed over the servers sharing this count.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, n: usize) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::Relaxed);
    }
}
