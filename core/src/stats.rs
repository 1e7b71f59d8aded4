//! Counters kept by the core, and their description as metrics.
//!
//! Everything here is a plain number (or a small map of them) updated inline as the
//! [`Server`] works; [`Server::stats`] hands out a
//! reference. A runtime exports them without knowing them field by field: a worker
//! copies its server's counters with [`Stats::read`], the copies of every worker are
//! summed with [`Stats::merge`], and [`Stats::metrics`] describes the sum, metric by
//! metric (name, help, kind, labels, value). The `names` binary serves that as
//! Prometheus metrics:
//!
//! ```
//! use names_core::stats::{Kind, Value};
//! use names_core::{Chain, Config, Server, Stats};
//!
//! let workers = [Server::new(Config::default(), Chain::new(), [1; 32]),
//!                Server::new(Config::default(), Chain::new(), [2; 32])];
//! let mut total = Stats::default();
//! for server in &workers {
//!     let mut snapshot = Stats::default();
//!     snapshot.read(server);
//!     total.merge(&snapshot);
//! }
//! let metrics = total.metrics();
//! let dropped = metrics.iter().find(|m| m.name == "dropped").unwrap();
//! assert_eq!(dropped.kind, Kind::Counter);
//! assert_eq!(dropped.samples[0].value, Value::Count(0));
//! let answers = metrics.iter().find(|m| m.name == "answers").unwrap();
//! assert_eq!(answers.samples[0].labels, [("source", "none".to_string())]);
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use domain::base::iana::{OptRcode, Rtype};

use crate::action::Transport;
use crate::cache::CacheStats;
use crate::recursor::{RecursorStats, SENDS_BOUNDS};
use crate::server::Server;

/// Counters of what the server has seen and done since it was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client messages taken as queries (UDP datagrams and TCP frames).
    pub queries: u64,
    /// Replies sent to clients.
    pub replies: u64,
    /// Client messages dropped without a reply (too short, QR set, or for a closed connection).
    pub dropped: u64,
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
    /// Queries answered SERVFAIL because too many exchanges or lookups
    /// ([`Config::max_lookups`](crate::Config::max_lookups)) were in flight, or too many
    /// queries were waiting on them (`Config::max_waiting`, 64 per exchange).
    pub overloaded: u64,
    /// Lookups asked for by resolvers and handed to the runtime.
    pub lookups_started: u64,
    /// Lookups whose result came back within the budget.
    pub lookups_completed: u64,
    /// Lookups whose query's budget ended first (the runtime was told to drop them).
    pub lookups_timed_out: u64,
    /// Lookup results ignored: for a lookup that had timed out, or an unknown id.
    pub lookups_late: u64,
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
    /// Signed requests answered with a TSIG error (BADKEY, BADSIG, BADTIME) or FORMERR.
    pub tsig_rejected: u64,
    /// Replies sent, by transport, question type and response code.
    pub(crate) queries_by_kind: HashMap<QueryKind, u64, KindHasher>,
    /// Per upstream server: time from sending a try to receiving its matching reply.
    pub(crate) upstream_latency: HashMap<SocketAddr, LatencyHistogram, KindHasher>,
    /// What [`Stats::read`] adds: the server's gauges and answers by resolver.
    gauges: Gauges,
    /// The shared cache's counters, when a runtime adds them ([`Stats::set_cache`]).
    cache: Option<CacheStats>,
    /// The shared recursor's counters, when a runtime adds them ([`Stats::set_recursor`]).
    recursor: Option<RecursorStats>,
}

/// The server's state at the last [`Stats::read`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Gauges {
    in_flight: u64,
    open_exchanges: u64,
    open_connections: u64,
    lookups_open: u64,
    /// Answers by resolver name, in chain order (the last: `none`).
    answers: Vec<(String, u64)>,
}

/// What a [`Metric`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (exported with a `_total` suffix).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in fixed buckets.
    Histogram,
}

/// The value of one [`Sample`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A counter's or a gauge's value.
    Count(u64),
    /// A histogram: per bucket, its upper bound in seconds and the observations in it
    /// (not cumulative; the last bound is infinite), then the sum in seconds and the count.
    Histogram {
        /// `(upper bound, observations)` per bucket.
        buckets: Vec<(f64, u64)>,
        /// Sum of the observations, in seconds.
        sum: f64,
        /// Number of observations.
        count: u64,
    },
}

/// One labelled value of a [`Metric`].
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Label names and values (none for a plain counter).
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: Value,
}

/// One metric: what it is, and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// Its name, without a prefix or a `_total` suffix (the `names` binary exports
    /// `dropped` as `names_dropped_total`).
    pub name: &'static str,
    /// One line saying what it counts.
    pub help: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its values, one per label set.
    pub samples: Vec<Sample>,
}

/// Unlabelled metrics, one per `name, kind, value, help;` line.
macro_rules! plain {
    ($($name:literal, $kind:ident, $value:expr, $help:literal;)*) => {
        [$(Metric {
            name: $name,
            help: $help,
            kind: Kind::$kind,
            samples: vec![Sample { labels: Vec::new(), value: Value::Count($value) }],
        }),*]
    };
}

/// The recursor's metrics: the shape of its resolutions and what its caches hold.
fn recursor_metrics(r: &RecursorStats) -> Vec<Metric> {
    let histogram = |bounds: &[u64], counts: &[u64], sum: u64| Value::Histogram {
        buckets: bounds
            .iter()
            .map(|&b| b as f64)
            .chain([f64::INFINITY])
            .zip(counts.iter().copied())
            .collect(),
        sum: sum as f64,
        count: counts.iter().sum(),
    };
    let depth_sum = r.depth.iter().zip(0u64..).map(|(n, d)| n * d).sum();
    let mut out = vec![
        Metric {
            name: "recursor_upstream_queries_per_query",
            help: "Exchanges with authoritative servers per client query resolved",
            kind: Kind::Histogram,
            samples: vec![Sample {
                labels: Vec::new(),
                value: histogram(&SENDS_BOUNDS, &r.sends, r.sends_sum),
            }],
        },
        Metric {
            name: "recursor_depth",
            help: "Deepest sub-query nesting per client query resolved",
            kind: Kind::Histogram,
            samples: vec![Sample {
                labels: Vec::new(),
                value: histogram(&[0, 1, 2, 3, 4], &r.depth, depth_sum),
            }],
        },
    ];
    out.extend(plain! {
        "recursor_resolutions", Counter, r.resolutions, "Client queries resolved from the root";
        "recursor_limited", Counter, r.limited,
            "Resolutions ended by a limit (SERVFAIL)";
        "recursor_lame_marked", Counter, r.lame_marked, "Servers found lame for a zone";
        "recursor_lame_servers", Gauge, r.lame_servers,
            "Server and zone pairs remembered as lame now";
        "recursor_infra_entries", Gauge, r.infra_entries,
            "Entries in the infrastructure cache (server RTT, EDNS, lameness)";
        "recursor_delegation_entries", Gauge, r.delegation_entries,
            "NS sets and NS addresses kept";
        "recursor_max_depth", Gauge, r.max_depth, "The deepest sub-query nesting reached";
    });
    out
}

/// The hasher of [`Stats::queries_by_kind`]: its keys are a few small numbers the server
/// derives itself, counted on every reply.
pub(crate) type KindHasher = std::hash::BuildHasherDefault<crate::fasthash::MixHasher>;

/// What a reply counted in [`Stats::queries_by_kind`] answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct QueryKind {
    /// `true` for TCP, `false` for UDP (kept as a plain flag so the key sorts).
    pub tcp: bool,
    /// The question's type (`None` when the message had no readable question;
    /// [`QTYPE_OTHER`] for every type without a registered mnemonic).
    pub qtype: Option<u16>,
    /// The reply's 12-bit response code.
    pub rcode: u16,
}

/// Upper bounds, in microseconds, of the [`LatencyHistogram`] buckets (a last,
/// unbounded bucket follows them).
pub(crate) const LATENCY_BOUNDS_US: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000,
];

/// A latency histogram with fixed buckets ([`LATENCY_BOUNDS_US`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LatencyHistogram {
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
    pub(crate) fn observe(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[i] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.count += 1;
    }

    fn value(&self) -> Value {
        let bounds = LATENCY_BOUNDS_US.iter().map(|&us| us as f64 / 1e6);
        Value::Histogram {
            buckets: bounds.chain([f64::INFINITY]).zip(self.buckets).collect(),
            sum: self.sum_us as f64 / 1e6,
            count: self.count,
        }
    }
}

impl Stats {
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

impl Stats {
    /// Copies `server`'s counters in, with its gauges (queries in flight, open exchanges
    /// and connections) and its answers by resolver, reusing this value's allocations.
    pub fn read(&mut self, server: &Server) {
        let cache = self.cache.take();
        let recursor = self.recursor.take();
        let mut gauges = std::mem::take(&mut self.gauges);
        self.clone_from(server.stats());
        let answers = server.answers_by_source();
        if gauges.answers.len() != answers.len() {
            gauges.answers = answers.iter().map(|(n, c)| (n.to_string(), *c)).collect();
        } else {
            for (slot, (_, count)) in gauges.answers.iter_mut().zip(answers) {
                slot.1 = count;
            }
        }
        gauges.in_flight = server.pending_queries() as u64;
        gauges.open_exchanges = server.open_exchanges() as u64;
        gauges.open_connections = server.open_connections() as u64;
        gauges.lookups_open = server.open_lookups() as u64;
        self.gauges = gauges;
        self.cache = cache;
        self.recursor = recursor;
    }

    /// Adds the cache's counters (a cache shared by the workers is read once, at export).
    pub fn set_cache(&mut self, cache: CacheStats) {
        self.cache = Some(cache);
    }

    /// Adds the recursor's counters (shared by the workers: read once, at export).
    pub fn set_recursor(&mut self, recursor: RecursorStats) {
        self.recursor = Some(recursor);
    }

    /// Adds `other` (another worker's counters) to these. Counters, gauges and histograms
    /// are summed, answers by resolver name; cache counters are taken, not summed, since
    /// the workers share one cache.
    pub fn merge(&mut self, other: &Stats) {
        let Stats {
            queries,
            replies,
            dropped,
            truncated,
            upstream_sent,
            upstream_timeouts,
            tcp_fallbacks,
            spoofed_ignored,
            coalesced,
            overloaded,
            lookups_started,
            lookups_completed,
            lookups_timed_out,
            lookups_late,
            tcp_refused,
            tcp_idle_closed,
            tcp_per_client_refused,
            tcp_overrun,
            tcp_oversize,
            tsig_rejected,
            queries_by_kind,
            upstream_latency,
            gauges,
            cache,
            recursor,
        } = other;
        for (sum, n) in [
            (&mut self.queries, queries),
            (&mut self.replies, replies),
            (&mut self.dropped, dropped),
            (&mut self.truncated, truncated),
            (&mut self.upstream_sent, upstream_sent),
            (&mut self.upstream_timeouts, upstream_timeouts),
            (&mut self.tcp_fallbacks, tcp_fallbacks),
            (&mut self.spoofed_ignored, spoofed_ignored),
            (&mut self.coalesced, coalesced),
            (&mut self.overloaded, overloaded),
            (&mut self.lookups_started, lookups_started),
            (&mut self.lookups_completed, lookups_completed),
            (&mut self.lookups_timed_out, lookups_timed_out),
            (&mut self.lookups_late, lookups_late),
            (&mut self.gauges.lookups_open, &gauges.lookups_open),
            (&mut self.tcp_refused, tcp_refused),
            (&mut self.tcp_idle_closed, tcp_idle_closed),
            (&mut self.tcp_per_client_refused, tcp_per_client_refused),
            (&mut self.tcp_overrun, tcp_overrun),
            (&mut self.tcp_oversize, tcp_oversize),
            (&mut self.tsig_rejected, tsig_rejected),
            (&mut self.gauges.in_flight, &gauges.in_flight),
            (&mut self.gauges.open_exchanges, &gauges.open_exchanges),
            (&mut self.gauges.open_connections, &gauges.open_connections),
        ] {
            *sum = sum.saturating_add(*n);
        }
        for (k, n) in queries_by_kind {
            *self.queries_by_kind.entry(*k).or_insert(0) += n;
        }
        for (server, h) in upstream_latency {
            let sum = self.upstream_latency.entry(*server).or_default();
            for (b, n) in sum.buckets.iter_mut().zip(h.buckets) {
                *b += n;
            }
            sum.sum_us = sum.sum_us.saturating_add(h.sum_us);
            sum.count += h.count;
        }
        for (name, n) in &gauges.answers {
            match self.gauges.answers.iter_mut().find(|(m, _)| m == name) {
                Some(slot) => slot.1 += n,
                None => self.gauges.answers.push((name.clone(), *n)),
            }
        }
        if cache.is_some() {
            self.cache = *cache;
        }
        if recursor.is_some() {
            self.recursor = *recursor;
        }
    }

    /// Every metric these counters make, in a stable order (labelled samples sorted).
    /// The cache metrics are there only when [`Stats::set_cache`] gave them.
    #[allow(clippy::disallowed_methods)] // both maps are sorted before use
    pub fn metrics(&self) -> Vec<Metric> {
        let mut queries: Vec<(&QueryKind, &u64)> = self.queries_by_kind.iter().collect();
        queries.sort();
        let queries = queries.into_iter().map(|(k, n)| Sample {
            labels: vec![
                ("transport", if k.tcp { "tcp" } else { "udp" }.to_string()),
                ("qtype", qtype_label(k.qtype)),
                // `masked_from_int` keeps the 12 bits an rcode has (`checked_from_int` in
                // domain 0.12.3 rejects every non-zero value).
                ("rcode", OptRcode::masked_from_int(k.rcode).to_string()),
            ],
            value: Value::Count(*n),
        });
        let mut answers = self.gauges.answers.clone();
        answers.sort();
        let answers = answers.into_iter().map(|(source, n)| Sample {
            labels: vec![("source", source)],
            value: Value::Count(n),
        });
        let mut latency: Vec<_> = self.upstream_latency.iter().collect();
        latency.sort_by_key(|(server, _)| **server);
        let latency = latency.into_iter().map(|(server, h)| Sample {
            labels: vec![("upstream", server.to_string())],
            value: h.value(),
        });
        let (t, g) = (self, &self.gauges);
        let mut out = vec![
            Metric {
                name: "queries",
                help: "Client queries answered, by transport, question type and response code",
                kind: Kind::Counter,
                samples: queries.collect(),
            },
            Metric {
                name: "answers",
                help:
                    "Answers by the resolver that gave them (none: no resolver answered, REFUSED)",
                kind: Kind::Counter,
                samples: answers.collect(),
            },
        ];
        out.extend(plain! {
            "received", Counter, t.queries,
                "Client messages taken as queries (UDP datagrams and TCP frames)";
            "replies", Counter, t.replies, "Replies sent to clients";
            "dropped", Counter, t.dropped, "Client messages dropped without a reply";
            "truncated", Counter, t.truncated, "UDP replies truncated with TC=1";
            "overloaded", Counter, t.overloaded,
                "Queries answered SERVFAIL because too many upstream exchanges or lookups were \
                 in flight or too many queries were waiting for them";
            "lookups_started", Counter, t.lookups_started,
                "Lookups asked for by resolvers and handed to the runtime";
            "lookups_completed", Counter, t.lookups_completed,
                "Lookups whose result came back within the query's budget";
            "lookups_timed_out", Counter, t.lookups_timed_out,
                "Lookups whose query's budget ended first";
            "lookups_late", Counter, t.lookups_late,
                "Lookup results ignored: the lookup had timed out, or the id was unknown";
            "upstream_queries", Counter, t.upstream_sent,
                "Queries sent upstream (every try, UDP or TCP)";
            "upstream_timeouts", Counter, t.upstream_timeouts, "Upstream tries that timed out";
            "upstream_tcp_fallbacks", Counter, t.tcp_fallbacks,
                "Upstream queries retried over TCP after a truncated UDP reply";
            "upstream_spoofed_ignored", Counter, t.spoofed_ignored,
                "Upstream messages ignored: wrong source, ID or question, or unparsable";
            "upstream_coalesced", Counter, t.coalesced,
                "Queries that joined an identical upstream exchange already in flight";
        });
        out.push(Metric {
            name: "upstream_latency_seconds",
            help: "Time from sending a query upstream to its matching reply, per upstream",
            kind: Kind::Histogram,
            samples: latency.collect(),
        });
        if let Some(c) = &self.cache {
            out.extend(plain! {
                "cache_hits", Counter, c.hits, "Lookups answered from the cache";
                "cache_misses", Counter, c.misses, "Lookups the cache could not answer";
                "cache_evictions", Counter, c.evictions, "Cache entries dropped to make room";
                "cache_inserts", Counter, c.inserts, "Answers stored in the cache";
                "cache_stale_served", Counter, c.stale_served,
                    "Expired answers served because every upstream failed";
                "cache_prefetches", Counter, c.prefetches,
                    "Background refreshes of cached answers near expiry (prefetch)";
                "cache_entries", Gauge, c.entries, "Entries in the cache";
                "cache_rrsets", Gauge, c.rrsets, "RRsets held by the cache's entries";
            });
        }
        if let Some(r) = &self.recursor {
            out.extend(recursor_metrics(r));
        }
        out.extend(plain! {
            "queries_in_flight", Gauge, g.in_flight, "Client queries waiting for an upstream";
            "upstream_exchanges_open", Gauge, g.open_exchanges, "Upstream exchanges in flight";
            "tcp_connections_open", Gauge, g.open_connections, "Open client TCP connections";
            "lookups_in_flight", Gauge, g.lookups_open, "Lookups waiting for the runtime";
            "tcp_refused", Counter, t.tcp_refused,
                "Client TCP connections closed at once because the cap was reached";
            "tcp_idle_closed", Counter, t.tcp_idle_closed,
                "Client TCP connections closed for being idle";
            "tcp_per_client_refused", Counter, t.tcp_per_client_refused,
                "Client TCP connections closed at once because their address had \
                 --max-tcp-per-client open";
            "tcp_overrun", Counter, t.tcp_overrun,
                "Client TCP connections closed for more unread input than the server holds";
            "tcp_oversize", Counter, t.tcp_oversize,
                "TCP answers (zone transfers) refused with SERVFAIL because a record fits no \
                 65535-byte message";
            "tsig_rejected", Counter, t.tsig_rejected,
                "Signed requests answered with a TSIG error (BADKEY, BADSIG, BADTIME) or FORMERR";
        });
        out
    }
}

/// The `qtype` label: the mnemonic, `other` for types without one, `none` without a question.
fn qtype_label(qtype: Option<u16>) -> String {
    match qtype {
        None => "none".to_string(),
        Some(QTYPE_OTHER) => "other".to_string(),
        Some(t) => Rtype::from_int(t).to_string(),
    }
}

/// The [`QueryKind::qtype`] of every type without a registered mnemonic (type 0 is reserved,
/// so it names no real type).
pub(crate) const QTYPE_OTHER: u16 = 0;

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

    #[test]
    fn merge_sums_counters_histograms_and_answers_by_name_and_takes_the_cache() {
        let upstream: SocketAddr = "192.0.2.53:53".parse().unwrap();
        let mut a = Stats {
            replies: 2,
            ..Stats::default()
        };
        a.count_query(Transport::Udp, Some(1), 0);
        a.observe_upstream(upstream, Duration::from_millis(3));
        a.gauges.answers = vec![("synth".into(), 2), ("none".into(), 0)];
        a.gauges.in_flight = 1;
        let cache = CacheStats {
            hits: 4,
            ..CacheStats::default()
        };
        a.set_cache(cache);
        let mut b = a.clone();
        b.gauges.answers = vec![("forward".into(), 5), ("none".into(), 1)];
        let mut total = Stats::default();
        total.merge(&a);
        total.merge(&b);
        assert_eq!(total.replies, 4);
        assert_eq!(total.cache, Some(cache), "one shared cache: not summed");
        let metrics = total.metrics();
        let find = |name: &str| metrics.iter().find(|m| m.name == name).unwrap();
        let queries = &find("queries").samples[0];
        assert_eq!(
            queries.labels,
            [
                ("transport", "udp".to_string()),
                ("qtype", "A".to_string()),
                ("rcode", "NOERROR".to_string())
            ]
        );
        assert_eq!(queries.value, Value::Count(2));
        let answers: Vec<_> = find("answers")
            .samples
            .iter()
            .map(|s| (s.labels[0].1.as_str(), s.value.clone()))
            .collect();
        assert_eq!(
            answers,
            [
                ("forward", Value::Count(5)),
                ("none", Value::Count(1)),
                ("synth", Value::Count(2))
            ]
        );
        assert_eq!(find("queries_in_flight").kind, Kind::Gauge);
        assert_eq!(find("queries_in_flight").samples[0].value, Value::Count(2));
        assert_eq!(find("cache_hits").samples[0].value, Value::Count(4));
        let latency = find("upstream_latency_seconds");
        assert_eq!(
            latency.samples[0].labels,
            [("upstream", upstream.to_string())]
        );
        let Value::Histogram { buckets, count, .. } = &latency.samples[0].value else {
            panic!("a histogram")
        };
        assert_eq!((*count, buckets[2]), (2, (0.005, 2)));
        assert_eq!(buckets.last().map(|b| b.0), Some(f64::INFINITY));
    }
}
