//! The examples run for real: `core/examples/blocking.rs` (the core on std blocking
//! sockets, no smol) and the seed's listings `shell/examples/forwarding_server.rs` and
//! `shell/examples/override_server.rs`, each against a fake upstream on 127.0.0.1.
//! Each example is built with cargo once per test process, started on 127.0.0.1:0,
//! found through its `ready udp=...` line on stderr, and killed by PID at the end.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use names_tests::{
    answer_a, answer_many_a, parse, query, run_with_deadline, udp_exchange, with_tc,
    workspace_root, FakeUpstream, Rcode, Reply, Rtype,
};

const UP_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const READY: Duration = Duration::from_secs(30);
const ASK: Duration = Duration::from_secs(5);

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => workspace_root().join(d),
        _ => workspace_root().join("target"),
    }
}

/// Builds the examples of `package` once per test process; returns the examples directory.
fn built(package: &str, what: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<String, bool>>> = OnceLock::new();
    let lock = BUILT.get_or_init(Default::default);
    let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
    if !done.contains_key(package) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", package])
            .args(what)
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .status()
            .expect("cannot run cargo build");
        assert!(status.success(), "cargo build -p {package} {what:?} failed");
        done.insert(package.to_string(), true);
    }
    target_dir().join("debug").join("examples")
}

/// A running example process, killed by its PID when dropped.
struct Running {
    child: Child,
    udp: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `bin` with `args` and waits for its `ready udp=IP:PORT` line.
    fn start(bin: PathBuf, args: &[String]) -> Running {
        let mut child = Command::new(&bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + READY;
        let mut seen = Vec::new();
        let udp = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{} not ready; stderr: {seen:?}", bin.display());
                }
            };
            let addr = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("udp="))
                .and_then(|a| a.parse::<SocketAddr>().ok());
            match addr {
                Some(addr) if line.contains("ready") => break addr,
                _ => seen.push(line),
            }
        };
        Running {
            child,
            udp,
            log: rx,
        }
    }

    /// Asks `name` `rtype` over UDP and parses the reply.
    fn ask(&self, id: u16, name: &str, rtype: Rtype) -> names_tests::Parsed {
        let q = query(name, rtype, id, true, None);
        let reply = udp_exchange(self.udp, &q, ASK)
            .unwrap_or_else(|| panic!("no reply to {name} from {}", self.udp));
        let p = parse(&reply);
        assert_eq!(p.id, id);
        assert!(p.qr);
        p
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // By PID (Child::kill sends SIGKILL to exactly this process), then reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let rest: Vec<String> = self.log.try_iter().collect();
        if !rest.is_empty() {
            eprintln!("stderr of pid {}: {rest:?}", self.child.id());
        }
    }
}

fn answering() -> FakeUpstream {
    FakeUpstream::answering(&[UP_IP])
}

#[test]
fn blocking_example_serves_synth_and_forwards() {
    let dir = built("names-core", &["--example", "blocking"]);
    let up = answering();
    let args = [
        "127.0.0.1:0".to_string(),
        "--synth".into(),
        "workstation=172.0.2".into(),
        "--upstream".into(),
        up.arg(),
    ];
    let server = Running::start(dir.join("blocking"), &args);
    let p = server.ask(7, "WorkStation7.example.com", Rtype::A);
    assert_eq!(p.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 7)]);
    assert_eq!(
        p.question.as_ref().map(|q| q.0.as_str()),
        Some("WorkStation7.example.com"),
        "question echoed as asked"
    );
    assert_eq!(up.count(), 0, "synth answers locally");
    let p = server.ask(8, "www.example.com", Rtype::A);
    assert_eq!(p.rcode, u16::from(Rcode::NOERROR.to_int()));
    assert_eq!(p.a_addrs(), vec![UP_IP]);
    assert!(p.ra && !p.aa);
    assert_eq!(up.count(), 1);
    assert_ne!(up.received()[0].id(), 8, "a fresh upstream ID");
}

#[test]
fn blocking_example_retries_truncated_replies_over_tcp() {
    let dir = built("names-core", &["--example", "blocking"]);
    let up = FakeUpstream::start(|r| {
        if r.tcp {
            vec![Reply::Send(answer_many_a(&r.bytes, 3, 60))]
        } else {
            vec![Reply::Send(with_tc(&answer_a(&r.bytes, &[], 60)))]
        }
    });
    let args = ["127.0.0.1:0".to_string(), "--upstream".into(), up.arg()];
    let server = Running::start(dir.join("blocking"), &args);
    let p = server.ask(9, "big.example.com", Rtype::A);
    assert_eq!(p.rcode, u16::from(Rcode::NOERROR.to_int()));
    assert_eq!(p.a_addrs().len(), 3);
    assert!(up.wait_for(2, ASK));
    assert_eq!((up.udp_count(), up.tcp_count()), (1, 1));
}

#[test]
fn blocking_example_without_sources_refuses() {
    let dir = built("names-core", &["--example", "blocking"]);
    let server = Running::start(dir.join("blocking"), &["127.0.0.1:0".to_string()]);
    let p = server.ask(10, "www.example.com", Rtype::A);
    assert_eq!(p.rcode, u16::from(Rcode::REFUSED.to_int()));
}

#[test]
fn forwarding_server_example_forwards() {
    let dir = built("names-shell", &["--examples"]);
    let up = answering();
    let args = ["127.0.0.1:0".to_string(), up.arg()];
    let server = Running::start(dir.join("forwarding_server"), &args);
    for (id, name) in [(1, "www.example.com"), (2, "workstation1.example.com")] {
        let p = server.ask(id, name, Rtype::A);
        assert_eq!(p.rcode, u16::from(Rcode::NOERROR.to_int()), "{name}");
        assert_eq!(p.a_addrs(), vec![UP_IP], "{name} forwarded");
        assert!(p.ra && !p.aa);
    }
    assert_eq!(up.count(), 2, "everything forwarded");
}

#[test]
fn override_server_example_answers_workstations_and_forwards_the_rest() {
    let dir = built("names-shell", &["--examples"]);
    let up = answering();
    let args = ["127.0.0.1:0".to_string(), up.arg()];
    let server = Running::start(dir.join("override_server"), &args);
    // `dig -p 10053 @127.0.0.1 workstation1.example.com A +short` prints 172.0.2.1.
    let p = server.ask(1, "workstation1.example.com", Rtype::A);
    assert_eq!(p.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 1)]);
    let p = server.ask(2, "WORKSTATION42.example.com", Rtype::A);
    assert_eq!(p.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 42)]);
    assert_eq!(up.count(), 0, "workstations never reach the upstream");
    // Everything else goes to the forwarder.
    for (id, name, rtype) in [
        (3, "www.example.com", Rtype::A),
        (4, "workstation1.example.com", Rtype::AAAA),
        (5, "workstation256.example.com", Rtype::A),
    ] {
        let p = server.ask(id, name, rtype);
        assert_eq!(p.rcode, u16::from(Rcode::NOERROR.to_int()), "{name}");
        assert!(p.ra, "{name}");
    }
    assert_eq!(up.count(), 3);
    assert_eq!(
        server.ask(6, "www.example.com", Rtype::A).a_addrs(),
        vec![UP_IP]
    );
}

#[test]
fn examples_reject_bad_arguments_with_one_line() {
    let dir = built("names-shell", &["--examples"]);
    for bin in ["forwarding_server", "override_server"] {
        let mut cmd = Command::new(dir.join(bin));
        cmd.args(["not-an-address", "127.0.0.1:53"]);
        let out = run_with_deadline(cmd, bin);
        assert!(!out.status.success(), "{bin}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{bin}: {err}");
        assert!(err.contains("not-an-address"), "{bin}: {err}");
    }
}
