//! Hostile clients and upstreams against the real `names` binary, on loopback only.
//!
//! Every test is bounded in count and time (each well under 20 s) and watches the
//! server's resident memory (VmRSS from /proc/PID/status): it must stay under
//! [`RSS_GROWTH_BOUND_KB`] above its base throughout, and come back within
//! [`RSS_AFTER_BOUND_KB`] of the base once the attack stops.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use names_tests::{
    answer_a, closed_within, frame, parse, query, rss_kb, tcp_ask, tcp_connect,
    tcp_exchange_timeout, tcp_read_frame, try_parse, with_id, FakeUpstream, Reply, Server,
    UdpClient,
};

/// Most the server's RSS may grow above its base during an attack.
const RSS_GROWTH_BOUND_KB: u64 = 64 * 1024;
/// Most the server's RSS may stay above its base once the attack is over.
const RSS_AFTER_BOUND_KB: u64 = 16 * 1024;

/// Samples a process's RSS every 20 ms on a thread until dropped; keeps the peak.
struct RssWatch {
    base: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    pid: u32,
}

impl RssWatch {
    fn start(server: &Server) -> RssWatch {
        let pid = server.pid();
        let base = rss_kb(pid);
        let peak = Arc::new(AtomicU64::new(base));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            // Bounded: at most 60 s of samples even if never stopped.
            thread::spawn(move || {
                for _ in 0..3000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                        if let Some(kb) = s
                            .lines()
                            .find_map(|l| l.strip_prefix("VmRSS:"))
                            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                        {
                            peak.fetch_max(kb, Ordering::Relaxed);
                        }
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            })
        };
        RssWatch {
            base,
            peak,
            stop,
            thread: Some(thread),
            pid,
        }
    }

    /// Stops sampling and checks the peak and the settled value against the bounds.
    fn check(mut self, what: &str) -> (u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let peak = self.peak.load(Ordering::Relaxed);
        assert!(
            peak <= self.base + RSS_GROWTH_BOUND_KB,
            "{what}: RSS peaked at {peak} kB from a base of {} kB",
            self.base
        );
        // Freed memory may take a moment to be handed back.
        let mut after = rss_kb(self.pid);
        for _ in 0..20 {
            if after <= self.base + RSS_AFTER_BOUND_KB {
                break;
            }
            thread::sleep(Duration::from_millis(100));
            after = rss_kb(self.pid);
        }
        assert!(
            after <= self.base + RSS_AFTER_BOUND_KB,
            "{what}: RSS {after} kB after the attack, base {} kB",
            self.base
        );
        eprintln!(
            "{what}: RSS base {} kB, peak {peak} kB, after {after} kB",
            self.base
        );
        (self.base, peak, after)
    }
}

/// A deterministic generator for the flood's bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Asks `host<n>.example A` over UDP (up to 3 tries of 1 s) and checks the synthesised answer.
fn synth_answered(server: SocketAddr, n: u8, id: u16) -> bool {
    let q = query(&format!("host{n}.example"), Rtype::A, id, true, None);
    let client = UdpClient::new(server);
    for _ in 0..3 {
        client.send(&q);
        if let Some(r) = client.recv(Duration::from_secs(1)) {
            let p = parse(&r);
            assert_eq!(p.id, id);
            assert_eq!(p.a_addrs(), vec![std::net::Ipv4Addr::new(10, 9, 8, n)]);
            return true;
        }
    }
    false
}

/// 30 000 datagrams of random or mangled bytes from 4 threads (at most 6 s), while 40
/// well-formed queries sent during the flood are all answered.
#[test]
fn udp_flood_of_random_bytes_while_queries_are_answered() {
    let mut server = Server::start(&["--no-forward", "--synth", "host=10.9.8"]);
    let addr = server.udp_addr();
    let watch = RssWatch::start(&server);
    let sent = Arc::new(AtomicU64::new(0));
    let floods: Vec<_> = (0..4u64)
        .map(|k| {
            let sent = sent.clone();
            thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                let mut rng = Rng(0x9e37_79b9 + k);
                let valid = query("host1.example", Rtype::A, 1, true, Some(1232));
                let deadline = Instant::now() + Duration::from_secs(6);
                for i in 0..7500u32 {
                    if Instant::now() > deadline {
                        break;
                    }
                    let bytes = if i % 3 == 0 {
                        // A valid query with a few bytes overwritten: parses deeper.
                        let mut m = valid.clone();
                        for _ in 0..3 {
                            let at = (rng.next() as usize) % m.len();
                            m[at] = rng.next() as u8;
                        }
                        m
                    } else {
                        let n = 1 + (rng.next() as usize) % 600;
                        rng.bytes(n)
                    };
                    let _ = sock.send_to(&bytes, addr);
                    sent.fetch_add(1, Ordering::Relaxed);
                    if i % 64 == 0 {
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(100)); // the flood is under way
    let mut answered = 0;
    for i in 0..40u16 {
        if synth_answered(addr, (i % 200) as u8, 1000 + i) {
            answered += 1;
        }
    }
    for f in floods {
        f.join().unwrap();
    }
    assert_eq!(
        answered, 40,
        "well-formed queries answered during the flood"
    );
    assert!(
        sent.load(Ordering::Relaxed) >= 5000,
        "the flood sent too little"
    );
    assert!(server.is_running(), "the server survived the flood");
    assert!(synth_answered(addr, 42, 7), "answered after the flood");
    watch.check("udp flood");
}

/// 200 connections each send one byte and stall; UDP and fresh TCP clients are served
/// meanwhile, and the idle timeout (500 ms) closes every stalled connection.
#[test]
fn tcp_slowloris_is_closed_by_the_idle_timeout() {
    let mut server = Server::start(&[
        "--no-forward",
        "--synth",
        "host=10.9.8",
        "--tcp-idle-ms",
        "500",
        "--max-tcp",
        "256",
        // Every test client is 127.0.0.1: lift the per-address cap (tested in hostile_client.rs).
        "--max-tcp-per-client",
        "256",
    ]);
    let watch = RssWatch::start(&server);
    let opened = Instant::now();
    let mut stalled: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = tcp_connect(server.tcp_addr());
            s.write_all(&[0]).unwrap();
            s
        })
        .collect();
    // Served meanwhile: UDP, and a fresh TCP client.
    assert!(synth_answered(server.udp_addr(), 5, 55));
    let q = query("host6.example", Rtype::A, 66, true, None);
    let p = tcp_ask(server.tcp_addr(), &q);
    assert_eq!(p.a_addrs(), vec![std::net::Ipv4Addr::new(10, 9, 8, 6)]);
    // All stalled connections closed by the server, none long after the idle timeout.
    for (i, s) in stalled.iter_mut().enumerate() {
        let left = (opened + Duration::from_secs(4)).saturating_duration_since(Instant::now());
        assert!(
            closed_within(s, left),
            "stalled connection {i} still open {:?} after it stalled",
            opened.elapsed()
        );
    }
    assert!(
        opened.elapsed() >= Duration::from_millis(450),
        "closed before the idle timeout"
    );
    assert!(server.is_running());
    assert!(synth_answered(server.udp_addr(), 7, 77));
    watch.check("slowloris");
}

/// A length prefix of 4096 followed by only 30 bytes: no reply, the connection is closed
/// by the idle timeout, and a peer that half-closes mid-frame is simply dropped.
#[test]
fn tcp_length_prefix_larger_than_the_data() {
    let mut server = Server::start(&[
        "--no-forward",
        "--synth",
        "host=10.9.8",
        "--tcp-idle-ms",
        "500",
    ]);
    let q = query("host1.example", Rtype::A, 9, true, None);
    let mut wire = 4096u16.to_be_bytes().to_vec();
    wire.extend_from_slice(&q);
    let mut s = tcp_connect(server.tcp_addr());
    s.write_all(&wire).unwrap();
    let start = Instant::now();
    assert!(
        tcp_read_frame(&mut s, start + Duration::from_secs(3)).is_none(),
        "no reply to an incomplete frame"
    );
    assert!(
        start.elapsed() < Duration::from_millis(2900),
        "closed by the idle timeout, not left open"
    );
    // The same, then the client shuts its write side: the server drops the connection.
    let mut s = tcp_connect(server.tcp_addr());
    s.write_all(&wire).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(3)));
    assert!(server.is_running());
    let p = tcp_ask(server.tcp_addr(), &q);
    assert_eq!(p.id, 9);
}

/// With --max-tcp 8: 8 open connections are served, the 9th is closed at once without a
/// reply while UDP keeps working; once they close, new connections are served again.
#[test]
fn tcp_connection_cap_reached_and_recovered() {
    let mut server = Server::start(&[
        "--no-forward",
        "--synth",
        "host=10.9.8",
        "--max-tcp",
        "8",
        // At the cap the server is under pressure and closes connections idle for a tenth
        // of this: keep that well above what a slow machine takes between two queries.
        "--tcp-idle-ms",
        "30000",
    ]);
    let addr = server.tcp_addr();
    let mut held = Vec::new();
    for i in 0..8u16 {
        let mut s = tcp_connect(addr);
        // One answered query proves the server counted the connection.
        s.write_all(&frame(&query("host1.example", Rtype::A, i, true, None)))
            .unwrap();
        let r = tcp_read_frame(&mut s, Instant::now() + Duration::from_secs(3))
            .expect("served under the cap");
        assert_eq!(parse(&r).id, i);
        held.push(s);
    }
    let mut over = tcp_connect(addr);
    let _ = over.write_all(&frame(&query("host2.example", Rtype::A, 99, true, None)));
    assert!(
        closed_within(&mut over, Duration::from_secs(3)),
        "the connection over the cap is closed"
    );
    assert!(
        synth_answered(server.udp_addr(), 3, 33),
        "UDP served at the cap"
    );
    // Held connections still work at the cap.
    held[0]
        .write_all(&frame(&query("host4.example", Rtype::A, 44, true, None)))
        .unwrap();
    let r = tcp_read_frame(&mut held[0], Instant::now() + Duration::from_secs(3)).unwrap();
    assert_eq!(parse(&r).id, 44);
    drop(held);
    // Recovered: the server notices the closes and serves new connections.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut served = false;
    while Instant::now() < deadline && !served {
        let r = tcp_exchange_timeout(
            addr,
            &[query("host5.example", Rtype::A, 55, true, None)],
            Duration::from_millis(500),
        );
        served = r.first().is_some_and(|r| parse(r).id == 55);
    }
    assert!(served, "new connections served after the others closed");
    assert!(server.is_running());
}

/// --max-pipelined 4 with a silent upstream: only 4 of 20 pipelined queries are read
/// (and forwarded) at a time; the connection is never closed for it and all 20 get
/// their SERVFAIL as the budget (400 ms) ends each batch.
#[test]
fn tcp_pipelining_limit_pauses_reading() {
    let up = FakeUpstream::silent();
    let server = Server::start(&[
        "--upstream",
        &up.arg(),
        "--max-pipelined",
        "4",
        "--timeout",
        "400",
        "--tcp-idle-ms",
        "5000",
    ]);
    let msgs: Vec<Vec<u8>> = (0..20u16)
        .map(|i| query(&format!("n{i}.example"), Rtype::A, i, true, None))
        .collect();
    let mut s = tcp_connect(server.tcp_addr());
    let wire: Vec<u8> = msgs.iter().flat_map(|m| frame(m)).collect();
    s.write_all(&wire).unwrap();
    assert!(up.wait_for(4, Duration::from_secs(2)));
    thread::sleep(Duration::from_millis(150));
    assert_eq!(up.count(), 4, "only max-pipelined queries read at once");
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut ids = Vec::new();
    while ids.len() < 20 {
        let r = tcp_read_frame(&mut s, deadline).expect("every pipelined query answered");
        let p = parse(&r);
        assert_eq!(p.rcode, 2, "SERVFAIL from the silent upstream");
        ids.push(p.id);
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..20).collect::<Vec<u16>>());
    assert_eq!(up.count(), 20);
}

/// --max-inflight 4 with a silent upstream: of 10 distinct queries, 4 go upstream and
/// the other 6 get SERVFAIL at once; the 4 get theirs when the budget (1500 ms) ends.
#[test]
fn inflight_limit_answers_servfail_beyond_it() {
    let up = FakeUpstream::silent();
    let server = Server::start(&[
        "--upstream",
        &up.arg(),
        "--max-inflight",
        "4",
        "--timeout",
        "1500",
        "--try-timeout",
        "1500",
    ]);
    let clients: Vec<UdpClient> = (0..10u16)
        .map(|i| {
            let c = UdpClient::new(server.udp_addr());
            c.send(&query(&format!("q{i}.example"), Rtype::A, i, true, None));
            c
        })
        .collect();
    let start = Instant::now();
    let mut answered = vec![None; clients.len()];
    // Rounds of short polls over every client: bounded by the 3 s deadline.
    while answered.iter().any(Option::is_none) && start.elapsed() < Duration::from_secs(3) {
        for (c, slot) in clients.iter().zip(answered.iter_mut()) {
            if slot.is_none() {
                if let Some(r) = c.recv(Duration::from_millis(5)) {
                    assert_eq!(parse(&r).rcode, 2, "SERVFAIL");
                    *slot = Some(start.elapsed());
                }
            }
        }
    }
    let fast = answered
        .iter()
        .filter(|t| t.is_some_and(|t| t < Duration::from_millis(700)))
        .count();
    let late = answered
        .iter()
        .filter(|t| t.is_some_and(|t| t >= Duration::from_millis(1300)))
        .count();
    assert_eq!(
        fast, 6,
        "queries beyond --max-inflight get SERVFAIL at once: {answered:?}"
    );
    assert_eq!(
        late, 4,
        "the forwarded ones time out into SERVFAIL: {answered:?}"
    );
    assert_eq!(
        up.count(),
        4,
        "only --max-inflight exchanges reached the upstream"
    );
}

/// The upstream answers every query with 300 replies of wrong IDs and 20 from another
/// port (all carrying 6.6.6.6), the real answer among them; and 5000 unsolicited
/// responses hit the server's own port. Every client gets the real answer; memory stays
/// bounded.
#[test]
fn upstream_flood_of_unsolicited_replies() {
    let real = std::net::Ipv4Addr::new(192, 0, 2, 7);
    let spoofed = std::net::Ipv4Addr::new(6, 6, 6, 6);
    let up = FakeUpstream::start(move |r| {
        let fake = answer_a(&r.bytes, &[spoofed], 300);
        let wrong_id = |k: u16| Reply::Send(with_id(&fake, r.id().wrapping_add(k)));
        let mut replies: Vec<Reply> = (1..=100u16).map(wrong_id).collect();
        if !r.tcp {
            replies.extend((0..20).map(|_| Reply::FromOtherPort(fake.clone())));
        }
        // The real answer in the middle of the flood; the rest hit a finished exchange.
        replies.push(Reply::Send(answer_a(&r.bytes, &[real], 300)));
        replies.extend((101..=300u16).map(wrong_id));
        replies
    });
    let mut server = Server::start(&["--upstream", &up.arg()]);
    let watch = RssWatch::start(&server);
    // Unsolicited responses (QR=1) straight at the listening port: dropped.
    let flooder = UdpSocket::bind("127.0.0.1:0").unwrap();
    let unsolicited = answer_a(
        &query("x.example", Rtype::A, 1, true, None),
        &[spoofed],
        300,
    );
    for i in 0..5000u16 {
        let _ = flooder.send_to(&with_id(&unsolicited, i), server.udp_addr());
    }
    for i in 0..20u16 {
        let client = UdpClient::new(server.udp_addr());
        let q = query(&format!("n{i}.example"), Rtype::A, 500 + i, true, None);
        // A client retries once, as dig does: on a loaded machine the kernel may drop a
        // datagram that arrives while the flood still fills the socket's buffer.
        client.send(&q);
        let r = client
            .recv(Duration::from_secs(2))
            .or_else(|| {
                client.send(&q);
                client.recv(Duration::from_secs(4))
            })
            .unwrap_or_else(|| panic!("query {i} unanswered, twice"));
        let p = try_parse(&r).expect("a well-formed reply");
        assert_eq!(p.id, 500 + i);
        assert_eq!(
            p.a_addrs(),
            vec![real],
            "query {i} got the real answer only"
        );
    }
    // The listening port sent nothing back to the unsolicited responses.
    flooder
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(
        flooder.recv_from(&mut buf).is_err(),
        "no reply to a response"
    );
    assert!(server.is_running());
    watch.check("upstream flood");
}

/// A TCP client pipelines up to 250 000 queries (about 8 MB) and never reads its
/// replies: the server stops reading it (the client's writes block), memory stays
/// bounded and other clients are served meanwhile.
#[test]
fn tcp_client_that_never_reads_its_replies() {
    let mut server = Server::start(&["--no-forward", "--synth", "host=10.9.8"]);
    let watch = RssWatch::start(&server);
    let addr = server.tcp_addr();
    let writer = thread::spawn(move || {
        let mut s = tcp_connect(addr);
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        let chunk: Vec<u8> = (0..1000u16)
            .flat_map(|i| frame(&query("host1.example", Rtype::A, i, true, None)))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(8);
        let mut written = 0usize;
        for _ in 0..250 {
            if Instant::now() > deadline || s.write_all(&chunk).is_err() {
                break; // the server stopped reading: its answers are not drained
            }
            written += chunk.len();
        }
        (s, written)
    });
    thread::sleep(Duration::from_millis(300));
    assert!(
        synth_answered(server.udp_addr(), 8, 88),
        "UDP served meanwhile"
    );
    let (s, written) = writer.join().unwrap();
    eprintln!("never-reading client wrote {written} bytes");
    assert!(
        written < 250 * 33_000,
        "the server kept reading a client that does not read"
    );
    assert!(server.is_running());
    watch.check("never-reading client");
    drop(s);
}

/// A flood on the listening socket must not starve the upstream sockets or TCP:
/// forwarded queries and a TCP query are answered (not SERVFAIL) during the flood, before
/// their first try times out.
#[test]
fn forwarding_and_tcp_keep_working_during_a_udp_flood() {
    let up = names_tests::FakeUpstream::answering(&[std::net::Ipv4Addr::new(192, 0, 2, 77)]);
    let up_arg = up.arg();
    let server = Server::start(&[
        "--upstream",
        up_arg.as_str(),
        "--workers",
        "1",
        "--try-timeout",
        "800",
        "--timeout",
        "1500",
    ]);
    let addr = server.udp_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let floods: Vec<_> = (0..2u16)
        .map(|k| {
            let stop = stop.clone();
            thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                // Junk answered by nothing (QR set): as cheap for the flooder as it gets.
                let mut junk = query("flood.example", Rtype::A, k, true, None);
                junk[2] |= 0x80;
                let deadline = Instant::now() + Duration::from_secs(8);
                for n in 0..2_000_000u32 {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    let _ = sock.send_to(&junk, addr);
                    if n % 256 == 255 {
                        thread::sleep(Duration::from_millis(1)); // leave the real clients a chance
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(200)); // the flood is under way
    let started = Instant::now();
    let mut answered = 0;
    for i in 0..10u16 {
        let q = query(
            &format!("fwd{i}.example.com"),
            Rtype::A,
            2000 + i,
            true,
            None,
        );
        // The flood may overflow the socket's buffer and drop a query: retry, as clients do.
        for _ in 0..3 {
            if let Some(bytes) = names_tests::udp_exchange(addr, &q, Duration::from_millis(700)) {
                let r = names_tests::parse(&bytes);
                if r.rcode == 0 && r.a_addrs() == vec![std::net::Ipv4Addr::new(192, 0, 2, 77)] {
                    answered += 1;
                }
                break;
            }
        }
    }
    let tcp = names_tests::tcp_exchange(
        server.tcp_addr(),
        &[query("tcp.example.com", Rtype::A, 9, true, None)],
    );
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        f.join().unwrap();
    }
    assert_eq!(answered, 10, "forwarded queries answered during the flood");
    assert_eq!(tcp.len(), 1, "the TCP query was answered during the flood");
    assert_eq!(names_tests::parse(&tcp[0]).rcode, 0);
    // Each takes a few ms when nothing starves; allow for drops and a loaded machine.
    assert!(
        took < Duration::from_secs(8),
        "11 queries took {took:?} during the flood"
    );
}
