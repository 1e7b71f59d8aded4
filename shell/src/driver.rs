//! The per-worker loop: bytes in, the core's actions out.
//!
//! Each worker thread owns one `Server` (no locks), its own SO_REUSEPORT sockets, and a
//! local executor. The driver reads its listening UDP sockets itself, draining each
//! readable socket until it would block (no task, channel or copy per datagram); TCP
//! connections and upstream sockets are tasks that only read bytes and send events down
//! a channel. The driver is the only place that reads the clock.

use std::cell::Cell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_net::{TcpListener, TcpStream};
use names_core::config::InFlight;
use names_core::{Action, Chain, Config, ConnId, Origin, Server, Token, UpstreamError, Via};
use smol::channel::{self, Receiver, Sender};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{future, Async, LocalExecutor, Task, Timer};

use crate::metrics::Publisher;
use crate::shutdown::{self, Shutdown};
use crate::upstream_poll::UpstreamPoll;
use crate::{batch, logging, net};

/// Largest UDP datagram read; longer ones would be cut silently by the kernel.
const MAX_DATAGRAM: usize = 65535;
/// Events queued from socket tasks to the driver at most.
const EVENT_QUEUE: usize = 4096;
/// Events taken per wake-up before the driver polls timers again.
const EVENT_BATCH: usize = 256;
/// Datagrams read from one listening socket per wake-up before replies go out.
const UDP_BATCH: usize = 64;

/// Bound listening sockets for every worker, ready to run.
pub struct Listeners {
    /// Per worker: the UDP socket per listen address, and the TCP listener (first worker only).
    per_worker: Vec<Vec<(std::net::UdpSocket, Option<std::net::TcpListener>)>>,
    bound: Vec<SocketAddr>,
}

impl Listeners {
    /// Binds UDP on every address once per worker (SO_REUSEPORT spreads datagrams over
    /// them), and TCP once, served by the first worker: TCP is a small share of DNS
    /// traffic, and one owner keeps the connection cap, idle timeout and pipelining limit
    /// exact. Port 0 picks one free port shared by UDP, TCP and all workers.
    pub fn bind(addrs: &[SocketAddr], workers: usize) -> io::Result<Listeners> {
        let workers = workers.max(1);
        let reuse = workers > 1;
        let mut per_worker: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
        let mut bound = Vec::new();
        for &addr in addrs {
            let (first_udp, first_tcp, actual) = bind_pair(addr, reuse)?;
            per_worker[0].push((first_udp, Some(first_tcp)));
            for sockets in per_worker.iter_mut().skip(1) {
                let udp = net::bind(actual, false, true)?;
                sockets.push((udp.into(), None));
            }
            bound.push(actual);
        }
        Ok(Listeners { per_worker, bound })
    }

    /// The addresses actually bound.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.bound
    }

    /// `udp=A tcp=A ...` for the ready line.
    pub fn describe(&self) -> String {
        let udp = self.bound.iter().map(|a| format!("udp={a}"));
        let tcp = self.bound.iter().map(|a| format!("tcp={a}"));
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
            };
            let ended_tx = ended_tx.clone();
            std::thread::Builder::new()
                .name(format!("names-worker-{i}"))
                .spawn(move || {
                    let result = supervised(|| {
                        run_worker(sockets, config, &in_flight, make_chain(), worker)
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

/// Something a socket task saw.
enum Event {
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

/// The driver's side of a client TCP connection. How much of it the server holds is the
/// core's business (it counts replies not yet written, reported by the writer, and says
/// when to pause reading); the tasks only obey.
struct ConnHandle {
    writes: Sender<Vec<u8>>,
    paused: Rc<Cell<bool>>,
    resume: Sender<()>,
    /// Tells the reader its chunk reached the core: one chunk in flight at a time, so a
    /// pause takes effect before the next read.
    fed: Sender<()>,
    /// The writer is in the middle of a write.
    writing: Rc<Cell<bool>>,
    stream: TcpStream,
}

/// How long a closed connection's writer may keep trying to hand over its queued replies.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What a worker watches (shutdown) and where it publishes its counters (metrics).
struct WorkerHooks {
    shutdown: Shutdown,
    /// The longest a worker waits for its in-flight queries after the shutdown fired.
    drain: Duration,
    publisher: Option<Publisher>,
}

fn run_worker(
    sockets: Vec<(std::net::UdpSocket, Option<std::net::TcpListener>)>,
    config: Config,
    in_flight: &InFlight,
    chain: Chain,
    hooks: WorkerHooks,
) -> io::Result<()> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| io::Error::other(format!("no OS randomness: {e}")))?;
    let server = Server::with_shared(config, chain, seed, in_flight);
    let ex = Rc::new(LocalExecutor::new());
    // Bounded, so a socket task flooded faster than the driver keeps up waits (and its
    // kernel buffer drops the excess) instead of growing memory.
    let (tx, rx) = channel::bounded(EVENT_QUEUE);
    let mut udp_listeners = Vec::new();
    let mut listener_tasks = Vec::new();
    let next_conn = Rc::new(Cell::new(0u64));
    let stop_reading = Rc::new(Cell::new(false));
    for (udp, tcp) in sockets {
        let local = udp.local_addr()?;
        udp_listeners.push((local, Async::new(udp)?));
        if let Some(tcp) = tcp {
            let tcp = TcpListener::try_from(tcp)?;
            listener_tasks.push(ex.spawn(tcp_acceptor(
                ex.clone(),
                tcp,
                next_conn.clone(),
                stop_reading.clone(),
                tx.clone(),
            )));
        }
    }
    let udp_count = udp_listeners.len();
    let driver = Driver {
        server,
        udp_listeners,
        recv_batch: batch::RecvBatch::new(),
        upstream_udp: HashMap::new(),
        upstream_poll: UpstreamPoll::new()?,
        upstream_buf: vec![0u8; MAX_DATAGRAM],
        ready_tokens: Vec::with_capacity(64),
        udp_out: (0..udp_count)
            .map(|_| Vec::with_capacity(batch::BATCH))
            .collect(),
        hot_udp: None,
        conns: HashMap::new(),
        upstreams: HashMap::new(),
        events: tx,
        ex: ex.clone(),
        listener_tasks,
        stop_reading,
        hooks,
    };
    smol::block_on(ex.run(driver.run(rx)))
}

struct Driver {
    server: Server,
    /// Listening UDP sockets and their local addresses; emptied on shutdown.
    udp_listeners: Vec<(SocketAddr, Async<std::net::UdpSocket>)>,
    /// Receive buffers for listening sockets.
    recv_batch: batch::RecvBatch,
    /// Upstream UDP tries: their sockets, watched by `upstream_poll`.
    upstream_udp: HashMap<Token, (std::net::UdpSocket, SocketAddr)>,
    upstream_poll: UpstreamPoll,
    /// Receive buffer for upstream replies, and the tokens found ready.
    upstream_buf: Vec<u8>,
    ready_tokens: Vec<u64>,
    /// Replies waiting to be sent, per listening socket.
    udp_out: Vec<Vec<(Vec<u8>, SocketAddr)>>,
    /// A listening socket left readable after a full batch.
    hot_udp: Option<usize>,
    conns: HashMap<ConnId, ConnHandle>,
    upstreams: HashMap<Token, (Task<()>, Sender<()>)>,
    events: Sender<Event>,
    ex: Rc<LocalExecutor<'static>>,
    /// UDP readers and TCP acceptors; dropped (closing the listeners) on shutdown.
    listener_tasks: Vec<Task<()>>,
    /// Set on shutdown: TCP readers read nothing new (what they read is still answered).
    stop_reading: Rc<Cell<bool>>,
    hooks: WorkerHooks,
}

impl Driver {
    async fn run(mut self, rx: Receiver<Event>) -> io::Result<()> {
        // Set once the shutdown fired: the time by which in-flight queries must be done.
        let mut draining: Option<Instant> = None;
        self.publish();
        loop {
            self.perform().await;
            if let Some(limit) = draining {
                // Done when every query read is answered and every TCP reply written.
                let settled = self.server.pending_queries() == 0
                    && self.server.tcp_settled()
                    && rx.is_empty();
                if settled || Instant::now() >= limit {
                    self.flush_tcp().await;
                    return Ok(());
                }
            }
            let deadline = self.server.poll_timeout();
            let deadline = match draining {
                Some(limit) => Some(deadline.map_or(limit, |d| d.min(limit))),
                None => deadline,
            };
            // A socket that still had datagrams after a full batch is read again at once.
            let wake = match self.hot_udp.take() {
                Some(i) => {
                    // Still let the socket tasks (TCP, upstream TCP) run between batches.
                    future::yield_now().await;
                    Wake::Udp(i)
                }
                None => {
                    let timer = async {
                        match deadline {
                            Some(at) => Timer::at(at).await,
                            None => Timer::never().await,
                        };
                        Wake::Timer
                    };
                    let shutdown = async {
                        if draining.is_some() {
                            future::pending::<()>().await;
                        }
                        self.hooks.shutdown.wait().await;
                        Wake::Shutdown
                    };
                    // Draining after a shutdown: the listening sockets are no longer read
                    // (they stay open, since the replies still in flight leave through them).
                    let listeners = match draining {
                        Some(_) => &[][..],
                        None => &self.udp_listeners[..],
                    };
                    let readable = future::poll_fn(|cx| {
                        for (i, (_, sock)) in listeners.iter().enumerate() {
                            if sock.poll_readable(cx).is_ready() {
                                return Poll::Ready(Wake::Udp(i));
                            }
                        }
                        Poll::Pending
                    });
                    let upstream_poll = &self.upstream_poll;
                    let replies =
                        future::poll_fn(|cx| upstream_poll.poll_ready(cx).map(|()| Wake::Upstream));
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
            };
            let now = Instant::now();
            let event = match wake {
                Wake::Event(ev) => Some(ev),
                Wake::Udp(i) => {
                    self.read_udp(now, i);
                    if self.hot_udp.is_some() {
                        // A busy listening socket must not starve upstream replies.
                        self.read_upstreams(now);
                    }
                    None
                }
                Wake::Upstream => {
                    self.read_upstreams(now);
                    None
                }
                Wake::Shutdown => {
                    // Shutdown: stop reading the listening sockets (new queries), keep the
                    // upstream sockets and open connections to answer what is in flight.
                    self.listener_tasks.clear();
                    self.stop_reading.set(true);
                    self.hot_udp = None;
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

    /// Reads datagrams from listening socket `i` until it would block (at most
    /// `UDP_BATCH`, in batched system calls).
    fn read_udp(&mut self, now: Instant, i: usize) {
        let Some((local, sock)) = self.udp_listeners.get(i) else {
            return;
        };
        let local = *local;
        let (batch, server) = (&mut self.recv_batch, &mut self.server);
        let hot = drain_socket(|| {
            let n = batch.read(sock.get_ref())?;
            for k in 0..n {
                if let Some((bytes, peer)) = batch.get(k) {
                    server.handle_client(now, Origin::Udp { local, peer }, bytes);
                }
            }
            Ok(n)
        });
        self.hot_udp = hot.then_some(i);
    }

    /// Reads one datagram from each upstream UDP socket with replies waiting. Most tries
    /// end with their first datagram; a socket with more is reported again (the poll set
    /// is level-triggered), so a flooding upstream cannot starve the others.
    fn read_upstreams(&mut self, now: Instant) {
        self.upstream_poll.ready(&mut self.ready_tokens);
        for &t in &self.ready_tokens {
            let token = Token(t);
            let Some((sock, to)) = self.upstream_udp.get(&token) else {
                continue;
            };
            match sock.recv(&mut self.upstream_buf) {
                Ok(n) => self
                    .server
                    .handle_upstream(now, token, *to, &self.upstream_buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // ICMP port unreachable and the like: this try is dead.
                Err(_) => self
                    .server
                    .handle_upstream_error(now, token, UpstreamError::Io),
            }
        }
    }

    /// Sends the UDP replies gathered by `perform`, a batch per system call, and gives
    /// their buffers back to the core.
    fn flush_udp(&mut self) {
        for (i, (_, sock)) in self.udp_listeners.iter().enumerate() {
            let Some(out) = self.udp_out.get_mut(i) else {
                continue;
            };
            if out.is_empty() {
                continue;
            }
            batch::send_all(sock.get_ref(), out);
            for (bytes, _) in out.drain(..) {
                self.server.recycle(bytes);
            }
        }
    }

    /// Copies the core's counters to the metrics board, if there is one and a scrape
    /// asked for them.
    fn publish(&self) {
        if let Some(p) = &self.hooks.publisher {
            p.publish(&self.server);
        }
    }

    /// Closes the connections (their replies were written, or the drain limit passed) and
    /// gives the writers a moment to shut their streams.
    async fn flush_tcp(&mut self) {
        self.conns.clear();
        Timer::after(Duration::from_millis(20)).await;
    }

    fn feed(&mut self, now: Instant, ev: Event, draining: bool) {
        if draining {
            if let Event::TcpOpen { .. } = ev {
                return; // no new connection; dropping the handle closes it
            }
        }
        match ev {
            Event::TcpOpen { conn, peer, handle } => {
                self.conns.insert(conn, handle);
                self.server.handle_tcp_open(now, conn, peer);
            }
            Event::TcpData { conn, bytes } => {
                // Bytes read are answered, during a shutdown too.
                self.server.handle_client(now, Origin::Tcp(conn), &bytes);
                if let Some(c) = self.conns.get(&conn) {
                    let _ = c.fed.try_send(());
                }
            }
            Event::TcpEof { conn } => self.server.handle_tcp_eof(now, conn),
            Event::TcpWritten { conn, bytes } => self.server.handle_tcp_written(now, conn, bytes),
            Event::TcpClosed { conn } => {
                self.conns.remove(&conn);
                self.server.handle_tcp_closed(now, conn);
            }
            Event::Upstream { token, from, bytes } => {
                if let Some((_, taken)) = self.upstreams.get(&token) {
                    let _ = taken.try_send(()); // the try's task may read on
                }
                self.server.handle_upstream(now, token, from, &bytes)
            }
            Event::UpstreamFailed { token, err } => {
                self.server.handle_upstream_error(now, token, err)
            }
        }
    }

    /// Carries out every pending action. Failures to start an upstream try go back to
    /// the core as events (never re-entering it here).
    async fn perform(&mut self) {
        while let Some(action) = self.server.poll_action() {
            match action {
                Action::Reply { to, bytes } => match to {
                    Origin::Udp { local, peer } => {
                        match self.udp_listeners.iter().position(|(a, _)| *a == local) {
                            Some(i) => self.udp_out[i].push((bytes, peer)),
                            None => self.server.recycle(bytes),
                        }
                    }
                    Origin::Tcp(conn) => {
                        if let Some(c) = self.conns.get(&conn) {
                            let _ = c.writes.try_send(bytes);
                        }
                    }
                },
                Action::SendUpstream {
                    token,
                    to,
                    via,
                    bytes,
                } => {
                    match via {
                        Via::Udp { local_port } => {
                            // Bind, connect and send right here; the poll set reports replies.
                            let sock = net::upstream_udp(to, local_port).and_then(|sock| {
                                sock.send(&bytes)?;
                                self.upstream_poll.add(&sock, token.0)?;
                                Ok(sock)
                            });
                            self.server.recycle(bytes);
                            match sock {
                                Ok(sock) => {
                                    self.upstream_udp.insert(token, (sock, to));
                                }
                                Err(e) => {
                                    let err = if e.kind() == io::ErrorKind::AddrInUse {
                                        UpstreamError::Bind
                                    } else {
                                        UpstreamError::Io
                                    };
                                    let _ =
                                        self.events.try_send(Event::UpstreamFailed { token, err });
                                }
                            }
                        }
                        Via::Tcp => {
                            let (taken_tx, taken_rx) = channel::bounded(1);
                            let task = self.ex.spawn(upstream_tcp(
                                token,
                                to,
                                bytes,
                                self.events.clone(),
                                taken_rx,
                            ));
                            self.upstreams.insert(token, (task, taken_tx));
                        }
                    }
                }
                Action::CloseUpstream { token } => {
                    // Dropping the socket closes it (and so leaves the poll set); dropping a
                    // TCP try's task cancels it.
                    if self.upstream_udp.remove(&token).is_none() {
                        self.upstreams.remove(&token);
                    }
                }
                Action::CloseClient { conn } => {
                    // The writer sees its channel close and shuts the stream once its queue
                    // is written; a client that does not read is cut off after a grace period.
                    if let Some(c) = self.conns.remove(&conn) {
                        if c.writing.get() || !c.writes.is_empty() {
                            let stream = c.stream;
                            self.ex
                                .spawn(async move {
                                    Timer::after(CLOSE_GRACE).await;
                                    let _ = stream.shutdown(std::net::Shutdown::Both);
                                })
                                .detach();
                        }
                    }
                }
                Action::PauseRead { conn } => {
                    if let Some(c) = self.conns.get(&conn) {
                        c.paused.set(true);
                    }
                }
                Action::Log(entry) => logging::log_query(&entry),
                Action::ResumeRead { conn } => {
                    if let Some(c) = self.conns.get(&conn) {
                        c.paused.set(false);
                        let _ = c.resume.try_send(());
                    }
                }
            }
        }
        self.flush_udp();
    }
}

/// Calls `read_batch` (one batched read, returning the datagrams it handled) until the
/// socket would block (`Ok(0)`) or `UDP_BATCH` datagrams were read; returns whether the
/// socket may still hold datagrams. An error ends the round: the socket's next readiness
/// brings the driver back, so a persistent error can never hold the worker in this loop.
fn drain_socket(mut read_batch: impl FnMut() -> io::Result<usize>) -> bool {
    let mut read = 0;
    while read < UDP_BATCH {
        match read_batch() {
            Ok(0) | Err(_) => return false,
            Ok(n) => read += n,
        }
    }
    true
}

async fn tcp_acceptor(
    ex: Rc<LocalExecutor<'static>>,
    listener: TcpListener,
    next_conn: Rc<Cell<u64>>,
    stop_reading: Rc<Cell<bool>>,
    events: Sender<Event>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let conn = ConnId(next_conn.get());
                next_conn.set(conn.0 + 1);
                let (writes, write_rx) = channel::unbounded();
                let (resume, resume_rx) = channel::bounded(1);
                let (fed, fed_rx) = channel::bounded(1);
                let paused = Rc::new(Cell::new(false));
                let writing = Rc::new(Cell::new(false));
                let handle = ConnHandle {
                    writes,
                    paused: paused.clone(),
                    resume,
                    fed,
                    writing: writing.clone(),
                    stream: stream.clone(),
                };
                if events
                    .send(Event::TcpOpen { conn, peer, handle })
                    .await
                    .is_err()
                {
                    return;
                }
                ex.spawn(tcp_writer(
                    stream.clone(),
                    conn,
                    write_rx,
                    writing,
                    events.clone(),
                ))
                .detach();
                let reader = Reader {
                    conn,
                    paused,
                    resume: resume_rx,
                    fed: fed_rx,
                    stop: stop_reading.clone(),
                };
                ex.spawn(tcp_reader(stream, reader, events.clone()))
                    .detach();
            }
            Err(e) => {
                // EMFILE/ENFILE and friends: back off, keep serving what is open, then accept again.
                log::warn!("accept failed: {e}; retrying in 100 ms");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A reader task's view of its connection.
struct Reader {
    conn: ConnId,
    paused: Rc<Cell<bool>>,
    resume: Receiver<()>,
    fed: Receiver<()>,
    /// The worker is shutting down: read nothing new.
    stop: Rc<Cell<bool>>,
}

async fn tcp_reader(mut stream: TcpStream, r: Reader, events: Sender<Event>) {
    let conn = r.conn;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while r.paused.get() {
            if r.resume.recv().await.is_err() {
                return; // the connection was closed
            }
        }
        if r.stop.get() {
            return;
        }
        match stream.read(&mut buf).await {
            Ok(0) => {
                // A half-close (RFC 7766 6.2.x): what was read is still answered.
                let _ = events.send(Event::TcpEof { conn }).await;
                return;
            }
            Err(_) => break,
            Ok(n) => {
                let ev = Event::TcpData {
                    conn,
                    bytes: buf[..n].to_vec(),
                };
                if events.send(ev).await.is_err() || r.fed.recv().await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = events.send(Event::TcpClosed { conn }).await;
}

async fn tcp_writer(
    mut stream: TcpStream,
    conn: ConnId,
    writes: Receiver<Vec<u8>>,
    writing: Rc<Cell<bool>>,
    events: Sender<Event>,
) {
    while let Ok(bytes) = writes.recv().await {
        writing.set(true);
        let result = stream.write_all(&bytes).await;
        writing.set(false);
        let ev = match result {
            Ok(()) => Event::TcpWritten {
                conn,
                bytes: bytes.len(),
            },
            Err(_) => Event::TcpClosed { conn },
        };
        let failed = matches!(ev, Event::TcpClosed { .. });
        if events.send(ev).await.is_err() || failed {
            break;
        }
    }
    // The core closed the connection (idle, cap, garbage, all answered) or the peer went away.
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// One upstream TCP try: sends the query, then hands every chunk read to the core and
/// waits until the core has taken it (`taken`) before reading more, so a hostile upstream
/// never has more than one chunk of its stream in memory here; the core closes the try
/// (dropping this task) as soon as the stream is broken.
async fn upstream_tcp(
    token: Token,
    to: SocketAddr,
    query: Vec<u8>,
    events: Sender<Event>,
    taken: Receiver<()>,
) {
    let result: io::Result<()> = async {
        let mut stream = TcpStream::connect(to).await?;
        stream.write_all(&query).await?;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let ev = Event::Upstream {
                token,
                from: to,
                bytes: buf[..n].to_vec(),
            };
            if events.send(ev).await.is_err() || taken.recv().await.is_err() {
                return Ok(());
            }
        }
    }
    .await;
    if result.is_err() {
        let _ = events
            .send(Event::UpstreamFailed {
                token,
                err: UpstreamError::Io,
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persistent_read_error_ends_the_round() {
        let mut calls = 0;
        let hot = drain_socket(|| {
            calls += 1;
            Err(io::Error::other("recvmmsg keeps failing"))
        });
        assert!(!hot);
        assert_eq!(
            calls, 1,
            "one failed read, then back to waiting for readiness"
        );
    }

    #[test]
    fn a_full_batch_leaves_the_socket_hot_and_would_block_does_not() {
        let mut calls = 0;
        assert!(drain_socket(|| {
            calls += 1;
            Ok(16)
        }));
        assert_eq!(calls, UDP_BATCH / 16);
        let mut left = 3;
        assert!(!drain_socket(|| {
            left -= 1;
            Ok(if left > 0 { 8 } else { 0 })
        }));
    }
}
