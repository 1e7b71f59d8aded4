//! File descriptor limits, through the real binary under `prlimit`: every upstream try is a
//! socket of its own, so the common soft limit of 1024 once made half of 2000 concurrent
//! forwarded queries fail (EMFILE) far below `--max-inflight`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use names_tests::{answer_a, parse, query, FakeUpstream, Reply, Server, UdpClient};

/// Sends `n` distinct questions from 20 sockets and counts the replies' rcodes.
fn ask_distinct(server: &Server, n: usize, tag: &str) -> HashMap<u16, usize> {
    let clients: Vec<UdpClient> = (0..20).map(|_| UdpClient::new(server.udp_addr())).collect();
    for i in 0..n {
        let name = format!("q{i}.{tag}.example");
        clients[i % clients.len()].send(&query(&name, Rtype::A, i as u16, true, Some(1232)));
        if i % 20 == 19 {
            // Paced, so neither the server's nor the upstream's socket buffer overflows.
            std::thread::sleep(Duration::from_millis(8));
        }
    }
    let mut rcodes = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = 0;
    while got < n && Instant::now() < deadline {
        for c in &clients {
            while let Some(reply) = c.recv(Duration::from_millis(5)) {
                *rcodes.entry(parse(&reply).rcode).or_default() += 1;
                got += 1;
            }
        }
    }
    rcodes
}

/// This process's hard limit on open files (the child can be given up to it).
fn hard_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let hard = line
        .split_whitespace()
        .nth(4)
        .expect("soft and hard columns");
    if hard == "unlimited" {
        return 1 << 20;
    }
    hard.parse().expect("a number")
}

#[test]
fn soft_limit_of_1024_is_raised_and_2000_concurrent_queries_are_answered() {
    // Each answer takes 1.5 s, so the 2000 exchanges (sent over about 0.8 s) are open at
    // once; the per-try timeout is longer, so each is one socket.
    let upstream = FakeUpstream::start(|r| {
        vec![Reply::Delay(
            Duration::from_millis(1500),
            answer_a(&r.bytes, &["192.0.2.1".parse().unwrap()], 300),
        )]
    });
    let hard = hard_limit();
    if hard < 4096 {
        // Nothing to raise to: the machine's hard limit itself is below what the test needs.
        eprintln!("skipped: the hard limit on open files is {hard}, under 4096");
        return;
    }
    let server = Server::start_with_nofile(
        (1024, hard),
        &[
            "--upstream",
            &upstream.arg(),
            "--workers",
            "1",
            "--cache-size",
            "0",
            "--try-timeout",
            "2500",
        ],
    );
    assert!(
        server
            .logs()
            .contains(&format!("file descriptor limit raised from 1024 to {hard}")),
        "{}",
        server.logs()
    );
    let rcodes = ask_distinct(&server, 2000, "raise");
    let servfail = rcodes.get(&2).copied().unwrap_or(0);
    let answered = rcodes.get(&0).copied().unwrap_or(0);
    assert_eq!(servfail, 0, "{rcodes:?}; logs:\n{}", server.logs());
    assert!(answered >= 1800, "{rcodes:?}");
}

#[test]
fn a_low_hard_limit_lowers_the_default_limits_to_fit() {
    let upstream = FakeUpstream::start(|r| {
        vec![Reply::Delay(
            Duration::from_millis(300),
            answer_a(&r.bytes, &["192.0.2.1".parse().unwrap()], 300),
        )]
    });
    let mut server = Server::start_with_nofile(
        (512, 512),
        &[
            "--upstream",
            &upstream.arg(),
            "--workers",
            "1",
            "--cache-size",
            "0",
            "--try-timeout",
            "2500",
        ],
    );
    assert!(
        server
            .logs()
            .contains("file descriptor limit 512: --max-inflight"),
        "{}",
        server.logs()
    );
    // Over the lowered in-flight limit, queries get SERVFAIL at once; none is lost to a
    // missing descriptor, and the server keeps serving.
    let rcodes = ask_distinct(&server, 600, "low");
    assert!(rcodes.values().sum::<usize>() >= 570, "{rcodes:?}");
    assert!(rcodes.get(&0).copied().unwrap_or(0) >= 50, "{rcodes:?}");
    assert!(server.is_running());
    assert!(
        !server.logs().contains("Too many open files"),
        "{}",
        server.logs()
    );
}
