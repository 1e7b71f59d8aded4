//! The Prometheus endpoint (`--metrics ADDR`): `GET /metrics` over HTTP.
//!
//! The core's [`Stats`] describe themselves ([`Stats::metrics`]), so this file knows no
//! metric by name: one collector is registered once, and a scrape asks every worker for a
//! fresh copy of its server's counters ([`Board::scrape`]), merges them with
//! [`Stats::merge`], adds the shared cache's counters, and encodes what they describe
//! with `prometheus-client` (OpenMetrics text format). Workers copy their counters only
//! when a scrape asks, so a scrape reflects every query answered before it and nothing
//! is published while nobody scrapes. The metric names are listed in the README.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_net::{TcpListener, TcpStream};
use names_core::cache::CacheStats;
use names_core::stats::{Kind, Value};
use names_core::{Server, Stats};

use crate::secondary::SecondaryProbe;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use smol::channel::{self, Receiver, Sender};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::LocalExecutor;

/// Reads the counters the workers share (the cache's, the recursor's) at scrape time:
/// they are read directly rather than copied per worker.
#[derive(Clone)]
pub struct CacheProbe(Arc<dyn Fn(&mut Stats) + Send + Sync>);

impl CacheProbe {
    /// A probe calling `read` on every scrape for the shared cache's counters.
    pub fn new(read: impl Fn() -> CacheStats + Send + Sync + 'static) -> CacheProbe {
        CacheProbe::adding(move |stats| stats.set_cache(read()))
    }

    /// A probe calling `add` on every scrape to add shared counters to the workers' sum
    /// (`Stats::set_cache`, `Stats::set_recursor`).
    pub fn adding(add: impl Fn(&mut Stats) + Send + Sync + 'static) -> CacheProbe {
        CacheProbe(Arc::new(add))
    }
}

impl fmt::Debug for CacheProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheProbe")
    }
}

/// Longest a scrape waits for the workers' copies; a worker that does not answer in
/// time (stuck in a long batch) is counted as of its last copy.
const SCRAPE_WAIT: Duration = Duration::from_millis(500);

/// A worker's last copy of its counters, and the scrape it answered.
#[derive(Debug, Default)]
struct Slot {
    stats: Stats,
    answered: u64,
}

/// What the scrapes and the workers share: one slot per worker.
#[derive(Debug)]
pub struct Board {
    slots: Mutex<Vec<Slot>>,
    /// Signalled when a worker filled its slot.
    filled: Condvar,
    /// The number of the latest scrape: a worker whose slot answered an older one copies.
    wanted: AtomicU64,
    /// Wakes each worker, so an idle worker answers a scrape too.
    wake: Vec<Sender<()>>,
    woken: Mutex<Vec<Option<Receiver<()>>>>,
    cache: Option<CacheProbe>,
}

impl Board {
    /// A board for `workers` workers.
    pub fn new(workers: usize, cache: Option<CacheProbe>) -> Board {
        let (wake, woken) = (0..workers)
            .map(|_| channel::bounded(1))
            .unzip::<_, _, Vec<_>, Vec<_>>();
        Board {
            slots: Mutex::new((0..workers).map(|_| Slot::default()).collect()),
            filled: Condvar::new(),
            wanted: AtomicU64::new(0),
            wake,
            woken: Mutex::new(woken.into_iter().map(Some).collect()),
            cache,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks every worker for a fresh copy, waits for them (at most half a second) and
    /// returns the sum, with the cache's counters.
    pub fn scrape(&self) -> Stats {
        let scrape = self.wanted.fetch_add(1, Ordering::SeqCst) + 1;
        for wake in &self.wake {
            let _ = wake.try_send(()); // full: a wake-up is already pending
        }
        let until = Instant::now() + SCRAPE_WAIT;
        let mut slots = self.lock();
        while slots.iter().any(|s| s.answered < scrape) {
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                break;
            };
            slots = match self.filled.wait_timeout(slots, left) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
        let mut total = Stats::default();
        for slot in slots.iter() {
            total.merge(&slot.stats);
        }
        drop(slots);
        if let Some(probe) = &self.cache {
            (probe.0)(&mut total);
        }
        total
    }
}

/// A worker's handle on its slot of the board.
#[derive(Debug)]
pub struct Publisher {
    board: Arc<Board>,
    index: usize,
    woken: Option<Receiver<()>>,
    /// The scrape the slot last answered (the slot's own record, kept here unlocked).
    answered: std::cell::Cell<u64>,
}

impl Publisher {
    /// Worker `index`'s publisher.
    pub fn new(board: Arc<Board>, index: usize) -> Publisher {
        let woken = board
            .woken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(index)
            .and_then(Option::take);
        Publisher {
            board,
            index,
            woken,
            answered: std::cell::Cell::new(0),
        }
    }

    /// Copies the server's counters into the slot if a scrape asked for them since the
    /// last copy (otherwise one atomic load: cheap enough for every turn of the loop).
    pub fn publish(&self, server: &Server) {
        let wanted = self.board.wanted.load(Ordering::SeqCst);
        if self.answered.get() >= wanted {
            return;
        }
        self.answered.set(wanted);
        let mut slots = self.board.lock();
        let Some(slot) = slots.get_mut(self.index) else {
            return;
        };
        slot.stats.read(server);
        slot.answered = wanted;
        drop(slots);
        self.board.filled.notify_all();
    }

    /// Resolves when a scrape wants this worker's counters (never, if it has no slot):
    /// the worker then runs a turn of its loop, which ends with [`Publisher::publish`].
    pub async fn wanted(&self) {
        match &self.woken {
            Some(rx) => {
                if rx.recv().await.is_err() {
                    smol::future::pending::<()>().await;
                }
            }
            None => smol::future::pending::<()>().await,
        }
    }
}

/// The collector registered once: every scrape merges the workers' copies and encodes
/// what the core's counters say of themselves.
#[derive(Debug)]
struct Scrape(Arc<Board>);

impl Collector for Scrape {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        encode_stats(&self.0.scrape(), encoder)
    }
}

/// Encodes every metric `stats` describes.
fn encode_stats(stats: &Stats, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
    for metric in stats.metrics() {
        let kind = match metric.kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Histogram => MetricType::Histogram,
        };
        let mut family = encoder.encode_descriptor(metric.name, metric.help, None, kind)?;
        for sample in &metric.samples {
            let mut e = family.encode_family(&sample.labels)?;
            match (&sample.value, metric.kind) {
                (Value::Count(n), Kind::Counter) => {
                    e.encode_counter::<NoLabelSet, _, u64>(n, None)?
                }
                (Value::Count(n), _) => e.encode_gauge(&i64::try_from(*n).unwrap_or(i64::MAX))?,
                (
                    Value::Histogram {
                        buckets,
                        sum,
                        count,
                    },
                    _,
                ) => e.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?,
            }
        }
    }
    Ok(())
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The OpenMetrics text of `stats` (for tests and embedders without a board).
pub fn render(stats: &Stats) -> String {
    #[derive(Debug)]
    struct Fixed(Stats);
    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
            encode_stats(&self.0, encoder)
        }
    }
    let mut registry = Registry::with_prefix("names");
    registry.register_collector(Box::new(Fixed(stats.clone())));
    encode(&registry)
}

/// Most bytes of an HTTP request head read before giving up on it.
const MAX_REQUEST: usize = 8 * 1024;
/// Time a scraper gets to send its request and read the reply.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// The OpenMetrics content type `prometheus-client` encodes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The secondary zones' counters and, per zone, its serial and whether it is served.
#[derive(Debug)]
struct Secondaries(SecondaryProbe);

impl Collector for Secondaries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let (stats, zones) = self.0.read();
        for (name, help, value) in [
            (
                "secondary_transfers_ok",
                "Zone transfers that replaced a secondary zone's data",
                stats.transfers_ok,
            ),
            (
                "secondary_transfers_failed",
                "Zone transfers that ended without new data (the data served before stays)",
                stats.transfers_failed,
            ),
            (
                "secondary_expirations",
                "Times a secondary zone expired (not refreshed within its SOA EXPIRE)",
                stats.expirations,
            ),
            (
                "secondary_notifies",
                "NOTIFYs accepted for the secondary zones",
                stats.notifies,
            ),
        ] {
            encoder
                .encode_descriptor(name, help, None, MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        let expired = zones
            .iter()
            .filter(|z| z.serial.is_some() && !z.served)
            .count();
        encoder
            .encode_descriptor(
                "secondary_zones_expired",
                "Secondary zones expired now (answered SERVFAIL)",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&i64::try_from(expired).unwrap_or(i64::MAX))?;
        let mut family = encoder.encode_descriptor(
            "secondary_zone_serial",
            "The SOA serial of the data each secondary zone holds (absent before the first transfer)",
            None,
            MetricType::Gauge,
        )?;
        for zone in zones {
            if let Some(serial) = zone.serial {
                let labels = [("zone", zone.origin.fmt_with_dot().to_string())];
                family
                    .encode_family(&labels)?
                    .encode_gauge(&i64::from(serial))?;
            }
        }
        Ok(())
    }
}

/// Serves `GET /metrics` from `board` (and the secondary zones' probe) on `listener` in
/// a thread of its own, for as long as the process runs.
pub fn spawn(
    listener: std::net::TcpListener,
    board: Arc<Board>,
    secondary: Option<SecondaryProbe>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::try_from(listener)?;
    let mut registry = Registry::with_prefix("names");
    registry.register_collector(Box::new(Scrape(board)));
    if let Some(probe) = secondary {
        registry.register_collector(Box::new(Secondaries(probe)));
    }
    std::thread::Builder::new()
        .name("names-metrics".into())
        .spawn(move || {
            let ex = LocalExecutor::new();
            let registry = std::rc::Rc::new(registry);
            smol::block_on(ex.run(async {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            let registry = registry.clone();
                            ex.spawn(async move {
                                let work = respond(stream, &registry);
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
async fn respond(mut stream: TcpStream, registry: &Registry) -> io::Result<()> {
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
            let body = encode(registry);
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
    use names_core::client::Question;
    use names_core::{Chain, Config, Origin, Synth, SynthRule};

    /// A worker's server that answered `n` synthesised A queries over UDP.
    fn server(n: u16) -> Server {
        let rule = SynthRule::parse("workstation=172.0.2").unwrap();
        let mut server = Server::new(
            Config::default(),
            Chain::new().with(Synth::new(vec![rule])),
            [3; 32],
        );
        let from = Origin::Udp {
            listener: 0,
            peer: "127.0.0.1:4000".parse().unwrap(),
        };
        let query = Question::parse("workstation1.example", "A").unwrap();
        for id in 0..n {
            server.handle_client(Instant::now(), from, &query.encode(id));
        }
        while server.poll_action().is_some() {}
        server
    }

    #[test]
    fn render_sums_workers() {
        let mut total = Stats::default();
        for n in [3, 4] {
            let mut copy = Stats::default();
            copy.read(&server(n));
            total.merge(&copy);
        }
        let text = render(&total);
        assert!(
            text.contains(r#"names_queries_total{transport="udp",qtype="A",rcode="NOERROR"} 7"#),
            "{text}"
        );
        assert!(
            text.contains(r#"names_answers_total{source="synth"} 7"#),
            "{text}"
        );
        assert!(text.contains("names_replies_total 7\n"), "{text}");
        assert!(text.contains("names_upstream_queries_total 0\n"), "{text}");
        assert!(text.contains("names_queries_in_flight 0\n"), "{text}");
        assert!(
            text.contains("# TYPE names_upstream_latency_seconds histogram"),
            "{text}"
        );
        assert!(!text.contains("names_cache_hits_total"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn render_cache_counts() {
        let mut stats = Stats::default();
        stats.set_cache(CacheStats {
            hits: 5,
            misses: 2,
            evictions: 1,
            inserts: 4,
            stale_served: 3,
            prefetches: 6,
            entries: 9,
            rrsets: 7,
        });
        let text = render(&stats);
        assert!(text.contains("names_cache_hits_total 5\n"), "{text}");
        assert!(text.contains("names_cache_misses_total 2\n"), "{text}");
        assert!(text.contains("names_cache_evictions_total 1\n"), "{text}");
        assert!(text.contains("names_cache_entries 9\n"), "{text}");
        assert!(text.contains("names_cache_rrsets 7\n"), "{text}");
        assert!(text.contains("names_cache_prefetches_total 6\n"), "{text}");
        assert!(text.contains("names_cache_inserts_total 4\n"), "{text}");
        assert!(
            text.contains("names_cache_stale_served_total 3\n"),
            "{text}"
        );
    }

    #[test]
    fn a_scrape_asks_every_worker_and_waits_for_them() {
        let board = Arc::new(Board::new(2, None));
        let workers = [server(2), server(5)];
        let publishers = [
            Publisher::new(board.clone(), 0),
            Publisher::new(board.clone(), 1),
        ];
        // Nothing is copied while nobody scrapes.
        publishers[0].publish(&workers[0]);
        assert_eq!(board.lock()[0].answered, 0);
        assert_eq!(board.lock()[0].stats.replies, 0);
        let scraper = {
            let board = board.clone();
            std::thread::spawn(move || board.scrape())
        };
        // The workers' loops: woken by the scrape, they publish (bounded by the scrape's wait).
        for (p, w) in publishers.iter().zip(&workers) {
            smol::block_on(p.wanted());
            p.publish(w);
        }
        let total = scraper.join().unwrap();
        assert_eq!(total.replies, 7);
    }

    #[test]
    fn serves_http() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let board = Arc::new(Board::new(0, None));
        spawn(listener, board, None).unwrap();
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
