//! Operating `names` (issue 6), end to end through the real binary: the config file,
//! `check-config`, the Prometheus endpoint, the query log and graceful shutdown.
//! Everything stays on 127.0.0.1; every wait has a deadline.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use names_tests::{
    answer_a, metrics_addr, query, run_names, sample, scrape, tcp_exchange_timeout, udp_ask,
    udp_exchange, workspace_root, FakeUpstream, Rcode, Reply, Rtype, Server,
};

const UP_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 44);

/// A fresh file under the system temp dir holding `text`.
fn temp_config(text: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "names-ops-{}-{}.toml",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&path, text).expect("write temp config");
    path
}

fn a_query(name: &str, id: u16) -> Vec<u8> {
    query(name, Rtype::A, id, true, None)
}

#[test]
fn config_file_serves_and_flags_replace_its_values() {
    let path = temp_config(
        "# a test config\nlisten = [\"127.0.0.1:0\"]\nsynth = [\"filehost=10.1.2\"]\nno_forward = true\ntimeout = 2000\n",
    );
    let p = path.to_str().unwrap();
    let server = Server::try_start_raw(&["serve", "--config", p]).expect("serves from the file");
    let reply = udp_ask(server.udp_addr(), &a_query("filehost7.example.com", 1));
    assert_eq!(reply.a_addrs(), [Ipv4Addr::new(10, 1, 2, 7)]);
    drop(server);

    // --synth on the command line replaces the file's synth; the file's other keys stay.
    let server = Server::try_start_raw(&["serve", "--config", p, "--synth", "cli=10.9.9"])
        .expect("serves from the file and the flags");
    let reply = udp_ask(server.udp_addr(), &a_query("cli3.example.com", 2));
    assert_eq!(reply.a_addrs(), [Ipv4Addr::new(10, 9, 9, 3)]);
    let reply = udp_ask(server.udp_addr(), &a_query("filehost7.example.com", 3));
    assert_eq!(
        reply.rcode,
        u16::from(Rcode::REFUSED.to_int()),
        "no_forward from the file still holds"
    );
    drop(server);
    let _ = std::fs::remove_file(path);
}

/// `names serve --config FILE` and `names check-config FILE` both fail with one line
/// naming the file and the key.
fn assert_config_error(text: &str, key: &str) {
    let path = temp_config(text);
    let p = path.to_str().unwrap();
    for args in [vec!["serve", "--config", p], vec!["check-config", p]] {
        let out = run_names(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(p), "names the file: {stderr}");
        assert!(
            stderr.contains(&format!("\"{key}\"")),
            "names the key {key}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_file(path);
}

#[test]
fn config_file_unknown_key_is_one_clear_error() {
    assert_config_error(
        "listen = [\"127.0.0.1:0\"]\nno_forward = true\nlisten_port = 53\n",
        "listen_port",
    );
}

#[test]
fn config_file_bad_values_are_one_clear_error() {
    assert_config_error("no_forward = true\ntimeout = \"fast\"\n", "timeout");
    assert_config_error(
        "no_forward = true\nlisten = [\"not-an-address\"]\n",
        "listen",
    );
    assert_config_error("no_forward = true\nlog_level = \"loud\"\n", "log_level");
    assert_config_error("no_forward = \"yes\"\n", "no_forward");
}

#[test]
fn check_config_loads_the_zone_files_it_names() {
    let zone = temp_config(
        "$ORIGIN broken.test.\n@ 3600 IN SOA ns hostmaster 1 2 3 4 5\nwww IN A not-an-address\n",
    );
    let config = temp_config(&format!(
        "zone = [\"{}\"]\nno_forward = true\n",
        zone.display()
    ));
    let out = run_names(&["check-config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a broken zone must fail check-config"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&*zone.to_string_lossy()), "{stderr}");
}

#[test]
fn example_config_loads() {
    let example = workspace_root().join("examples").join("names.toml");
    assert!(example.exists(), "{} is missing", example.display());
    let out = run_names(&["check-config", example.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "check-config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
}

#[test]
fn metrics_count_the_queries_answered_before_a_scrape() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let upstream = up.arg();
    let server = Server::start(&[
        "--metrics",
        "127.0.0.1:0",
        "--synth",
        "ws=10.0.0",
        "--upstream",
        &upstream,
    ]);
    let metrics = metrics_addr(&server);
    let before = scrape(metrics);
    assert_eq!(
        sample(&before, "names_upstream_queries_total"),
        Some(0.0),
        "{before}"
    );

    for id in 0..3u16 {
        let r = udp_ask(
            server.udp_addr(),
            &a_query(&format!("ws{id}.example.com"), id),
        );
        assert_eq!(r.a_addrs(), [Ipv4Addr::new(10, 0, 0, id as u8)]);
    }
    let tcp = tcp_exchange_timeout(
        server.tcp_addr(),
        &[a_query("ws9.example.com", 9)],
        Duration::from_secs(5),
    );
    assert_eq!(tcp.len(), 1);
    // Forwarded once, then answered by the cache when the cache is on.
    for id in 10..12u16 {
        let r = udp_ask(server.udp_addr(), &a_query("forwarded.example.com", id));
        assert_eq!(r.a_addrs(), [UP_IP]);
    }
    let aaaa = udp_exchange(
        server.udp_addr(),
        &query("ws1.example.com", Rtype::AAAA, 20, true, None),
        Duration::from_secs(5),
    )
    .expect("AAAA reply");
    assert_eq!(names_tests::parse(&aaaa).id, 20);

    let body = scrape(metrics);
    let q = |labels: &str| sample(&body, &format!("names_queries_total{{{labels}}}"));
    assert_eq!(
        q(r#"transport="udp",qtype="A",rcode="NOERROR""#),
        Some(5.0),
        "{body}"
    );
    assert_eq!(
        q(r#"transport="tcp",qtype="A",rcode="NOERROR""#),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        q(r#"transport="udp",qtype="AAAA",rcode="NOERROR""#),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, r#"names_answers_total{source="synth"}"#),
        Some(4.0),
        "{body}"
    );
    let upstream_answers = sample(&body, r#"names_answers_total{source="forward"}"#).unwrap_or(0.0);
    let cache_answers = sample(&body, r#"names_answers_total{source="cache"}"#).unwrap_or(0.0);
    // The AAAA for ws1 passes synth (A only) and is forwarded too.
    assert_eq!(upstream_answers + cache_answers, 3.0, "{body}");
    let sent = up.count() as f64;
    assert_eq!(
        sample(&body, "names_upstream_queries_total"),
        Some(sent),
        "{body}"
    );
    // Every matching upstream reply is timed (a reply to a try that had timed out and was
    // closed is not, so on a very slow machine the count may trail the tries).
    let latency = format!(r#"names_upstream_latency_seconds_count{{upstream="{upstream}"}}"#);
    let timed = sample(&body, &latency).unwrap_or(0.0);
    assert!(timed >= 1.0 && timed <= sent, "{body}");
    assert!(
        sample(&body, "names_upstream_timeouts_total").is_some(),
        "{body}"
    );
    assert_eq!(
        sample(&body, "names_upstream_spoofed_ignored_total"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "names_upstream_tcp_fallbacks_total"),
        Some(0.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "names_queries_in_flight"),
        Some(0.0),
        "{body}"
    );
    assert!(
        sample(&body, "names_tcp_connections_open").is_some(),
        "{body}"
    );
    if cache_answers > 0.0 {
        assert_eq!(
            sample(&body, "names_cache_hits_total"),
            Some(cache_answers),
            "{body}"
        );
        assert!(
            sample(&body, "names_cache_misses_total").unwrap_or(0.0) >= 1.0,
            "{body}"
        );
        assert!(
            sample(&body, "names_cache_entries").unwrap_or(0.0) >= 1.0,
            "{body}"
        );
    }
    assert!(body.ends_with("# EOF\n"), "{body}");
}

#[test]
fn query_log_line_format() {
    let server = Server::start(&[
        "--synth",
        "ws=10.0.0",
        "--no-forward",
        "--log-queries",
        "--log-level",
        "error",
    ]);
    udp_ask(server.udp_addr(), &a_query("Ws42.Example.COM", 7));
    udp_ask(server.udp_addr(), &a_query("nobody.example.com", 8));
    let deadline = Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let logs = server.logs();
        let lines: Vec<String> = logs
            .lines()
            .filter(|l| l.starts_with("names: query "))
            .map(str::to_string)
            .collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            break lines;
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(lines.len(), 2, "{}", server.logs());
    for (line, name, rcode, source) in [
        (&lines[0], "Ws42.Example.COM.", "NOERROR", "synth"),
        (&lines[1], "nobody.example.com.", "REFUSED", "none"),
    ] {
        let fields: Vec<&str> = line["names: query ".len()..].split(' ').collect();
        let keys: Vec<&str> = fields
            .iter()
            .map(|f| f.split('=').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "client",
                "transport",
                "name",
                "type",
                "rcode",
                "source",
                "latency_ms"
            ],
            "{line}"
        );
        let value = |k: &str| {
            fields
                .iter()
                .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
                .unwrap()
        };
        assert!(
            value("client")
                .parse::<SocketAddr>()
                .unwrap()
                .ip()
                .is_loopback(),
            "{line}"
        );
        assert_eq!(value("transport"), "udp", "{line}");
        assert_eq!(value("name"), name, "{line}");
        assert_eq!(value("type"), "A", "{line}");
        assert_eq!(value("rcode"), rcode, "{line}");
        assert_eq!(value("source"), source, "{line}");
        let ms = value("latency_ms");
        assert!(
            ms.parse::<f64>().unwrap() >= 0.0 && ms.split('.').nth(1).unwrap().len() == 3,
            "{line}"
        );
    }
    // --log-level error hides info lines but never the query log.
    assert!(!server.logs().contains("names: info:"), "{}", server.logs());
}

fn graceful_shutdown_with_queries_in_flight(signal: &str) {
    let hold = Duration::from_millis(700);
    let up =
        FakeUpstream::start(move |r| vec![Reply::Delay(hold, answer_a(&r.bytes, &[UP_IP], 300))]);
    let mut names = Server::start(&["--upstream", &up.arg(), "--cache-size", "0"]);
    let (udp, tcp) = (names.udp_addr(), names.tcp_addr());
    let udp_client = thread::spawn(move || {
        udp_exchange(
            udp,
            &a_query("slow-udp.example.com", 31),
            Duration::from_secs(5),
        )
    });
    let tcp_client = thread::spawn(move || {
        tcp_exchange_timeout(
            tcp,
            &[a_query("slow-tcp.example.com", 32)],
            Duration::from_secs(5),
        )
    });
    assert!(
        up.wait_for(2, Duration::from_secs(5)),
        "both queries reach the upstream"
    );
    let signalled = Instant::now();
    names.signal(signal);

    let udp_reply = udp_client
        .join()
        .unwrap()
        .expect("the UDP query in flight is answered");
    let udp_reply = names_tests::parse(&udp_reply);
    assert_eq!((udp_reply.id, udp_reply.a_addrs()), (31, vec![UP_IP]));
    let tcp_reply = tcp_client.join().unwrap();
    assert_eq!(tcp_reply.len(), 1, "the TCP query in flight is answered");
    let tcp_reply = names_tests::parse(&tcp_reply[0]);
    assert_eq!((tcp_reply.id, tcp_reply.a_addrs()), (32, vec![UP_IP]));

    let status = names
        .wait_exit(Duration::from_secs(5))
        .expect("exits after draining");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(signalled.elapsed() < Duration::from_secs(4), "bounded wait");
    // Nothing listens any more.
    assert!(udp_exchange(
        udp,
        &a_query("late.example.com", 33),
        Duration::from_millis(300)
    )
    .is_none());
}

#[test]
fn sigterm_answers_queries_in_flight_then_exits_0() {
    graceful_shutdown_with_queries_in_flight("TERM");
}

#[test]
fn sigint_answers_queries_in_flight_then_exits_0() {
    graceful_shutdown_with_queries_in_flight("INT");
}

#[test]
fn idle_server_exits_0_on_sigterm_at_once() {
    let mut names = Server::start(&["--no-forward"]);
    let started = Instant::now();
    names.signal("TERM");
    let status = names.wait_exit(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn metrics_sum_every_worker() {
    let server = Server::start(&[
        "--workers",
        "2",
        "--metrics",
        "127.0.0.1:0",
        "--synth",
        "ws=10.0.0",
        "--no-forward",
    ]);
    let metrics = metrics_addr(&server);
    // Each query from a fresh source port, so SO_REUSEPORT spreads them over the workers.
    for id in 0..12u16 {
        let r = udp_ask(
            server.udp_addr(),
            &a_query(&format!("ws{id}.example.com"), id),
        );
        assert_eq!(r.id, id);
    }
    let body = scrape(metrics);
    assert_eq!(
        sample(
            &body,
            r#"names_queries_total{transport="udp",qtype="A",rcode="NOERROR"}"#
        ),
        Some(12.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, r#"names_answers_total{source="synth"}"#),
        Some(12.0),
        "{body}"
    );
}

/// Audit: the `qtype` label took any client value (65,534 types made 65,535 series and a
/// 4.8 MB scrape). Types without a registered mnemonic share the label `other`.
#[test]
fn metrics_label_only_known_types() {
    let server = Server::start(&["--metrics", "127.0.0.1:0", "--no-forward", "--workers", "1"]);
    let metrics = metrics_addr(&server);
    let client = names_tests::UdpClient::new(server.udp_addr());
    let mut answered = 0;
    for (i, qtype) in (1000..3000u16).enumerate() {
        client.send(&query(
            "any.example",
            Rtype::from_int(qtype),
            i as u16,
            true,
            None,
        ));
        if i % 100 == 99 {
            // Keep the client's receive buffer from overflowing.
            while client.recv(Duration::from_millis(20)).is_some() {
                answered += 1;
            }
        }
    }
    while answered < 2000 && client.recv(Duration::from_millis(300)).is_some() {
        answered += 1;
    }
    assert!(answered > 1900, "{answered}");
    let body = scrape(metrics);
    let series = body
        .lines()
        .filter(|l| l.starts_with("names_queries_total{"))
        .count();
    assert!(series <= 4, "{series} series:\n{body}");
    let other = sample(
        &body,
        r#"names_queries_total{transport="udp",qtype="other",rcode="REFUSED"}"#,
    );
    assert!(other.is_some_and(|n| n >= 1900.0), "{body}");
}
