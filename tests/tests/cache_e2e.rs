//! The cache through the real binary: a repeated question is answered without the
//! upstream hearing of it, with its TTL counted down; `--cache-size 0` turns it off.

use std::net::Ipv4Addr;
use std::thread::sleep;
use std::time::Duration;

use names_tests::*;

const IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

fn serve(up: &FakeUpstream, extra: &[&str]) -> Server {
    let arg = up.arg();
    let mut args = vec!["--upstream", arg.as_str()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

#[test]
fn second_query_is_served_from_cache_with_ttl_counted_down() {
    let up = FakeUpstream::start(|r| vec![Reply::Send(answer_a(&r.bytes, &[IP], 300))]);
    let srv = serve(&up, &[]);
    let first = udp_ask(
        srv.udp_addr(),
        &query("cached.example.com", Rtype::A, 1, true, None),
    );
    assert_eq!((first.rcode, first.a_addrs()), (0, vec![IP]));
    assert_eq!(first.answers[0].ttl, 300);
    assert_eq!(up.count(), 1);
    sleep(Duration::from_millis(2100));
    let second = udp_ask(
        srv.udp_addr(),
        &query("Cached.Example.com", Rtype::A, 2, true, None),
    );
    assert_eq!(
        (second.id, second.rcode, second.a_addrs()),
        (2, 0, vec![IP])
    );
    assert_eq!(
        up.count(),
        1,
        "the upstream received nothing for the second query"
    );
    let ttl = second.answers[0].ttl;
    assert!((297..=298).contains(&ttl), "TTL counted down by 2 s: {ttl}");
    assert_eq!(
        second.question.unwrap().0,
        "Cached.Example.com",
        "question echoed as asked"
    );

    // And through dig, over TCP too.
    let out = dig_at(srv.tcp_addr(), &["+tcp", "cached.example.com", "A"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("192.0.2.7"),
        "{out}"
    );
    assert_eq!(up.count(), 1);
}

#[test]
fn cache_size_zero_disables_the_cache() {
    let up = FakeUpstream::start(|r| vec![Reply::Send(answer_a(&r.bytes, &[IP], 300))]);
    let srv = serve(&up, &["--cache-size", "0"]);
    assert!(!srv.ready_line().contains("cache"), "{}", srv.ready_line());
    for id in 1..=2 {
        let r = udp_ask(
            srv.udp_addr(),
            &query("nocache.example.com", Rtype::A, id, true, None),
        );
        assert_eq!(r.rcode, 0);
    }
    assert_eq!(up.count(), 2);
}

#[test]
fn serve_stale_answers_when_the_upstream_dies() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let alive = Arc::new(AtomicBool::new(true));
    let flag = alive.clone();
    let up = FakeUpstream::start(move |r| {
        if flag.load(Ordering::SeqCst) {
            vec![Reply::Send(answer_a(&r.bytes, &[IP], 1))]
        } else {
            vec![Reply::Nothing]
        }
    });
    let srv = serve(
        &up,
        &[
            "--serve-stale",
            "3600",
            "--timeout",
            "600",
            "--try-timeout",
            "200",
        ],
    );
    let r = udp_ask(
        srv.udp_addr(),
        &query("stale.example.com", Rtype::A, 1, true, None),
    );
    assert_eq!(r.answers[0].ttl, 1);
    alive.store(false, Ordering::SeqCst);
    sleep(Duration::from_millis(1100));
    let r = udp_ask(
        srv.udp_addr(),
        &query("stale.example.com", Rtype::A, 2, true, None),
    );
    assert_eq!(
        (r.rcode, r.a_addrs()),
        (0, vec![IP]),
        "stale answer instead of SERVFAIL"
    );
    assert_eq!(r.answers[0].ttl, 30);
    let r = udp_ask(
        srv.udp_addr(),
        &query("never.example.com", Rtype::A, 3, true, None),
    );
    assert_eq!(r.rcode, 2, "nothing stale to serve: SERVFAIL");
}

/// A reply to `query` with its A answer, the zone's NS in authority and the NS's address
/// (glue) in additional, plus an unrelated A record the upstream should not have sent.
fn reply_with_ns_and_glue(query: &[u8], ttl: u32) -> Vec<u8> {
    use names_core::domain::base::iana::Class;
    use names_core::domain::base::{Message, MessageBuilder, Name};
    use names_core::domain::rdata::{Ns, A};
    let q = Message::from_octets(query).unwrap();
    let question = q.sole_question().unwrap();
    let n = |s: &str| -> Name<Vec<u8>> { s.parse().unwrap() };
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(q.header().id());
    b.header_mut().set_qr(true);
    b.header_mut().set_rd(true);
    b.header_mut().set_ra(true);
    let mut qb = b.question();
    qb.push(question).unwrap();
    let mut ans = qb.answer();
    ans.push((question.qname(), Class::IN, ttl, A::new(IP)))
        .unwrap();
    let mut auth = ans.authority();
    auth.push((
        n("example.com"),
        Class::IN,
        ttl,
        Ns::new(n("ns1.example.com")),
    ))
    .unwrap();
    let mut add = auth.additional();
    add.push((
        n("ns1.example.com"),
        Class::IN,
        ttl,
        A::new(Ipv4Addr::new(192, 0, 2, 53)),
    ))
    .unwrap();
    add.push((
        n("planted.other.test"),
        Class::IN,
        ttl,
        A::new(Ipv4Addr::new(203, 0, 113, 66)),
    ))
    .unwrap();
    add.finish()
}

/// dig's header line counts: (answer, authority, additional with the OPT).
fn dig_counts(out: &str) -> (u32, u32, u32) {
    let line = out
        .lines()
        .find(|l| l.contains("ANSWER:") && l.contains("AUTHORITY:"))
        .unwrap_or_else(|| panic!("no counts line in {out}"));
    let count = |label: &str| -> u32 {
        let at = line.find(label).unwrap() + label.len();
        line[at..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (count("ANSWER:"), count("AUTHORITY:"), count("ADDITIONAL:"))
}

#[test]
fn minimal_responses_true_and_false_with_dig() {
    let up = FakeUpstream::start(|r| vec![Reply::Send(reply_with_ns_and_glue(&r.bytes, 300))]);
    for (flag, expected) in [
        (None, (1, 0, 1)),
        (Some("true"), (1, 0, 1)),
        (Some("false"), (1, 1, 2)),
    ] {
        let mut extra = vec!["--cache-size", "100"];
        if let Some(v) = flag {
            extra.extend(["--minimal-responses", v]);
        }
        let srv = serve(&up, &extra);
        let before = up.count();
        for round in ["first", "cached"] {
            let out = dig_at(srv.udp_addr(), &["www.example.com", "A"]);
            assert!(out.contains("status: NOERROR"), "{out}");
            assert_eq!(
                dig_counts(&out),
                expected,
                "{round} reply, --minimal-responses {flag:?}: {out}"
            );
            assert!(
                !out.contains("203.0.113.66"),
                "scrubbed record relayed: {out}"
            );
            if expected.1 == 1 {
                assert!(
                    out.contains("ns1.example.com") && out.contains("192.0.2.53"),
                    "{out}"
                );
            }
        }
        assert_eq!(
            up.count() - before,
            1,
            "the second reply came from the cache"
        );
    }
    let bad = run_names(&["serve", "--minimal-responses", "maybe"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
}

#[test]
fn prefetch_refreshes_in_the_background() {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;
    use std::time::Instant;
    // The first answer is 192.0.2.7 with TTL 10; the refresh, answered after 0.6 s (within a try), 192.0.2.8.
    let served = Arc::new(AtomicU8::new(0));
    let n = served.clone();
    let up = FakeUpstream::start(move |r| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            vec![Reply::Send(answer_a(&r.bytes, &[IP], 10))]
        } else {
            let next = Ipv4Addr::new(192, 0, 2, 8);
            vec![Reply::Delay(
                Duration::from_millis(600),
                answer_a(&r.bytes, &[next], 10),
            )]
        }
    });
    let srv = serve(&up, &["--prefetch"]);
    let ask = |id| {
        udp_ask(
            srv.udp_addr(),
            &query("hot.example.com", Rtype::A, id, true, None),
        )
    };
    assert_eq!(ask(1).a_addrs(), vec![IP]);
    sleep(Duration::from_millis(9_200)); // in the last tenth of the TTL
    let start = Instant::now();
    let hit = ask(2);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "answered at once from the cache"
    );
    assert_eq!((hit.a_addrs(), hit.answers[0].ttl), (vec![IP], 1));
    assert!(
        up.wait_for(2, Duration::from_secs(3)),
        "the upstream saw the refresh"
    );
    let again = ask(3);
    assert_eq!(
        again.a_addrs(),
        vec![IP],
        "still the cached answer while the refresh is out"
    );
    sleep(Duration::from_millis(1_800)); // the refresh landed; the first answer has expired
    let fresh = ask(4);
    assert_eq!(fresh.a_addrs(), vec![Ipv4Addr::new(192, 0, 2, 8)]);
    assert!(fresh.answers[0].ttl >= 8, "{}", fresh.answers[0].ttl);
    assert_eq!(
        up.count(),
        2,
        "one refresh, and the last answer came from the cache"
    );
}

#[test]
fn minimal_responses_and_prefetch_from_the_config_file() {
    let up = FakeUpstream::start(|r| vec![Reply::Send(reply_with_ns_and_glue(&r.bytes, 300))]);
    let path = std::env::temp_dir().join(format!("names-cache-{}.toml", std::process::id()));
    let text = format!(
        "listen = \"127.0.0.1:0\"\nupstream = \"{}\"\nminimal_responses = false\nprefetch = true\n",
        up.arg()
    );
    std::fs::write(&path, text).unwrap();
    let p = path.to_str().unwrap();
    let srv = Server::try_start_raw(&["serve", "--config", p]).expect("serves from the file");
    let out = dig_at(srv.udp_addr(), &["www.example.com", "A"]);
    assert_eq!(dig_counts(&out), (1, 1, 2), "{out}");
    drop(srv);
    // The flag replaces the file's value.
    let srv = Server::try_start_raw(&["serve", "--config", p, "--minimal-responses", "true"])
        .expect("serves");
    let out = dig_at(srv.udp_addr(), &["www.example.com", "A"]);
    assert_eq!(dig_counts(&out), (1, 0, 1), "{out}");
    drop(srv);
    std::fs::write(&path, "minimal_responses = \"no\"\n").unwrap();
    let bad = run_names(&["check-config", p]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let _ = std::fs::remove_file(&path);
}
