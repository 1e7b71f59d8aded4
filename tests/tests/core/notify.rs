//! NOTIFY out (RFC 1996) through `names_core::notify::Notifier`, driven by hand: what is
//! sent, when it is retried, which replies end it, signed and unsigned.

// Tests take one real instant as the base time the notifier is given.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use names_core::domain::base::iana::{Opcode, Rcode, Rtype};
use names_core::domain::base::{Message, MessageBuilder};
use names_core::notify::{Notifier, NotifyEvent, NotifyTarget, MAX_TRIES};
use names_core::tsig::{verify_request, Key, KeyRing, Verified};
use names_core::zone::{load_zone, Zone};
use names_tests::build::name;

const UNIX: u64 = 1_800_000_000;

fn zone(origin: &str, serial: u32) -> Zone {
    let text = format!("{origin} 3600 IN SOA ns.{origin} admin.{origin} {serial} 7200 900 1209600 300\n{origin} 3600 IN NS ns.{origin}\n");
    load_zone("z", &text, &mut |p, _| Err(format!("no include {p}"))).unwrap()
}

fn target(text: &str) -> NotifyTarget {
    NotifyTarget::parse(text).unwrap()
}

fn notifier(targets: &[&str], keys: KeyRing, t0: Instant) -> Notifier {
    let mut n = Notifier::new(targets.iter().map(|t| target(t)).collect(), keys, [9; 32]);
    n.set_unix_time(t0, UNIX);
    n
}

fn sends(n: &mut Notifier) -> Vec<(SocketAddr, Vec<u8>)> {
    std::iter::from_fn(|| n.poll_send()).collect()
}

fn reply_to(request: &[u8], rcode: Rcode) -> Vec<u8> {
    let msg = Message::from_octets(request).unwrap();
    MessageBuilder::new_vec()
        .start_answer(&msg, rcode)
        .unwrap()
        .finish()
}

#[test]
fn targets_parse_with_one_line_errors() {
    let t = target("example.com=[::1]:5353,key=xfr");
    assert_eq!(t.addr, "[::1]:5353".parse().unwrap());
    assert_eq!(t.zone.unwrap().to_string(), "example.com");
    assert_eq!(t.key.unwrap().to_string(), "xfr");
    assert_eq!(target("192.0.2.7").addr, "192.0.2.7:53".parse().unwrap());
    for bad in [
        "",
        "example.com=",
        "192.0.2.7:99999",
        "1.2.3.4,key=",
        "a..b=1.2.3.4",
    ] {
        let e = NotifyTarget::parse(bad).unwrap_err().to_string();
        assert!(e.starts_with("--notify") && !e.contains('\n'), "{bad}: {e}");
    }
}

#[test]
fn a_notify_is_retried_five_times_with_backoff_then_given_up() {
    let t0 = Instant::now();
    let mut n = notifier(&["127.0.0.1:5300"], KeyRing::default(), t0);
    let z = zone("example.com.", 7);
    n.zone_changed(t0, z.origin(), z.soa());
    let first = sends(&mut n);
    assert_eq!(first.len(), 1);
    let (to, bytes) = &first[0];
    assert_eq!(*to, "127.0.0.1:5300".parse().unwrap());
    let msg = Message::from_octets(&bytes[..]).unwrap();
    assert_eq!(msg.header().opcode(), Opcode::NOTIFY);
    assert!(msg.header().aa() && !msg.header().qr());
    let q = msg.sole_question().unwrap();
    assert_eq!(
        (q.qname().to_string(), q.qtype()),
        ("example.com".into(), Rtype::SOA)
    );
    assert_eq!(msg.header_counts().ancount(), 1, "the new SOA rides along");

    let mut at = t0;
    let mut ids = vec![msg.header().id()];
    for wait in [1, 2, 4, 8] {
        assert_eq!(n.poll_timeout(), Some(at + Duration::from_secs(wait)));
        n.handle_timeout(at + Duration::from_millis(wait * 1000 - 1));
        assert!(sends(&mut n).is_empty(), "not before its time");
        at += Duration::from_secs(wait);
        n.handle_timeout(at);
        let again = sends(&mut n);
        assert_eq!(again.len(), 1);
        ids.push(Message::from_octets(&again[0].1[..]).unwrap().header().id());
    }
    assert_eq!(ids.len(), usize::from(MAX_TRIES));
    ids.dedup();
    assert!(ids.len() > 1, "fresh IDs on retries");
    assert!(n.poll_event().is_none());
    n.handle_timeout(at + Duration::from_secs(16));
    assert!(sends(&mut n).is_empty());
    assert!(matches!(
        n.poll_event(),
        Some(NotifyEvent::GaveUp { serial: 7, .. })
    ));
    assert_eq!((n.pending(), n.poll_timeout()), (0, None));
}

#[test]
fn only_a_matching_reply_ends_the_retries() {
    let t0 = Instant::now();
    let mut n = notifier(&["127.0.0.1:5300"], KeyRing::default(), t0);
    let z = zone("example.com.", 7);
    n.zone_changed(t0, z.origin(), z.soa());
    let (to, request) = sends(&mut n).remove(0);
    let good = reply_to(&request, Rcode::NOERROR);
    let mut wrong_id = good.clone();
    wrong_id[0] ^= 0xff;
    let mut not_a_reply = good.clone();
    not_a_reply[2] &= 0x7f;
    let other_zone = {
        let z2 = zone("example.org.", 1);
        let mut other = notifier(&["127.0.0.1:5300"], KeyRing::default(), t0);
        other.zone_changed(t0, z2.origin(), z2.soa());
        let mut r = reply_to(&sends(&mut other).remove(0).1, Rcode::NOERROR);
        r[..2].copy_from_slice(&request[..2]);
        r
    };
    let other_port: SocketAddr = "127.0.0.1:5301".parse().unwrap();
    for (from, bytes) in [
        (other_port, &good[..]),
        (to, &wrong_id[..]),
        (to, &not_a_reply[..]),
        (to, &other_zone[..]),
        (to, &good[..7]),
        (to, &[][..]),
    ] {
        n.handle_reply(t0, from, bytes);
        assert_eq!(n.pending(), 1, "ignored");
    }
    n.handle_reply(t0, to, &reply_to(&request, Rcode::NOTIMP));
    assert_eq!(
        n.poll_event(),
        Some(NotifyEvent::Answered {
            zone: name("example.com."),
            serial: 7,
            to,
            rcode: Rcode::NOTIMP
        }),
        "any rcode is an answer"
    );
    assert_eq!((n.pending(), n.poll_timeout()), (0, None));
    n.handle_reply(t0, to, &good);
    assert!(
        n.poll_event().is_none(),
        "a duplicate reply changes nothing"
    );
}

#[test]
fn a_signed_notify_needs_a_signed_reply() {
    let t0 = Instant::now();
    let key = Key::parse("xfr:hmac-sha256:c2VjcmV0LXNlY3JldA==").unwrap();
    let keys = KeyRing::from_keys(vec![key]).unwrap();
    let mut n = notifier(
        &[
            "example.com=127.0.0.1:5300,key=xfr",
            "example.org=127.0.0.1:5400",
        ],
        keys.clone(),
        t0,
    );
    let z = zone("example.com.", 3);
    n.zone_changed(t0, z.origin(), z.soa());
    let sent = sends(&mut n);
    assert_eq!(sent.len(), 1, "the other target is for another zone");
    let (to, request) = &sent[0];
    let Verified::Signed(mut signer) = verify_request(&keys, request, UNIX + 2) else {
        panic!("a NOTIFY signed with the target's key")
    };
    n.handle_reply(t0, *to, &reply_to(request, Rcode::NOERROR));
    assert_eq!(
        n.pending(),
        1,
        "an unsigned reply to a signed NOTIFY is ignored"
    );
    let mut signed = reply_to(request, Rcode::NOERROR);
    signer.sign(&mut signed, UNIX + 2).unwrap();
    n.handle_reply(t0, *to, &signed);
    assert!(matches!(
        n.poll_event(),
        Some(NotifyEvent::Answered { serial: 3, .. })
    ));
}

#[test]
fn a_newer_change_replaces_the_pending_notify() {
    let t0 = Instant::now();
    let mut n = notifier(
        &["127.0.0.1:5300", "127.0.0.2:5300"],
        KeyRing::default(),
        t0,
    );
    let (v1, v2) = (zone("example.com.", 1), zone("example.com.", 2));
    n.zone_changed(t0, v1.origin(), v1.soa());
    assert_eq!(sends(&mut n).len(), 2);
    n.zone_changed(t0, v2.origin(), v2.soa());
    assert_eq!(sends(&mut n).len(), 2);
    assert_eq!(n.pending(), 2, "one per target, the newest serial");
    for hour in 1..=u64::from(MAX_TRIES) {
        n.handle_timeout(t0 + Duration::from_secs(3600 * hour));
    }
    let events: Vec<_> = std::iter::from_fn(|| n.poll_event()).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| matches!(e, NotifyEvent::GaveUp { serial: 2, .. })),
        "{events:?}"
    );
}

proptest::proptest! {
    /// Over a network that loses, delays, duplicates and reorders replies (and answers
    /// tries of older IDs late), each change ends in exactly one outcome per target, after
    /// at most MAX_TRIES sends, and the notifier is idle again.
    #[test]
    fn a_lossy_network_ends_in_one_outcome_per_target(
        fates in proptest::collection::vec((0u8..4, 0u64..20_000), 0..40),
    ) {
        let t0 = Instant::now();
        let targets = ["127.0.0.1:5300", "127.0.0.2:5300"];
        let mut n = notifier(&targets, KeyRing::default(), t0);
        let z = zone("example.com.", 11);
        n.zone_changed(t0, z.origin(), z.soa());
        let mut now = t0;
        let mut in_flight: Vec<(Instant, SocketAddr, Vec<u8>)> = Vec::new();
        let mut sent = std::collections::HashMap::new();
        let mut fates = fates.into_iter();
        let mut events = Vec::new();
        for _ in 0..1000 {
            for (to, request) in sends(&mut n) {
                *sent.entry(to).or_insert(0u32) += 1;
                // 0: lost; 1: answered after a delay; 2: answered twice; 3: answered garbled.
                let (fate, delay_ms) = fates.next().unwrap_or((1, 10));
                let at = now + Duration::from_millis(delay_ms);
                let reply = reply_to(&request, Rcode::NOERROR);
                match fate {
                    0 => {}
                    1 => in_flight.push((at, to, reply)),
                    2 => {
                        in_flight.push((at, to, reply.clone()));
                        in_flight.push((at + Duration::from_millis(1), to, reply));
                    }
                    _ => in_flight.push((at, to, reply[..reply.len() / 2].to_vec())),
                }
            }
            events.extend(std::iter::from_fn(|| n.poll_event()));
            let next_reply = in_flight.iter().map(|(at, _, _)| *at).min();
            let next = match (n.poll_timeout(), next_reply) {
                (None, None) => break,
                (a, b) => a.into_iter().chain(b).min().unwrap(),
            };
            now = now.max(next);
            let (due, later): (Vec<_>, Vec<_>) = in_flight.into_iter().partition(|(at, _, _)| *at <= now);
            in_flight = later;
            for (_, from, bytes) in due {
                n.handle_reply(now, from, &bytes);
            }
            n.handle_timeout(now);
        }
        events.extend(std::iter::from_fn(|| n.poll_event()));
        proptest::prop_assert_eq!(events.len(), 2, "{:?}", events);
        for target in targets {
            let to: SocketAddr = target.parse().unwrap();
            proptest::prop_assert!(sent[&to] >= 1 && sent[&to] <= u32::from(MAX_TRIES));
            let outcomes = events.iter().filter(|e| match e {
                NotifyEvent::Answered { to: t, .. } | NotifyEvent::GaveUp { to: t, .. } => *t == to,
            });
            proptest::prop_assert_eq!(outcomes.count(), 1);
        }
        proptest::prop_assert_eq!((n.pending(), n.poll_timeout()), (0, None));
    }
}
