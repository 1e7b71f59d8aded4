//! Plain counters kept by the core; the runtime reads and exports them.

/// Counters of what the server has seen and done since it was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client messages taken as queries (UDP datagrams and TCP frames).
    pub queries: u64,
    /// Replies sent to clients.
    pub replies: u64,
    /// Client messages dropped without a reply (too short, QR set, or for a closed connection).
    pub dropped: u64,
    /// Replies by response code (index: the 12-bit rcode, clamped to 23 = "other").
    pub rcodes: [u64; 24],
    /// UDP replies truncated with TC=1.
    pub truncated: u64,
    /// Upstream messages sent (every try, UDP or TCP).
    pub upstream_sent: u64,
    /// Upstream tries that timed out.
    pub upstream_timeouts: u64,
    /// Retries over TCP after a truncated UDP reply.
    pub tcp_fallbacks: u64,
    /// Upstream messages ignored: wrong source, ID or question, or unparsable.
    pub spoofed_ignored: u64,
    /// Queries answered SERVFAIL because too many exchanges were in flight.
    pub overloaded: u64,
    /// Client TCP connections closed because the cap was reached.
    pub tcp_refused: u64,
    /// Client TCP connections closed for being idle.
    pub tcp_idle_closed: u64,
}

impl Stats {
    pub(crate) fn count_rcode(&mut self, rcode: u16) {
        self.rcodes[usize::from(rcode).min(23)] += 1;
    }
}
