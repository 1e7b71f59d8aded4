//! Plain counters kept by the core; the runtime reads and exports them.
//!
//! Everything here is a plain number (or a small map of them) updated inline as the
//! [`Server`](crate::Server) works; [`Server::stats`](crate::Server::stats) hands out a
//! reference, and a runtime publishes copies (the `names` binary serves them as
//! Prometheus metrics).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use domain::base::iana::Rtype;

use crate::action::Transport;

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
    /// Queries that joined an identical exchange already in flight.
    pub coalesced: u64,
    /// Queries answered SERVFAIL because too many exchanges were in flight, or too many
    /// queries were waiting on them (`Config::max_waiting`, 64 per exchange).
    pub overloaded: u64,
    /// Client TCP connections closed because the cap was reached.
    pub tcp_refused: u64,
    /// Client TCP connections closed for being idle.
    pub tcp_idle_closed: u64,
    /// Client TCP connections closed at once because their address had
    /// [`Config::max_tcp_per_client`](crate::Config::max_tcp_per_client) open.
    pub tcp_per_client_refused: u64,
    /// Client TCP connections closed because they sent more than the framer may hold.
    pub tcp_overrun: u64,
    /// TCP replies that could not be framed (over 65,535 bytes): answered SERVFAIL instead.
    pub tcp_oversize: u64,
    /// Replies sent, by transport, question type and response code.
    pub queries_by_kind: HashMap<QueryKind, u64, KindHasher>,
    /// Per upstream server: time from sending a try to receiving its matching reply.
    pub upstream_latency: HashMap<SocketAddr, LatencyHistogram, KindHasher>,
}

/// The hasher of [`Stats::queries_by_kind`]: its keys are a few small numbers the server
/// derives itself, counted on every reply.
pub type KindHasher = std::hash::BuildHasherDefault<crate::fasthash::MixHasher>;

/// What a reply counted in [`Stats::queries_by_kind`] answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryKind {
    /// `true` for TCP, `false` for UDP (kept as a plain flag so the key sorts).
    pub tcp: bool,
    /// The question's type (`None` when the message had no readable question;
    /// [`QTYPE_OTHER`] for every type without a registered mnemonic).
    pub qtype: Option<u16>,
    /// The reply's 12-bit response code.
    pub rcode: u16,
}

impl QueryKind {
    /// The transport the query came in on.
    pub fn transport(&self) -> Transport {
        if self.tcp {
            Transport::Tcp
        } else {
            Transport::Udp
        }
    }
}

/// Upper bounds, in microseconds, of the [`LatencyHistogram`] buckets (a last,
/// unbounded bucket follows them).
pub const LATENCY_BOUNDS_US: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000,
];

/// A latency histogram with fixed buckets ([`LATENCY_BOUNDS_US`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last entry counts those above
    /// every bound.
    pub buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
    /// Sum of every observation, in microseconds.
    pub sum_us: u64,
    /// Number of observations.
    pub count: u64,
}

impl LatencyHistogram {
    /// Records one observation.
    pub fn observe(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[i] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.count += 1;
    }
}

impl Stats {
    pub(crate) fn count_rcode(&mut self, rcode: u16) {
        self.rcodes[usize::from(rcode).min(23)] += 1;
    }

    /// Counts a reply in [`Stats::queries_by_kind`]: its transport, the type asked (`None`
    /// when the query had no readable question) and its rcode.
    /// Types without a registered mnemonic are counted together under [`QTYPE_OTHER`]: a
    /// client choosing the type must not grow the table (65,535 series once).
    pub(crate) fn count_query(&mut self, transport: Transport, qtype: Option<u16>, rcode: u16) {
        let qtype = qtype.map(|t| match Rtype::from_int(t).to_mnemonic() {
            Some(_) if t != QTYPE_OTHER => t,
            _ => QTYPE_OTHER,
        });
        let key = QueryKind {
            tcp: transport == Transport::Tcp,
            qtype,
            rcode,
        };
        *self.queries_by_kind.entry(key).or_insert(0) += 1;
    }

    /// Records how long `server` took to answer a try.
    pub(crate) fn observe_upstream(&mut self, server: SocketAddr, latency: Duration) {
        self.upstream_latency
            .entry(server)
            .or_default()
            .observe(latency);
    }
}

/// The [`QueryKind::qtype`] of every type without a registered mnemonic (type 0 is reserved,
/// so it names no real type).
pub const QTYPE_OTHER: u16 = 0;

/// The type of the first question of a wire-format message, read without a full parse.
pub(crate) fn question_type(message: &[u8]) -> Option<u16> {
    if message.get(4..6)? == [0, 0] {
        return None;
    }
    let mut at = 12;
    loop {
        let len = *message.get(at)?;
        match len {
            0 => {
                at += 1;
                break;
            }
            l if l & 0xc0 == 0xc0 => {
                at += 2;
                break;
            }
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
    let t = message.get(at..at + 2)?;
    Some(u16::from_be_bytes([t[0], t[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_type_reads_the_first_question() {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x1c\x00\x01");
        assert_eq!(question_type(&m), Some(28));
        m[5] = 0;
        assert_eq!(question_type(&m), None);
        assert_eq!(question_type(&m[..13]), None);
        assert_eq!(question_type(&[]), None);
    }

    #[test]
    fn types_a_client_invents_share_one_key() {
        let mut stats = Stats::default();
        for t in 0..=u16::MAX {
            stats.count_query(Transport::Udp, Some(t), 0);
        }
        assert!(
            stats.queries_by_kind.len() < 200,
            "{}",
            stats.queries_by_kind.len()
        );
        let other = QueryKind {
            tcp: false,
            qtype: Some(QTYPE_OTHER),
            rcode: 0,
        };
        assert!(stats.queries_by_kind[&other] > 65_000);
        let aaaa = QueryKind {
            qtype: Some(28),
            ..other
        };
        assert_eq!(stats.queries_by_kind[&aaaa], 1);
    }

    #[test]
    fn count_query_keys_by_transport_type_and_rcode() {
        let mut stats = Stats::default();
        stats.count_query(Transport::Udp, Some(1), 0);
        stats.count_query(Transport::Tcp, Some(1), 3);
        let udp = QueryKind {
            tcp: false,
            qtype: Some(1),
            rcode: 0,
        };
        let tcp = QueryKind {
            tcp: true,
            qtype: Some(1),
            rcode: 3,
        };
        assert_eq!(stats.queries_by_kind[&udp], 1);
        assert_eq!(stats.queries_by_kind[&tcp], 1);
    }

    #[test]
    fn latency_histogram_buckets() {
        let mut h = LatencyHistogram::default();
        h.observe(Duration::from_micros(1_000));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[2], 1);
        assert_eq!(h.buckets[LATENCY_BOUNDS_US.len()], 1);
        assert_eq!(h.count, 3);
        assert_eq!(h.sum_us, 1_000 + 3_000 + 60_000_000);
    }
}
