//! The per-worker event loop: bytes in, the core's actions out.
//!
//! Each worker thread owns one `Server` (no locks), its own sockets, and a local
//! executor. The loop waits for whichever comes first: a readable listening UDP socket
//! ([`udp`](crate::udp)), a readable upstream UDP socket ([`upstream`](crate::upstream)),
//! an event from a socket task (client TCP connections in [`tcp`](crate::tcp), upstream
//! TCP tries), the core's timer, or the shutdown. It is the only place that reads the
//! clock.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_net::TcpListener;
use names_core::config::InFlight;
use names_core::{
    Action, Chain, Config, ConnId, LookupId, Origin, Payload, Server, Token, UpstreamError,
};

use smol::channel::{self, Receiver};
use smol::{future, LocalExecutor, Task, Timer};

use crate::deferred::Lookups;
use crate::logging;
use crate::metrics::Publisher;
use crate::record::{Core, Recording};
use crate::secondary::NotifyRoute;
use crate::shutdown::Shutdown;
use crate::tcp::{Clients, ConnHandle};
use crate::udp::UdpListeners;
use crate::upstream::Upstreams;

/// Events queued from socket tasks to the driver at most.
const EVENT_QUEUE: usize = 4096;
/// Events taken per wake-up before the driver polls timers again.
const EVENT_BATCH: usize = 256;

/// Something a socket task saw.
pub enum Event {
    TcpOpen {
        conn: ConnId,
        peer: SocketAddr,
        handle: ConnHandle,
    },
    TcpData {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    /// The client shut down its sending side (end of stream).
    TcpEof {
        conn: ConnId,
    },
    /// Bytes of replies written to the connection.
    TcpWritten {
        conn: ConnId,
        bytes: usize,
    },
    /// Reset or failed.
    TcpClosed {
        conn: ConnId,
    },
    Upstream {
        token: Token,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    UpstreamFailed {
        token: Token,
        err: UpstreamError,
    },
    /// A lookup's job finished (see [`crate::deferred`]).
    Lookup {
        id: LookupId,
        result: Payload,
    },
}

/// What woke the driver.
enum Wake {
    /// Listening UDP socket `i` is readable.
    Udp(usize),
    /// Some upstream UDP socket is readable.
    Upstream,
    /// A socket task sent an event.
    Event(Event),
    /// The core's timer is due (or nothing in particular).
    Timer,
    /// SIGTERM/SIGINT.
    Shutdown,
}

/// What a worker watches (shutdown) and where it publishes its counters (metrics).
pub struct WorkerHooks {
    pub shutdown: Shutdown,
    /// The longest a worker waits for its in-flight queries after the shutdown fired.
    pub drain: Duration,
    pub publisher: Option<Publisher>,
    /// Where this worker records its inputs (`--record`), and its index there.
    pub record: Option<(Recording, u16)>,
    /// NOTIFYs taken for secondary zones, and where they go.
    pub notify: Option<NotifyRoute>,
    /// The TSIG keys signed requests are verified with.
    pub tsig_keys: names_core::tsig::KeyRing,
}

/// A worker's sockets: per listen address, the UDP socket (listener `i` in
/// [`Origin::Udp`]) and, on the worker that serves it, the TCP listener.
pub type WorkerSockets = Vec<(std::net::UdpSocket, Option<std::net::TcpListener>)>;

/// Runs one worker on this thread until it has drained after the shutdown.
pub fn run_worker(
    sockets: WorkerSockets,
    config: Config,
    in_flight: &InFlight,
    chain: Chain,
    hooks: WorkerHooks,
) -> io::Result<()> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| io::Error::other(format!("no OS randomness: {e}")))?;
    let mut server = Server::with_shared(config, chain, seed, in_flight);
    if let Some(route) = &hooks.notify {
        server.accept_notify(route.policy.clone());
    }
    server.set_tsig_keys(hooks.tsig_keys.clone());
    // TSIG signs with wall-clock seconds; the core derives them from the last reading
    // (re-read every CLOCK_REREAD, so a stepped system clock is followed).
    server.set_unix_time(Instant::now(), crate::unix_now());
    let recorder = hooks.record.as_ref().map(|(r, i)| r.worker(*i, seed));
    let server = Core::new(server, recorder);
    let ex = Rc::new(LocalExecutor::new());
    // Bounded, so a socket task flooded faster than the driver keeps up waits (and its
    // kernel buffer drops the excess) instead of growing memory.
    let (tx, rx) = channel::bounded(EVENT_QUEUE);
    let clients = Clients::new(ex.clone());
    let mut udp = Vec::new();
    let mut listener_tasks = Vec::new();
    for (u, t) in sockets {
        udp.push(u);
        if let Some(t) = t {
            listener_tasks.push(clients.accept(TcpListener::try_from(t)?, tx.clone()));
        }
    }
    let driver = Driver {
        server,
        udp: UdpListeners::new(udp)?,
        upstreams: Upstreams::new(ex.clone(), tx.clone())?,
        lookups: Lookups::new(ex.clone(), tx.clone()),
        clients,
        listener_tasks,
        hooks,
    };
    smol::block_on(ex.run(driver.run(rx)))
}

/// How often a worker reads the wall clock again for TSIG (the core counts from the last
/// reading with the monotonic clock in between).
const CLOCK_REREAD: Duration = Duration::from_secs(60);

struct Driver {
    /// The worker's core; every input goes through it (and is recorded when asked).
    server: Core,
    udp: UdpListeners,
    upstreams: Upstreams,
    lookups: Lookups,
    clients: Clients,
    /// TCP acceptors; dropped (closing the listeners) on shutdown.
    listener_tasks: Vec<Task<()>>,
    hooks: WorkerHooks,
}

impl Driver {
    async fn run(mut self, rx: Receiver<Event>) -> io::Result<()> {
        // Set once the shutdown fired: the time by which in-flight queries must be done.
        let mut draining: Option<Instant> = None;
        let mut clock_read = Instant::now();
        self.publish();
        loop {
            self.perform();
            if let Some(limit) = draining {
                // Done when every query read is answered and every TCP reply written.
                let settled = self.server.pending_queries() == 0
                    && self.server.open_lookups() == 0
                    && self.server.tcp_settled()
                    && rx.is_empty();
                if settled || Instant::now() >= limit {
                    self.clients.flush().await;
                    return Ok(());
                }
            }
            let deadline = self.server.poll_timeout();
            let deadline = match draining {
                Some(limit) => Some(deadline.map_or(limit, |d| d.min(limit))),
                None => deadline,
            };
            // A socket that still had datagrams after a full batch is read again at once.
            let wake = match self.udp.take_hot() {
                Some(i) => {
                    // Still let the socket tasks (TCP, upstream TCP) run between batches.
                    future::yield_now().await;
                    Wake::Udp(i)
                }
                None => self.wait(deadline, draining.is_some(), &rx).await,
            };
            let now = Instant::now();
            if now.saturating_duration_since(clock_read) >= CLOCK_REREAD {
                self.server.set_unix_time(now, crate::unix_now());
                clock_read = now;
            }
            let event = match wake {
                Wake::Event(ev) => Some(ev),
                Wake::Udp(i) => {
                    self.udp.read(now, i, &mut self.server);
                    if self.udp.is_hot() {
                        // A busy listening socket must not starve upstream replies.
                        self.upstreams.read(now, &mut self.server);
                    }
                    None
                }
                Wake::Upstream => {
                    self.upstreams.read(now, &mut self.server);
                    None
                }
                Wake::Shutdown => {
                    // Shutdown: stop reading the listening sockets (new queries), keep the
                    // upstream sockets and open connections to answer what is in flight.
                    self.listener_tasks.clear();
                    self.clients.stop_reading();
                    self.udp.stop();
                    draining = Some(now + self.hooks.drain);
                    None
                }
                Wake::Timer => None,
            };
            if let Some(ev) = event {
                self.feed(now, ev, draining.is_some());
            }
            if !rx.is_empty() {
                for _ in 0..EVENT_BATCH {
                    match rx.try_recv() {
                        Ok(ev) => self.feed(now, ev, draining.is_some()),
                        Err(_) => break,
                    }
                }
            }
            self.server.handle_timeout(now);
            // Before the replies of this batch go out, so a scrape that follows a reply
            // counts it (a copy only when a scrape asked for one).
            self.publish();
        }
    }

    /// Waits for the first of: a readable listening socket, a readable upstream socket,
    /// an event, the core's deadline, the shutdown (once).
    async fn wait(&self, deadline: Option<Instant>, draining: bool, rx: &Receiver<Event>) -> Wake {
        let timer = async {
            match deadline {
                Some(at) => Timer::at(at).await,
                None => Timer::never().await,
            };
            Wake::Timer
        };
        let shutdown = async {
            if draining {
                future::pending::<()>().await;
            }
            self.hooks.shutdown.wait().await;
            Wake::Shutdown
        };
        let udp = &self.udp;
        let readable = future::poll_fn(|cx| udp.poll_readable(cx).map(Wake::Udp));
        let upstreams = &self.upstreams;
        let replies = future::poll_fn(|cx| upstreams.poll_ready(cx).map(|()| Wake::Upstream));
        let event = async { rx.recv().await.map_or(Wake::Timer, Wake::Event) };
        // A scrape wants the counters: a turn of the loop publishes them.
        let scrape = async {
            match &self.hooks.publisher {
                Some(p) => p.wanted().await,
                None => future::pending::<()>().await,
            }
            Wake::Timer
        };
        let timer = future::or(timer, scrape);
        let sockets = future::or(readable, replies);
        future::or(future::or(sockets, event), future::or(timer, shutdown)).await
    }

    /// Copies the core's counters to the metrics board, if there is one and a scrape
    /// asked for them.
    fn publish(&self) {
        if let Some(p) = &self.hooks.publisher {
            p.publish(&self.server);
        }
    }

    fn feed(&mut self, now: Instant, ev: Event, draining: bool) {
        if draining {
            if let Event::TcpOpen { .. } = ev {
                return; // no new connection; dropping the handle closes it
            }
        }
        match ev {
            Event::TcpOpen { conn, peer, handle } => {
                self.clients.open(conn, handle);
                self.server.handle_tcp_open(now, conn, peer);
            }
            Event::TcpData { conn, bytes } => {
                // Bytes read are answered, during a shutdown too.
                self.server.handle_client(now, Origin::Tcp(conn), &bytes);
                self.clients.fed(conn);
            }
            Event::TcpEof { conn } => self.server.handle_tcp_eof(now, conn),
            Event::TcpWritten { conn, bytes } => self.server.handle_tcp_written(now, conn, bytes),
            Event::TcpClosed { conn } => {
                self.clients.closed(conn);
                self.server.handle_tcp_closed(now, conn);
            }
            Event::Upstream { token, from, bytes } => {
                self.upstreams.taken(token); // the try's task may read on
                self.server.handle_upstream(now, token, from, &bytes)
            }
            Event::UpstreamFailed { token, err } => {
                self.server.handle_upstream_error(now, token, err)
            }
            Event::Lookup { id, result } => {
                self.lookups.finished(id);
                self.server.handle_lookup(now, id, result)
            }
        }
    }

    /// Carries out every pending action, then sends the UDP replies gathered.
    fn perform(&mut self) {
        while let Some(action) = self.server.poll_action() {
            match action {
                Action::Reply { to, bytes } => match to {
                    Origin::Udp { listener, peer } => {
                        self.udp.queue(listener, peer, bytes, &mut self.server)
                    }
                    Origin::Tcp(conn) => self.clients.write(conn, bytes),
                },
                Action::SendUpstream {
                    token,
                    to,
                    via,
                    bytes,
                } => self.upstreams.send(token, to, via, bytes, &mut self.server),
                Action::CloseUpstream { token } => self.upstreams.close(token),
                Action::CloseClient { conn } => self.clients.close(conn),
                Action::PauseRead { conn } => self.clients.pause(conn),
                Action::ResumeRead { conn } => self.clients.resume(conn),
                Action::Log(entry) => logging::log_query(&entry),
                Action::Lookup { id, job } => self.lookups.start(id, job, &mut self.server),
                Action::CancelLookup { id } => self.lookups.cancel(id),
                Action::Notified { zone, from } => {
                    log::info!("NOTIFY for {} from {from}", zone.fmt_with_dot());
                    if let Some(route) = &self.hooks.notify {
                        // A full inbox means checks are coming anyway.
                        let _ = route.to.try_send(zone);
                    }
                }
            }
        }
        self.udp.flush(&mut self.server);
    }
}
