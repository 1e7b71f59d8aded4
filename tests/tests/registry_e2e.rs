//! `shell/examples/registry.rs` for real: the example's binary against an HTTP service
//! registry served from this test (a thread on 127.0.0.1 with programmable responses and
//! delays) and a fake upstream, asked with `dig` and a UDP client. Answers, a 404 passed
//! to the forwarder, failures as SERVFAIL, a slow registry that delays no other query, a
//! registry that never answers (SERVFAIL at the budget), any case, bad flags.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use names_tests::{
    dig_at, parse, query, run_with_deadline, workspace_root, FakeUpstream, Rcode, Rtype, Server,
    UdpClient,
};

const FORWARDED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);
/// The longest a registry connection is held (a registry that "never" answers).
const HOLD_MAX: Duration = Duration::from_secs(30);

/// What the test registry does for one request.
#[derive(Clone, Debug)]
enum Respond {
    /// After `delay`, this status and body.
    Status(Duration, u16, &'static str),
    /// These raw bytes, then close.
    Raw(&'static [u8]),
    /// Nothing, holding the connection until the registry stops.
    Never,
}

type Handler = Arc<dyn Fn(&str) -> Respond + Send + Sync>;

/// An HTTP registry on 127.0.0.1: each connection a thread answering as the handler says
/// for the request's path; stopped (and joined) on drop.
struct Registry {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    paths: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl Registry {
    fn start(handler: impl Fn(&str) -> Respond + Send + Sync + 'static) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the registry");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let (s, p) = (stop.clone(), paths.clone());
        let thread = thread::spawn(move || {
            let mut conns = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (s, p, h) = (s.clone(), p.clone(), handler.clone());
                        conns.push(thread::spawn(move || serve_one(stream, &s, &p, &h)));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Registry {
            addr,
            stop,
            paths,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (bounded), records its path, responds.
fn serve_one(mut stream: TcpStream, stop: &AtomicBool, paths: &Mutex<Vec<String>>, h: &Handler) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split(' ').nth(1).unwrap_or_default().to_string();
    paths.lock().unwrap().push(path.clone());
    match h(&path) {
        Respond::Status(delay, code, body) => {
            let until = Instant::now() + delay;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(10));
            }
            let head = format!(
                "HTTP/1.1 {code} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
        }
        Respond::Raw(bytes) => {
            let _ = stream.write_all(bytes);
        }
        Respond::Never => {
            let until = Instant::now() + HOLD_MAX;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The example's binary, built once per test process.
fn example() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "names-shell", "--example", "registry"])
                .current_dir(workspace_root())
                .stdin(Stdio::null())
                .status()
                .expect("cannot run cargo build");
            assert!(status.success(), "cargo build --example registry failed");
            let target = match std::env::var_os("CARGO_TARGET_DIR") {
                Some(d) if !d.is_empty() => workspace_root().join(d),
                _ => workspace_root().join("target"),
            };
            target.join("debug").join("examples").join("registry")
        })
        .clone()
}

/// The example serving on a free port, asking `registry`, forwarding to `upstream`.
fn start(registry: &str, upstream: &FakeUpstream, extra: &[&str]) -> Server {
    let mut cmd = Command::new(example());
    cmd.args(["--listen", "127.0.0.1:0", "--registry", registry])
        .args(["--upstream", &upstream.arg()])
        .args(extra);
    Server::try_start_command(cmd).unwrap_or_else(|e| panic!("registry example: {e}"))
}

fn ask(server: &Server, name: &str) -> names_tests::Parsed {
    let c = UdpClient::new(server.udp_addr());
    c.send(&query(name, Rtype::A, 7, true, None));
    parse(&c.recv(Duration::from_secs(8)).expect("a reply"))
}

const SERVFAIL: u16 = Rcode::SERVFAIL.to_int() as u16;

fn by_name(path: &str) -> Respond {
    match path {
        "/v1/web" => Respond::Status(Duration::ZERO, 200, "10.1.2.3\n"),
        "/v1/api" => Respond::Status(Duration::ZERO, 200, "10.1.2.4"),
        "/v1/gone" => Respond::Status(Duration::ZERO, 404, "not found"),
        "/v1/broken" => Respond::Status(Duration::ZERO, 500, "oops"),
        "/v1/garbage" => Respond::Status(Duration::ZERO, 200, "not an address"),
        "/v1/six" => Respond::Status(Duration::ZERO, 200, "2001:db8::1"),
        "/v1/nohttp" => Respond::Raw(b"SSH-2.0-OpenSSH\r\n\r\n"),
        "/v1/huge" => Respond::Raw(HUGE.get_or_init(huge)),
        "/v1/slow" => Respond::Status(Duration::from_secs(3), 200, "10.9.9.9"),
        "/v1/never" => Respond::Never,
        p if p.starts_with("/v1/fast") => Respond::Status(Duration::ZERO, 200, "10.5.5.5"),
        _ => Respond::Status(Duration::ZERO, 404, ""),
    }
}

static HUGE: OnceLock<&'static [u8]> = OnceLock::new();

/// A response far over the example's 16 KiB bound.
fn huge() -> &'static [u8] {
    let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
    r.extend(std::iter::repeat_n(b'1', 1_000_000));
    Vec::leak(r)
}

#[test]
fn answers_from_the_registry_with_dig() {
    let registry = Registry::start(by_name);
    let upstream = FakeUpstream::answering(&[FORWARDED]);
    let server = start(&registry.url(), &upstream, &[]);
    let out = dig_at(server.udp_addr(), &["web.svc.test", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains(" aa"), "authoritative: {out}");
    let answer = out
        .lines()
        .find(|l| l.starts_with("web.svc.test."))
        .expect(&out);
    let fields: Vec<&str> = answer.split_whitespace().collect();
    assert_eq!(
        fields,
        ["web.svc.test.", "30", "IN", "A", "10.1.2.3"],
        "{out}"
    );
    assert_eq!(registry.paths(), ["/v1/web"]);
    assert_eq!(upstream.count(), 0, "not forwarded");

    // Any case: the registry is asked in lower case, the answer keeps the case asked.
    let out = dig_at(server.udp_addr(), &["ApI.SvC.TeSt.", "A", "+short"]);
    assert_eq!(out.trim(), "10.1.2.4");
    let reply = ask(&server, "ApI.SvC.TeSt");
    assert_eq!(reply.answers[0].owner, "ApI.SvC.TeSt");
    assert_eq!(registry.paths()[1..], ["/v1/api", "/v1/api"]);

    // Over TCP too.
    let out = dig_at(server.tcp_addr(), &["+tcp", "web.svc.test", "A", "+short"]);
    assert_eq!(out.trim(), "10.1.2.3");
}

#[test]
fn a_404_is_forwarded_and_other_names_pass_at_once() {
    let registry = Registry::start(by_name);
    let upstream = FakeUpstream::answering(&[FORWARDED]);
    let server = start(&registry.url(), &upstream, &[]);
    let out = dig_at(server.udp_addr(), &["gone.svc.test", "A", "+short"]);
    assert_eq!(out.trim(), FORWARDED.to_string());
    assert_eq!(registry.paths(), ["/v1/gone"]);
    let asked = upstream.received();
    assert_eq!(asked.len(), 1);
    let question = asked[0].parsed().question.expect("a question");
    assert_eq!(question.0.to_ascii_lowercase(), "gone.svc.test");

    // Not NAME.svc.test. A: the registry is not asked.
    for (name, qtype) in [
        ("www.example.com", "A"),
        ("web.svc.test", "AAAA"),
        ("a.b.svc.test", "A"),
        ("svc.test", "A"),
        ("web.svc.test.example", "A"),
    ] {
        let out = dig_at(server.udp_addr(), &[name, qtype]);
        assert!(out.contains("status: NOERROR"), "{name} {qtype}: {out}");
    }
    assert_eq!(registry.paths(), ["/v1/gone"], "only the registry's names");
    assert_eq!(upstream.count(), 6);
}

#[test]
fn registry_failures_are_servfail() {
    let registry = Registry::start(by_name);
    let upstream = FakeUpstream::answering(&[FORWARDED]);
    let server = start(&registry.url(), &upstream, &[]);
    for name in ["broken", "garbage", "six", "nohttp", "huge"] {
        let reply = ask(&server, &format!("{name}.svc.test"));
        assert_eq!(reply.rcode, SERVFAIL, "{name}");
    }
    assert_eq!(upstream.count(), 0, "failures are not forwarded");
    // A label that would leave the path is one percent-encoded segment.
    let reply = ask(&server, "a/b\\.c.svc.test");
    assert_eq!(reply.rcode, 0, "404 for an unknown name: forwarded");
    assert_eq!(registry.paths().last().unwrap(), "/v1/a%2Fb%2Ec");

    // A registry that refuses connections.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let server = start(&url, &upstream, &[]);
    let started = Instant::now();
    assert_eq!(ask(&server, "web.svc.test").rcode, SERVFAIL);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "at once, not at the budget"
    );
}

#[test]
fn a_slow_registry_delays_no_other_query() {
    let registry = Registry::start(by_name);
    let upstream = FakeUpstream::answering(&[FORWARDED]);
    let server = start(&registry.url(), &upstream, &[]);
    let started = Instant::now();
    let slow = UdpClient::new(server.udp_addr());
    slow.send(&query("slow.svc.test", Rtype::A, 1, true, None));
    // Make sure the slow lookup is in flight first.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !registry.paths().contains(&"/v1/slow".to_string()) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let clients: Vec<(UdpClient, bool)> = (0..100)
        .map(|i| {
            let c = UdpClient::new(server.udp_addr());
            let registered = i % 2 == 0;
            let name = if registered {
                format!("fast{i}.svc.test")
            } else {
                format!("host{i}.example.com")
            };
            c.send(&query(&name, Rtype::A, i, true, None));
            (c, registered)
        })
        .collect();
    for (c, registered) in &clients {
        let reply = parse(&c.recv(Duration::from_secs(2)).expect("a reply"));
        let want = if *registered {
            Ipv4Addr::new(10, 5, 5, 5)
        } else {
            FORWARDED
        };
        assert_eq!(reply.a_addrs(), [want]);
    }
    let others = started.elapsed();
    assert!(
        others < Duration::from_millis(1500),
        "100 queries answered in {others:?}, behind the 3 s registry"
    );
    let reply = parse(&slow.recv(Duration::from_secs(5)).expect("the slow reply"));
    assert_eq!(reply.a_addrs(), [Ipv4Addr::new(10, 9, 9, 9)]);
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[test]
fn a_registry_that_never_answers_is_servfail_at_the_budget() {
    let registry = Registry::start(by_name);
    let upstream = FakeUpstream::answering(&[FORWARDED]);
    let server = start(&registry.url(), &upstream, &["--timeout", "800"]);
    let started = Instant::now();
    let clients: Vec<UdpClient> = (0..20)
        .map(|i| {
            let c = UdpClient::new(server.udp_addr());
            c.send(&query("never.svc.test", Rtype::A, i, true, None));
            c
        })
        .collect();
    for c in &clients {
        let reply = parse(&c.recv(Duration::from_secs(5)).expect("a reply"));
        assert_eq!(reply.rcode, SERVFAIL);
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_millis(2500),
        "SERVFAIL at the 800 ms budget, not after {took:?}"
    );
    assert_eq!(upstream.count(), 0);
    // The server goes on answering.
    assert_eq!(
        ask(&server, "web.svc.test").a_addrs(),
        [Ipv4Addr::new(10, 1, 2, 3)]
    );
}

#[test]
fn bad_flags_are_one_line_and_exit_2() {
    let upstream = "127.0.0.1:53";
    for (args, says) in [
        (vec!["--upstream", upstream], "--registry"),
        (
            vec![
                "--registry",
                "https://registry.example",
                "--upstream",
                upstream,
            ],
            "https",
        ),
        (
            vec!["--registry", "ftp://x", "--upstream", upstream],
            "http://",
        ),
        (
            vec![
                "--registry",
                "http://127.0.0.1:1",
                "--timeout",
                "0",
                "--upstream",
                upstream,
            ],
            "--timeout",
        ),
        (
            vec!["--registry", "http://127.0.0.1:1", "--upstream", "nonsense"],
            "nonsense",
        ),
        (
            vec![
                "--registry",
                "http://127.0.0.1:1",
                "--listen",
                "x",
                "--upstream",
                upstream,
            ],
            "--listen",
        ),
    ] {
        let mut cmd = Command::new(example());
        cmd.args(&args);
        let out = run_with_deadline(cmd, "registry example");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.trim().lines().count() <= 2, "{args:?}: {err}");
    }
}

#[test]
fn a_shutdown_answers_the_lookups_in_flight_then_exits() {
    let registry = Registry::start(by_name);
    let upstream = FakeUpstream::answering(&[FORWARDED]);
    let mut server = start(&registry.url(), &upstream, &[]);
    let slow = UdpClient::new(server.udp_addr());
    slow.send(&query("slow.svc.test", Rtype::A, 1, true, None));
    let deadline = Instant::now() + Duration::from_secs(2);
    while !registry.paths().contains(&"/v1/slow".to_string()) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    server.signal("TERM");
    let reply = parse(
        &slow
            .recv(Duration::from_secs(5))
            .expect("answered while draining"),
    );
    assert_eq!(reply.a_addrs(), [Ipv4Addr::new(10, 9, 9, 9)]);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("exits once drained");
    assert!(status.success(), "{status:?}: {}", server.logs());
}
