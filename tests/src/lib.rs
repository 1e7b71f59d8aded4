//! End-to-end test harness for the `names` binary.
//!
//! Everything here talks to the real binary over loopback sockets:
//!
//! * [`Server`] starts `names serve --listen 127.0.0.1:0 ...`, waits for the
//!   `ready` line on stderr and keeps draining stderr into a log buffer.
//! * [`FakeUpstream`] is a programmable upstream DNS server (UDP and TCP on
//!   the same loopback port) that records every query it receives.
//! * Message helpers build queries/answers with `domain` and parse replies
//!   into a plain [`Parsed`] struct that is easy to assert on.
//! * [`udp_exchange`] / [`tcp_exchange`] are tiny clients with deadlines.
//! * [`run_names`] and [`dig`] run one-shot commands with a deadline.
//!
//! Every wait has a deadline and every loop is bounded, so a broken server
//! makes tests fail instead of hang.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use domain::base::iana::Class;
use domain::base::{Message, MessageBuilder, Name, ParsedName, Serial, StaticCompressor, Ttl};
use domain::rdata::{AllRecordData, Soa, A};

pub use domain::base::iana::{Opcode, Rcode};
pub use domain::base::Rtype;

/// How long [`Server::start`] waits for the `ready` line.
pub const READY_DEADLINE: Duration = Duration::from_secs(10);
/// Deadline for one-shot commands ([`run_names`], [`dig`]).
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Locating / building the binary
// ---------------------------------------------------------------------------

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate has a parent directory")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// Newest modification time of the `.rs`/`Cargo.toml` files under `dir`.
fn newest_source(dir: &Path, depth: usize) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            if depth == 0 {
                None
            } else {
                newest_source(&p, depth - 1)
            }
        } else if p.extension().is_some_and(|x| x == "rs") || p.ends_with("Cargo.toml") {
            e.metadata().ok().and_then(|m| m.modified().ok())
        } else {
            None
        };
        newest = newest.max(t);
    }
    newest
}

/// Whether the core/shell sources or manifests are newer than `bin`.
fn is_stale(bin: &Path) -> bool {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return true;
    };
    let root = workspace_root();
    let srcs = ["core/src", "shell/src"]
        .iter()
        .filter_map(|d| newest_source(&root.join(d), 6));
    let manifests = [
        "Cargo.toml",
        "Cargo.lock",
        "core/Cargo.toml",
        "shell/Cargo.toml",
    ]
    .iter()
    .filter_map(|f| {
        std::fs::metadata(root.join(f))
            .and_then(|m| m.modified())
            .ok()
    });
    srcs.chain(manifests).any(|t| t > built)
}

/// Path of the `names` binary: `$NAMES_BIN`, else `<target>/debug/names`,
/// (re)built once per test process with `cargo build -p names-shell --bin
/// names` if it is missing or older than the core/shell sources.
pub fn names_bin() -> PathBuf {
    // The outcome (including a failed build) is computed once per process,
    // so a broken build is reported by every test without rebuilding.
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let res = BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("NAMES_BIN") {
            if !p.is_empty() {
                return Ok(PathBuf::from(p));
            }
        }
        let bin = target_dir().join("debug").join("names");
        if !bin.exists() || is_stale(&bin) {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let out = Command::new(cargo)
                .args(["build", "-p", "names-shell", "--bin", "names"])
                .current_dir(workspace_root())
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("failed to run cargo build for the names binary: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "cargo build -p names-shell --bin names failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            if !bin.exists() {
                return Err(format!("names binary still missing at {}", bin.display()));
            }
        }
        Ok(bin)
    });
    match res {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

/// A running `names serve` process. Killed (by PID) and reaped on drop.
pub struct Server {
    child: Child,
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    ready_line: String,
    logs: Arc<Mutex<String>>,
}

/// Spawn a thread that copies `r` line by line into `logs` and, while the
/// receiver lives, into `tx`. Ends at EOF (when the process exits).
fn drain_lines<R: Read + Send + 'static>(
    r: R,
    logs: Arc<Mutex<String>>,
    tx: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(r);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let s = String::from_utf8_lossy(&line).into_owned();
                    logs.lock().unwrap().push_str(&s);
                    if let Some(tx) = &tx {
                        let _ = tx.send(s);
                    }
                }
            }
        }
    })
}

fn parse_ready(line: &str) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    let (mut udp, mut tcp) = (Vec::new(), Vec::new());
    for tok in line.split_whitespace() {
        if let Some(a) = tok.strip_prefix("udp=") {
            if let Ok(a) = a.parse() {
                udp.push(a);
            }
        } else if let Some(a) = tok.strip_prefix("tcp=") {
            if let Ok(a) = a.parse() {
                tcp.push(a);
            }
        }
    }
    (udp, tcp)
}

impl Server {
    /// Start `names serve --listen 127.0.0.1:0 <args>` and wait for the ready
    /// line. Panics (with the stderr text) if it does not become ready.
    pub fn start(args: &[&str]) -> Server {
        match Server::try_start(args) {
            Ok(s) => s,
            Err(e) => panic!("names serve {args:?} did not become ready:\n{e}"),
        }
    }

    /// Like [`Server::start`] but returns the collected stderr text (plus the
    /// exit status) if the process exits or stays silent before ready.
    pub fn try_start(args: &[&str]) -> Result<Server, String> {
        let mut full = vec!["serve", "--listen", "127.0.0.1:0"];
        full.extend_from_slice(args);
        Server::try_start_raw(&full)
    }

    /// Start the binary with exactly `args` (no implicit `serve --listen`).
    pub fn try_start_raw(args: &[&str]) -> Result<Server, String> {
        let mut cmd = Command::new(names_bin());
        cmd.args(args);
        Server::try_start_command(cmd)
    }

    /// Like [`Server::start`], with the file descriptor limits (soft, hard) set to `nofile`
    /// before the binary starts (by util-linux `prlimit`, which execs it: same PID).
    pub fn start_with_nofile(nofile: (u64, u64), args: &[&str]) -> Server {
        let mut cmd = Command::new("prlimit");
        cmd.arg(format!("--nofile={}:{}", nofile.0, nofile.1))
            .arg(names_bin())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args);
        match Server::try_start_command(cmd) {
            Ok(s) => s,
            Err(e) => panic!("names serve {args:?} under prlimit did not become ready:\n{e}"),
        }
    }

    fn try_start_command(mut cmd: Command) -> Result<Server, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot spawn {cmd:?}: {e}"))?;
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        drain_lines(child.stderr.take().unwrap(), logs.clone(), Some(tx));
        // stdout is drained into the same buffer so the pipe never fills.
        drain_lines(child.stdout.take().unwrap(), logs.clone(), None);

        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no ready line within {READY_DEADLINE:?}; stderr so far:\n{}",
                    logs.lock().unwrap()
                ));
            }
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(" ready ") => {
                    let (udp, tcp) = parse_ready(&line);
                    if udp.is_empty() || tcp.is_empty() {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(format!("unparsable ready line: {line:?}"));
                    }
                    return Ok(Server {
                        child,
                        udp,
                        tcp,
                        ready_line: line.trim_end().to_string(),
                        logs,
                    });
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stderr closed: the process is exiting.
                    let status = wait_deadline(&mut child, Duration::from_secs(5));
                    // give the stdout drain a moment to finish
                    thread::sleep(Duration::from_millis(20));
                    return Err(format!(
                        "exited before ready ({}); stderr:\n{}",
                        status.map_or("still running, killed".to_string(), |s| s.to_string()),
                        logs.lock().unwrap()
                    ));
                }
            }
        }
    }

    /// First UDP listen address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp[0]
    }
    /// First TCP listen address.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp[0]
    }
    /// All UDP listen addresses from the ready line.
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp
    }
    /// All TCP listen addresses from the ready line.
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp
    }
    /// The ready line itself (trimmed).
    pub fn ready_line(&self) -> &str {
        &self.ready_line
    }
    /// Everything the process wrote to stderr (and stdout) so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_deadline(child: &mut Child, d: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + d;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Run a command to completion with a deadline ([`COMMAND_DEADLINE`]); kill
/// it and panic if it takes longer.
pub fn run_with_deadline(mut cmd: Command, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let t_out = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let t_err = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let status = wait_deadline(&mut child, COMMAND_DEADLINE);
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    match status {
        Some(status) => Output {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{what} did not finish within {COMMAND_DEADLINE:?}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// Run the `names` binary once with `args` (e.g. `query ...` or bad flags).
pub fn run_names(args: &[&str]) -> Output {
    let mut cmd = Command::new(names_bin());
    cmd.args(args);
    run_with_deadline(cmd, &format!("names {args:?}"))
}

/// Run the real `dig` with `+time=3 +tries=1` plus `args`; returns stdout.
/// Panics if `dig` is missing (CI installs it).
pub fn dig(args: &[&str]) -> String {
    let mut cmd = Command::new("dig");
    cmd.args(["+time=3", "+tries=1"]).args(args);
    let mut child_check = Command::new("dig");
    child_check
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Err(e) = child_check.status() {
        panic!("`dig` is required for these tests but could not be run: {e}");
    }
    let out = run_with_deadline(cmd, &format!("dig {args:?}"));
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.stderr.is_empty() {
        s.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    s
}

/// `dig -p PORT @IP <args>` against a server address.
pub fn dig_at(server: SocketAddr, args: &[&str]) -> String {
    let port = server.port().to_string();
    let at = format!("@{}", server.ip());
    let mut full: Vec<&str> = vec!["-p", &port, &at];
    full.extend_from_slice(args);
    dig(&full)
}

// ---------------------------------------------------------------------------
// Fake upstream
// ---------------------------------------------------------------------------

/// A query the fake upstream received.
#[derive(Clone, Debug)]
pub struct Received {
    pub bytes: Vec<u8>,
    pub from: SocketAddr,
    pub tcp: bool,
    pub at: Instant,
}

impl Received {
    /// The DNS ID of the received query (0 if shorter than 2 bytes).
    pub fn id(&self) -> u16 {
        msg_id(&self.bytes)
    }
    /// The parsed query.
    pub fn parsed(&self) -> Parsed {
        parse(&self.bytes)
    }
}

/// What the fake upstream does in response to one query. Replies are
/// executed in order (so `Delay` also delays everything after it).
#[derive(Clone, Debug)]
pub enum Reply {
    /// Send these bytes to the querier (UDP datagram / TCP frame).
    Send(Vec<u8>),
    /// Sleep, then send.
    Delay(Duration, Vec<u8>),
    /// Sleep without sending anything.
    Pause(Duration),
    /// UDP only: send from a different local port (a spoofing attempt).
    FromOtherPort(Vec<u8>),
    /// TCP only: close the connection.
    Close,
    /// These bytes exactly as given: over TCP without a length prefix (so one write can
    /// carry several frames, a zero-length frame or an endless stream), over UDP as one
    /// datagram.
    Raw(Vec<u8>),
    /// Do nothing.
    Nothing,
}

type Handler = dyn Fn(&Received) -> Vec<Reply> + Send + Sync;

struct FakeShared {
    stop: AtomicBool,
    received: Mutex<Vec<Received>>,
    handler: Box<Handler>,
    conns: Mutex<Vec<JoinHandle<()>>>,
}

/// A programmable upstream server on 127.0.0.1 (UDP and TCP, same port).
pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<FakeShared>,
    threads: Vec<JoinHandle<()>>,
}

const POLL: Duration = Duration::from_millis(50);

fn bind_pair() -> (UdpSocket, TcpListener) {
    let mut last_err = None;
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind fake UDP");
        let port = udp.local_addr().unwrap().port();
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(tcp) => return (udp, tcp),
            Err(e) => last_err = Some(e),
        }
    }
    panic!("could not bind UDP+TCP on one loopback port: {last_err:?}");
}

impl FakeUpstream {
    /// Start a fake upstream whose behaviour is `handler`.
    pub fn start<F>(handler: F) -> FakeUpstream
    where
        F: Fn(&Received) -> Vec<Reply> + Send + Sync + 'static,
    {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(POLL)).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let shared = Arc::new(FakeShared {
            stop: AtomicBool::new(false),
            received: Mutex::new(Vec::new()),
            handler: Box::new(handler),
            conns: Mutex::new(Vec::new()),
        });
        let other = UdpSocket::bind("127.0.0.1:0").expect("bind spoof socket");
        let t_udp = {
            let shared = shared.clone();
            thread::spawn(move || udp_loop(udp, other, shared))
        };
        let t_tcp = {
            let shared = shared.clone();
            thread::spawn(move || tcp_accept_loop(tcp, shared))
        };
        FakeUpstream {
            addr,
            shared,
            threads: vec![t_udp, t_tcp],
        }
    }

    /// Answers every A query with `ips` (TTL 300, AA and RA set).
    pub fn answering(ips: &[Ipv4Addr]) -> FakeUpstream {
        let ips = ips.to_vec();
        FakeUpstream::start(move |r| vec![Reply::Send(answer_a(&r.bytes, &ips, 300))])
    }

    /// Never answers (but records the queries).
    pub fn silent() -> FakeUpstream {
        FakeUpstream::start(|_| vec![Reply::Nothing])
    }

    /// Answers every query with an empty reply carrying `rcode`.
    pub fn rcode(rcode: Rcode) -> FakeUpstream {
        FakeUpstream::start(move |r| vec![Reply::Send(answer_rcode(&r.bytes, rcode))])
    }

    /// The loopback address (same port for UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `ip:port` string for `--upstream`.
    pub fn arg(&self) -> String {
        self.addr.to_string()
    }
    /// All queries received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
    /// Number of queries received so far.
    pub fn count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }
    /// Number of queries received over UDP.
    pub fn udp_count(&self) -> usize {
        self.received().iter().filter(|r| !r.tcp).count()
    }
    /// Number of queries received over TCP.
    pub fn tcp_count(&self) -> usize {
        self.received().iter().filter(|r| r.tcp).count()
    }
    /// Wait until at least `n` queries arrived or `timeout` passed.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let conns: Vec<_> = self.shared.conns.lock().unwrap().drain(..).collect();
        for t in conns {
            let _ = t.join();
        }
    }
}

fn udp_loop(sock: UdpSocket, other: UdpSocket, shared: Arc<FakeShared>) {
    let other = Arc::new(other);
    let mut buf = vec![0u8; 65535];
    while !shared.stop.load(Ordering::SeqCst) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue, // timeout (WouldBlock/TimedOut) or transient
        };
        let rec = Received {
            bytes: buf[..n].to_vec(),
            from,
            tcp: false,
            at: Instant::now(),
        };
        shared.received.lock().unwrap().push(rec.clone());
        let replies = (shared.handler)(&rec);
        let Ok(sock2) = sock.try_clone() else {
            continue;
        };
        let other = other.clone();
        // Each query's replies run in their own (short-lived) thread so a
        // Delay does not hold up other queries.
        thread::spawn(move || {
            for r in replies {
                match r {
                    Reply::Send(b) | Reply::Raw(b) => {
                        let _ = sock2.send_to(&b, from);
                    }
                    Reply::Delay(d, b) => {
                        thread::sleep(d);
                        let _ = sock2.send_to(&b, from);
                    }
                    Reply::Pause(d) => thread::sleep(d),
                    Reply::FromOtherPort(b) => {
                        let _ = other.send_to(&b, from);
                    }
                    Reply::Close | Reply::Nothing => {}
                }
            }
        });
    }
}

fn tcp_accept_loop(listener: TcpListener, shared: Arc<FakeShared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, from)) => {
                let shared2 = shared.clone();
                let h = thread::spawn(move || tcp_conn(stream, from, shared2));
                shared.conns.lock().unwrap().push(h);
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Read exactly `buf.len()` bytes, polling the stop flag; gives up after
/// `idle` without progress. Returns false on EOF/error/stop/idle.
fn read_full(s: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool, idle: Duration) -> bool {
    let mut got = 0;
    let mut last = Instant::now();
    while got < buf.len() {
        if stop.load(Ordering::SeqCst) || last.elapsed() > idle {
            return false;
        }
        match s.read(&mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => {
                got += n;
                last = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

fn tcp_conn(mut s: TcpStream, from: SocketAddr, shared: Arc<FakeShared>) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(POLL));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let idle = Duration::from_secs(10);
    loop {
        let mut len = [0u8; 2];
        if !read_full(&mut s, &mut len, &shared.stop, idle) {
            return;
        }
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        if !read_full(&mut s, &mut msg, &shared.stop, idle) {
            return;
        }
        let rec = Received {
            bytes: msg,
            from,
            tcp: true,
            at: Instant::now(),
        };
        shared.received.lock().unwrap().push(rec.clone());
        for r in (shared.handler)(&rec) {
            let b = match r {
                Reply::Send(b) => b,
                Reply::Delay(d, b) => {
                    thread::sleep(d);
                    b
                }
                Reply::Pause(d) => {
                    thread::sleep(d);
                    continue;
                }
                Reply::Close => return,
                Reply::Raw(b) => {
                    if s.write_all(&b).is_err() {
                        return;
                    }
                    continue;
                }
                Reply::FromOtherPort(_) | Reply::Nothing => continue,
            };
            if s.write_all(&frame(&b)).is_err() {
                return;
            }
        }
    }
}

/// Prefix a message with its 2-byte TCP length.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

// ---------------------------------------------------------------------------
// Message building
// ---------------------------------------------------------------------------

fn name(s: &str) -> Name<Vec<u8>> {
    s.parse()
        .unwrap_or_else(|e| panic!("bad domain name {s:?}: {e:?}"))
}

/// Build a query. `edns = Some(size)` adds an OPT record (version 0).
pub fn query(qname: &str, rtype: Rtype, id: u16, rd: bool, edns: Option<u16>) -> Vec<u8> {
    query_full(qname, rtype, id, rd, edns, 0, Opcode::QUERY)
}

/// Build a query with full control over EDNS version and opcode.
pub fn query_full(
    qname: &str,
    rtype: Rtype,
    id: u16,
    rd: bool,
    edns: Option<u16>,
    edns_version: u8,
    opcode: Opcode,
) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(id);
    b.header_mut().set_rd(rd);
    b.header_mut().set_opcode(opcode);
    let mut q = b.question();
    q.push((&name(qname), rtype, Class::IN)).unwrap();
    let mut add = q.additional();
    if let Some(size) = edns {
        add.opt(|o| {
            o.set_udp_payload_size(size);
            o.set_version(edns_version);
            Ok(())
        })
        .unwrap();
    }
    add.finish()
}

/// A query with two questions (QDCOUNT=2).
pub fn query_two_questions(id: u16) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(id);
    b.header_mut().set_rd(true);
    let mut q = b.question();
    q.push((&name("a.example."), Rtype::A, Class::IN)).unwrap();
    q.push((&name("b.example."), Rtype::A, Class::IN)).unwrap();
    q.finish()
}

fn start_reply(
    query: &[u8],
    rcode: Rcode,
) -> domain::base::message_builder::AnswerBuilder<StaticCompressor<Vec<u8>>> {
    let msg = Message::from_octets(query).expect("query has a header");
    let b = MessageBuilder::from_target(StaticCompressor::new(Vec::new())).unwrap();
    let mut ans = b.start_answer(&msg, rcode).expect("start_answer");
    ans.header_mut().set_aa(true);
    ans.header_mut().set_ra(true);
    ans
}

fn question_name(query: &[u8]) -> Name<Vec<u8>> {
    let msg = Message::from_octets(query).expect("query has a header");
    let q = msg.sole_question().expect("query has one question");
    let s = q.qname().to_string();
    if s.is_empty() || s == "." {
        Name::root_vec()
    } else {
        name(&s)
    }
}

fn has_opt(query: &[u8]) -> bool {
    Message::from_octets(query)
        .ok()
        .and_then(|m| m.opt())
        .is_some()
}

/// An answer to `query` (same ID and question, QR=1, AA=1, RA=1) with one A
/// record per address for the question's name. Adds OPT if the query had one.
pub fn answer_a(query: &[u8], ips: &[Ipv4Addr], ttl: u32) -> Vec<u8> {
    let owner = question_name(query);
    let mut ans = start_reply(query, Rcode::NOERROR);
    for ip in ips {
        ans.push((&owner, Class::IN, ttl, A::new(*ip))).unwrap();
    }
    let mut add = ans.additional();
    if has_opt(query) {
        add.opt(|o| {
            o.set_udp_payload_size(4096);
            Ok(())
        })
        .unwrap();
    }
    add.finish().into_target()
}

/// `n` distinct A records 10.0.x.y for the question's name.
pub fn answer_many_a(query: &[u8], n: usize, ttl: u32) -> Vec<u8> {
    answer_a(query, &many_ips(n), ttl)
}

/// `n` distinct addresses 10.0.x.y (x = i / 256, y = i % 256).
pub fn many_ips(n: usize) -> Vec<Ipv4Addr> {
    (0..n)
        .map(|i| Ipv4Addr::new(10, 0, (i / 256) as u8, (i % 256) as u8))
        .collect()
}

/// An empty reply with `rcode` (AA and RA set).
pub fn answer_rcode(query: &[u8], rcode: Rcode) -> Vec<u8> {
    let ans = start_reply(query, rcode);
    let mut add = ans.additional();
    if has_opt(query) {
        add.opt(|o| {
            o.set_udp_payload_size(4096);
            Ok(())
        })
        .unwrap();
    }
    add.finish().into_target()
}

/// NXDOMAIN with an SOA for `example.` in the authority section.
pub fn answer_nxdomain_soa(query: &[u8]) -> Vec<u8> {
    let ans = start_reply(query, Rcode::NXDOMAIN);
    let mut auth = ans.authority();
    let t = Ttl::from_secs;
    auth.push((
        &name("example."),
        Class::IN,
        900,
        Soa::new(
            name("ns1.example."),
            name("hostmaster.example."),
            Serial(2024010101),
            t(3600),
            t(600),
            t(86400),
            t(300),
        ),
    ))
    .unwrap();
    let mut add = auth.additional();
    if has_opt(query) {
        add.opt(|o| {
            o.set_udp_payload_size(4096);
            Ok(())
        })
        .unwrap();
    }
    add.finish().into_target()
}

/// Copy of `msg` with the TC bit set.
pub fn with_tc(msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[2] |= 0x02;
    m
}

/// Copy of `msg` with the ID replaced.
pub fn with_id(msg: &[u8], id: u16) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[..2].copy_from_slice(&id.to_be_bytes());
    m
}

/// The ID of a message (0 if too short).
pub fn msg_id(msg: &[u8]) -> u16 {
    if msg.len() < 2 {
        0
    } else {
        u16::from_be_bytes([msg[0], msg[1]])
    }
}

/// A raw 12-byte header with the given fields.
pub fn raw_header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    for x in [id, flags, qd, an, ns, ar] {
        v.extend_from_slice(&x.to_be_bytes());
    }
    v
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// A resource record in presentation-ish form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    /// Owner name as on the wire (case kept), no trailing dot.
    pub owner: String,
    pub rtype: u16,
    pub ttl: u32,
    /// For A records the bare address, otherwise domain's `Display`.
    pub rdata: String,
}

/// A parsed DNS message, flattened for easy assertions.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    /// Full (extended) rcode: header low bits plus OPT high bits.
    pub rcode: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    /// The first question: name as on the wire (case kept, no trailing
    /// dot) and type.
    pub question: Option<(String, u16)>,
    pub answers: Vec<Rr>,
    pub authority: Vec<Rr>,
    /// Additional records except OPT.
    pub additional: Vec<Rr>,
    pub has_opt: bool,
    pub opt_version: Option<u8>,
    pub opt_udp_size: Option<u16>,
    /// Size of the message in bytes.
    pub len: usize,
}

impl Parsed {
    /// The A addresses in the answer section, in order.
    pub fn a_addrs(&self) -> Vec<Ipv4Addr> {
        self.answers
            .iter()
            .filter(|r| r.rtype == Rtype::A.to_int())
            .filter_map(|r| r.rdata.parse().ok())
            .collect()
    }
}

fn rr_of(rr: domain::base::ParsedRecord<'_, &[u8]>) -> Result<Rr, String> {
    let rec = rr
        .to_any_record::<AllRecordData<&[u8], ParsedName<&[u8]>>>()
        .map_err(|e| format!("bad record: {e}"))?;
    let rdata = match rec.data() {
        AllRecordData::A(a) => a.addr().to_string(),
        other => other.to_string(),
    };
    Ok(Rr {
        owner: rec.owner().to_string(),
        rtype: rec.rtype().to_int(),
        ttl: rec.ttl().as_secs(),
        rdata,
    })
}

/// Parse a message; `Err` describes why it is not a well-formed message.
pub fn try_parse(bytes: &[u8]) -> Result<Parsed, String> {
    let msg = Message::from_octets(bytes).map_err(|e| format!("short message: {e}"))?;
    let h = msg.header();
    let c = msg.header_counts();
    let mut p = Parsed {
        id: h.id(),
        qr: h.qr(),
        opcode: h.opcode().to_int(),
        aa: h.aa(),
        tc: h.tc(),
        rd: h.rd(),
        ra: h.ra(),
        rcode: h.rcode().to_int() as u16,
        qdcount: c.qdcount(),
        ancount: c.ancount(),
        nscount: c.nscount(),
        arcount: c.arcount(),
        question: None,
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        has_opt: false,
        opt_version: None,
        opt_udp_size: None,
        len: bytes.len(),
    };
    let mut questions = msg.question();
    for q in &mut questions {
        let q = q.map_err(|e| format!("bad question: {e}"))?;
        if p.question.is_none() {
            p.question = Some((q.qname().to_string(), q.qtype().to_int()));
        }
    }
    let mut section = questions
        .answer()
        .map_err(|e| format!("bad question: {e}"))?;
    for rr in &mut section {
        let rr = rr.map_err(|e| format!("bad answer: {e}"))?;
        p.answers.push(rr_of(rr)?);
    }
    let mut section = section
        .next_section()
        .map_err(|e| format!("bad answer: {e}"))?
        .ok_or("no authority section")?;
    for rr in &mut section {
        let rr = rr.map_err(|e| format!("bad authority: {e}"))?;
        p.authority.push(rr_of(rr)?);
    }
    let mut section = section
        .next_section()
        .map_err(|e| format!("bad authority: {e}"))?
        .ok_or("no additional section")?;
    for rr in &mut section {
        let rr = rr.map_err(|e| format!("bad additional: {e}"))?;
        if rr.rtype() == Rtype::OPT {
            p.has_opt = true;
        } else {
            p.additional.push(rr_of(rr)?);
        }
    }
    if let Some(opt) = msg.opt() {
        p.has_opt = true;
        p.opt_version = Some(opt.version());
        p.opt_udp_size = Some(opt.udp_payload_size());
        p.rcode = msg.opt_rcode().to_int();
    }
    Ok(p)
}

/// Parse a message, panicking with a hex dump if it is malformed.
pub fn parse(bytes: &[u8]) -> Parsed {
    try_parse(bytes).unwrap_or_else(|e| panic!("cannot parse reply ({e}): {}", hex(bytes)))
}

/// Lowercase hex dump.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// A UDP client socket on 127.0.0.1 for multi-step exchanges.
pub struct UdpClient {
    sock: UdpSocket,
    server: SocketAddr,
}

impl UdpClient {
    pub fn new(server: SocketAddr) -> UdpClient {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind client UDP");
        UdpClient { sock, server }
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }
    pub fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).expect("UDP send");
    }
    /// Next datagram from the server, or None after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65535];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) if from == self.server => return Some(buf[..n].to_vec()),
                Ok(_) => {} // stray datagram from someone else
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

/// Send one datagram and wait for one reply from `addr` (None on timeout).
pub fn udp_exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let c = UdpClient::new(addr);
    c.send(bytes);
    c.recv(timeout)
}

/// Like [`udp_exchange`] with a 5 s timeout, panicking on no reply, and
/// returning the parsed reply.
pub fn udp_ask(addr: SocketAddr, bytes: &[u8]) -> Parsed {
    match udp_exchange(addr, bytes, Duration::from_secs(5)) {
        Some(r) => parse(&r),
        None => panic!("no UDP reply from {addr} within 5s to {}", hex(bytes)),
    }
}

/// Connect with a deadline (5 s).
pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("TCP connect to {addr}: {e}"));
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Read one length-prefixed frame before `deadline`; None on EOF/timeout.
pub fn tcp_read_frame(s: &mut TcpStream, deadline: Instant) -> Option<Vec<u8>> {
    fn read_exact_by(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> bool {
        let mut got = 0;
        while got < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match s.read(&mut buf[got..]) {
                Ok(0) => return false,
                Ok(n) => got += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return false,
            }
        }
        true
    }
    let mut len = [0u8; 2];
    if !read_exact_by(s, &mut len, deadline) {
        return None;
    }
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    if !read_exact_by(s, &mut msg, deadline) {
        return None;
    }
    Some(msg)
}

/// Open one TCP connection, write all `msgs` pipelined (in a single write),
/// then read up to `msgs.len()` replies within `timeout`.
pub fn tcp_exchange_timeout(addr: SocketAddr, msgs: &[Vec<u8>], timeout: Duration) -> Vec<Vec<u8>> {
    let mut s = tcp_connect(addr);
    let mut out = Vec::new();
    for m in msgs {
        out.extend_from_slice(&frame(m));
    }
    s.write_all(&out).expect("TCP write");
    let deadline = Instant::now() + timeout;
    let mut replies = Vec::new();
    while replies.len() < msgs.len() {
        match tcp_read_frame(&mut s, deadline) {
            Some(r) => replies.push(r),
            None => break,
        }
    }
    replies
}

/// [`tcp_exchange_timeout`] with a 5 s deadline.
pub fn tcp_exchange(addr: SocketAddr, msgs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    tcp_exchange_timeout(addr, msgs, Duration::from_secs(5))
}

/// One query over TCP; panics if no reply within 5 s.
pub fn tcp_ask(addr: SocketAddr, bytes: &[u8]) -> Parsed {
    let r = tcp_exchange(addr, &[bytes.to_vec()]);
    match r.first() {
        Some(r) => parse(r),
        None => panic!("no TCP reply from {addr} within 5s to {}", hex(bytes)),
    }
}

// ---------------------------------------------------------------------------
// Client TCP hardening helpers (hostile_client.rs)
// ---------------------------------------------------------------------------

/// A TCP connection to `addr` from the local address `from` (e.g. 127.0.0.2: another
/// client address on loopback).
pub fn tcp_connect_from(from: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("TCP socket");
    sock.bind(&SocketAddr::new(from, 0).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("TCP connect from {from} to {addr}: {e}"));
    let s: TcpStream = sock.into();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// VmRSS of a process, in kB.
pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// Whether the peer closes `s` (end of stream or reset) within `within`; data is skipped.
pub fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return true,
        }
    }
}

/// Sends signal `name` (TERM, HUP, ...) to process `pid`.
pub fn send_signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// A fresh directory under the system temp dir, for files a test hands the server.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("names-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

// ---------------------------------------------------------------------------
// Self-tests of the harness (no `names` binary needed)
// ---------------------------------------------------------------------------

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn query_roundtrip_keeps_case_and_flags() {
        let q = query("WwW.Example.COM", Rtype::AAAA, 0xabcd, false, Some(1232));
        let p = parse(&q);
        assert_eq!(p.id, 0xabcd);
        assert!(!p.qr && !p.rd);
        assert_eq!(p.question, Some(("WwW.Example.COM".into(), 28)));
        assert!(p.has_opt);
        assert_eq!(p.opt_udp_size, Some(1232));
        assert_eq!(p.opt_version, Some(0));
    }

    #[test]
    fn answers_and_rcodes() {
        let q = query("a.example", Rtype::A, 7, true, None);
        let ips = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
        let a = parse(&answer_a(&q, &ips, 60));
        assert!(a.qr && a.aa && a.ra && a.rd && !a.tc);
        assert_eq!((a.id, a.rcode), (7, 0));
        assert_eq!(a.a_addrs(), ips.to_vec());
        assert_eq!(a.answers[0].ttl, 60);
        assert_eq!(a.answers[0].owner, "a.example");
        assert!(parse(&with_tc(&answer_a(&q, &[], 1))).tc);
        assert_eq!(parse(&answer_rcode(&q, Rcode::SERVFAIL)).rcode, 2);
        let nx = parse(&answer_nxdomain_soa(&q));
        assert_eq!((nx.rcode, nx.authority.len()), (3, 1));
        let big = answer_many_a(&q, 130, 300);
        assert!(big.len() > 2000, "{}", big.len());
        assert_eq!(parse(&big).answers.len(), 130);
        let v1 = query_full("a.example", Rtype::A, 1, true, Some(512), 1, Opcode::STATUS);
        let p = parse(&v1);
        assert_eq!((p.opcode, p.opt_version), (2, Some(1)));
        assert_eq!(parse(&query_two_questions(3)).qdcount, 2);
        assert!(try_parse(&[1, 2, 3]).is_err());
        let mut bad = raw_header(1, 0x0100, 1, 0, 0, 0);
        bad.extend_from_slice(&[7, b'x']);
        assert!(try_parse(&bad).is_err());
    }

    #[test]
    fn fake_upstream_udp_and_tcp() {
        let up = FakeUpstream::answering(&[Ipv4Addr::new(192, 0, 2, 9)]);
        let q = query("x.example", Rtype::A, 42, true, None);
        let r = udp_exchange(up.addr(), &q, Duration::from_secs(2)).expect("udp reply");
        assert_eq!(parse(&r).a_addrs(), vec![Ipv4Addr::new(192, 0, 2, 9)]);
        let qs: Vec<Vec<u8>> = (0..3)
            .map(|i| query("y.example", Rtype::A, 100 + i, true, None))
            .collect();
        let rs = tcp_exchange(up.addr(), &qs);
        assert_eq!(rs.len(), 3);
        assert_eq!(
            rs.iter().map(|r| msg_id(r)).collect::<Vec<_>>(),
            vec![100, 101, 102]
        );
        assert!(up.wait_for(4, Duration::from_secs(1)));
        assert_eq!((up.udp_count(), up.tcp_count()), (1, 3));
        assert_eq!(up.received()[0].id(), 42);
    }

    #[test]
    fn fake_upstream_spoof_and_delay_order() {
        let up = FakeUpstream::start(|r| {
            vec![
                Reply::FromOtherPort(with_id(&r.bytes, 1)),
                Reply::Delay(Duration::from_millis(50), with_id(&r.bytes, 2)),
            ]
        });
        let c = UdpClient::new(up.addr());
        c.send(&query("z.example", Rtype::A, 9, true, None));
        // the FromOtherPort datagram is filtered out by UdpClient
        let r = c.recv(Duration::from_secs(2)).expect("delayed reply");
        assert_eq!(msg_id(&r), 2);
        let silent = FakeUpstream::silent();
        let t0 = Instant::now();
        assert!(udp_exchange(silent.addr(), &[0; 12], Duration::from_millis(200)).is_none());
        assert!(t0.elapsed() >= Duration::from_millis(190));
        assert_eq!(silent.count(), 1);
    }
}
