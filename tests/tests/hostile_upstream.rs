//! Hostile upstreams and floods against the real `names` binary (issue 10, upstream
//! side), on loopback only. Every loop is bounded in count and time; every process stops
//! when its handle drops.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use domain::base::iana::{Rcode, Rtype};
use names_tests::{
    answer_a, answer_rcode, frame, parse, query, rss_kb, tcp_ask, try_parse, udp_exchange, with_tc,
    FakeUpstream, Received, Reply, Server, UdpClient,
};

const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const WRONG: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);

fn qname_of(r: &Received) -> String {
    r.parsed()
        .question
        .map(|(n, _)| n.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Asks `name` over UDP and returns the reply's rcode and A addresses (None: no reply).
fn ask_udp(addr: SocketAddr, name: &str, id: u16, wait: Duration) -> Option<(u16, Vec<Ipv4Addr>)> {
    let reply = udp_exchange(addr, &query(name, Rtype::A, id, true, None), wait)?;
    let p = parse(&reply);
    Some((p.rcode, p.a_addrs()))
}

/// The audit's trigger for `trigger.example`: the first UDP query is ignored, the retry
/// answered TC=1, and over TCP a SERVFAIL frame and an answer frame go out in one write.
/// Every other name is answered normally.
fn trigger_upstream() -> FakeUpstream {
    let udp_seen = Arc::new(AtomicUsize::new(0));
    FakeUpstream::start(move |r| {
        if qname_of(r) != "trigger.example" {
            return vec![Reply::Send(answer_a(&r.bytes, &[ANSWER], 300))];
        }
        if r.tcp {
            let mut bytes = frame(&answer_rcode(&r.bytes, Rcode::SERVFAIL));
            bytes.extend(frame(&answer_a(&r.bytes, &[WRONG], 300)));
            return vec![Reply::Raw(bytes)];
        }
        match udp_seen.fetch_add(1, Ordering::SeqCst) {
            0 => vec![Reply::Nothing],
            _ => vec![Reply::Send(with_tc(&answer_rcode(
                &r.bytes,
                Rcode::NOERROR,
            )))],
        }
    })
}

#[test]
fn servfail_and_another_frame_in_one_tcp_write_do_not_kill_the_server() {
    for workers in ["1", "2"] {
        let up = trigger_upstream();
        let mut server = Server::start(&[
            "--upstream",
            &up.arg(),
            "--workers",
            workers,
            "--cache-size",
            "0",
            "--try-timeout",
            "200",
            "--timeout",
            "1500",
        ]);
        let addr = server.udp_addr();
        let (rcode, addrs) = ask_udp(addr, "trigger.example", 1, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("workers {workers}: no reply to the trigger"));
        assert!(
            up.tcp_count() >= 1,
            "workers {workers}: the exchange reached TCP"
        );
        assert_eq!(
            rcode,
            u16::from(Rcode::SERVFAIL.to_int()),
            "workers {workers}: the only upstream failed"
        );
        assert!(
            !addrs.contains(&WRONG),
            "the frame after SERVFAIL is not used"
        );
        // Still up, and still answering.
        thread::sleep(Duration::from_millis(100));
        assert!(server.is_running(), "workers {workers}: the server died");
        for i in 0..4 {
            let got = ask_udp(
                addr,
                &format!("ok{i}.example"),
                10 + i,
                Duration::from_secs(3),
            );
            assert_eq!(got, Some((0, vec![ANSWER])), "workers {workers}: query {i}");
        }
        assert!(server.is_running(), "workers {workers}: the server died");
    }
}

#[test]
fn zero_length_frame_then_megabytes_is_cut_off_with_memory_bounded() {
    const STREAM: usize = 48 << 20;
    let up = FakeUpstream::start(|r| {
        if !r.tcp {
            return vec![Reply::Send(with_tc(&answer_rcode(
                &r.bytes,
                Rcode::NOERROR,
            )))];
        }
        let mut bytes = vec![0u8; STREAM];
        bytes[2..].fill(0xab); // a zero-length frame, then garbage
        vec![Reply::Raw(bytes)]
    });
    let mut server = Server::start(&[
        "--upstream",
        &up.arg(),
        "--workers",
        "1",
        "--cache-size",
        "0",
        "--timeout",
        "3000",
    ]);
    let base = rss_kb(server.pid());
    let started = Instant::now();
    let (rcode, _) = ask_udp(server.udp_addr(), "zero.example", 2, Duration::from_secs(5))
        .expect("a reply within the budget");
    assert_eq!(rcode, u16::from(Rcode::SERVFAIL.to_int()));
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the broken TCP try fails at once, not at the budget: {:?}",
        started.elapsed()
    );
    assert!(up.tcp_count() >= 1);
    // Let the writer run into the closed connection; memory must not have followed it.
    thread::sleep(Duration::from_millis(300));
    let grown = rss_kb(server.pid()).saturating_sub(base);
    assert!(grown < 16 * 1024, "RSS grew by {grown} kB");
    assert!(server.is_running());
}

#[test]
fn identical_questions_join_at_the_in_flight_limit_and_waiting_is_bounded() {
    let up = FakeUpstream::silent();
    let mut server = Server::start(&[
        "--upstream",
        &up.arg(),
        "--workers",
        "1",
        "--max-inflight",
        "2",
        "--max-waiting",
        "10",
        "--try-timeout",
        "3000",
        "--timeout",
        "4000",
    ]);
    let addr = server.udp_addr();
    let base = rss_kb(server.pid());
    let a = UdpClient::new(addr);
    a.send(&query("a.example", Rtype::A, 1, true, None));
    a.send(&query("b.example", Rtype::A, 2, true, None));
    assert!(up.wait_for(2, Duration::from_secs(3)), "both forwarded");
    // At the limit: the same question joins its exchange; another one gets SERVFAIL.
    let again = UdpClient::new(addr);
    again.send(&query("a.example", Rtype::A, 3, true, None));
    let other = udp_exchange(
        addr,
        &query("c.example", Rtype::A, 4, true, None),
        Duration::from_secs(2),
    )
    .expect("SERVFAIL at once for a new question at the limit");
    assert_eq!(parse(&other).rcode, u16::from(Rcode::SERVFAIL.to_int()));
    assert_eq!(
        again.recv(Duration::from_millis(300)),
        None,
        "the repeated question joined instead of failing"
    );

    // A flood of the same question: 10 may wait (3 already do), the rest get SERVFAIL now.
    const FLOOD: u16 = 10_000;
    let flood = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind flood socket");
    flood.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut servfails = 0usize;
    let mut buf = vec![0u8; 2048];
    let take = |flood: &std::net::UdpSocket, servfails: &mut usize, buf: &mut [u8]| {
        while let Ok(n) = flood.recv(buf) {
            if try_parse(&buf[..n]).is_ok_and(|p| p.rcode == u16::from(Rcode::SERVFAIL.to_int())) {
                *servfails += 1;
            }
        }
    };
    // In bursts, each waiting (a bounded time) for most of its replies, so that neither
    // the server's nor this socket's buffer overflows on a slow machine.
    const BURST: u16 = 50;
    for burst in 0..FLOOD / BURST {
        for k in 0..BURST {
            let q = query("a.example", Rtype::A, 100 + burst * BURST + k, true, None);
            for _ in 0..1000 {
                match flood.send_to(&q, addr) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_micros(100))
                    }
                    _ => break,
                }
            }
        }
        let sent = usize::from((burst + 1) * BURST);
        let wait = Instant::now() + Duration::from_millis(100);
        while servfails + 20 < sent && Instant::now() < wait {
            take(&flood, &mut servfails, &mut buf);
            thread::sleep(Duration::from_micros(200));
        }
    }
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        take(&flood, &mut servfails, &mut buf);
        thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "SERVFAIL came at once, not at the budget ({elapsed:?})"
    );
    // UDP on a loaded machine may drop a few; nearly all must have been refused at once.
    assert!(
        servfails >= usize::from(FLOOD) * 8 / 10,
        "only {servfails} of {FLOOD} flooded queries got SERVFAIL at once"
    );
    let grown = rss_kb(server.pid()).saturating_sub(base);
    assert!(grown < 16 * 1024, "RSS grew by {grown} kB");
    assert_eq!(up.count(), 2, "the flood never reached the upstream");
    assert!(server.is_running());
}

#[test]
fn formerr_to_edns_is_retried_without_edns() {
    let up = FakeUpstream::start(|r| {
        if r.parsed().has_opt {
            vec![Reply::Send(answer_rcode(&r.bytes, Rcode::FORMERR))]
        } else {
            vec![Reply::Send(answer_a(&r.bytes, &[ANSWER], 300))]
        }
    });
    let server = Server::start(&["--upstream", &up.arg(), "--workers", "1"]);
    for (i, edns) in [None, Some(1232)].into_iter().enumerate() {
        let name = format!("old{i}.example");
        let reply = udp_exchange(
            server.udp_addr(),
            &query(&name, Rtype::A, 7, true, edns),
            Duration::from_secs(5),
        )
        .expect("a reply");
        let p = parse(&reply);
        assert_eq!(p.rcode, 0, "{name}: the answer, not FORMERR");
        assert_eq!(p.a_addrs(), vec![ANSWER]);
    }
    let got = up.received();
    assert!(
        got.iter().any(|r| r.parsed().has_opt),
        "asked with EDNS first"
    );
    assert!(got.iter().any(|r| !r.parsed().has_opt), "then without EDNS");
    assert_eq!(got.len(), 4, "one retry per query: {got:?}");
}

#[test]
fn zone_transfers_are_refused_and_never_forwarded() {
    let up = FakeUpstream::answering(&[ANSWER]);
    let server = Server::start(&["--upstream", &up.arg(), "--workers", "1"]);
    for qtype in [Rtype::AXFR, Rtype::IXFR] {
        let p = tcp_ask(
            server.tcp_addr(),
            &query("example.com", qtype, 9, false, None),
        );
        assert_eq!(
            p.rcode,
            u16::from(Rcode::REFUSED.to_int()),
            "{qtype} over TCP"
        );
        let reply = udp_exchange(
            server.udp_addr(),
            &query("example.com", qtype, 10, false, None),
            Duration::from_secs(5),
        )
        .expect("a UDP reply");
        assert_eq!(
            parse(&reply).rcode,
            u16::from(Rcode::REFUSED.to_int()),
            "{qtype} over UDP"
        );
    }
    // The forwarder still works, and the upstream never saw a transfer.
    let p = tcp_ask(
        server.tcp_addr(),
        &query("www.example.com", Rtype::A, 11, true, None),
    );
    assert_eq!(p.a_addrs(), vec![ANSWER]);
    assert_eq!(up.count(), 1, "only the A query reached the upstream");
}
