//! # names-shell
//!
//! The runtime around [`names_core`]: smol tasks that move bytes between sockets and
//! the core's [`Server`](names_core::Server), and a timer. No DNS logic lives here.
//!
//! [`serve`] runs a server for any [`names_core::Chain`], which is how the
//! examples put their own resolver in front of the forwarder.
//!
//! Layout of a worker: `worker` starts the threads; each runs the event loop in
//! `driver`, which reads the listening UDP sockets (`udp`, batched by `batch`), the
//! upstream sockets (`upstream`, watched by `upstream_poll`) and the events of the client
//! TCP connection tasks (`tcp`). Readiness comes from one portable source (smol's reactor
//! and the `polling` crate), so the shell runs on Linux, macOS and the BSDs; only the
//! batched system calls in `batch` are Linux's own, with a plain fallback elsewhere.

#![warn(clippy::undocumented_unsafe_blocks)]

mod batch;
mod deferred;
mod driver;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod record;
pub mod secondary;
pub mod shutdown;
pub mod systemd;
mod tcp;
mod udp;
mod upstream;
mod upstream_poll;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use names_core::{Chain, Config, ConfigError};

pub use deferred::{
    deferred, AsyncResolver, Deferred, LookupError, OutcomeCodec, OwnedQuery, Resolved,
};
pub use metrics::CacheProbe;
pub use shutdown::Shutdown;
pub use worker::Listeners;

/// What workers watch and publish to besides their sockets.
#[derive(Clone, Debug)]
pub struct Hooks {
    /// Fires the graceful shutdown.
    pub shutdown: Shutdown,
    /// Where the workers publish their counters for the metrics endpoint.
    pub board: Option<Arc<metrics::Board>>,
    /// Where the workers record their inputs (`--record`).
    pub record: Option<record::Recording>,
    /// Which NOTIFYs the workers accept, and where they pass them on (secondary zones).
    pub notify: Option<secondary::NotifyRoute>,
    /// The TSIG keys signed requests are verified with (`--tsig-key`).
    pub tsig_keys: names_core::tsig::KeyRing,
}

impl Default for Hooks {
    /// Never shuts down, publishes nowhere.
    fn default() -> Hooks {
        Hooks {
            shutdown: Shutdown::never(),
            board: None,
            record: None,
            notify: None,
            tsig_keys: Default::default(),
        }
    }
}

/// How to run a server.
#[derive(Clone, Debug)]
pub struct Options {
    /// Addresses to serve on, UDP and TCP both. Port 0 binds a free port.
    pub listen: Vec<SocketAddr>,
    /// Worker threads, each with its own sockets (SO_REUSEPORT) and core state.
    pub workers: usize,
    /// Limits and timeouts of the core.
    pub config: Config,
    /// Serve Prometheus metrics over HTTP on this address (`GET /metrics`). Port 0 binds a free port.
    pub metrics: Option<SocketAddr>,
    /// Reads the shared cache's counters for the metrics endpoint, when there is a cache.
    pub cache_probe: Option<CacheProbe>,
    /// Record every input of every worker's core into a journal (`names serve --record`).
    pub record: Option<record::Recording>,
    /// Accept NOTIFY for secondary zones and pass it on (`names serve --secondary`).
    pub notify: Option<secondary::NotifyRoute>,
    /// Reads the secondary zones' counters for the metrics endpoint.
    pub secondary_probe: Option<secondary::SecondaryProbe>,
    /// TSIG keys (RFC 8945) for signed requests (`names serve --tsig-key`).
    pub tsig_keys: names_core::tsig::KeyRing,
    /// Called once every socket is bound, after the ready line.
    pub on_ready: Option<OnReady>,
}

/// What to do once a server's sockets are bound (e.g. send the startup NOTIFYs, which
/// make secondaries ask at once).
#[derive(Clone)]
pub struct OnReady(Arc<dyn Fn() + Send + Sync>);

impl OnReady {
    /// Calls `f` when ready.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> OnReady {
        OnReady(Arc::new(f))
    }
}

impl std::fmt::Debug for OnReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnReady")
    }
}

impl Options {
    /// One worker on `listen`, with the core's default configuration.
    pub fn on(listen: &str) -> Result<Options, ConfigError> {
        Ok(Options {
            listen: vec![parse_listen(listen)?],
            workers: 1,
            config: Config::default(),
            metrics: None,
            cache_probe: None,
            record: None,
            notify: None,
            secondary_probe: None,
            tsig_keys: Default::default(),
            on_ready: None,
        })
    }
}

/// Parses a listen address `IP:PORT`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse()
        .map_err(|_| ConfigError::new(format!("--listen {text:?} is not an IP:PORT address")))
}

/// The `nameserver` addresses of a resolv.conf file (port 53), or a one-line error.
pub fn resolv_conf(path: &str) -> Result<Vec<SocketAddr>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(format!("cannot read {path}: {e}")))?;
    let servers = names_core::nameservers(&text);
    if servers.is_empty() {
        return Err(ConfigError::new(format!(
            "{path} has no usable nameserver line"
        )));
    }
    Ok(servers)
}

/// Binds every socket (or takes the ones handed over by systemd socket activation, see
/// [`systemd`]), prints the ready line on stderr (and tells systemd, when it asks), and
/// serves until SIGINT/SIGTERM, then answers the queries in flight (within their budget)
/// and returns `Ok(())`. `make_chain` is called once per worker.
pub fn serve(
    options: Options,
    make_chain: impl Fn() -> Chain + Send + Sync + 'static,
) -> io::Result<()> {
    let shutdown = shutdown::on_signals()?;
    serve_until(options, make_chain, shutdown)
}

/// Like [`serve`], but shuts down when `shutdown` fires (no signal handlers installed).
pub fn serve_until(
    options: Options,
    make_chain: impl Fn() -> Chain + Send + Sync + 'static,
    shutdown: Shutdown,
) -> io::Result<()> {
    let listeners = match systemd::activated_sockets()? {
        Some(sockets) => {
            log::info!("socket activation: serving the sockets handed over, not --listen");
            Listeners::from_sockets(sockets, options.workers)?
        }
        None => Listeners::bind(&options.listen, options.workers)?,
    };
    let board = match options.metrics {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr)
                .map_err(|e| io::Error::new(e.kind(), format!("metrics on {addr}: {e}")))?;
            let bound = listener.local_addr()?;
            let board = Arc::new(metrics::Board::new(
                options.workers,
                options.cache_probe.clone(),
            ));
            metrics::spawn(listener, board.clone(), options.secondary_probe.clone())?;
            eprintln!("names: metrics http://{bound}/metrics");
            Some(board)
        }
        None => None,
    };
    let names = make_chain().names().join(",");
    let ready = format!(
        "ready {} chain={} workers={}",
        listeners.describe(),
        names,
        options.workers
    );
    eprintln!("names: {ready}");
    systemd::ready(&ready);
    if let Some(OnReady(f)) = &options.on_ready {
        f();
    }
    let record = options.record.clone();
    let result = listeners.run_with(
        options.config,
        Arc::new(make_chain),
        Hooks {
            shutdown,
            board,
            record: options.record,
            notify: options.notify,
            tsig_keys: options.tsig_keys,
        },
    );
    if let Some(record) = record {
        record.finish();
    }
    result?;
    log::info!("stopped");
    Ok(())
}

/// The wall clock in seconds since the Unix epoch (0 if the clock is before it): what the
/// core's TSIG machines are given, with an `Instant` of the same moment.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
