//! The Prometheus endpoint (`--metrics ADDR`): `GET /metrics` over HTTP.
//!
//! The core keeps plain counters ([`names_core::Stats`]); each worker copies its
//! server's counters into its slot of a shared [`Board`] after every batch of events,
//! before the replies of that batch are written, so a scrape reflects every query
//! answered before it. A scrape sums the slots and encodes them with
//! `prometheus-client` (OpenMetrics text format).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `names_queries_total` | counter | `transport`, `qtype`, `rcode` |
//! | `names_answers_total` | counter | `source` (resolver name; `none`: nobody answered) |
//! | `names_dropped_total` | counter | |
//! | `names_truncated_total` | counter | |
//! | `names_overloaded_total` | counter | |
//! | `names_upstream_queries_total` | counter | |
//! | `names_upstream_timeouts_total` | counter | |
//! | `names_upstream_tcp_fallbacks_total` | counter | |
//! | `names_upstream_spoofed_ignored_total` | counter | |
//! | `names_upstream_latency_seconds` | histogram | `upstream` |
//! | `names_cache_hits_total`, `names_cache_misses_total`, `names_cache_evictions_total`, `names_cache_inserts_total`, `names_cache_stale_served_total` | counter | |
//! | `names_cache_entries` | gauge | |
//! | `names_queries_in_flight` | gauge | |
//! | `names_upstream_exchanges_open` | gauge | |
//! | `names_tcp_connections_open` | gauge | |
//! | `names_tcp_refused_total`, `names_tcp_idle_closed_total`, `names_tcp_per_client_refused_total`, `names_tcp_overrun_total`, `names_tcp_oversize_total` | counter | |
//!
//! The cache metrics are present only when the server was given a [`CacheProbe`].

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use names_core::domain::base::iana::{OptRcode, Rtype};
use names_core::stats::{LatencyHistogram, LATENCY_BOUNDS_US};
use names_core::{Server, Stats};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::LocalExecutor;

/// What one worker last published.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The core's counters.
    pub stats: Stats,
    /// Answers by resolver name, in chain order (see `Server::answers_by_source`).
    pub answers_by_source: Vec<(String, u64)>,
    /// Client queries waiting for an upstream.
    pub in_flight: u64,
    /// Upstream exchanges in flight.
    pub open_exchanges: u64,
    /// Open client TCP connections.
    pub open_connections: u64,
}

impl Snapshot {
    /// Copies the server's current counters in, reusing this snapshot's allocations.
    pub fn update(&mut self, server: &Server) {
        self.stats.clone_from(server.stats());
        let answers = server.answers_by_source();
        if self.answers_by_source.len() != answers.len() {
            self.answers_by_source = answers.iter().map(|(n, c)| (n.to_string(), *c)).collect();
        } else {
            for (slot, (_, count)) in self.answers_by_source.iter_mut().zip(answers) {
                slot.1 = count;
            }
        }
        self.in_flight = server.pending_queries() as u64;
        self.open_exchanges = server.open_exchanges() as u64;
        self.open_connections = server.open_connections() as u64;
    }
}

/// Cache counters, as a shared cache reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups the cache could not answer.
    pub misses: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
    /// Answers stored.
    pub inserts: u64,
    /// Expired answers served because every upstream failed (serve-stale).
    pub stale_served: u64,
    /// Entries held now.
    pub entries: u64,
}

/// Reads the cache's counters at scrape time (the cache is shared by the workers, so it
/// is read directly rather than published per worker).
#[derive(Clone)]
pub struct CacheProbe(Arc<dyn Fn() -> CacheCounts + Send + Sync>);

impl CacheProbe {
    /// A probe calling `read` on every scrape.
    pub fn new(read: impl Fn() -> CacheCounts + Send + Sync + 'static) -> CacheProbe {
        CacheProbe(Arc::new(read))
    }
}

impl fmt::Debug for CacheProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheProbe")
    }
}

/// One slot per worker, summed on every scrape.
#[derive(Debug, Default)]
pub struct Board {
    slots: Vec<Mutex<Snapshot>>,
    cache: Option<CacheProbe>,
}

impl Board {
    /// A board for `workers` workers.
    pub fn new(workers: usize, cache: Option<CacheProbe>) -> Board {
        Board {
            slots: (0..workers).map(|_| Mutex::default()).collect(),
            cache,
        }
    }

    /// Worker `i`'s slot, to publish into.
    pub fn slot(&self, i: usize) -> Option<MutexGuard<'_, Snapshot>> {
        let slot = self.slots.get(i)?;
        Some(slot.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The OpenMetrics text of the sum of every worker's snapshot.
    pub fn render(&self) -> String {
        let snapshots: Vec<Snapshot> = self
            .slots
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect();
        let cache = self.cache.as_ref().map(|probe| (probe.0)());
        render(&snapshots, cache)
    }
}

/// A worker's handle on its slot of the board.
#[derive(Clone, Debug)]
pub struct Publisher {
    board: Arc<Board>,
    index: usize,
}

impl Publisher {
    /// Worker `index`'s publisher.
    pub fn new(board: Arc<Board>, index: usize) -> Publisher {
        Publisher { board, index }
    }

    /// Copies the server's counters into the slot.
    pub fn publish(&self, server: &Server) {
        if let Some(mut slot) = self.board.slot(self.index) {
            slot.update(server);
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    transport: &'static str,
    qtype: String,
    rcode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: String,
}

/// A histogram whose buckets were counted elsewhere (by the core).
#[derive(Debug, Default)]
struct FixedHistogram(Mutex<LatencyHistogram>);

impl TypedMetric for FixedHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for FixedHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        let h = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_US
            .iter()
            .map(|&us| us as f64 / 1e6)
            .chain([f64::INFINITY])
            .zip(h.buckets.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(h.sum_us as f64 / 1e6, h.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    registry.register(name, help, g);
}

fn rtype_label(qtype: Option<u16>) -> String {
    match qtype {
        None => "none".to_string(),
        Some(names_core::stats::QTYPE_OTHER) => "other".to_string(),
        Some(t) => Rtype::from_int(t).to_string(),
    }
}

fn rcode_label(rcode: u16) -> String {
    // `masked_from_int` keeps the 12 bits an rcode has (`checked_from_int` in domain
    // 0.12.3 rejects every non-zero value).
    OptRcode::masked_from_int(rcode).to_string()
}

/// Encodes the sum of `snapshots` (and the cache counters, when there is a cache).
pub fn render(snapshots: &[Snapshot], cache: Option<CacheCounts>) -> String {
    let mut total = Snapshot::default();
    let mut answers: BTreeMap<String, u64> = BTreeMap::new();
    let mut queries: BTreeMap<(bool, Option<u16>, u16), u64> = BTreeMap::new();
    let mut latency: BTreeMap<SocketAddr, LatencyHistogram> = BTreeMap::new();
    for s in snapshots {
        let (t, a) = (&mut total.stats, &s.stats);
        t.replies += a.replies;
        t.dropped += a.dropped;
        t.truncated += a.truncated;
        t.upstream_sent += a.upstream_sent;
        t.upstream_timeouts += a.upstream_timeouts;
        t.tcp_fallbacks += a.tcp_fallbacks;
        t.spoofed_ignored += a.spoofed_ignored;
        t.overloaded += a.overloaded;
        t.tcp_refused += a.tcp_refused;
        t.tcp_idle_closed += a.tcp_idle_closed;
        t.tcp_per_client_refused += a.tcp_per_client_refused;
        t.tcp_overrun += a.tcp_overrun;
        t.tcp_oversize += a.tcp_oversize;
        total.in_flight += s.in_flight;
        total.open_exchanges += s.open_exchanges;
        total.open_connections += s.open_connections;
        for (name, n) in &s.answers_by_source {
            *answers.entry(name.clone()).or_default() += n;
        }
        for (k, n) in &a.queries_by_kind {
            *queries.entry((k.tcp, k.qtype, k.rcode)).or_default() += n;
        }
        for (server, h) in &a.upstream_latency {
            let sum = latency.entry(*server).or_default();
            for (b, n) in sum.buckets.iter_mut().zip(h.buckets) {
                *b += n;
            }
            sum.sum_us += h.sum_us;
            sum.count += h.count;
        }
    }

    let mut r = Registry::with_prefix("names");
    let family: Family<QueryLabels, Counter> = Family::default();
    for ((tcp, qtype, rcode), n) in queries {
        let labels = QueryLabels {
            transport: if tcp { "tcp" } else { "udp" },
            qtype: rtype_label(qtype),
            rcode: rcode_label(rcode),
        };
        family.get_or_create(&labels).inc_by(n);
    }
    r.register(
        "queries",
        "Client queries answered, by transport, question type and response code",
        family,
    );
    let family: Family<SourceLabels, Counter> = Family::default();
    for (source, n) in answers {
        family.get_or_create(&SourceLabels { source }).inc_by(n);
    }
    r.register(
        "answers",
        "Answers by the resolver that gave them (none: no resolver answered, REFUSED)",
        family,
    );
    let t = &total.stats;
    counter(
        &mut r,
        "dropped",
        "Client messages dropped without a reply",
        t.dropped,
    );
    counter(
        &mut r,
        "truncated",
        "UDP replies truncated with TC=1",
        t.truncated,
    );
    counter(
        &mut r,
        "overloaded",
        "Queries answered SERVFAIL because too many upstream exchanges were in flight or too many queries were waiting for them",
        t.overloaded,
    );
    counter(
        &mut r,
        "upstream_queries",
        "Queries sent upstream (every try, UDP or TCP)",
        t.upstream_sent,
    );
    counter(
        &mut r,
        "upstream_timeouts",
        "Upstream tries that timed out",
        t.upstream_timeouts,
    );
    counter(
        &mut r,
        "upstream_tcp_fallbacks",
        "Upstream queries retried over TCP after a truncated UDP reply",
        t.tcp_fallbacks,
    );
    counter(
        &mut r,
        "upstream_spoofed_ignored",
        "Upstream messages ignored: wrong source, ID or question, or unparsable",
        t.spoofed_ignored,
    );
    let family: Family<UpstreamLabels, FixedHistogram> = Family::default();
    for (server, h) in latency {
        let labels = UpstreamLabels {
            upstream: server.to_string(),
        };
        *family
            .get_or_create(&labels)
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = h;
    }
    r.register(
        "upstream_latency_seconds",
        "Time from sending a query upstream to its matching reply, per upstream",
        family,
    );
    if let Some(c) = cache {
        counter(
            &mut r,
            "cache_hits",
            "Lookups answered from the cache",
            c.hits,
        );
        counter(
            &mut r,
            "cache_misses",
            "Lookups the cache could not answer",
            c.misses,
        );
        counter(
            &mut r,
            "cache_evictions",
            "Cache entries dropped to make room",
            c.evictions,
        );
        counter(
            &mut r,
            "cache_inserts",
            "Answers stored in the cache",
            c.inserts,
        );
        counter(
            &mut r,
            "cache_stale_served",
            "Expired answers served because every upstream failed",
            c.stale_served,
        );
        gauge(&mut r, "cache_entries", "Entries in the cache", c.entries);
    }
    gauge(
        &mut r,
        "queries_in_flight",
        "Client queries waiting for an upstream",
        total.in_flight,
    );
    gauge(
        &mut r,
        "upstream_exchanges_open",
        "Upstream exchanges in flight",
        total.open_exchanges,
    );
    gauge(
        &mut r,
        "tcp_connections_open",
        "Open client TCP connections",
        total.open_connections,
    );
    counter(
        &mut r,
        "tcp_refused",
        "Client TCP connections closed at once because the cap was reached",
        t.tcp_refused,
    );
    counter(
        &mut r,
        "tcp_idle_closed",
        "Client TCP connections closed for being idle",
        t.tcp_idle_closed,
    );
    counter(
        &mut r,
        "tcp_per_client_refused",
        "Client TCP connections closed at once because their address had --max-tcp-per-client open",
        t.tcp_per_client_refused,
    );
    counter(
        &mut r,
        "tcp_overrun",
        "Client TCP connections closed for more unread input than the server holds",
        t.tcp_overrun,
    );
    counter(
        &mut r,
        "tcp_oversize",
        "TCP answers (zone transfers) refused with SERVFAIL because a record fits no 65535-byte message",
        t.tcp_oversize,
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &r);
    out
}

/// Most bytes of an HTTP request head read before giving up on it.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a scraper gets to send its request and read the reply.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// The OpenMetrics content type `prometheus-client` encodes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` from `board` on `listener` in a thread of its own, for as long
/// as the process runs.
pub fn spawn(listener: std::net::TcpListener, board: Arc<Board>) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::try_from(listener)?;
    std::thread::Builder::new()
        .name("names-metrics".into())
        .spawn(move || {
            let ex = LocalExecutor::new();
            smol::block_on(ex.run(async {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            let board = board.clone();
                            ex.spawn(async move {
                                let work = respond(stream, &board);
                                let timeout = async {
                                    smol::Timer::after(HTTP_TIMEOUT).await;
                                    Ok(())
                                };
                                if let Err(e) = smol::future::or(work, timeout).await {
                                    log::debug!("metrics request failed: {e}");
                                }
                            })
                            .detach();
                        }
                        Err(e) => {
                            log::warn!("metrics: accept failed: {e}; retrying in 100 ms");
                            smol::Timer::after(Duration::from_millis(100)).await;
                        }
                    }
                }
            }))
        })?;
    Ok(())
}

/// Reads one request head and answers it, then closes the connection.
async fn respond(mut stream: TcpStream, board: &Board) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_REQUEST {
            return reply(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
            )
            .await;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let body = board.render();
            let body = if method == "HEAD" {
                String::new()
            } else {
                body
            };
            reply(&mut stream, "200 OK", CONTENT_TYPE, &body).await
        }
        ("GET" | "HEAD", _) => {
            reply(&mut stream, "404 Not Found", "text/plain", "try /metrics\n").await
        }
        _ => {
            reply(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                "GET only\n",
            )
            .await
        }
    }
}

async fn reply(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use names_core::stats::QueryKind;

    fn snapshot(udp_a: u64, answers: u64) -> Snapshot {
        let mut s = Snapshot::default();
        s.stats.queries_by_kind.insert(
            QueryKind {
                tcp: false,
                qtype: Some(1),
                rcode: 0,
            },
            udp_a,
        );
        s.stats.upstream_sent = 2;
        s.stats
            .upstream_latency
            .entry("127.0.0.1:53".parse().unwrap())
            .or_default()
            .observe(Duration::from_millis(3));
        s.answers_by_source = vec![("synth".into(), answers), ("none".into(), 0)];
        s.in_flight = 1;
        s
    }

    #[test]
    fn render_sums_workers() {
        let text = render(&[snapshot(3, 2), snapshot(4, 5)], None);
        assert!(
            text.contains(r#"names_queries_total{transport="udp",qtype="A",rcode="NOERROR"} 7"#),
            "{text}"
        );
        assert!(
            text.contains(r#"names_answers_total{source="synth"} 7"#),
            "{text}"
        );
        assert!(text.contains("names_upstream_queries_total 4\n"), "{text}");
        assert!(text.contains("names_queries_in_flight 2\n"), "{text}");
        assert!(
            text.contains(r#"names_upstream_latency_seconds_count{upstream="127.0.0.1:53"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"names_upstream_latency_seconds_bucket{le="0.005",upstream="127.0.0.1:53"} 2"#
            ) || text.contains(
                r#"names_upstream_latency_seconds_bucket{upstream="127.0.0.1:53",le="0.005"} 2"#
            ),
            "{text}"
        );
        assert!(!text.contains("names_cache_hits_total"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn render_cache_counts() {
        let cache = CacheCounts {
            hits: 5,
            misses: 2,
            evictions: 1,
            inserts: 4,
            stale_served: 3,
            entries: 9,
        };
        let text = render(&[], Some(cache));
        assert!(text.contains("names_cache_hits_total 5\n"), "{text}");
        assert!(text.contains("names_cache_misses_total 2\n"), "{text}");
        assert!(text.contains("names_cache_evictions_total 1\n"), "{text}");
        assert!(text.contains("names_cache_entries 9\n"), "{text}");
        assert!(text.contains("names_cache_inserts_total 4\n"), "{text}");
        assert!(
            text.contains("names_cache_stale_served_total 3\n"),
            "{text}"
        );
    }

    #[test]
    fn serves_http() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let board = Arc::new(Board::new(1, None));
        spawn(listener, board).unwrap();
        let get = |request: &str| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let ok = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("names_upstream_queries_total 0"), "{ok}");
        assert!(get("GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get("POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    }
}
