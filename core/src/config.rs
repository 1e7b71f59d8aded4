//! Limits and timeouts of a [`Server`](crate::Server), each with its documented default.

use std::time::Duration;

/// Server configuration. `Config::default()` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Total time a client query may take before it is answered SERVFAIL (`--timeout`, 5000 ms).
    pub budget: Duration,
    /// Time one upstream try is given before the next upstream is tried (`--try-timeout`,
    /// 1000 ms), capped by the budget left.
    pub try_timeout: Duration,
    /// A client TCP connection with nothing in flight is closed after this long without a
    /// complete query (`--tcp-idle-ms`, 10000 ms).
    pub tcp_idle: Duration,
    /// Open client TCP connections beyond this are closed at once (`--max-tcp`, 1024).
    pub max_tcp: usize,
    /// Queries in flight on one TCP connection before it is no longer read (`--max-pipelined`, 64).
    pub max_pipelined: usize,
    /// Upstream exchanges in flight; a query beyond it gets SERVFAIL (`--max-inflight`, 4096).
    pub max_exchanges: usize,
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
            max_pipelined: 64,
            max_exchanges: 4096,
            edns_udp_size: 1232,
            log_queries: false,
        }
    }
}
