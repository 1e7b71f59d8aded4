//! The process harness: finds (and if need be builds) the `names` binary, starts and
//! stops `names serve` ([`Server`]), runs one-shot commands with a deadline
//! ([`run_names`], [`dig`]), signals a process and reads its memory use.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub const READY_DEADLINE: Duration = Duration::from_secs(10);
/// Deadline for one-shot commands ([`run_names`], [`dig`]).
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(20);

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

    /// Starts `cmd` (the binary, with whatever environment and descriptors the test gives
    /// it; stdin, stdout and stderr are set here) and waits for its ready line, as
    /// [`Server::try_start`] does.
    pub fn try_start_command(mut cmd: Command) -> Result<Server, String> {
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
    /// Sends signal `name` (TERM, HUP, ...) to the process.
    pub fn signal(&self, name: &str) {
        send_signal(self.pid(), name);
    }
    /// Waits up to `limit` for the process to exit on its own: its status, or `None` if it
    /// is still running (it is then killed on drop).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM to `child` (by its PID) and waits up to `d` for it to exit (see
/// [`wait_deadline`]).
pub fn terminate(child: &mut Child, d: Duration) -> Option<ExitStatus> {
    send_signal(child.id(), "TERM");
    wait_deadline(child, d)
}

/// Waits up to `d` for `child` to exit: its status, or `None` when it had to be killed.
pub fn wait_deadline(child: &mut Child, d: Duration) -> Option<ExitStatus> {
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

/// VmRSS of a process, in kB.
pub fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
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
// The metrics endpoint (`--metrics`)
// ---------------------------------------------------------------------------

/// The bound metrics address from the `names: metrics http://IP:PORT/metrics` line.
pub fn metrics_addr(server: &Server) -> SocketAddr {
    let logs = server.logs();
    let line = logs
        .lines()
        .find_map(|l| l.strip_prefix("names: metrics http://"))
        .unwrap_or_else(|| panic!("no metrics line in:\n{logs}"));
    line.trim_end_matches("/metrics")
        .parse()
        .expect("metrics address")
}

/// `GET /metrics`, the body.
pub fn scrape(addr: SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .expect("connect metrics");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::io::Write::write_all(&mut s, b"GET /metrics HTTP/1.1\r\nHost: names\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read metrics reply");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    out.split_once("\r\n\r\n")
        .expect("head and body")
        .1
        .to_string()
}

/// Whether `program` is on the PATH; if not, says the test is skipped.
pub fn installed(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|d| d.join(program).is_file());
    if !found {
        eprintln!("SKIPPED: {program} is not installed (.ci/run installs it)");
    }
    found
}

/// Polls `check` every 20 ms until it holds or `limit` has passed; whether it held.
pub fn within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("sample value"))
}
