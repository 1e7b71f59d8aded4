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
