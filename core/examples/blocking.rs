//! The same core, driven by plain std blocking sockets and threads: no smol, no async
//! runtime at all. This proves `names-core` is runtime-agnostic: it serves UDP and TCP
//! clients, forwards to upstreams over UDP and TCP, and runs its own resolver's lookups
//! (work that would block the loop) on threads.
//!
//! ```sh
//! cargo run -p names-core --example blocking -- 127.0.0.1:10053 --synth workstation=172.0.2 --upstream 192.0.2.53
//! dig -p 10053 @127.0.0.1 workstation7.example.com A +short        # 172.0.2.7
//! dig -p 10053 @127.0.0.1 workstation7.example.com A +short +tcp   # the same, over TCP
//! dig -p 10053 @127.0.0.1 web.lookup.test A +short                 # 10.x.y.z, worked out on a thread
//! ```
//!
//! Usage: `blocking [LISTEN] [--synth PREFIX=NET]... [--upstream IP[:PORT]]... [--timeout MS]
//! [--lookup-delay MS] [--max-lookups N]` (listen default 127.0.0.1:10053, UDP and TCP on
//! the same port; port 0 binds a free one; `--timeout`: a query's budget, default 5000;
//! `--lookup-delay`: how long a lookup works, default 10; `--max-lookups`: lookups in
//! flight, the core's default otherwise). Once bound it prints
//! `blocking: ready udp=IP:PORT tcp=IP:PORT chain=...` on stderr. Bad arguments: one line
//! on stderr, exit code 2.
//!
//! One thread owns the [`Server`]. Its loop is the one the core documents: drain
//! `poll_action`, then wait for the next input no longer than `poll_timeout() - now`, feed
//! it with the current time, and call `handle_timeout`. Every socket is read by a thread
//! of its own that sends what it read over one channel to that loop:
//!
//! - the UDP listener: one thread, replies sent by the core thread;
//! - the TCP listener: an acceptor thread; each connection the core admits (it closes the
//!   ones over its caps at once) gets a reader thread, which hands one chunk at a time to
//!   the core and reads the next only when the core is not pausing it
//!   (`Action::PauseRead`/`ResumeRead`), and a writer thread, which writes the replies and
//!   reports each one written (`handle_tcp_written`), since unwritten replies count
//!   against the connection. `Action::CloseClient` ends the writer once its queue is
//!   written; it then shuts the socket, which ends the reader;
//! - each upstream try: a thread that connects (TCP), sends, and reads with
//!   `set_read_timeout`, so it notices when the core closes its token;
//! - each lookup (`Action::Lookup`): a thread that runs the job and sends its result
//!   back for `Server::handle_lookup`; `Action::CancelLookup` (the query's budget ended)
//!   tells it to give up.
//!
//! The lookups are those of [`Computed`], the example's own resolver: `NAME.lookup.test A`
//! is answered with an address worked out from `NAME` by a job that takes
//! `--lookup-delay` (the stand-in for a database or an HTTP call); `unknown.lookup.test`
//! is not found and passes to the next resolver; everything else passes at once.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use names_core::domain::base::iana::Rtype;
use names_core::domain::base::name::{Label, ToLabelIter};
use names_core::domain::rdata::A;
use names_core::setup::Setup;
use names_core::{
    parse_server, Action, Answer, Config, ConnId, Context, LookupId, LookupOutcome, Origin,
    Payload, Query, Resolution, Resolver, Server, SynthRule, Token, UpstreamError, Via,
};

/// How often an upstream reader checks whether its token was closed.
const READ_SLICE: Duration = Duration::from_millis(100);
/// How long connecting to an upstream over TCP may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A client TCP connection that takes none of our bytes for this long is cut off (its
/// writer would otherwise block forever).
const WRITE_STALL: Duration = Duration::from_secs(10);
/// Bytes read from a client TCP connection at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Stack of the per-connection threads: they only move bytes between a socket and a channel.
const STACK: usize = 128 * 1024;
/// How long the acceptor waits after a failed accept (out of descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Free ports tried when asked for port 0 (UDP and TCP must get the same one).
const BIND_TRIES: usize = 32;
/// How often a lookup's thread checks whether it was cancelled.
const CANCEL_SLICE: Duration = Duration::from_millis(10);
/// Time to live of the lookups' answers.
const LOOKUP_TTL: u32 = 30;

/// Something read from a socket, for the core.
enum Event {
    Client {
        peer: SocketAddr,
        bytes: Vec<u8>,
    },
    TcpOpen {
        conn: ConnId,
        peer: SocketAddr,
        stream: TcpStream,
    },
    TcpData {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    TcpEof {
        conn: ConnId,
    },
    TcpWritten {
        conn: ConnId,
        bytes: usize,
    },
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
    LookupDone {
        id: LookupId,
        found: Found,
    },
}

/// The example's own resolver: `NAME.lookup.test A` (any case, `NAME` one label) is
/// worked out by a [`Job`] on a thread of the runtime; every other query passes.
struct Computed;

/// The job [`Computed`] asks the runtime to run: the label to work out, lowercased.
struct Job {
    label: String,
}

/// A job's result: the address, or `None` when the name is not known.
type Found = Option<Ipv4Addr>;

impl Resolver for Computed {
    fn name(&self) -> &str {
        "lookup"
    }

    fn resolve(&mut self, query: &Query<'_>, _cx: &mut Context) -> Resolution {
        if query.qtype() != Rtype::A || !is_lookup_name(query) {
            return Resolution::Pass;
        }
        let label = String::from_utf8_lossy(query.first_label()).to_ascii_lowercase();
        Resolution::Lookup(Payload::new(Job { label }))
    }

    fn on_lookup(
        &mut self,
        query: &Query<'_>,
        outcome: LookupOutcome,
        _cx: &mut Context,
    ) -> Resolution {
        match outcome {
            LookupOutcome::Done(result) => match result.downcast::<Found>() {
                Ok(Some(addr)) => Resolution::answer([query.record(LOOKUP_TTL, A::new(addr))]),
                Ok(None) => Resolution::Pass, // not found: the next resolver is asked
                Err(_) => Resolution::Answer(Answer::servfail()), // the job could not run
            },
            LookupOutcome::TimedOut => Resolution::Answer(Answer::servfail()),
        }
    }
}

/// Whether the question is `NAME.lookup.test.`, in any case.
fn is_lookup_name(query: &Query<'_>) -> bool {
    let labels: Vec<&Label> = query.qname().iter_labels().collect();
    matches!(labels.as_slice(), [_, lookup, test, root]
        if lookup.as_slice().eq_ignore_ascii_case(b"lookup")
            && test.as_slice().eq_ignore_ascii_case(b"test")
            && root.is_root())
}

/// The job itself: works for `delay` (giving up, with `None`, once `cancelled` is set),
/// then makes `10.B.C.D` from a hash of the label; `unknown` is not found.
fn work(job: &Job, delay: Duration, cancelled: &AtomicBool) -> Option<Found> {
    let until = clock() + delay;
    loop {
        if cancelled.load(Ordering::Relaxed) {
            return None;
        }
        let left = until.saturating_duration_since(clock());
        if left.is_zero() {
            break;
        }
        thread::sleep(left.min(CANCEL_SLICE));
    }
    if job.label == "unknown" {
        return Some(None);
    }
    // FNV-1a: the same label gets the same address, in every run.
    let hash = job.label.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let [_, b, c, d] = hash.to_be_bytes();
    Some(Some(Ipv4Addr::new(10, b, c, d)))
}

/// An open upstream try: its thread stops (and drops its socket) when `closed` is set.
struct Upstream {
    closed: Arc<AtomicBool>,
}

/// The core thread's side of a client TCP connection.
struct Client {
    stream: TcpStream,
    /// Replies for the writer thread (`None` until the core admitted the connection).
    /// Dropping it ends the writer once the queue is written.
    writes: Option<Sender<Vec<u8>>>,
    /// Lets the reader read its next chunk; dropping it ends the reader.
    permits: Option<SyncSender<()>>,
    /// The core said `PauseRead`.
    paused: bool,
    /// The reader handed over a chunk and waits for a permit.
    waiting: bool,
}

impl Client {
    /// Starts the connection's writer and reader threads.
    fn start(&mut self, conn: ConnId, events: &Sender<Event>) -> std::io::Result<()> {
        let (writes, write_rx) = mpsc::channel();
        let (permits, permit_rx) = mpsc::sync_channel(1);
        let (writer, reader) = (self.stream.try_clone()?, self.stream.try_clone()?);
        let tx = events.clone();
        spawn(format!("tcp-w{}", conn.0), move || {
            tcp_writer(writer, conn, write_rx, tx)
        })?;
        self.writes = Some(writes);
        let tx = events.clone();
        spawn(format!("tcp-r{}", conn.0), move || {
            tcp_reader(reader, conn, permit_rx, tx)
        })?;
        self.permits = Some(permits);
        Ok(())
    }

    /// The core took the last chunk: the reader may read on, unless paused.
    fn fed(&mut self) {
        self.waiting = true;
        self.permit();
    }

    fn permit(&mut self) {
        if self.waiting && !self.paused {
            self.waiting = false;
            if let Some(p) = &self.permits {
                let _ = p.try_send(());
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // With a writer, the writer shuts the socket once its queue is written.
        if self.writes.is_none() {
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }
}

/// The core and the sockets its actions name.
struct Runtime {
    server: Server,
    udp: UdpSocket,
    events: Sender<Event>,
    upstreams: BTreeMap<Token, Upstream>,
    clients: BTreeMap<ConnId, Client>,
    /// Lookups running, with the flag that cancels each.
    lookups: BTreeMap<LookupId, Arc<AtomicBool>>,
    lookup_delay: Duration,
    /// A job of a type this runtime does not run was reported (once).
    foreign_job_logged: bool,
}

/// The command line.
struct Args {
    listen: SocketAddr,
    rules: Vec<SynthRule>,
    upstreams: Vec<SocketAddr>,
    config: Config,
    lookup_delay: Duration,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("blocking: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blocking: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut listen = "127.0.0.1:10053".to_string();
    let mut rules = Vec::new();
    let mut upstreams = Vec::new();
    let mut config = Config::default();
    let mut lookup_delay = Duration::from_millis(10);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--synth" => {
                rules.push(SynthRule::parse(&value("--synth")?).map_err(|e| e.to_string())?)
            }
            "--upstream" => {
                upstreams.push(parse_server(&value("--upstream")?).map_err(|e| e.to_string())?)
            }
            "--timeout" => {
                config.budget = Duration::from_millis(number("--timeout", &value("--timeout")?)?)
            }
            "--lookup-delay" => {
                let ms = number("--lookup-delay", &value("--lookup-delay")?)?;
                lookup_delay = Duration::from_millis(ms);
            }
            "--max-lookups" => {
                let n = number("--max-lookups", &value("--max-lookups")?)?;
                config.max_lookups = usize::try_from(n).map_err(|e| e.to_string())?;
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            addr => listen = addr.to_string(),
        }
    }
    let listen: SocketAddr = listen
        .parse()
        .map_err(|_| format!("{listen:?} is not an IP:PORT address"))?;
    Ok(Args {
        listen,
        rules,
        upstreams,
        config,
        lookup_delay,
    })
}

/// A flag's value as a number from 1 to 3,600,000.
fn number(flag: &str, text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if (1..=3_600_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "{flag} {text:?}: expected a number from 1 to 3600000"
        )),
    }
}

fn run(args: Args) -> Result<(), String> {
    let Args {
        listen,
        rules,
        upstreams,
        config,
        lookup_delay,
    } = args;
    let chain = Setup::new()
        .synth(rules)
        .resolver(|| Computed)
        .forward_to(upstreams)
        .build();
    let names = chain.names().join(",");
    let server = Server::new(config, chain, seed());

    let (udp, tcp) = bind(listen)?;
    let udp_addr = udp.local_addr().map_err(|e| e.to_string())?;
    let tcp_addr = tcp.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    spawn_udp_listener(udp.try_clone().map_err(|e| e.to_string())?, tx.clone());
    spawn_acceptor(tcp, tx.clone());
    eprintln!("blocking: ready udp={udp_addr} tcp={tcp_addr} chain={names}");

    let mut rt = Runtime {
        server,
        udp,
        events: tx,
        upstreams: BTreeMap::new(),
        clients: BTreeMap::new(),
        lookups: BTreeMap::new(),
        lookup_delay,
        foreign_job_logged: false,
    };
    loop {
        rt.perform();
        let now = clock();
        let event = match rt.server.poll_timeout() {
            Some(deadline) => rx.recv_timeout(deadline.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let now = clock();
        match event {
            Ok(event) => rt.feed(now, event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err("the listeners stopped".into()),
        }
        rt.server.handle_timeout(now);
    }
}

/// Binds UDP and TCP on the same address (for port 0, on the same free port).
fn bind(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), String> {
    let cannot = |e: std::io::Error| format!("cannot bind {listen}: {e}");
    if listen.port() != 0 {
        let udp = UdpSocket::bind(listen).map_err(cannot)?;
        return Ok((udp, TcpListener::bind(listen).map_err(cannot)?));
    }
    for _ in 0..BIND_TRIES {
        let udp = UdpSocket::bind(listen).map_err(cannot)?;
        let port = udp.local_addr().map_err(cannot)?.port();
        if let Ok(tcp) = TcpListener::bind(SocketAddr::new(listen.ip(), port)) {
            return Ok((udp, tcp));
        }
    }
    Err(format!(
        "cannot bind {listen}: no free port for both UDP and TCP"
    ))
}

impl Runtime {
    /// Feeds one input to the core.
    fn feed(&mut self, now: Instant, event: Event) {
        let server = &mut self.server;
        match event {
            Event::Client { peer, bytes } => {
                server.handle_client(now, Origin::Udp { listener: 0, peer }, &bytes)
            }
            Event::TcpOpen { conn, peer, stream } => {
                let client = Client {
                    stream,
                    writes: None,
                    permits: None,
                    paused: false,
                    waiting: false,
                };
                self.clients.insert(conn, client);
                server.handle_tcp_open(now, conn, peer);
                // Over a cap, the core closes it at once: no threads for it then.
                self.perform();
                if let Some(client) = self.clients.get_mut(&conn) {
                    if let Err(e) = client.start(conn, &self.events) {
                        eprintln!("blocking: cannot start a connection's threads: {e}");
                        self.clients.remove(&conn);
                        self.server.handle_tcp_closed(now, conn);
                    }
                }
            }
            Event::TcpData { conn, bytes } => {
                server.handle_client(now, Origin::Tcp(conn), &bytes);
                // A PauseRead it caused must be seen before the reader reads on.
                self.perform();
                if let Some(client) = self.clients.get_mut(&conn) {
                    client.fed();
                }
            }
            Event::TcpEof { conn } => server.handle_tcp_eof(now, conn),
            Event::TcpWritten { conn, bytes } => server.handle_tcp_written(now, conn, bytes),
            Event::TcpClosed { conn } => {
                self.clients.remove(&conn);
                server.handle_tcp_closed(now, conn);
            }
            Event::Upstream { token, from, bytes } => {
                server.handle_upstream(now, token, from, &bytes)
            }
            Event::UpstreamFailed { token, err } => server.handle_upstream_error(now, token, err),
            Event::LookupDone { id, found } => {
                self.lookups.remove(&id);
                server.handle_lookup(now, id, Payload::new(found));
            }
        }
    }

    /// Carries out every pending action of the core.
    fn perform(&mut self) {
        while let Some(action) = self.server.poll_action() {
            match action {
                Action::Reply {
                    to: Origin::Udp { peer, .. },
                    bytes,
                } => {
                    let _ = self.udp.send_to(&bytes, peer);
                }
                Action::Reply {
                    to: Origin::Tcp(conn),
                    bytes,
                } => {
                    if let Some(writes) = self.clients.get(&conn).and_then(|c| c.writes.as_ref()) {
                        let _ = writes.send(bytes);
                    }
                }
                Action::SendUpstream {
                    token,
                    to,
                    via,
                    bytes,
                } => match send_upstream(token, to, via, bytes, &self.events) {
                    Ok(up) => {
                        self.upstreams.insert(token, up);
                    }
                    // The core reacts (another port, or the next server) at once.
                    Err(err) => self.server.handle_upstream_error(clock(), token, err),
                },
                Action::CloseUpstream { token } => {
                    if let Some(up) = self.upstreams.remove(&token) {
                        up.closed.store(true, Ordering::Relaxed);
                    }
                }
                Action::CloseClient { conn } => {
                    self.clients.remove(&conn);
                }
                Action::PauseRead { conn } => {
                    if let Some(client) = self.clients.get_mut(&conn) {
                        client.paused = true;
                    }
                }
                Action::ResumeRead { conn } => {
                    if let Some(client) = self.clients.get_mut(&conn) {
                        client.paused = false;
                        client.permit();
                    }
                }
                Action::Lookup { id, job } => self.run_lookup(id, job),
                Action::CancelLookup { id } => {
                    if let Some(cancelled) = self.lookups.remove(&id) {
                        cancelled.store(true, Ordering::Relaxed);
                    }
                }
                // No query log here.
                Action::Log(_) | Action::Notified { .. } => {}
            }
        }
    }

    /// Starts a thread for the job; a job it cannot run gets a result of no known type at
    /// once (the resolver answers SERVFAIL), never a query left waiting.
    fn run_lookup(&mut self, id: LookupId, job: Payload) {
        let job = match job.downcast::<Job>() {
            Ok(job) => job,
            Err(_) => {
                if !self.foreign_job_logged {
                    self.foreign_job_logged = true;
                    eprintln!("blocking: a lookup of a type this runtime does not run: failed");
                }
                return self.server.handle_lookup(clock(), id, Payload::new(()));
            }
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        let (tx, delay) = (self.events.clone(), self.lookup_delay);
        let started = spawn(format!("lookup{}", id.0), move || {
            if let Some(found) = work(&job, delay, &flag) {
                let _ = tx.send(Event::LookupDone { id, found });
            }
        });
        match started {
            Ok(()) => {
                self.lookups.insert(id, cancelled);
            }
            Err(e) => {
                eprintln!("blocking: cannot start a lookup's thread: {e}");
                self.server.handle_lookup(clock(), id, Payload::new(()));
            }
        }
    }
}

/// Opens the socket a try asks for and starts its thread, which sends the query (for
/// TCP, after connecting) and reads the replies.
fn send_upstream(
    token: Token,
    to: SocketAddr,
    via: Via,
    bytes: Vec<u8>,
    events: &Sender<Event>,
) -> Result<Upstream, UpstreamError> {
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    let tx = events.clone();
    match via {
        Via::Udp { local_port } => {
            let any: IpAddr = match to {
                SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
                SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
            };
            let sock = UdpSocket::bind((any, local_port)).map_err(|_| UpstreamError::Bind)?;
            sock.connect(to).map_err(|_| UpstreamError::Io)?;
            sock.send(&bytes).map_err(|_| UpstreamError::Io)?;
            sock.set_read_timeout(Some(READ_SLICE))
                .map_err(|_| UpstreamError::Io)?;
            spawn(format!("up-u{}", token.0), move || {
                let mut buf = vec![0u8; 65535];
                while !flag.load(Ordering::Relaxed) {
                    if let Ok(n) = sock.recv(&mut buf) {
                        let bytes = buf[..n].to_vec();
                        if tx
                            .send(Event::Upstream {
                                token,
                                from: to,
                                bytes,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            })
            .map_err(|_| UpstreamError::Io)?;
        }
        Via::Tcp => {
            spawn(format!("up-t{}", token.0), move || {
                let failed = || Event::UpstreamFailed {
                    token,
                    err: UpstreamError::Io,
                };
                let connected =
                    TcpStream::connect_timeout(&to, CONNECT_TIMEOUT).and_then(|mut s| {
                        s.write_all(&bytes)?;
                        s.set_read_timeout(Some(READ_SLICE))?;
                        Ok(s)
                    });
                let Ok(mut stream) = connected else {
                    let _ = tx.send(failed());
                    return;
                };
                let mut buf = vec![0u8; 16384];
                while !flag.load(Ordering::Relaxed) {
                    let event = match stream.read(&mut buf) {
                        Ok(0) => failed(),
                        Ok(n) => Event::Upstream {
                            token,
                            from: to,
                            bytes: buf[..n].to_vec(),
                        },
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            continue
                        }
                        Err(_) => failed(),
                    };
                    let last = matches!(event, Event::UpstreamFailed { .. });
                    if tx.send(event).is_err() || last {
                        return;
                    }
                }
            })
            .map_err(|_| UpstreamError::Io)?;
        }
    }
    Ok(Upstream { closed })
}

/// Reads client datagrams forever.
fn spawn_udp_listener(socket: UdpSocket, tx: Sender<Event>) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 65535];
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, peer)) => {
                    let bytes = buf[..n].to_vec();
                    if tx.send(Event::Client { peer, bytes }).is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!("blocking: receive failed: {e}"),
            }
        }
    });
}

/// Accepts client TCP connections forever and hands them to the core thread, each with
/// a fresh [`ConnId`].
fn spawn_acceptor(listener: TcpListener, tx: Sender<Event>) {
    thread::spawn(move || {
        let mut next = 0u64;
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    if stream.set_write_timeout(Some(WRITE_STALL)).is_err() {
                        continue; // dropped: closed
                    }
                    let conn = ConnId(next);
                    next += 1;
                    if tx.send(Event::TcpOpen { conn, peer, stream }).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // Out of descriptors, say: serve what is open, then accept again.
                    eprintln!("blocking: accept failed: {e}");
                    thread::sleep(ACCEPT_BACKOFF);
                }
            }
        }
    });
}

/// Reads a client connection: one chunk at a time, the next only once the core thread
/// gave a permit (it took the chunk and does not pause the connection).
fn tcp_reader(mut stream: TcpStream, conn: ConnId, permits: Receiver<()>, tx: Sender<Event>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let event = match stream.read(&mut buf) {
            // A half-close (RFC 7766 6.2.x): what was read is still answered.
            Ok(0) => Event::TcpEof { conn },
            Ok(n) => Event::TcpData {
                conn,
                bytes: buf[..n].to_vec(),
            },
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => Event::TcpClosed { conn },
        };
        let more = matches!(event, Event::TcpData { .. });
        // No permit ever comes once the core closed the connection (its sender is dropped).
        if tx.send(event).is_err() || !more || permits.recv().is_err() {
            return;
        }
    }
}

/// Writes the replies to a client connection and reports each one written. Ends when the
/// core closed the connection (and the queue is written) or a write fails or stalls.
fn tcp_writer(mut stream: TcpStream, conn: ConnId, writes: Receiver<Vec<u8>>, tx: Sender<Event>) {
    for bytes in writes {
        let event = match stream.write_all(&bytes) {
            Ok(()) => Event::TcpWritten {
                conn,
                bytes: bytes.len(),
            },
            Err(_) => Event::TcpClosed { conn },
        };
        let failed = matches!(event, Event::TcpClosed { .. });
        if tx.send(event).is_err() || failed {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// Starts a named thread with a small stack.
fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    thread::Builder::new()
        .name(name)
        .stack_size(STACK)
        .spawn(f)
        .map(drop)
}

/// The runtime's clock: the core never reads one, its driver does and passes `now` in.
#[allow(clippy::disallowed_methods)]
fn clock() -> Instant {
    Instant::now()
}

/// 32 bytes from the operating system for the core's CSPRNG (upstream IDs and ports).
fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(&mut seed).is_ok() {
            return seed;
        }
    }
    // Elsewhere: std's per-process random hash keys.
    use std::hash::{BuildHasher, Hasher};
    for chunk in seed.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    seed
}
