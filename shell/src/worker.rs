//! The worker threads: the listening sockets each one gets, starting them, and turning
//! a worker's panic or early end into the server's error.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use names_core::config::InFlight;
use names_core::{Chain, Config};

use crate::driver::{self, WorkerHooks, WorkerSockets};
use crate::metrics::Publisher;
use crate::{net, shutdown};

/// Bound listening sockets for every worker, ready to run.
pub struct Listeners {
    /// Per worker: the UDP socket per listen address, and the TCP listener (first worker only).
    per_worker: Vec<WorkerSockets>,
    bound: Vec<SocketAddr>,
    /// The addresses served over TCP too.
    tcp: Vec<SocketAddr>,
}

impl Listeners {
    /// Binds UDP on every address once per worker (SO_REUSEPORT spreads datagrams over
    /// them; where the system has no SO_REUSEPORT, the workers share one socket), and TCP
    /// once, served by the first worker: TCP is a small share of DNS traffic, and one
    /// owner keeps the connection cap, idle timeout and pipelining limit exact. Port 0 picks one free port shared by UDP, TCP and all workers.
    pub fn bind(addrs: &[SocketAddr], workers: usize) -> io::Result<Listeners> {
        let workers = workers.max(1);
        let reuse = workers > 1 && net::HAS_REUSE_PORT;
        let mut per_worker: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
        let mut bound = Vec::new();
        for &addr in addrs {
            let (first_udp, first_tcp, actual) = bind_pair(addr, reuse)?;
            for sockets in per_worker.iter_mut().skip(1) {
                let udp = if reuse {
                    net::bind(actual, false, true)?.into()
                } else {
                    // No SO_REUSEPORT: the workers read one shared socket.
                    first_udp.try_clone()?
                };
                sockets.push((udp, None));
            }
            per_worker[0].push((first_udp, Some(first_tcp)));
            bound.push(actual);
        }
        let tcp = bound.clone();
        Ok(Listeners {
            per_worker,
            bound,
            tcp,
        })
    }

    /// Serves sockets handed over by the service manager (socket activation) instead of
    /// binding: per address a UDP socket and, optionally, its TCP twin. Every worker reads
    /// the same UDP sockets (each through a duplicate descriptor of its own, since the
    /// service manager hands over one socket per address, not one per worker); the first
    /// worker serves TCP, as with [`Listeners::bind`].
    pub fn from_sockets(
        pairs: Vec<(std::net::UdpSocket, Option<std::net::TcpListener>)>,
        workers: usize,
    ) -> io::Result<Listeners> {
        let workers = workers.max(1);
        let mut per_worker: Vec<WorkerSockets> = (0..workers).map(|_| Vec::new()).collect();
        let (mut bound, mut tcp_bound) = (Vec::new(), Vec::new());
        for (udp, tcp) in pairs {
            bound.push(udp.local_addr()?);
            if let Some(tcp) = &tcp {
                tcp_bound.push(tcp.local_addr()?);
            }
            for sockets in per_worker.iter_mut().skip(1) {
                sockets.push((udp.try_clone()?, None));
            }
            per_worker[0].push((udp, tcp));
        }
        Ok(Listeners {
            per_worker,
            bound,
            tcp: tcp_bound,
        })
    }

    /// The addresses actually bound (UDP; TCP on the same ones unless socket activation
    /// handed over a UDP socket alone).
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.bound
    }

    /// `udp=A tcp=A ...` for the ready line.
    pub fn describe(&self) -> String {
        let udp = self.bound.iter().map(|a| format!("udp={a}"));
        let tcp = self.tcp.iter().map(|a| format!("tcp={a}"));
        udp.chain(tcp).collect::<Vec<_>>().join(" ")
    }

    /// Runs one worker thread per socket set; returns when they all stop (never: see
    /// [`Listeners::run_with`] for a server that can be shut down).
    pub fn run(
        self,
        config: Config,
        make_chain: Arc<dyn Fn() -> Chain + Send + Sync>,
    ) -> io::Result<()> {
        self.run_with(config, make_chain, crate::Hooks::default())
    }

    /// Like [`Listeners::run`], with a shutdown to watch and a metrics board to publish
    /// into. Returns once every worker has drained after the shutdown fired.
    pub fn run_with(
        self,
        config: Config,
        make_chain: Arc<dyn Fn() -> Chain + Send + Sync>,
        hooks: crate::Hooks,
    ) -> io::Result<()> {
        let workers = self.per_worker.len();
        // Each worker reports how it ended; the first to end for any reason other than the
        // shutdown ends the whole server with that reason, never a silently smaller server.
        let (ended_tx, ended) = std::sync::mpsc::channel::<(usize, io::Result<()>)>();
        // One count for every worker: `max_exchanges` bounds the process.
        let in_flight = InFlight::new();
        for (i, sockets) in self.per_worker.into_iter().enumerate() {
            let (config, in_flight) = (config.clone(), in_flight.clone());
            let make_chain = make_chain.clone();
            let worker = WorkerHooks {
                shutdown: hooks.shutdown.clone(),
                drain: shutdown::drain_limit(config.budget),
                publisher: hooks.board.clone().map(|b| Publisher::new(b, i)),
                record: hooks.record.clone().map(|r| (r, i as u16)),
                notify: hooks.notify.clone(),
                tsig_keys: hooks.tsig_keys.clone(),
            };
            let ended_tx = ended_tx.clone();
            std::thread::Builder::new()
                .name(format!("names-worker-{i}"))
                .spawn(move || {
                    let result = supervised(|| {
                        driver::run_worker(sockets, config, &in_flight, make_chain(), worker)
                    });
                    let _ = ended_tx.send((i, result));
                })?;
        }
        drop(ended_tx);
        for _ in 0..workers {
            let (i, result) = ended
                .recv()
                .map_err(|_| io::Error::other("a worker thread vanished"))?;
            match result {
                Err(e) => return Err(io::Error::new(e.kind(), format!("worker {i}: {e}"))),
                Ok(()) if !hooks.shutdown.is_triggered() => {
                    return Err(io::Error::other(format!("worker {i} stopped on its own")))
                }
                Ok(()) => {}
            }
        }
        Ok(())
    }
}

thread_local! {
    /// Set on worker threads: their panics are reported by `supervised`, in one line.
    static WORKER_PANIC: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Runs a worker, turning a panic into an error that names where it happened. The panic
/// hook (installed once, handing every other thread's panics to the hook before it) keeps
/// a worker's panic off stderr: the error it becomes is the one line that reports it.
fn supervised(run: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IS_WORKER.with(Cell::get) {
                return previous(info);
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let line = format!("panicked{at}: {message}");
            WORKER_PANIC.with(|p| *p.borrow_mut() = Some(line));
        }));
    });
    IS_WORKER.with(|w| w.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    IS_WORKER.with(|w| w.set(false));
    result.unwrap_or_else(|_| {
        let line = WORKER_PANIC.with(|p| p.borrow_mut().take());
        Err(io::Error::other(
            line.unwrap_or_else(|| "panicked".to_string()),
        ))
    })
}

/// Binds UDP then TCP on the same port (retrying when port 0 gave a UDP port whose TCP twin is taken).
fn bind_pair(
    addr: SocketAddr,
    reuse: bool,
) -> io::Result<(std::net::UdpSocket, std::net::TcpListener, SocketAddr)> {
    let mut last_err = None;
    for _ in 0..16 {
        let udp = net::bind(addr, false, reuse)?;
        let actual = udp
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))?;
        match net::bind(actual, true, reuse) {
            Ok(tcp) => return Ok((udp.into(), tcp.into(), actual)),
            Err(e) if addr.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port")))
}
