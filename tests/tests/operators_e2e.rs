//! What operators expect from the binary, end to end through the real `names`:
//! `--version`, systemd notifications (`Type=notify`) to a fake `NOTIFY_SOCKET`, socket
//! activation (`LISTEN_FDS`), and the example unit files checked by `systemd-analyze`.
//! Everything stays on 127.0.0.1 or in the temp dir; every wait has a deadline; every
//! process started is stopped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use domain::base::{Message, MessageBuilder, Name, Rtype};
use domain::rdata::A;
use names_tests::{names_bin, run_names, workspace_root};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

const DEADLINE: Duration = Duration::from_secs(10);

#[test]
fn version_prints_the_name_and_version_and_exits_0() {
    for flag in ["--version", "-V"] {
        let out = run_names(&[flag]);
        assert!(out.status.success(), "names {flag}: {:?}", out.status);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout, format!("names {}\n", env!("CARGO_PKG_VERSION")));
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        String::from_utf8_lossy(&run_names(&["--version"]).stdout),
        "names 0.1.0\n"
    );
    // Before a command it wins over the command, which does not run.
    let out = run_names(&["--version", "query", "example.com"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "names 0.1.0\n");
    let help = run_names(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("--version"));
}

// ---------------------------------------------------------------------------
// A `names serve` process started the way a service manager would
// ---------------------------------------------------------------------------

/// A running `names` process, its stderr lines as they come. Killed and reaped on drop.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    logs: Vec<String>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn names");
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines,
            logs: Vec::new(),
        }
    }

    /// Waits for the stderr line containing `what`.
    fn line(&mut self, what: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.logs.push(line.clone());
                    if line.contains(what) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {what:?}; stderr:\n{}", self.logs.join("\n")),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    fn wait(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The UDP and TCP addresses of the ready line.
fn ready_addrs(line: &str) -> (Vec<SocketAddr>, Vec<SocketAddr>) {
    let pick = |prefix: &str| {
        line.split_whitespace()
            .filter_map(|w| w.strip_prefix(prefix)?.parse().ok())
            .collect()
    };
    (pick("udp="), pick("tcp="))
}

fn a_query(name: &str, id: u16) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(id);
    b.header_mut().set_rd(true);
    let mut q = b.question();
    let name: Name<Vec<u8>> = name.parse().expect("name");
    q.push((name, Rtype::A)).expect("question");
    q.finish()
}

/// The ID and A records of a reply.
fn a_records(reply: &[u8]) -> (u16, Vec<Ipv4Addr>) {
    let msg = Message::from_octets(reply).expect("a DNS message");
    let answers = msg.answer().expect("an answer section");
    let addrs = answers
        .filter_map(|rr| rr.ok()?.to_record::<A>().ok()?)
        .map(|r| r.data().addr())
        .collect();
    (msg.header().id(), addrs)
}

fn ask_udp(server: SocketAddr, name: &str, id: u16) -> (u16, Vec<Ipv4Addr>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sock.send_to(&a_query(name, id), server).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = sock.recv_from(&mut buf).expect("a UDP reply");
    assert_eq!(from, server);
    a_records(&buf[..n])
}

fn ask_tcp(server: SocketAddr, name: &str, id: u16) -> (u16, Vec<Ipv4Addr>) {
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let q = a_query(name, id);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("a TCP reply");
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut reply).unwrap();
    a_records(&reply)
}

/// A fresh path in the temp dir.
fn temp_path(what: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("names-ops-{}-{what}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// The next notification on the fake NOTIFY_SOCKET.
fn notification(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the deadline");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    let path = temp_path("notify.sock");
    let notify = UnixDatagram::bind(&path).expect("bind the fake NOTIFY_SOCKET");
    notify.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut cmd = Command::new(names_bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
        .args(["--no-forward", "--synth", "host=10.1.2"])
        .env("NOTIFY_SOCKET", &path);
    let mut names = Proc::spawn(cmd);
    let ready = names.line(" ready ");
    let first = notification(&notify);
    assert!(first.lines().any(|l| l == "READY=1"), "{first:?}");
    assert!(first.contains("STATUS=ready udp="), "{first:?}");
    let (udp, _) = ready_addrs(&ready);
    assert_eq!(
        ask_udp(udp[0], "host7.example", 7),
        (7, vec![Ipv4Addr::new(10, 1, 2, 7)])
    );

    names.signal("HUP");
    let reloading = notification(&notify);
    let lines: Vec<&str> = reloading.lines().collect();
    assert_eq!(lines.first(), Some(&"RELOADING=1"), "{reloading:?}");
    let usec = lines
        .iter()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec.parse::<u64>().expect("a number") > 0);
    let again = notification(&notify);
    assert!(again.lines().any(|l| l == "READY=1"), "{again:?}");
    // Still serving after the reload.
    assert_eq!(
        ask_udp(udp[0], "host8.example", 8),
        (8, vec![Ipv4Addr::new(10, 1, 2, 8)])
    );

    names.signal("TERM");
    let stopping = notification(&notify);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = names.wait().expect("names exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_file(&path);
}

/// A bound socket, CLOEXEC as usual (the child clears it on its copy).
fn bound(addr: SocketAddr, tcp: bool) -> Socket {
    let (ty, proto) = if tcp {
        (Type::STREAM, Protocol::TCP)
    } else {
        (Type::DGRAM, Protocol::UDP)
    };
    let s = Socket::new(Domain::IPV4, ty, Some(proto)).unwrap();
    if tcp {
        s.set_reuse_address(true).unwrap();
    }
    s.bind(&addr.into()).unwrap();
    if tcp {
        s.listen(64).unwrap();
    }
    s
}

/// `names ARGS` started as systemd starts a socket-activated service: `sockets` as
/// descriptors 3, 4, ..., `LISTEN_FDS` their count and `LISTEN_PID` the process's own
/// PID (set by the shell that then execs `names`, keeping its PID).
fn socket_activated(sockets: &[&Socket], args: &[&str]) -> Proc {
    let fds: Vec<i32> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    let high = fds
        .iter()
        .copied()
        .max()
        .unwrap_or(2)
        .max(4 + fds.len() as i32);
    // Copy each inherited descriptor above all of them first, then down to 3, 4, ...:
    // an original may itself be 3 or 4.
    let mut script = String::new();
    for (i, fd) in fds.iter().enumerate() {
        script += &format!("exec {}<&{fd}; ", high + 1 + i as i32);
    }
    for fd in &fds {
        script += &format!("exec {fd}<&-; ");
    }
    for i in 0..fds.len() {
        let tmp = high + 1 + i as i32;
        script += &format!("exec {}<&{tmp} {tmp}<&-; ", 3 + i);
    }
    script += &format!("LISTEN_PID=$$ LISTEN_FDS={} exec \"$0\" \"$@\"", fds.len());
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script).arg(names_bin()).args(args);
    // Whatever manager runs the tests hears nothing from this server.
    cmd.env_remove("NOTIFY_SOCKET");
    // SAFETY: runs in the child between fork and exec; it only clears FD_CLOEXEC on
    // descriptors the parent keeps open for the whole spawn (fcntl, async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                // SAFETY: `fd` is open in the child (inherited from the parent's socket).
                let fd = BorrowedFd::borrow_raw(fd);
                SockRef::from(&fd).set_cloexec(false)?;
            }
            Ok(())
        });
    }
    Proc::spawn(cmd)
}

fn has_bash() -> bool {
    Command::new("bash")
        .args(["-c", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn socket_activation_serves_the_sockets_handed_over() {
    if !has_bash() {
        eprintln!("skipped: bash (used to hand the sockets over as fd 3 and 4) is missing");
        return;
    }
    let udp = bound("127.0.0.1:0".parse().unwrap(), false);
    let addr = udp.local_addr().unwrap().as_socket().unwrap();
    let tcp = bound(addr, true);
    // --listen names another address: the handed-over sockets win.
    let mut names = socket_activated(
        &[&udp, &tcp],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--no-forward",
            "--synth",
            "host=10.1.2",
        ],
    );
    let ready = names.line(" ready ");
    assert_eq!(ready_addrs(&ready), (vec![addr], vec![addr]), "{ready}");
    // Close the test's copies: only the server holds the sockets now.
    drop((udp, tcp));
    for id in 1..=8u16 {
        let expect = (id, vec![Ipv4Addr::new(10, 1, 2, id as u8)]);
        assert_eq!(ask_udp(addr, &format!("host{id}.example"), id), expect);
    }
    assert_eq!(
        ask_tcp(addr, "host9.example", 9),
        (9, vec![Ipv4Addr::new(10, 1, 2, 9)])
    );
    names.signal("TERM");
    assert!(names.wait().expect("exits after SIGTERM").success());
}

#[test]
fn socket_activation_refuses_a_lone_tcp_socket_in_one_line() {
    if !has_bash() {
        eprintln!("skipped: bash (used to hand the sockets over as fd 3) is missing");
        return;
    }
    let tcp = bound("127.0.0.1:0".parse().unwrap(), true);
    let mut names = socket_activated(&[&tcp], &["serve", "--no-forward"]);
    let line = names.line("error");
    assert!(
        line.contains("socket activation: fd 3: TCP socket on"),
        "{line}"
    );
    assert!(line.contains("has no UDP socket"), "{line}");
    let status = names.wait().expect("exits");
    assert!(!status.success());
    let rest: Vec<String> = names.lines.try_iter().collect();
    assert!(rest.iter().all(|l| !l.contains("panicked")), "{rest:?}");
}

// ---------------------------------------------------------------------------
// Unit files
// ---------------------------------------------------------------------------

/// `systemd-analyze verify` on the example units, with `ExecStart=` pointed at the built
/// binary (verify checks that it exists). Skipped, with the reason, where there is no
/// systemd-analyze.
#[test]
fn example_unit_files_pass_systemd_analyze_verify() {
    let examples = workspace_root().join("examples");
    let service = std::fs::read_to_string(examples.join("names.service")).expect("names.service");
    let socket = std::fs::read_to_string(examples.join("names.socket")).expect("names.socket");
    // What the units promise, whether or not systemd-analyze is here to check them.
    assert!(service.contains("Type=notify"), "{service}");
    assert!(service.contains("ExecReload="), "{service}");
    assert!(
        socket.contains("ListenDatagram=") && socket.contains("ListenStream="),
        "{socket}"
    );
    let probe = Command::new("systemd-analyze").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let dir = temp_path("units");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bin = names_bin();
    let service = service
        .lines()
        .map(|l| match l.strip_prefix("ExecStart=/usr/local/bin/names") {
            Some(rest) => format!("ExecStart={}{rest}", bin.display()),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(service.contains(&format!("ExecStart={}", bin.display())));
    std::fs::write(dir.join("names.service"), service + "\n").unwrap();
    std::fs::write(dir.join("names.socket"), socket).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.join("names.socket"))
        .arg(dir.join("names.service"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Findings about the machine rather than the units (no running systemd in a
    // container, a missing user, ...) are not the units' fault; anything naming the
    // units is.
    let about_units: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("names.service") || l.contains("names.socket"))
        .collect();
    assert!(
        about_units.is_empty() && (out.status.success() || !stderr.contains("names.")),
        "systemd-analyze verify: {:?}\n{stderr}",
        out.status
    );
    let _ = std::fs::remove_dir_all(&dir);
}
