//! Secondary zones: the `Secondary` machine driven by hand with fake time and a fake
//! primary (SOA timers, transfers cut and hostile, NOTIFY coalescing, IXFR = AXFR), and
//! NOTIFY answered by the server.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use names_core::domain::base::iana::{Class, Opcode, Rcode, Rtype};
use names_core::domain::base::{Message, MessageBuilder, Name, Record, Serial, Ttl};
use names_core::domain::rdata::{AllRecordData, Soa, A};
use names_core::secondary::{
    master_file, Action, Level, Limits, NotifyPolicy, Secondary, SecondaryZone,
};
use names_core::tsig::{verify_request, ClientSigner, Key, KeyRing, Verified};
use names_core::zone::{Cidr, Zone};
use names_core::{Rr, Server, Token};
use names_tests::build::{frame, name, split_frames};
use names_tests::drive::{at, chain, udp_from, SEED};
use proptest::prelude::*;

const ORIGIN: &str = "example.com";
/// SOA timers of the test zone: refresh 60 s, retry 10 s, expire 100 s.
const REFRESH: u64 = 60_000;
const RETRY: u64 = 10_000;
const EXPIRE: u64 = 100_000;

fn primary() -> SocketAddr {
    "127.0.0.1:5300".parse().unwrap()
}

fn soa(serial: u32) -> Rr {
    let data = Soa::new(
        name("ns1.example.com"),
        name("host.example.com"),
        Serial(serial),
        Ttl::from_secs(60),
        Ttl::from_secs(10),
        Ttl::from_secs(100),
        Ttl::from_secs(300),
    );
    Record::new(name(ORIGIN), Class::IN, Ttl::from_secs(300), data.into())
}

fn a(owner: &str, n: u8) -> Rr {
    let data: AllRecordData<Bytes, Name<Bytes>> = A::new(Ipv4Addr::new(192, 0, 2, n)).into();
    Record::new(name(owner), Class::IN, Ttl::from_secs(300), data)
}

/// Version `serial` of the zone: `hosts` are `hN.example.com A 192.0.2.N`.
fn version(hosts: &[u8]) -> Vec<Rr> {
    hosts
        .iter()
        .map(|n| a(&format!("h{n}.example.com"), *n))
        .collect()
}

/// A reply to `query` with `records` in its answer section (and the question unless
/// `bare`).
fn message(query: &[u8], rcode: Rcode, records: &[Rr], bare: bool) -> Vec<u8> {
    let q = Message::from_octets(query).unwrap();
    let mut b = MessageBuilder::new_vec();
    let h = b.header_mut();
    h.set_id(q.header().id());
    h.set_qr(true);
    h.set_opcode(Opcode::QUERY);
    h.set_aa(true);
    h.set_rcode(rcode);
    let mut question = b.question();
    if !bare {
        question.push(q.sole_question().unwrap()).unwrap();
    }
    let mut answer = question.answer();
    for rr in records {
        answer.push(rr).unwrap();
    }
    answer.finish()
}

/// A transfer as TCP frames, `per` records a message (later messages without question).
fn frames(query: &[u8], records: &[Rr], per: usize) -> Vec<Vec<u8>> {
    records
        .chunks(per)
        .enumerate()
        .map(|(i, chunk)| frame(&message(query, Rcode::NOERROR, chunk, i > 0)))
        .collect()
}

fn axfr(serial: u32, hosts: &[u8]) -> Vec<Rr> {
    let mut out = vec![soa(serial)];
    out.extend(version(hosts));
    out.push(soa(serial));
    out
}

/// IXFR steps through `versions` (serial, hosts), the first being the client's.
fn ixfr(versions: &[(u32, &[u8])]) -> Vec<Rr> {
    let last = versions.last().unwrap().0;
    let mut out = vec![soa(last)];
    for pair in versions.windows(2) {
        let ((from, old), (to, new)) = (pair[0], pair[1]);
        let minus = |a: &[u8], b: &[u8]| -> Vec<u8> {
            a.iter().copied().filter(|h| !b.contains(h)).collect()
        };
        out.push(soa(from));
        out.extend(version(&minus(old, new)));
        out.push(soa(to));
        out.extend(version(&minus(new, old)));
    }
    out.push(soa(last));
    out
}

/// The machine with one zone, its first check due at 0 ms.
fn machine(limits: Limits) -> Secondary {
    machine_with(limits, None)
}

fn machine_with(limits: Limits, key: Option<Key>) -> Secondary {
    let zone = SecondaryZone {
        origin: name(ORIGIN),
        primary: primary(),
        key,
    };
    let mut s = Secondary::new(vec![zone], limits, SEED, at(0));
    s.set_unix_time(at(0), UNIX);
    s
}

/// The wall-clock time of `at(0)`.
const UNIX: u64 = 1_800_000_000;

fn drain(s: &mut Secondary) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

/// The SOA query just sent: its token and bytes.
fn soa_query(actions: &[Action]) -> (Token, Vec<u8>) {
    let found = actions.iter().find_map(|a| match a {
        Action::SendUdp { token, to, bytes } if *to == primary() => Some((*token, bytes.clone())),
        _ => None,
    });
    let (token, bytes) = found.unwrap_or_else(|| panic!("an SOA query in {actions:?}"));
    let msg = Message::from_octets(bytes.as_slice()).unwrap();
    let q = msg.sole_question().unwrap();
    assert_eq!(q.qname().to_string(), "example.com");
    assert_eq!(q.qtype(), Rtype::SOA);
    (token, bytes)
}

/// The transfer just asked for: its token, query (unframed) and type.
fn transfer_query(actions: &[Action]) -> (Token, Vec<u8>, Rtype) {
    let found = actions.iter().find_map(|a| match a {
        Action::Connect { token, to, bytes } if *to == primary() => Some((*token, bytes.clone())),
        _ => None,
    });
    let (token, bytes) = found.unwrap_or_else(|| panic!("a transfer in {actions:?}"));
    let (frames, rest) = split_frames(&bytes);
    assert!(!rest && frames.len() == 1, "one framed query");
    let query = frames.into_iter().next().unwrap();
    let qtype = Message::from_octets(query.as_slice())
        .unwrap()
        .sole_question()
        .unwrap()
        .qtype();
    (token, query, qtype)
}

fn served(actions: &[Action]) -> Option<(Arc<Zone>, bool)> {
    actions.iter().find_map(|a| match a {
        Action::Serve { zone, transferred } => Some((zone.clone(), *transferred)),
        _ => None,
    })
}

fn serial_now(s: &Secondary) -> Option<u32> {
    s.status()[0].serial
}

/// Answers the SOA query of `actions` with `serial`, at `now`.
fn answer_soa(s: &mut Secondary, now: Instant, actions: &[Action], serial: u32) -> Vec<Action> {
    let (token, query) = soa_query(actions);
    let reply = message(&query, Rcode::NOERROR, &[soa(serial)], false);
    s.handle_udp(now, token, primary(), &reply);
    drain(s)
}

/// Feeds a whole transfer, message by message.
fn feed(s: &mut Secondary, now: Instant, token: Token, frames: &[Vec<u8>]) -> Vec<Action> {
    let mut out = Vec::new();
    for f in frames {
        s.handle_tcp(now, token, f);
        out.extend(drain(s));
    }
    out
}

/// A machine serving serial 1 (hosts 1, 2, 3) after its first AXFR at 0 ms.
fn serving_v1(limits: Limits) -> Secondary {
    let mut s = machine(limits);
    s.handle_timeout(at(0));
    let actions = drain(&mut s);
    let actions = answer_soa(&mut s, at(1), &actions, 1);
    let (token, query, qtype) = transfer_query(&actions);
    assert_eq!(qtype, Rtype::AXFR, "no version yet: AXFR");
    let done = feed(
        &mut s,
        at(2),
        token,
        &frames(&query, &axfr(1, &[1, 2, 3]), 2),
    );
    let (zone, transferred) = served(&done).expect("served");
    assert!(transferred);
    assert_eq!((zone.serial(), zone.record_count()), (1, 4));
    assert!(done.contains_close(token));
    s
}

trait Closes {
    fn contains_close(&self, token: Token) -> bool;
}

impl Closes for Vec<Action> {
    fn contains_close(&self, token: Token) -> bool {
        self.iter()
            .any(|a| matches!(a, Action::Close { token: t } if *t == token))
    }
}

fn warned(actions: &[Action], words: &str) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Log { level: Level::Warn, line } if line.contains(words)))
}

#[test]
fn refresh_retry_expire_and_back() {
    let mut s = serving_v1(Limits::default());
    // Refresh: the next check at 2 ms + REFRESH.
    assert_eq!(s.poll_timeout(), Some(at(2 + REFRESH)));
    s.handle_timeout(at(2 + REFRESH - 1));
    assert!(drain(&mut s).is_empty(), "nothing before the refresh time");
    s.handle_timeout(at(2 + REFRESH));
    let actions = drain(&mut s);
    let up_to_date = answer_soa(&mut s, at(3 + REFRESH), &actions, 1);
    assert!(
        served(&up_to_date).is_none()
            && !up_to_date
                .iter()
                .any(|a| matches!(a, Action::Connect { .. }))
    );
    // The primary goes silent: each check times out after 3 s, the next waits RETRY,
    // until EXPIRE after the last refresh.
    let refreshed = 3 + REFRESH;
    let mut checks_at = Vec::new();
    let mut last_check = Vec::new();
    let mut expired_at = None;
    for _ in 0..50 {
        let t = s.poll_timeout().unwrap();
        s.handle_timeout(t);
        let actions = drain(&mut s);
        let ms = (t - at(0)).as_millis() as u64;
        if actions.iter().any(|a| matches!(a, Action::SendUdp { .. })) {
            checks_at.push(ms);
            last_check = actions.clone();
        }
        if actions.iter().any(|a| matches!(a, Action::Expire { .. })) {
            expired_at = Some(ms);
            break;
        }
        assert_eq!(serial_now(&s), Some(1), "the old data stays");
    }
    assert_eq!(
        expired_at,
        Some(refreshed + EXPIRE),
        "expired EXPIRE after the last refresh"
    );
    let expected: Vec<u64> = (0..4)
        .map(|n| refreshed + REFRESH + n * (3000 + RETRY))
        .collect();
    assert_eq!(
        checks_at, expected,
        "refresh, then a retry after each timeout"
    );
    let now = expired_at.unwrap();
    assert!(!s.status()[0].served);
    assert_eq!(s.stats().expirations, 1);
    // Back: the check in flight, answered with the same serial, serves the data again.
    let back = answer_soa(&mut s, at(now + 10), &last_check, 1);
    let (zone, transferred) = served(&back).expect("served again");
    assert!(!transferred && zone.serial() == 1);
    assert!(s.status()[0].served);
}

#[test]
fn before_the_first_transfer_retries_and_never_serves() {
    let mut s = machine(Limits::default());
    s.handle_timeout(at(0));
    let (token, _) = soa_query(&drain(&mut s));
    s.handle_closed(at(5), token);
    let actions = drain(&mut s);
    assert!(served(&actions).is_none());
    assert!(warned(&actions, "not served yet"), "{actions:?}");
    assert_eq!(
        s.poll_timeout(),
        Some(at(5) + Limits::default().first_retry)
    );
    assert!(!s.status()[0].served);
}

#[test]
fn a_transfer_cut_at_every_message_keeps_the_old_data() {
    let v2 = axfr(2, &[1, 2, 4, 5, 6]);
    for cut in 0..v2.len() {
        for mid_frame in [false, true] {
            let mut s = serving_v1(Limits::default());
            s.handle_timeout(at(2 + REFRESH));
            let actions = drain(&mut s);
            // The primary refuses IXFR, so the transfer is an AXFR of one record a message.
            let actions = answer_soa(&mut s, at(3 + REFRESH), &actions, 2);
            let (token, query, qtype) = transfer_query(&actions);
            assert_eq!(qtype, Rtype::IXFR, "a version is held: IXFR first");
            s.handle_tcp(
                at(4 + REFRESH),
                token,
                &frame(&message(&query, Rcode::NOTIMP, &[], false)),
            );
            let (token, query, qtype) = transfer_query(&drain(&mut s));
            assert_eq!(qtype, Rtype::AXFR, "NOTIMP: AXFR next");
            let all = frames(&query, &v2, 1);
            let mut actions = feed(&mut s, at(5 + REFRESH), token, &all[..cut]);
            if mid_frame {
                s.handle_tcp(at(5 + REFRESH), token, &all[cut][..all[cut].len() / 2]);
            }
            s.handle_closed(at(6 + REFRESH), token);
            actions.extend(drain(&mut s));
            assert!(served(&actions).is_none(), "cut at {cut}: nothing served");
            assert!(warned(&actions, "closed the connection"), "{actions:?}");
            assert_eq!(serial_now(&s), Some(1), "cut at {cut}");
            assert!(s.status()[0].served);
            assert_eq!(s.stats().transfers_failed, 1);
            assert_eq!(
                s.poll_timeout(),
                Some(at(6 + REFRESH + RETRY)),
                "retry timer"
            );
        }
    }
}

/// Runs the check of a machine serving v1 against a primary at serial 2 up to the
/// AXFR it asks for (the IXFR is refused): its token and query.
fn axfr_of_v2(s: &mut Secondary) -> (Token, Vec<u8>) {
    s.handle_timeout(at(2 + REFRESH));
    let actions = drain(s);
    let actions = answer_soa(s, at(3 + REFRESH), &actions, 2);
    let (token, query, _) = transfer_query(&actions);
    s.handle_tcp(
        at(4 + REFRESH),
        token,
        &frame(&message(&query, Rcode::NOTIMP, &[], false)),
    );
    let (token, query, qtype) = transfer_query(&drain(s));
    assert_eq!(qtype, Rtype::AXFR);
    (token, query)
}

#[test]
fn a_hostile_primary_changes_nothing() {
    let outside = a("www.example.org", 9);
    let below = Record::new(
        name("sub.example.com"),
        Class::IN,
        Ttl::from_secs(300),
        soa(2).data().clone(),
    );
    let cases: Vec<(&str, Vec<Rr>, &str)> = vec![
        (
            "record outside the zone",
            vec![soa(2), a("h1.example.com", 1), outside, soa(2)],
            "outside the zone",
        ),
        (
            "wrong closing SOA",
            vec![soa(2), a("h1.example.com", 1), soa(3)],
            "closing SOA",
        ),
        (
            "SOA below the apex",
            vec![soa(2), below, soa(2)],
            "below the apex",
        ),
        (
            "no SOA first",
            vec![a("h1.example.com", 1), soa(2)],
            "does not start with",
        ),
        (
            "older serial",
            vec![soa(0), a("h1.example.com", 1), soa(0)],
            "not newer",
        ),
    ];
    for (what, records, words) in cases {
        let mut s = serving_v1(Limits::default());
        let (token, query) = axfr_of_v2(&mut s);
        let actions = feed(&mut s, at(5 + REFRESH), token, &frames(&query, &records, 2));
        assert!(served(&actions).is_none(), "{what}");
        assert!(warned(&actions, words), "{what}: {actions:?}");
        assert!(
            actions.contains_close(token),
            "{what}: the connection is closed"
        );
        assert_eq!(serial_now(&s), Some(1), "{what}");
    }
    // Garbage: an empty frame, a frame that is not DNS, another ID, TC, a SERVFAIL.
    type Reply = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let mut garbage: Vec<(&str, Reply)> = vec![
        ("empty frame", Box::new(|_| vec![0, 0])),
        ("not DNS", Box::new(|_| frame(b"\x01\x02\x03"))),
        (
            "other ID",
            Box::new(|q| {
                let mut m = message(q, Rcode::NOERROR, &[soa(2)], false);
                m[0] ^= 0xff;
                frame(&m)
            }),
        ),
        (
            "TC",
            Box::new(|q| {
                let mut m = message(q, Rcode::NOERROR, &[soa(2)], false);
                m[2] |= 0x02;
                frame(&m)
            }),
        ),
        (
            "SERVFAIL",
            Box::new(|q| frame(&message(q, Rcode::SERVFAIL, &[], false))),
        ),
        (
            "other question",
            Box::new(|q| {
                let other = names_tests::build::query("example.org", Rtype::AXFR, 0, false, None);
                let mut m = message(&other, Rcode::NOERROR, &[soa(2)], false);
                m[..2].copy_from_slice(&q[..2]);
                frame(&m)
            }),
        ),
    ];
    for (what, make) in garbage.drain(..) {
        let mut s = serving_v1(Limits::default());
        let (token, query) = axfr_of_v2(&mut s);
        s.handle_tcp(at(5 + REFRESH), token, &make(&query));
        let actions = drain(&mut s);
        assert!(served(&actions).is_none(), "{what}");
        assert!(actions.contains_close(token), "{what}: {actions:?}");
        assert_eq!(serial_now(&s), Some(1), "{what}");
    }
}

#[test]
fn an_endless_transfer_is_cut_at_max_transfer_bytes() {
    let limits = Limits {
        max_transfer_bytes: 100_000,
        ..Limits::default()
    };
    let mut s = serving_v1(limits);
    let (token, query) = axfr_of_v2(&mut s);
    let first = frame(&message(&query, Rcode::NOERROR, &[soa(2)], false));
    s.handle_tcp(at(5 + REFRESH), token, &first);
    let more = frame(&message(
        &query,
        Rcode::NOERROR,
        &version(&[1, 2, 3, 4, 5, 6, 7, 8]),
        true,
    ));
    let mut sent = first.len();
    let mut actions = Vec::new();
    for _ in 0..100_000 {
        s.handle_tcp(at(6 + REFRESH), token, &more);
        sent += more.len();
        actions = drain(&mut s);
        if !actions.is_empty() {
            break;
        }
    }
    assert!(
        warned(&actions, "--max-transfer-bytes 100000"),
        "{actions:?}"
    );
    assert!(
        sent <= 100_000 + more.len(),
        "cut within one chunk of the bound: {sent}"
    );
    assert!(actions.contains_close(token));
    assert_eq!(serial_now(&s), Some(1));
    // A slow one is cut by the time budget.
    let mut s = serving_v1(Limits::default());
    let (token, query) = axfr_of_v2(&mut s);
    s.handle_tcp(
        at(5 + REFRESH),
        token,
        &frame(&message(&query, Rcode::NOERROR, &[soa(2)], false)),
    );
    assert!(drain(&mut s).is_empty());
    s.handle_timeout(at(4 + REFRESH) + Limits::default().transfer_timeout);
    let actions = drain(&mut s);
    assert!(warned(&actions, "took longer"), "{actions:?}");
    assert!(actions.contains_close(token));
}

#[test]
fn a_primary_going_back_in_serial_is_ignored_and_logged() {
    let mut s = serving_v1(Limits::default());
    s.handle_timeout(at(2 + REFRESH));
    let actions = drain(&mut s);
    // Serial 0 is older than 1 (RFC 1982); so is 1 + 2^31 + 1.
    for (n, older) in [0u32, (1u32 << 31) + 2].into_iter().enumerate() {
        let checked = if n == 0 {
            answer_soa(&mut s, at(3 + REFRESH), &actions, older)
        } else {
            s.handle_timeout(at(3 + 2 * REFRESH));
            let again = drain(&mut s);
            answer_soa(&mut s, at(4 + 2 * REFRESH), &again, older)
        };
        assert!(
            !checked.iter().any(|a| matches!(a, Action::Connect { .. })),
            "no transfer"
        );
        assert!(warned(&checked, "older than ours"), "{checked:?}");
        assert_eq!(serial_now(&s), Some(1));
    }
    // A serial 2^31 - 1 ahead is newer: a transfer starts.
    s.handle_timeout(at(4 + 3 * REFRESH));
    let again = drain(&mut s);
    let newer = answer_soa(&mut s, at(5 + 3 * REFRESH), &again, 1 + (1 << 31) - 1);
    assert!(newer.iter().any(|a| matches!(a, Action::Connect { .. })));
}

#[test]
fn notifies_are_coalesced() {
    let mut s = serving_v1(Limits::default());
    // Idle: a NOTIFY starts a check at once.
    s.notify(at(100), &name("Example.COM"));
    let actions = drain(&mut s);
    soa_query(&actions);
    // Duplicates while the check runs: one more check after it, not one each.
    for n in 0..10 {
        s.notify(at(101 + n), &name(ORIGIN));
    }
    assert!(drain(&mut s).is_empty(), "nothing new while a check runs");
    let after = answer_soa(&mut s, at(200), &actions, 1);
    let checks = after
        .iter()
        .filter(|a| matches!(a, Action::SendUdp { .. }))
        .count();
    assert_eq!(checks, 1, "one check after the duplicates: {after:?}");
    let after2 = answer_soa(&mut s, at(201), &after, 1);
    assert!(
        !after2.iter().any(|a| matches!(a, Action::SendUdp { .. })),
        "and no more"
    );
    // A NOTIFY for another zone does nothing.
    s.notify(at(300), &name("example.org"));
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.stats().notifies, 11, "those for its zones");
    assert_eq!(s.stats().checks, 3);
}

#[test]
fn soa_over_tcp_after_tc() {
    let mut s = machine(Limits::default());
    s.handle_timeout(at(0));
    let actions = drain(&mut s);
    let (token, query) = soa_query(&actions);
    let mut tc = message(&query, Rcode::NOERROR, &[], false);
    tc[2] |= 0x02;
    // A reply from elsewhere is ignored.
    s.handle_udp(at(1), token, "127.0.0.1:5301".parse().unwrap(), &tc);
    assert!(drain(&mut s).is_empty());
    s.handle_udp(at(1), token, primary(), &tc);
    let actions = drain(&mut s);
    assert!(actions.contains_close(token));
    let (tcp, framed) = actions
        .iter()
        .find_map(|a| match a {
            Action::Connect { token, bytes, .. } => Some((*token, bytes.clone())),
            _ => None,
        })
        .expect("the SOA asked again over TCP");
    assert_eq!(&framed[2..], &query[..]);
    s.handle_tcp(
        at(2),
        tcp,
        &frame(&message(&query, Rcode::NOERROR, &[soa(7)], false)),
    );
    let (_, _, qtype) = transfer_query(&drain(&mut s));
    assert_eq!(qtype, Rtype::AXFR);
}

/// Applies `steps` by IXFR to a machine serving `v1` and returns the zone served, as
/// master-file lines (sorted).
fn by_ixfr(v1: &[u8], steps: &[(u32, &[u8])]) -> Option<Vec<String>> {
    let mut s = machine(Limits::default());
    s.handle_timeout(at(0));
    let actions = drain(&mut s);
    let actions = answer_soa(&mut s, at(1), &actions, 1);
    let (token, query, _) = transfer_query(&actions);
    feed(&mut s, at(2), token, &frames(&query, &axfr(1, v1), 3));
    s.notify(at(3), &name(ORIGIN));
    let actions = drain(&mut s);
    let last = steps.last().unwrap().0;
    let actions = answer_soa(&mut s, at(4), &actions, last);
    let (token, query, qtype) = transfer_query(&actions);
    assert_eq!(qtype, Rtype::IXFR);
    let mut versions = vec![(1, v1)];
    versions.extend_from_slice(steps);
    let done = feed(&mut s, at(5), token, &frames(&query, &ixfr(&versions), 3));
    served(&done).map(|(zone, _)| lines(&zone))
}

fn lines(zone: &Zone) -> Vec<String> {
    let mut lines: Vec<String> = master_file(zone)
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// The zone a full transfer of `hosts` at `serial` gives.
fn by_axfr(serial: u32, hosts: &[u8]) -> Vec<String> {
    let mut s = machine(Limits::default());
    s.handle_timeout(at(0));
    let actions = drain(&mut s);
    let actions = answer_soa(&mut s, at(1), &actions, serial);
    let (token, query, _) = transfer_query(&actions);
    let done = feed(
        &mut s,
        at(2),
        token,
        &frames(&query, &axfr(serial, hosts), 4),
    );
    lines(&served(&done).expect("served").0)
}

#[test]
fn ixfr_that_deletes_what_is_not_there_falls_back_to_axfr() {
    let mut s = serving_v1(Limits::default());
    s.handle_timeout(at(2 + REFRESH));
    let actions = drain(&mut s);
    let actions = answer_soa(&mut s, at(3 + REFRESH), &actions, 2);
    let (token, query, qtype) = transfer_query(&actions);
    assert_eq!(qtype, Rtype::IXFR);
    let bad = ixfr(&[(1, &[1, 2, 3, 9]), (2, &[1])]);
    let actions = feed(&mut s, at(4 + REFRESH), token, &frames(&query, &bad, 4));
    assert!(warned(&actions, "does not have"), "{actions:?}");
    let (_, _, qtype) = transfer_query(&actions);
    assert_eq!(qtype, Rtype::AXFR);
    assert_eq!(serial_now(&s), Some(1));
}

#[test]
fn ixfr_answered_with_the_whole_zone_is_taken_as_axfr() {
    let mut s = serving_v1(Limits::default());
    s.handle_timeout(at(2 + REFRESH));
    let actions = drain(&mut s);
    let actions = answer_soa(&mut s, at(3 + REFRESH), &actions, 2);
    let (token, query, _) = transfer_query(&actions);
    let done = feed(
        &mut s,
        at(4 + REFRESH),
        token,
        &frames(&query, &axfr(2, &[7, 8]), 2),
    );
    let (zone, _) = served(&done).expect("served");
    assert_eq!(lines(&zone), by_axfr(2, &[7, 8]));
    // And an IXFR answered with the SOA alone: up to date, nothing served.
    s.notify(at(5 + REFRESH), &name(ORIGIN));
    let actions = drain(&mut s);
    let actions = answer_soa(&mut s, at(6 + REFRESH), &actions, 3);
    let (token, query, _) = transfer_query(&actions);
    let done = feed(
        &mut s,
        at(7 + REFRESH),
        token,
        &[frame(&message(&query, Rcode::NOERROR, &[soa(2)], false))],
    );
    assert!(served(&done).is_none() && done.contains_close(token));
    assert_eq!(serial_now(&s), Some(2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// IXFR applied (in one to three steps) gives exactly the zone an AXFR of the last
    /// version gives.
    #[test]
    fn ixfr_applied_equals_axfr(
        v1 in proptest::collection::btree_set(1u8..40, 0..20),
        mids in proptest::collection::vec(proptest::collection::btree_set(1u8..40, 0..20), 1..4),
    ) {
        let v1: Vec<u8> = v1.into_iter().collect();
        let mids: Vec<Vec<u8>> = mids.into_iter().map(|m| m.into_iter().collect()).collect();
        let steps: Vec<(u32, &[u8])> = mids.iter().enumerate().map(|(i, m)| (i as u32 + 2, m.as_slice())).collect();
        let last = steps.last().unwrap();
        prop_assert_eq!(by_ixfr(&v1, &steps), Some(by_axfr(last.0, last.1)));
    }
}

/// A server taking NOTIFY for example.com from its primary and from 10.0.0.0/8.
fn notify_server() -> Server {
    let mut server = Server::new(names_core::Config::default(), chain(&[]), SEED);
    let zone = SecondaryZone {
        origin: name(ORIGIN),
        primary: primary(),
        key: None,
    };
    server.accept_notify(NotifyPolicy::new(
        &[zone],
        vec![Cidr::parse("10.0.0.0/8").unwrap()],
    ));
    server
}

fn notify_msg(zone: &str, id: u16) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(id);
    b.header_mut().set_opcode(Opcode::NOTIFY);
    b.header_mut().set_aa(true);
    let mut q = b.question();
    q.push((name(zone), Rtype::SOA)).unwrap();
    q.finish()
}

/// The rcode of the server's answer to `msg` from the primary's address (none: nothing
/// sent), and whether it passed the NOTIFY on.
fn answer_of(server: &mut Server, msg: &[u8]) -> Option<(Rcode, bool)> {
    server.handle_client(at(0), udp_from(primary()), msg);
    let actions: Vec<_> = std::iter::from_fn(|| server.poll_action()).collect();
    let notified = actions
        .iter()
        .any(|a| matches!(a, names_core::Action::Notified { .. }));
    let reply = actions.iter().find_map(|a| match a {
        names_core::Action::Reply { bytes, .. } => Some(bytes.clone()),
        _ => None,
    })?;
    Some((
        Message::from_octets(reply).unwrap().header().rcode(),
        notified,
    ))
}

#[test]
fn notify_is_answered_and_passed_on_only_from_the_primary_or_the_acl() {
    let cases = [
        ("127.0.0.1:40000", ORIGIN, Rcode::NOERROR, true),
        ("10.1.2.3:53", "EXAMPLE.com", Rcode::NOERROR, true),
        ("127.0.0.2:53", ORIGIN, Rcode::REFUSED, false),
        ("127.0.0.1:53", "example.org", Rcode::NOTAUTH, false),
    ];
    for (from, zone, rcode, passed) in cases {
        let mut server = notify_server();
        let from: SocketAddr = from.parse().unwrap();
        server.handle_client(at(0), udp_from(from), &notify_msg(zone, 77));
        let actions: Vec<_> = std::iter::from_fn(|| server.poll_action()).collect();
        let reply = actions
            .iter()
            .find_map(|a| match a {
                names_core::Action::Reply { bytes, .. } => Some(bytes.clone()),
                _ => None,
            })
            .expect("a reply");
        let msg = Message::from_octets(reply.as_slice()).unwrap();
        let h = msg.header();
        assert_eq!(
            (h.id(), h.qr(), h.opcode(), h.rcode()),
            (77, true, Opcode::NOTIFY, rcode),
            "{from} {zone}"
        );
        assert_eq!(h.aa(), rcode == Rcode::NOERROR);
        let echoed = msg.sole_question().unwrap().qname().to_string();
        assert_eq!(echoed, zone, "question echoed");
        let notified = actions.iter().any(|a| matches!(a, names_core::Action::Notified { zone: z, from: f } if *z == name(ORIGIN) && *f == from));
        assert_eq!(notified, passed, "{from} {zone}: {actions:?}");
    }
    // Without a policy: NOTIMP, as any opcode but QUERY; a NOTIFY response: dropped; no
    // question: FORMERR.
    let mut plain = Server::new(names_core::Config::default(), chain(&[]), SEED);
    let answered = answer_of(&mut plain, &notify_msg(ORIGIN, 1));
    assert_eq!(answered, Some((Rcode::NOTIMP, false)));
    let mut server = notify_server();
    let mut response = notify_msg(ORIGIN, 2);
    response[2] |= 0x80;
    assert_eq!(
        answer_of(&mut server, &response),
        None,
        "a response is dropped"
    );
    let mut bare = notify_msg(ORIGIN, 3);
    bare.truncate(12);
    bare[5] = 0;
    assert_eq!(answer_of(&mut server, &bare), Some((Rcode::FORMERR, false)));
    assert!(server.poll_action().is_none());
}

#[test]
fn saved_zones_round_trip_through_the_master_file() {
    let lines_before = by_axfr(5, &[1, 2, 3]);
    let mut s = machine(Limits::default());
    s.handle_timeout(at(0));
    let actions = drain(&mut s);
    let actions = answer_soa(&mut s, at(1), &actions, 5);
    let (token, query, _) = transfer_query(&actions);
    let done = feed(
        &mut s,
        at(2),
        token,
        &frames(&query, &axfr(5, &[1, 2, 3]), 4),
    );
    let zone = served(&done).unwrap().0;
    let text = master_file(&zone);
    let loaded = names_core::zone::load_zone("saved", &text, &mut |_, _| Err("no".into())).unwrap();
    assert_eq!(lines(&loaded), lines_before);
    // Preloaded into a fresh machine: served at once, not as transferred, then checked.
    let mut fresh = machine(Limits::default());
    assert!(fresh.preload(at(0), loaded));
    let actions = drain(&mut fresh);
    let (zone, transferred) = served(&actions).expect("served at once");
    assert!(!transferred && zone.serial() == 5);
    fresh.handle_timeout(at(0));
    let actions = drain(&mut fresh);
    let up = answer_soa(&mut fresh, at(1), &actions, 5);
    assert!(
        !up.iter().any(|a| matches!(a, Action::Connect { .. })),
        "same serial: no transfer"
    );
}

fn key() -> Key {
    Key::parse("xfr:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQ=").unwrap()
}

/// A primary's signer for `query`, checked to be signed with `key()`.
fn signer_of(query: &[u8]) -> names_core::tsig::ServerSigner {
    let keys = KeyRing::from_keys(vec![key()]).unwrap();
    match verify_request(&keys, query, UNIX) {
        Verified::Signed(signer) => signer,
        other => panic!("the query is not signed with the key: {other:?}"),
    }
}

#[test]
fn tsig_signs_the_queries_and_every_transfer_message_must_verify() {
    for forged in [None, Some(0), Some(1), Some(2)] {
        let mut s = machine_with(Limits::default(), Some(key()));
        s.handle_timeout(at(0));
        let actions = drain(&mut s);
        let (token, query) = soa_query(&actions);
        let mut signer = signer_of(&query);
        let mut reply = message(&query, Rcode::NOERROR, &[soa(1)], false);
        signer.sign(&mut reply, UNIX).unwrap();
        s.handle_udp(at(1), token, primary(), &reply);
        let (token, query, _) = transfer_query(&drain(&mut s));
        let mut signer = signer_of(&query);
        let records = axfr(1, &[1, 2, 3]);
        let messages: Vec<Vec<u8>> = records
            .chunks(2)
            .enumerate()
            .map(|(i, chunk)| {
                let mut m = message(&query, Rcode::NOERROR, chunk, i > 0);
                signer.sign(&mut m, UNIX).unwrap();
                if forged == Some(i) {
                    let last = m.len() - 10;
                    m[last] ^= 1; // inside the MAC
                }
                frame(&m)
            })
            .collect();
        let done = feed(&mut s, at(2), token, &messages);
        match forged {
            None => assert_eq!(served(&done).expect("served").0.serial(), 1),
            Some(i) => {
                assert!(served(&done).is_none(), "message {i} forged");
                assert!(warned(&done, "TSIG"), "{done:?}");
            }
        }
    }
    // An unsigned SOA reply is not taken either.
    let mut s = machine_with(Limits::default(), Some(key()));
    s.handle_timeout(at(0));
    let actions = drain(&mut s);
    let after = answer_soa(&mut s, at(1), &actions, 1);
    assert!(warned(&after, "TSIG"), "{after:?}");
    assert!(!after.iter().any(|a| matches!(a, Action::Connect { .. })));
}

#[test]
fn a_zone_with_a_key_takes_only_notify_signed_with_it() {
    let zone = SecondaryZone {
        origin: name(ORIGIN),
        primary: primary(),
        key: Some(key()),
    };
    let mut server = Server::new(names_core::Config::default(), chain(&[]), SEED);
    server.set_unix_time(at(0), UNIX);
    server.accept_notify(NotifyPolicy::new(&[zone], Vec::new()));
    assert_eq!(
        answer_of(&mut server, &notify_msg(ORIGIN, 1)),
        Some((Rcode::NOTAUTH, false)),
        "unsigned"
    );
    let mut signed = notify_msg(ORIGIN, 2);
    let mut client = ClientSigner::sign(&key(), &mut signed, UNIX).unwrap();
    server.handle_client(at(0), udp_from(primary()), &signed);
    let actions: Vec<_> = std::iter::from_fn(|| server.poll_action()).collect();
    assert!(actions
        .iter()
        .any(|a| matches!(a, names_core::Action::Notified { .. })));
    let mut reply = actions
        .iter()
        .find_map(|a| match a {
            names_core::Action::Reply { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .unwrap();
    client
        .verify(&mut reply, UNIX)
        .expect("the answer is signed with the key");
    let other = Key::parse("xfr:hmac-sha256:b3RoZXItb3RoZXItb3RoZXI=").unwrap();
    let mut forged = notify_msg(ORIGIN, 3);
    ClientSigner::sign(&other, &mut forged, UNIX).unwrap();
    assert_eq!(
        answer_of(&mut server, &forged),
        Some((Rcode::NOTAUTH, false)),
        "another secret: BADSIG"
    );
}

#[test]
fn unavailable_zones_get_servfail_unless_a_zone_below_holds_the_name() {
    use names_core::secondary::Unavailable;
    use names_core::zone::{load_zone, Snapshot, ZoneSet};
    use names_core::Chain;
    let below = "sub.example.com. 300 IN SOA ns1 host 1 60 10 100 300\nwww 300 A 192.0.2.9\n";
    let below = load_zone("sub", below, &mut |_, _| Err("no".into())).unwrap();
    let zones = Snapshot::new(ZoneSet::new(vec![below]).unwrap());
    let origins = Snapshot::new(vec![name(ORIGIN)]);
    let chain = Chain::new()
        .with(Unavailable::new(origins.clone(), zones.clone()))
        .with(names_core::zone::ZoneResolver::new(zones));
    let mut server = Server::new(names_core::Config::default(), chain, SEED);
    let rcode = |server: &mut Server, qname: &str| {
        let q = names_tests::build::query(qname, Rtype::A, 9, false, None);
        server.handle_client(at(0), udp_from(primary()), &q);
        let Some(names_core::Action::Reply { bytes, .. }) = server.poll_action() else {
            panic!("a reply")
        };
        Message::from_octets(bytes).unwrap().header().rcode()
    };
    assert_eq!(rcode(&mut server, "www.example.com"), Rcode::SERVFAIL);
    assert_eq!(rcode(&mut server, "EXAMPLE.com"), Rcode::SERVFAIL);
    assert_eq!(
        rcode(&mut server, "www.sub.example.com"),
        Rcode::NOERROR,
        "served below"
    );
    assert_eq!(
        rcode(&mut server, "example.org"),
        Rcode::REFUSED,
        "not ours"
    );
    // Served again: the list is emptied, the name passes on.
    origins.store(Vec::new());
    assert_eq!(rcode(&mut server, "www.example.com"), Rcode::REFUSED);
}

#[test]
fn master_files_written_load_back_to_the_same_records() {
    let text = r#"example.com. 300 IN SOA ns1 host 7 60 10 100 300
@ NS ns1
ns1 A 192.0.2.1
v6 AAAA 2001:db8::1
txt TXT "two words" "a \"quoted\" one" "semi;colon"
@ MX 10 mail
_sip._tcp SRV 10 20 5060 sip
@ CAA 0 issue "ca.example"
odd TYPE65280 \# 3 010203
alias CNAME www
ptr PTR www.example.org.
@ HINFO "cpu" "os"
_x._udp SRV 0 0 53 .
empty TYPE65281 \# 0
"#;
    let zone = names_core::zone::load_zone("t", text, &mut |_, _| Err("no".into())).unwrap();
    let written = master_file(&zone);
    let again = names_core::zone::load_zone("saved", &written, &mut |_, _| Err("no".into()))
        .unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert_eq!(lines(&again), lines(&zone), "{written}");
    assert_eq!(again.record_count(), zone.record_count());
}

/// Days of simulated time in milliseconds of real time: a primary that changes its zone
/// now and then, is down for hours at a time, and answers with IXFR or the whole zone.
/// At every step the zone served is the primary's of some moment, never older than what
/// was served before, served exactly while refreshed within EXPIRE.
#[test]
fn days_of_refreshes_outages_and_changes_in_simulated_time() {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
    let mut s = machine(Limits::default());
    let mut now = at(0);
    let end = at(0) + std::time::Duration::from_secs(4 * 24 * 3600);
    // The primary: its versions (serial -> hosts), and when it is down until.
    let mut versions: Vec<(u32, Vec<u8>)> = vec![(1, vec![1, 2, 3])];
    let mut down_until = at(0);
    let mut last_refreshed: Option<Instant> = None;
    let mut served_serial: Option<u32> = None;
    let (mut transfers, mut outages, mut expiries) = (0, 0, 0);
    let mut steps = 0;
    s.handle_timeout(now);
    let mut pending = drain(&mut s);
    while now < end {
        steps += 1;
        assert!(steps < 100_000, "bounded");
        // The primary changes now and then, and sometimes goes down for up to 3 minutes.
        if rng.next_u32() % 20 == 0 {
            let (serial, hosts) = versions.last().unwrap().clone();
            let mut next = hosts.clone();
            next.retain(|_| rng.next_u32() % 3 != 0);
            next.push((rng.next_u32() % 40) as u8 + 1);
            next.sort();
            next.dedup();
            versions.push((serial + 1, next));
        }
        if rng.next_u32() % 50 == 0 && now >= down_until {
            down_until = now + std::time::Duration::from_secs(u64::from(rng.next_u32() % 180));
            outages += 1;
        }
        let up = now >= down_until;
        let (serial, hosts) = versions.last().unwrap().clone();
        for action in std::mem::take(&mut pending) {
            match action {
                Action::SendUdp { token, bytes, .. } if up => {
                    if served_or_held(&s) == Some(serial) {
                        last_refreshed = Some(now); // up to date: a refresh
                    }
                    let reply = message(&bytes, Rcode::NOERROR, &[soa(serial)], false);
                    s.handle_udp(now, token, primary(), &reply);
                }
                Action::Connect { token, bytes, .. } if up => {
                    let query = &bytes[2..];
                    let msg = Message::from_octets(query).unwrap();
                    let asked = msg.sole_question().unwrap().qtype();
                    let records = match (asked, served_or_held(&s)) {
                        (Rtype::IXFR, Some(from)) if rng.next_u32() % 2 == 0 => {
                            let steps: Vec<(u32, &[u8])> = versions
                                .iter()
                                .filter(|(v, _)| *v >= from)
                                .map(|(v, h)| (*v, h.as_slice()))
                                .collect();
                            ixfr(&steps)
                        }
                        _ => axfr(serial, &hosts),
                    };
                    s.handle_tcp(now, token, &frames(query, &records, 3).concat());
                }
                Action::Serve { zone, transferred } => {
                    if transferred {
                        transfers += 1;
                        let expected = versions.iter().find(|(v, _)| *v == zone.serial());
                        let (v, h) = expected.expect("a version the primary had");
                        assert_eq!(lines(&zone), by_axfr(*v, h), "serial {v}");
                    }
                    if let Some(before) = served_serial {
                        assert!(zone.serial() >= before, "never older");
                    }
                    served_serial = Some(zone.serial());
                    last_refreshed = Some(now);
                }
                Action::Expire { .. } => {
                    expiries += 1;
                    let refreshed = last_refreshed.expect("served before");
                    assert!(
                        now - refreshed >= std::time::Duration::from_secs(100),
                        "expired early"
                    );
                }
                _ => {}
            }
        }
        let mut produced = drain(&mut s);
        if produced.is_empty() {
            let Some(t) = s.poll_timeout() else { break };
            now = t.max(now);
            s.handle_timeout(now);
            produced = drain(&mut s);
        }
        if let Some(refreshed) = last_refreshed {
            if now - refreshed < std::time::Duration::from_secs(100) {
                assert!(s.status()[0].served, "served within EXPIRE of a refresh");
            }
        }
        pending = produced;
    }
    eprintln!("{steps} steps, {transfers} transfers, {outages} outages, {expiries} expiries, serial {served_serial:?}");
    assert!(
        transfers > 10 && outages > 10,
        "the run saw changes and outages"
    );
    assert!(s.stats().transfers_ok as usize == transfers);
}

/// The serial of the data the machine holds.
fn served_or_held(s: &Secondary) -> Option<u32> {
    s.status()[0].serial
}
