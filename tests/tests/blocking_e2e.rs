//! `core/examples/blocking.rs` (the core on std sockets and threads, no async runtime)
//! end to end: real `dig` over UDP and TCP, pipelined queries on one connection, reading
//! paused and resumed under the pipelining limit, clients that send half a frame, flood
//! the connection cap or never read; its resolver's lookups (on threads) over UDP and TCP,
//! in parallel, past the budget (cancelled) and over the limit. The example is built with cargo once per test
//! process, started on 127.0.0.1:0, found through its ready line, and killed by PID.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use names_tests::{
    answer_a, dig_at, frame, parse, query, run_with_deadline, tcp_ask, tcp_connect, tcp_read_frame,
    udp_ask, workspace_root, FakeUpstream, Rcode, Reply, Rtype, Server,
};

const UP_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Main thread, UDP listener and TCP acceptor: the example's threads with no client.
const IDLE_THREADS: usize = 3;
/// Deadline for the example's threads to end after their connections closed.
const SETTLE: Duration = Duration::from_secs(10);

/// The example's binary, built once per test process.
fn blocking_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "names-core", "--example", "blocking"])
                .current_dir(workspace_root())
                .stdin(Stdio::null())
                .status()
                .expect("cannot run cargo build");
            assert!(status.success(), "cargo build --example blocking failed");
            let target = match std::env::var_os("CARGO_TARGET_DIR") {
                Some(d) if !d.is_empty() => workspace_root().join(d),
                _ => workspace_root().join("target"),
            };
            target.join("debug").join("examples").join("blocking")
        })
        .clone()
}

/// Starts the example on 127.0.0.1:0 with `args`; killed by PID when dropped.
fn start(args: &[&str]) -> Server {
    let mut cmd = Command::new(blocking_bin());
    cmd.arg("127.0.0.1:0").args(args);
    let server = Server::try_start_command(cmd).unwrap_or_else(|e| panic!("blocking: {e}"));
    assert_eq!(
        server.udp_addr(),
        server.tcp_addr(),
        "UDP and TCP on one port: {}",
        server.ready_line()
    );
    server
}

/// The example's threads now (from /proc).
fn threads(server: &Server) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .expect("the example's /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Threads: line")
}

/// The names of the example's threads (its connections' and lookups' threads are named).
fn thread_names(server: &Server) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).expect("/proc tasks");
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

/// Waits (bounded) until the example is back to its threads without clients.
fn assert_settles(server: &Server) {
    let deadline = Instant::now() + SETTLE;
    while threads(server) > IDLE_THREADS && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        threads(server),
        IDLE_THREADS,
        "every connection's threads ended within {SETTLE:?}; left: {:?}",
        thread_names(server)
    );
}

/// Whether the server closed `s` (end of stream or reset) before `deadline`, reading
/// and dropping whatever it sends first.
fn closed_by(s: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// `dig +short` output as addresses.
fn short(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn dig_over_udp_and_tcp() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let server = start(&["--synth", "workstation=172.0.2", "--upstream", &up.arg()]);
    let at = server.udp_addr();
    assert_eq!(
        short(&dig_at(at, &["workstation7.example.com", "A", "+short"])),
        ["172.0.2.7"]
    );
    assert_eq!(
        short(&dig_at(
            at,
            &["+tcp", "Workstation8.example.com", "A", "+short"]
        )),
        ["172.0.2.8"]
    );
    assert_eq!(up.count(), 0, "synth answers locally");
    // Forwarded, from a client over TCP.
    let out = dig_at(at, &["+tcp", "www.example.com", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains(&UP_IP.to_string()), "{out}");
    assert!(out.contains("(TCP)"), "dig asked over TCP: {out}");
    assert!(up.wait_for(1, Duration::from_secs(5)));
    // Several queries on one connection, as dig sends them with +keepopen.
    let out = dig_at(
        at,
        &[
            "+tcp",
            "+keepopen",
            "+short",
            "workstation1.x",
            "A",
            "workstation2.x",
            "A",
            "workstation3.x",
            "A",
        ],
    );
    assert_eq!(short(&out), ["172.0.2.1", "172.0.2.2", "172.0.2.3"]);
    assert_settles(&server);
}

#[test]
fn pipelined_queries_on_one_connection_are_all_answered() {
    let server = start(&["--synth", "host=10.0.0"]);
    let msgs: Vec<Vec<u8>> = (0..200u16)
        .map(|i| {
            query(
                &format!("host{}.example", i % 256),
                Rtype::A,
                1000 + i,
                true,
                None,
            )
        })
        .collect();
    let mut wire = Vec::new();
    for m in &msgs {
        wire.extend_from_slice(&frame(m));
    }
    let mut s = tcp_connect(server.tcp_addr());
    s.write_all(&wire).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ids = Vec::new();
    for _ in 0..msgs.len() {
        let reply = tcp_read_frame(&mut s, deadline).expect("every pipelined query answered");
        let p = parse(&reply);
        let i = p.id - 1000;
        assert_eq!(p.a_addrs(), vec![Ipv4Addr::new(10, 0, 0, (i % 256) as u8)]);
        ids.push(p.id);
    }
    ids.sort_unstable();
    assert_eq!(
        ids,
        (1000..1200).collect::<Vec<u16>>(),
        "one reply per query"
    );
    drop(s);
    assert_settles(&server);
}

#[test]
fn reading_pauses_at_the_pipelining_limit_and_resumes() {
    // A slow upstream: the connection reaches 64 queries in flight, is paused, and is read
    // again as answers come back.
    let up = FakeUpstream::start(|r| {
        vec![Reply::Delay(
            Duration::from_millis(300),
            answer_a(&r.bytes, &[UP_IP], 60),
        )]
    });
    let server = start(&["--upstream", &up.arg()]);
    let n = 150u16;
    let mut wire = Vec::new();
    for i in 0..n {
        wire.extend_from_slice(&frame(&query(
            &format!("n{i}.example.com"),
            Rtype::A,
            i,
            true,
            None,
        )));
    }
    let mut s = tcp_connect(server.tcp_addr());
    s.write_all(&wire).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut answered = 0;
    for _ in 0..n {
        let reply = tcp_read_frame(&mut s, deadline).expect("every query answered");
        let p = parse(&reply);
        assert_eq!(
            p.rcode,
            u16::from(Rcode::NOERROR.to_int()),
            "query {}",
            p.id
        );
        assert_eq!(p.a_addrs(), vec![UP_IP]);
        answered += 1;
    }
    assert_eq!(answered, n);
    assert_eq!(up.count(), usize::from(n));
    drop(s);
    assert_settles(&server);
}

#[test]
fn half_a_frame_then_close() {
    let server = start(&["--synth", "workstation=172.0.2"]);
    let q = frame(&query("workstation5.example.com", Rtype::A, 5, true, None));
    // Half a frame, then the client's sending side shut: nothing to answer, closed at once
    // (not after the idle timeout).
    let mut s = tcp_connect(server.tcp_addr());
    s.write_all(&q[..q.len() / 2]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert!(
        closed_by(&mut s, Instant::now() + Duration::from_secs(3)),
        "closed after a half-close"
    );
    // Only the first byte of the length, then gone altogether.
    let mut s = tcp_connect(server.tcp_addr());
    s.write_all(&q[..1]).unwrap();
    drop(s);
    // A whole query then a half-close: answered, then closed.
    let mut s = tcp_connect(server.tcp_addr());
    s.write_all(&q).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let reply = tcp_read_frame(&mut s, Instant::now() + Duration::from_secs(5)).expect("answered");
    assert_eq!(parse(&reply).a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 5)]);
    assert!(closed_by(&mut s, Instant::now() + Duration::from_secs(3)));
    // Still serving, on both transports.
    let fresh = query("workstation6.example.com", Rtype::A, 6, true, None);
    assert_eq!(
        tcp_ask(server.tcp_addr(), &fresh).a_addrs(),
        vec![Ipv4Addr::new(172, 0, 2, 6)]
    );
    assert_eq!(
        udp_ask(server.udp_addr(), &fresh).a_addrs(),
        vec![Ipv4Addr::new(172, 0, 2, 6)]
    );
    assert_settles(&server);
}

#[test]
fn connections_over_the_per_client_cap_are_closed_without_threads() {
    let server = start(&["--synth", "workstation=172.0.2"]);
    // 32 connections from one address are allowed (the core's default); the rest are
    // closed at once.
    let mut open: Vec<TcpStream> = (0..40).map(|_| tcp_connect(server.tcp_addr())).collect();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut refused = 0;
    for s in open.iter_mut().skip(32) {
        if closed_by(s, deadline) {
            refused += 1;
        }
    }
    assert_eq!(refused, 8, "the 8 over the cap closed");
    assert!(
        threads(&server) <= IDLE_THREADS + 2 * 32,
        "two threads per admitted connection at most: {}",
        threads(&server)
    );
    // The admitted ones serve.
    let q = query("workstation9.example.com", Rtype::A, 9, true, None);
    open[0].write_all(&frame(&q)).unwrap();
    let reply =
        tcp_read_frame(&mut open[0], Instant::now() + Duration::from_secs(5)).expect("answered");
    assert_eq!(parse(&reply).a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 9)]);
    drop(open);
    assert_settles(&server);
    assert_eq!(
        udp_ask(server.udp_addr(), &q).a_addrs(),
        vec![Ipv4Addr::new(172, 0, 2, 9)]
    );
}

#[test]
fn a_client_that_never_reads_does_not_stall_others() {
    let server = start(&["--synth", "workstation=172.0.2"]);
    let addr = server.tcp_addr();
    // Floods queries and never reads a reply: the replies pile up, the core pauses the
    // connection, and the flood stalls (its write times out) well before LIMIT bytes.
    const LIMIT: usize = 50_000_000;
    let hog = thread::spawn(move || {
        let mut s = tcp_connect(addr);
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let q = frame(&query("workstation1.example.com", Rtype::A, 1, true, None));
        let chunk: Vec<u8> = q.iter().copied().cycle().take(q.len() * 1000).collect();
        let mut sent = 0;
        while sent < LIMIT {
            match s.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        (s, sent)
    });
    // Meanwhile everyone else is answered.
    for i in 0..20u16 {
        let q = query(
            &format!("workstation{i}.example.com"),
            Rtype::A,
            i,
            true,
            None,
        );
        let ip = Ipv4Addr::new(172, 0, 2, i as u8);
        assert_eq!(tcp_ask(addr, &q).a_addrs(), vec![ip]);
        assert_eq!(udp_ask(server.udp_addr(), &q).a_addrs(), vec![ip]);
    }
    let (s, sent) = hog.join().expect("the flooding client");
    assert!(
        sent < LIMIT,
        "the server stopped reading a client that does not read"
    );
    drop(s);
    assert_settles(&server);
}

#[test]
fn example_without_sources_refuses_over_tcp_too() {
    let server = start(&[]);
    let q = query("www.example.com", Rtype::A, 3, true, None);
    assert_eq!(
        tcp_ask(server.tcp_addr(), &q).rcode,
        u16::from(Rcode::REFUSED.to_int())
    );
}

#[test]
fn garbage_over_tcp_closes_or_is_refused_and_others_are_served() {
    let server = start(&["--synth", "workstation=172.0.2"]);
    let deadline = || Instant::now() + Duration::from_secs(3);
    // A zero-length frame: the connection is closed.
    let mut s = tcp_connect(server.tcp_addr());
    s.write_all(&[0, 0]).unwrap();
    assert!(closed_by(&mut s, deadline()), "closed after an empty frame");
    // A frame of junk, then a good query on the same connection: the good one is answered
    // (the junk draws at most a FORMERR, never a hang).
    let mut s = tcp_connect(server.tcp_addr());
    let good = query("workstation4.example.com", Rtype::A, 4, true, None);
    let mut wire = frame(&[0xff; 20]);
    wire.extend_from_slice(&frame(&good));
    s.write_all(&wire).unwrap();
    let mut answered = false;
    for _ in 0..2 {
        let Some(reply) = tcp_read_frame(&mut s, deadline()) else {
            break;
        };
        let p = parse(&reply);
        if p.id == 4 {
            assert_eq!(p.a_addrs(), vec![Ipv4Addr::new(172, 0, 2, 4)]);
            answered = true;
            break;
        }
        assert_eq!(p.rcode, u16::from(Rcode::FORMERR.to_int()), "junk: {p:?}");
    }
    assert!(answered, "the query after the junk answered");
    drop(s);
    assert_eq!(
        tcp_ask(server.tcp_addr(), &good).a_addrs(),
        vec![Ipv4Addr::new(172, 0, 2, 4)]
    );
    assert_settles(&server);
}

#[test]
fn bad_arguments_get_one_line_and_exit_code_2() {
    for args in [
        &["not-an-address"][..],
        &["--timeout", "0"],
        &["--timeout", "soon"],
        &["--timeout"],
        &["--upstream", "nowhere"],
        &["--synth", "x"],
        &["--no-such-flag"],
    ] {
        let mut cmd = Command::new(blocking_bin());
        cmd.args(args);
        let out = run_with_deadline(cmd, "blocking");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("blocking: "), "{args:?}: {err}");
    }
}

#[test]
fn a_silent_upstream_gets_servfail_at_the_budget_over_tcp() {
    let up = FakeUpstream::silent();
    let server = start(&["--upstream", &up.arg(), "--timeout", "300"]);
    let began = Instant::now();
    let q = query("www.example.com", Rtype::A, 11, true, None);
    let p = tcp_ask(server.tcp_addr(), &q);
    assert_eq!(p.rcode, u16::from(Rcode::SERVFAIL.to_int()));
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "{:?}",
        began.elapsed()
    );
    assert_settles(&server);
}

/// The address the example's lookup job makes for `label` (FNV-1a, as in the example).
fn computed(label: &str) -> Ipv4Addr {
    let hash = label.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let [_, b, c, d] = hash.to_be_bytes();
    Ipv4Addr::new(10, b, c, d)
}

#[test]
fn lookups_answer_over_udp_and_tcp() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let server = start(&["--upstream", &up.arg(), "--lookup-delay", "50"]);
    let at = server.udp_addr();
    let web = computed("web").to_string();
    assert_eq!(
        short(&dig_at(at, &["web.lookup.test", "A", "+short"])),
        [web.as_str()]
    );
    assert_eq!(
        short(&dig_at(at, &["+tcp", "WEB.Lookup.TEST", "A", "+short"])),
        [web.as_str()]
    );
    let out = dig_at(at, &["+tcp", "db.lookup.test", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains(" aa"), "authoritative: {out}");
    assert!(out.contains(&computed("db").to_string()), "{out}");
    assert_eq!(up.count(), 0, "lookups answer locally");
    // Not found by the job: passed on to the forwarder.
    let p = udp_ask(at, &query("unknown.lookup.test", Rtype::A, 2, true, None));
    assert_eq!(p.a_addrs(), vec![UP_IP]);
    let p = tcp_ask(at, &query("unknown.lookup.test", Rtype::A, 3, true, None));
    assert_eq!(p.a_addrs(), vec![UP_IP]);
    // Other names and types pass at once.
    let p = udp_ask(at, &query("a.b.lookup.test", Rtype::A, 4, true, None));
    assert_eq!(p.a_addrs(), vec![UP_IP]);
    let p = udp_ask(at, &query("web.lookup.test", Rtype::AAAA, 5, true, None));
    assert_eq!(p.rcode, u16::from(Rcode::NOERROR.to_int()));
    assert!(p.ra && !p.aa, "forwarded: {p:?}");
    assert_eq!(up.count(), 4);
    assert_settles(&server);
}

#[test]
fn lookups_run_at_the_same_time_without_delaying_other_queries() {
    let server = start(&["--synth", "workstation=172.0.2", "--lookup-delay", "2000"]);
    let began = Instant::now();
    // 50 lookups pipelined on one connection, and 50 over UDP.
    let mut wire = Vec::new();
    for i in 0..50u16 {
        wire.extend_from_slice(&frame(&query(
            &format!("t{i}.lookup.test"),
            Rtype::A,
            i,
            true,
            None,
        )));
    }
    let mut s = tcp_connect(server.tcp_addr());
    s.write_all(&wire).unwrap();
    let udp = names_tests::UdpClient::new(server.udp_addr());
    for i in 0..50u16 {
        udp.send(&query(
            &format!("u{i}.lookup.test"),
            Rtype::A,
            100 + i,
            true,
            None,
        ));
    }
    // Meanwhile other queries are answered at once.
    let q = query("workstation3.example.com", Rtype::A, 999, true, None);
    assert_eq!(
        tcp_ask(server.tcp_addr(), &q).a_addrs(),
        vec![Ipv4Addr::new(172, 0, 2, 3)]
    );
    assert!(
        began.elapsed() < Duration::from_millis(1500),
        "{:?}",
        began.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(8);
    for _ in 0..50 {
        let p = parse(&tcp_read_frame(&mut s, deadline).expect("every lookup answered"));
        assert_eq!(p.a_addrs(), vec![computed(&format!("t{}", p.id))]);
    }
    for _ in 0..50 {
        let p = parse(
            &udp.recv(Duration::from_secs(8))
                .expect("every lookup answered"),
        );
        assert_eq!(p.a_addrs(), vec![computed(&format!("u{}", p.id - 100))]);
    }
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "in parallel: {:?}",
        began.elapsed()
    );
    drop(s);
    assert_settles(&server);
}

#[test]
fn a_lookup_past_the_budget_gets_servfail_and_its_thread_is_cancelled() {
    let server = start(&["--timeout", "300", "--lookup-delay", "60000"]);
    let began = Instant::now();
    let out = dig_at(server.udp_addr(), &["slow.lookup.test", "A"]);
    assert!(out.contains("status: SERVFAIL"), "{out}");
    let p = tcp_ask(
        server.tcp_addr(),
        &query("slow.lookup.test", Rtype::A, 7, true, None),
    );
    assert_eq!(p.rcode, u16::from(Rcode::SERVFAIL.to_int()));
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    // The jobs (a minute each) were cancelled: their threads are gone.
    assert_settles(&server);
}

#[test]
fn lookups_over_the_limit_get_servfail_at_once() {
    let server = start(&["--max-lookups", "2", "--lookup-delay", "3000"]);
    let udp = names_tests::UdpClient::new(server.udp_addr());
    for i in 0..4u16 {
        udp.send(&query(
            &format!("n{i}.lookup.test"),
            Rtype::A,
            i,
            true,
            None,
        ));
    }
    let began = Instant::now();
    let mut servfail_at_once = 0;
    let mut answered = 0;
    for _ in 0..4 {
        let p = parse(&udp.recv(Duration::from_secs(5)).expect("a reply to each"));
        if p.rcode == u16::from(Rcode::SERVFAIL.to_int()) {
            assert!(
                began.elapsed() < Duration::from_millis(2000),
                "{:?}",
                began.elapsed()
            );
            servfail_at_once += 1;
        } else {
            assert_eq!(p.a_addrs(), vec![computed(&format!("n{}", p.id))]);
            answered += 1;
        }
    }
    assert_eq!((answered, servfail_at_once), (2, 2));
    assert_settles(&server);
}

#[test]
fn lookups_outlive_their_clients_without_harm() {
    let server = start(&["--lookup-delay", "300"]);
    // Half-closed while its lookup runs: still answered, then closed.
    let mut s = tcp_connect(server.tcp_addr());
    s.write_all(&frame(&query("half.lookup.test", Rtype::A, 1, true, None)))
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let reply = tcp_read_frame(&mut s, Instant::now() + Duration::from_secs(5)).expect("answered");
    assert_eq!(parse(&reply).a_addrs(), vec![computed("half")]);
    assert!(closed_by(&mut s, Instant::now() + Duration::from_secs(3)));
    // Gone altogether while ten lookups run: their results find no connection.
    let mut s = tcp_connect(server.tcp_addr());
    let mut wire = Vec::new();
    for i in 0..10u16 {
        wire.extend_from_slice(&frame(&query(
            &format!("gone{i}.lookup.test"),
            Rtype::A,
            i,
            true,
            None,
        )));
    }
    s.write_all(&wire).unwrap();
    drop(s);
    assert_settles(&server);
    let p = udp_ask(
        server.udp_addr(),
        &query("after.lookup.test", Rtype::A, 2, true, None),
    );
    assert_eq!(p.a_addrs(), vec![computed("after")]);
}
