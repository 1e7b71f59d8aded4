//! Unbound's forwarding and RRset-cache scenarios (NLnetLabs/unbound, `testdata/fwd_*.rpl`
//! and `testdata/rrset_*.rpl`), reproduced through the real binary: the same upstream
//! replies, the same client queries in the same order, the same expected client replies.
//! Each test names the scenario it mirrors, its Unbound configuration and the `names`
//! flags that match it. Unbound forwards to `216.0.0.1`; here a fake upstream on loopback
//! stands in for it.
//!
//! Scenarios not reproduced, and why:
//! * DNSSEC validation and the `.tdir` ones (real-network shell tests: capsid, EDNS
//!   probing, TCP and UDP transports, which other tests cover).
//! * `fwd_any`: Unbound answers `ANY` from its RRset cache; no such synthesis is asked of
//!   `names` (it forwards `ANY`).
//! * `fwd_droptoomany`, `fwd_jostle`, `fwd_jostle_out`, `fwd_two`: Unbound's
//!   request-list jostling (`num-queries-per-thread`); `names` has its own in-flight
//!   limits, tested elsewhere.
//! * `fwd_name_lookup` (forward-host names), `fwd_no_cache` (per-zone `no-cache`):
//!   options `names` does not have.
//! * `rrset_use_cached`: needs serve-expired with a fixed reply TTL and EDE 3.
//! * `fwd_minimal` step 31 (a cache-snooping referral to an RD=0 query under
//!   `allow_snoop`): `names` has no snooping ACL.

use std::thread::sleep;
use std::time::Duration;

use names_tests::scenario::{all_text, expect, Canned, Expected, Upstream};
use names_tests::*;

/// Seconds of TTL a reply may have lost to real time between steps.
const SLACK: u32 = 2;

fn serve(up: &Upstream, flags: &[&str]) -> Server {
    let arg = up.arg();
    let mut args = vec!["--upstream", arg.as_str()];
    args.extend_from_slice(flags);
    Server::start(&args)
}

/// A client query with RD, no EDNS (the rpl's `REPLY RD`), over UDP.
fn ask(srv: &Server, question: &str) -> Parsed {
    let mut it = question.split_whitespace();
    let qname = it.next().unwrap();
    let qtype: Rtype = it.next().unwrap().parse().unwrap();
    udp_ask(srv.udp_addr(), &query(qname, qtype, 0x4242, true, None))
}

/// The reply of fwd.rpl, fwd_cached.rpl, fwd_notcached.rpl and fwd_lrudrop.rpl for
/// `www.example.com. A` (and, with `net`, for `www.example.net. A`).
fn www_reply(zone: &str, addr: &str) -> Canned {
    Canned::new(
        &format!("www.example.{zone}. IN A {addr}"),
        &format!("www.example.{zone}. IN NS ns.example.{zone}."),
        &format!("ns.example.{zone}. IN A 10.20.30.50"),
    )
}

// fwd.rpl ("Sample of a valid query"): config forward-zone "." only, so Unbound's default
// minimal-responses (yes) = `names`' default. The reply carries NS and glue; the client
// gets the answer (the rpl matches only the answer).
#[test]
fn fwd_sample_query() {
    let up = Upstream::new();
    up.set("www.example.com. A", www_reply("com", "10.20.30.40"));
    let srv = serve(&up, &[]);
    let r = ask(&srv, "www.example.com. A");
    expect(
        &r,
        &Expected::new("www.example.com. IN A 10.20.30.40", "", ""),
        SLACK,
        "fwd step 4",
    );
}

// fwd_cached.rpl ("Query receives answer from the cache"): minimal-responses: no,
// iter-scrub-promiscuous: no -> `--minimal-responses false`. An authoritative reply with
// NS and glue; the client's first and second (cached, upstream not asked) replies both
// carry answer, authority NS and additional glue, without AA.
#[test]
fn fwd_cached() {
    let up = Upstream::new();
    up.set("www.example.com. A", www_reply("com", "10.20.30.40").aa());
    let srv = serve(&up, &["--minimal-responses", "false"]);
    let want = Expected::new(
        "www.example.com. IN A 10.20.30.40",
        "www.example.com. IN NS ns.example.com.",
        "ns.example.com. IN A 10.20.30.50",
    );
    let first = ask(&srv, "www.example.com. A");
    expect(&first, &want, SLACK, "fwd_cached step 4");
    assert_eq!(up.asked("www.example.com. A"), 1);
    let second = ask(&srv, "www.example.com. A");
    expect(&second, &want, SLACK, "fwd_cached step 6");
    assert_eq!(
        up.asked("www.example.com. A"),
        1,
        "step 6 is from the cache"
    );

    // The same through dig: the cached reply's authority and additional sections.
    let out = dig_at(srv.udp_addr(), &["www.example.com", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains(";; AUTHORITY SECTION:"), "{out}");
    assert!(out.contains("ns.example.com."), "{out}");
    assert!(out.contains("10.20.30.50"), "{out}");
    assert!(!out.contains(" aa"), "no AA flag: {out}");
    assert_eq!(up.asked("www.example.com. A"), 1);
}

// fwd_notcached.rpl ("Query receives answer not from the cache"): msg-cache-size 1024
// (room for both); two different names both go upstream, each client gets its answer.
#[test]
fn fwd_notcached() {
    let up = Upstream::new();
    up.set("www.example.com. A", www_reply("com", "10.20.30.40"));
    up.set("www.example.net. A", www_reply("net", "10.20.30.60"));
    let srv = serve(&up, &[]);
    let r = ask(&srv, "www.example.com. A");
    expect(
        &r,
        &Expected::new("www.example.com. IN A 10.20.30.40", "", ""),
        SLACK,
        "fwd_notcached step 4",
    );
    let r = ask(&srv, "www.example.net. A");
    expect(
        &r,
        &Expected::new("www.example.net. IN A 10.20.30.60", "", ""),
        SLACK,
        "fwd_notcached step 8",
    );
    assert_eq!(up.asked("www.example.com. A"), 1);
    assert_eq!(up.asked("www.example.net. A"), 1);
}

// fwd_lrudrop.rpl ("Old answer is dropped from the cache"): msg-cache-size 1 byte, one
// slab -> `--cache-size 1` (one message). The third query, for the first name again,
// goes upstream (CHECK_OUT_QUERY at step 22) since the second answer evicted the first.
#[test]
fn fwd_lrudrop() {
    let up = Upstream::new();
    up.set("www.example.com. A", www_reply("com", "10.20.30.40"));
    up.set("www.example.net. A", www_reply("net", "10.20.30.40"));
    let srv = serve(&up, &["--cache-size", "1", "--workers", "1"]);
    let com = Expected::new("www.example.com. IN A 10.20.30.40", "", "");
    expect(&ask(&srv, "www.example.com. A"), &com, SLACK, "step 4");
    let net = Expected::new("www.example.net. IN A 10.20.30.40", "", "");
    expect(&ask(&srv, "www.example.net. A"), &net, SLACK, "step 14");
    expect(&ask(&srv, "www.example.com. A"), &com, SLACK, "step 24");
    assert_eq!(
        up.asked("www.example.com. A"),
        2,
        "step 22: the evicted answer is asked for again"
    );
    assert_eq!(up.asked("www.example.net. A"), 1);
}

// fwd_minimal.rpl ("Test minimal-responses"): minimal-responses: yes -> `names`' default.
// A positive answer loses NS and glue (and an unrelated TXT); a NODATA answer keeps only
// its SOA (the NS beside it goes); an NXDOMAIN keeps its SOA.
#[test]
fn fwd_minimal() {
    let up = Upstream::new();
    let extra = "ns.example.com. IN A 10.20.30.50\ntxt.example.com. IN TXT \"foo\"";
    let soa = "example.com. IN SOA host.example.com. ns.example.com. 1 2 3 4 5";
    up.set(
        "www.example.com. A",
        Canned::new(
            "www.example.com. IN A 10.20.30.40",
            "example.com. IN NS ns.example.com.",
            extra,
        ),
    );
    up.set(
        "a.example.com. A",
        Canned::new(
            "",
            &format!("{soa}\nexample.com. IN NS ns.example.com."),
            extra,
        ),
    );
    up.set(
        "b.example.com. A",
        Canned::new("", soa, extra).rcode(Rcode::NXDOMAIN),
    );
    let srv = serve(&up, &[]);
    for round in ["first", "cached"] {
        let r = ask(&srv, "www.example.com. A");
        let want = Expected::new("www.example.com. IN A 10.20.30.40", "", "");
        expect(&r, &want, SLACK, &format!("step 4 ({round})"));
        let r = ask(&srv, "a.example.com. A");
        expect(
            &r,
            &Expected::new("", soa, ""),
            SLACK,
            &format!("step 14 ({round})"),
        );
        let r = ask(&srv, "b.example.com. A");
        expect(
            &r,
            &Expected::new("", soa, "").rcode(Rcode::NXDOMAIN),
            SLACK,
            &format!("step 24 ({round})"),
        );
    }
    assert_eq!(up.asked("www.example.com. A"), 1);
    assert_eq!(up.asked("a.example.com. A"), 1);
    assert_eq!(up.asked("b.example.com. A"), 1);
}

// fwd_scrub_rrsig.rpl ("Test scrub of RRSIG amount"): default config. The upstream
// signs the A RRset with 45 RRSIGs; a DO query over TCP gets the A and the first 8.
#[test]
fn fwd_scrub_rrsig() {
    let up = Upstream::new();
    let sig = |data: &str| {
        format!(
            "www.example.com. 300 IN RRSIG A 8 3 300 20330518033320 20010909014640 12345 . {data}\n"
        )
    };
    let all: Vec<String> = (1..=45)
        .map(|i| {
            let s = i.to_string();
            sig(&base64(s.as_bytes()))
        })
        .collect();
    let mut answer = String::from("www.example.com. IN A 10.20.30.40\n");
    answer.extend(all.iter().cloned());
    up.set("www.example.com. A", Canned::new(&answer, "", ""));
    let srv = serve(&up, &[]);
    let q = query_wire(
        &name("www.example.com"),
        Rtype::A,
        domain::base::iana::Class::IN,
        7,
        Flags {
            rd: true,
            cd: false,
            opcode: Opcode::QUERY,
        },
        Some((4096, 0, true)),
    );
    let mut want = String::from("www.example.com. IN A 10.20.30.40\n");
    want.extend(all.iter().take(8).cloned());
    for round in ["first", "cached"] {
        let r = tcp_ask(srv.tcp_addr(), &q);
        expect(
            &r,
            &Expected::new(&want, "", ""),
            SLACK,
            &format!("fwd_scrub_rrsig step 4 ({round})"),
        );
    }
    assert_eq!(up.asked("www.example.com. A"), 1);
}

/// Standard base64 of a short byte string (the RRSIG signatures of fwd_scrub_rrsig).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// fwd_0ttlservfail.rpl ("Zero ttl answer needs to override servfail in cache"):
// serve-expired: yes, prefetch: yes -> `--serve-stale` and `--prefetch`. A SERVFAIL
// first; 5 s later the upstream answers with TTL 0 and the client gets that answer
// (TTL 0), not a remembered SERVFAIL.
#[test]
fn fwd_0ttlservfail() {
    let up = Upstream::new();
    up.set(
        "www.example.com. A",
        Canned::new("", "", "").rcode(Rcode::SERVFAIL),
    );
    let srv = serve(&up, &["--serve-stale", "3600", "--prefetch"]);
    let r = ask(&srv, "www.example.com. A");
    expect(
        &r,
        &Expected::new("", "", "").rcode(Rcode::SERVFAIL),
        SLACK,
        "step 10",
    );
    up.set(
        "www.example.com. A",
        Canned::new("www.example.com. 0 IN A 10.20.30.40", "", ""),
    );
    sleep(Duration::from_secs(5));
    let r = ask(&srv, "www.example.com. A");
    expect(
        &r,
        &Expected::new("www.example.com. 0 IN A 10.20.30.40", "", "").ttl(),
        0,
        "step 240",
    );
}

/// The first reply of rrset_untrusted, rrset_updated and rrset_rettl: authoritative,
/// `www.example.com. A` with the zone's NS (TTL `ns_ttl`) and its glue.
fn www_aa(ns_ttl: u32) -> Canned {
    Canned::new(
        "www.example.com. IN A 10.20.30.40",
        &format!("example.com. {ns_ttl} IN NS ns.example.com."),
        "ns.example.com. IN A 10.20.30.50",
    )
    .aa()
}

// rrset_untrusted.rpl ("Untrusted rrset not used for update"): minimal-responses: no,
// iter-scrub-promiscuous: no -> `--minimal-responses false`. A second reply plants
// example.com NS (pointing into eeeek.com) and their addresses in the additional section:
// the client gets neither, and the cached first answer still shows the authority NS
// from the first reply.
#[test]
fn rrset_untrusted() {
    let up = Upstream::new();
    up.set("www.example.com. A", www_aa(3600));
    up.set(
        "bla.example.com. A",
        Canned::new(
            "bla.example.com. IN A 10.20.30.140",
            "",
            "example.com. IN NS ns.eeeek.com.\nexample.com. IN NS ns2.eeeek.com.\n\
             ns.eeeek.com. IN A 55.44.33.22\nns2.eeeek.com. IN A 55.44.33.24",
        )
        .aa(),
    );
    let srv = serve(&up, &["--minimal-responses", "false"]);
    let www = Expected::new(
        "www.example.com. IN A 10.20.30.40",
        "example.com. IN NS ns.example.com.",
        "ns.example.com. IN A 10.20.30.50",
    );
    expect(&ask(&srv, "www.example.com. A"), &www, SLACK, "step 4");
    let bla = ask(&srv, "bla.example.com. A");
    expect(
        &bla,
        &Expected::new("bla.example.com. IN A 10.20.30.140", "", ""),
        SLACK,
        "step 9",
    );
    expect(&ask(&srv, "www.example.com. A"), &www, SLACK, "step 11");
    assert_eq!(
        up.asked("www.example.com. A"),
        1,
        "step 11 is from the cache"
    );
    assert!(!all_text(&bla).contains("eeeek"), "{bla:?}");
}

// rrset_updated.rpl ("RRset is updated from other message that passes by"):
// minimal-responses: no, rrset-roundrobin: no -> `--minimal-responses false`. A second
// authoritative reply carries example.com NS with a second name server: the RRset is
// replaced, so the cached first answer now shows both NS. Its additional section keeps
// only ns.example.com's address, as in Unbound (the cached message's own glue).
#[test]
fn rrset_updated() {
    let up = Upstream::new();
    up.set("www.example.com. A", www_aa(3600));
    up.set(
        "bla.example.com. A",
        Canned::new(
            "bla.example.com. IN A 10.20.30.140",
            "example.com. IN NS ns.example.com.\nexample.com. IN NS ns2.example.com.",
            "ns.example.com. IN A 10.20.30.50\nns2.example.com. IN A 10.20.30.53",
        )
        .aa(),
    );
    let srv = serve(&up, &["--minimal-responses", "false"]);
    expect(
        &ask(&srv, "www.example.com. A"),
        &Expected::new(
            "www.example.com. IN A 10.20.30.40",
            "example.com. IN NS ns.example.com.",
            "ns.example.com. IN A 10.20.30.50",
        ),
        SLACK,
        "step 4",
    );
    let both_ns = "example.com. IN NS ns.example.com.\nexample.com. IN NS ns2.example.com.";
    expect(
        &ask(&srv, "bla.example.com. A"),
        &Expected::new(
            "bla.example.com. IN A 10.20.30.140",
            both_ns,
            "ns.example.com. IN A 10.20.30.50\nns2.example.com. IN A 10.20.30.53",
        ),
        SLACK,
        "step 9",
    );
    expect(
        &ask(&srv, "www.example.com. A"),
        &Expected::new(
            "www.example.com. IN A 10.20.30.40",
            both_ns,
            "ns.example.com. IN A 10.20.30.50",
        ),
        SLACK,
        "step 11",
    );
    assert_eq!(
        up.asked("www.example.com. A"),
        1,
        "step 11 is from the cache"
    );
}

// rrset_rettl.rpl ("RRset TTL is not greedily updated from message"): minimal-responses:
// no -> `--minimal-responses false`. The NS RRset comes first with TTL 100, then again,
// same records, same rank, with TTL 200: its TTL is not reset, so the second reply and
// the cached first one both show 100 (less the seconds passed), TTLs compared.
#[test]
fn rrset_rettl() {
    let up = Upstream::new();
    up.set("www.example.com. A", www_aa(100));
    up.set(
        "bla.example.com. A",
        Canned::new(
            "bla.example.com. IN A 10.20.30.140",
            "example.com. 200 IN NS ns.example.com.",
            "ns.example.com. IN A 10.20.30.50",
        )
        .aa(),
    );
    let srv = serve(&up, &["--minimal-responses", "false"]);
    let www = Expected::new(
        "www.example.com. IN A 10.20.30.40",
        "example.com. 100 IN NS ns.example.com.",
        "ns.example.com. IN A 10.20.30.50",
    )
    .ttl();
    expect(&ask(&srv, "www.example.com. A"), &www, SLACK, "step 4");
    expect(
        &ask(&srv, "bla.example.com. A"),
        &Expected::new(
            "bla.example.com. IN A 10.20.30.140",
            "example.com. 100 IN NS ns.example.com.",
            "ns.example.com. IN A 10.20.30.50",
        )
        .ttl(),
        SLACK,
        "step 9",
    );
    expect(&ask(&srv, "www.example.com. A"), &www, SLACK, "step 11");
    assert_eq!(
        up.asked("www.example.com. A"),
        1,
        "step 11 is from the cache"
    );
}

/// A cached answer asked for at `at` seconds of its 10-second TTL, with or without
/// `--prefetch`: the upstream's answer changes after the first query, so the address the
/// client sees tells which fetch it comes from. Returns the server, the upstream and the
/// reply at `at`.
fn ask_late(prefetch: bool, at: Duration) -> (Server, Upstream, Parsed) {
    let up = Upstream::new();
    up.set(
        "pre.example.com. A",
        Canned::new("pre.example.com. 10 IN A 10.20.30.1", "", ""),
    );
    let flags: &[&str] = if prefetch { &["--prefetch"] } else { &[] };
    let srv = serve(&up, flags);
    let first = ask(&srv, "pre.example.com. A");
    assert_eq!(
        first.a_addrs(),
        vec!["10.20.30.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    up.set(
        "pre.example.com. A",
        Canned::new("pre.example.com. 10 IN A 10.20.30.2", "", ""),
    );
    sleep(at);
    let late = ask(&srv, "pre.example.com. A");
    (srv, up, late)
}

// Unbound's `prefetch: yes` (its iterator scenarios iter_prefetch*.rpl; no fwd_ one):
// `--prefetch`. Asked for in the last 10% of its TTL, the cached answer is given at once
// and refreshed from upstream in the background; the next client gets the refreshed
// answer from the cache, after the first one's TTL ran out, without a miss.
#[test]
fn prefetch_refreshes_in_the_last_tenth_of_the_ttl() {
    let (srv, up, late) = ask_late(true, Duration::from_millis(9_300));
    assert_eq!(
        late.a_addrs(),
        vec!["10.20.30.1".parse::<std::net::Ipv4Addr>().unwrap()],
        "the cached answer at once: {late:?}"
    );
    assert!(late.answers[0].ttl <= 1, "{late:?}");
    assert!(
        up.fake.wait_for(2, Duration::from_secs(3)),
        "a background refresh went upstream"
    );
    sleep(Duration::from_millis(1_500)); // the first answer's TTL is over
    let next = ask(&srv, "pre.example.com. A");
    assert_eq!(
        next.a_addrs(),
        vec!["10.20.30.2".parse::<std::net::Ipv4Addr>().unwrap()],
        "the refreshed answer: {next:?}"
    );
    assert!((7..=10).contains(&next.answers[0].ttl), "{next:?}");
    assert_eq!(
        up.asked("pre.example.com. A"),
        2,
        "no miss after the refresh"
    );
}

// Without `--prefetch` (Unbound's default, `prefetch: no`) the same late question is
// answered from the cache and nothing goes upstream until the answer expires.
#[test]
fn no_prefetch_by_default() {
    let (srv, up, late) = ask_late(false, Duration::from_millis(9_300));
    assert_eq!(
        late.a_addrs(),
        vec!["10.20.30.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert!(
        !up.fake.wait_for(2, Duration::from_millis(500)),
        "no refresh"
    );
    drop(srv);
}

// Prefetch before the last tenth does nothing: asked at half the TTL, the cached answer
// is given and the upstream hears nothing.
#[test]
fn prefetch_waits_for_the_last_tenth() {
    let (_srv, up, late) = ask_late(true, Duration::from_millis(5_000));
    assert_eq!(
        late.a_addrs(),
        vec!["10.20.30.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert!(
        !up.fake.wait_for(2, Duration::from_millis(500)),
        "no refresh yet"
    );
}
