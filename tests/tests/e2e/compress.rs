//! Reply size and flags as NSD and Knot have them: every name compressed (encoded replies
//! and cache hits alike), TC when a referral's in-domain glue does not fit (RFC 9471 3.1),
//! CD not echoed in authoritative answers (RFC 4035 3.1.6).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use bytes::Bytes;
use domain::base::iana::{Class, Rcode};
use domain::base::{Message, MessageBuilder, Name, StaticCompressor, ToName};
use domain::rdata::{Cname, A};
use names_tests::*;

use crate::{start, upstream_args};

/// A zone `example.com` delegating `sub.example.com` to `n` name servers named
/// `<prefix>N.sub.example.com`, each with one in-domain glue A record.
fn delegation_zone(tag: &str, n: usize, prefix: &str) -> String {
    let mut zone = String::from(
        "$ORIGIN example.com.\n$TTL 3600\n\
         @ IN SOA ns1 hostmaster 1 7200 900 1209600 300\n\
         @ IN NS ns1\nns1 IN A 192.0.2.53\n",
    );
    for i in 1..=n {
        writeln!(zone, "sub IN NS {prefix}{i}.sub").unwrap();
        writeln!(zone, "{prefix}{i}.sub IN A 198.51.100.{i}").unwrap();
    }
    let dir = temp_dir(tag);
    let path = dir.join("example.zone");
    std::fs::write(&path, zone).unwrap();
    path.display().to_string()
}

fn ask_raw(srv: &Server, qname: &str, edns: Option<u16>) -> Vec<u8> {
    udp_exchange(
        srv.udp_addr(),
        &query(qname, Rtype::A, 0x4242, false, edns),
        Duration::from_secs(3),
    )
    .expect("a reply")
}

#[test]
fn referral_with_30_glue_records_fits_1232_bytes() {
    let zone = delegation_zone("glue30", 30, "ns");
    let srv = Server::start(&["--no-forward", "--zone", &zone]);
    let bytes = ask_raw(&srv, "www.sub.example.com", Some(1232));
    let r = parse(&bytes);
    assert!(!r.tc && !r.aa, "a referral, not truncated: {r:?}");
    assert_eq!((r.rcode, r.ancount), (0, 0), "{r:?}");
    assert_eq!(r.authority.len(), 30, "every NS: {r:?}");
    assert_eq!(r.additional.len(), 30, "every glue record: {r:?}");
    // NSD fits these in 1,087 bytes; uncompressed they would take well over 1,232.
    assert!(bytes.len() <= 1100, "{} bytes", bytes.len());
    // dig agrees, and sees no malformed message.
    let out = dig_at(
        srv.udp_addr(),
        &[
            "+norecurse",
            "+bufsize=1232",
            "+ignore",
            "www.sub.example.com",
            "A",
        ],
    );
    assert!(out.contains("AUTHORITY: 30, ADDITIONAL: 31"), "{out}");
    assert!(!out.contains("WARNING") && !out.contains(" tc"), "{out}");
}

#[test]
fn referral_whose_glue_does_not_fit_is_truncated() {
    // 15 NS records fit 512 bytes (about 330), their 15 glue records (16 bytes each,
    // compressed) do not.
    let zone = delegation_zone("gluetc", 15, "ns");
    let srv = Server::start(&["--no-forward", "--zone", &zone]);
    let r = parse(&ask_raw(&srv, "www.sub.example.com", None));
    assert!(r.tc, "required glue left out must set TC: {r:?}");
    assert!(r.len <= 512, "{r:?}");
    // Over TCP the whole referral comes back.
    let r = tcp_ask(
        srv.tcp_addr(),
        &query("www.sub.example.com", Rtype::A, 7, false, None),
    );
    assert!(!r.tc, "{r:?}");
    assert_eq!((r.authority.len(), r.additional.len()), (15, 15), "{r:?}");
    // dig retries over TCP on its own after the TC.
    let out = dig_at(
        srv.udp_addr(),
        &["+norecurse", "+noedns", "www.sub.example.com", "A"],
    );
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    assert!(out.contains("AUTHORITY: 15, ADDITIONAL: 15"), "{out}");
}

#[test]
fn glue_that_fits_is_not_truncated_without_edns() {
    // Five glue records fit 512 bytes: no TC.
    let zone = delegation_zone("glue5", 5, "ns");
    let srv = Server::start(&["--no-forward", "--zone", &zone]);
    let r = parse(&ask_raw(&srv, "www.sub.example.com", None));
    assert!(!r.tc, "{r:?}");
    assert_eq!((r.authority.len(), r.additional.len()), (5, 5), "{r:?}");
}

/// The `flags:` of dig's header line.
fn dig_flags(out: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.contains(";; flags:"))
        .unwrap_or_else(|| panic!("no flags line in dig output:\n{out}"));
    let flags = line.split(";; flags:").nth(1).unwrap();
    let flags = flags.split(';').next().unwrap();
    flags.split_whitespace().map(String::from).collect()
}

#[test]
fn cd_not_echoed_in_authoritative_answers() {
    let zone = delegation_zone("cd", 1, "ns");
    let srv = Server::start(&["--no-forward", "--zone", &zone, "--synth", "ws=172.0.2"]);
    for name in ["ns1.example.com", "nothere.example.com", "ws5.example.org"] {
        for extra in [&[][..], &["+dnssec"][..], &["+tcp"][..]] {
            let mut args = vec!["+cdflag", name, "A"];
            args.extend_from_slice(extra);
            let out = dig_at(srv.udp_addr(), &args);
            let flags = dig_flags(&out);
            assert!(flags.contains(&"aa".to_string()), "{flags:?}\n{out}");
            assert!(!flags.contains(&"cd".to_string()), "{flags:?}\n{out}");
        }
    }
}

#[test]
fn cd_still_echoed_in_forwarded_and_cached_answers() {
    let up = FakeUpstream::answering(&[Ipv4Addr::new(192, 0, 2, 1)]);
    let srv = start(&upstream_args(&[&up], &[]));
    for _ in 0..2 {
        let out = dig_at(srv.udp_addr(), &["+cdflag", "www.example.com", "A"]);
        let flags = dig_flags(&out);
        assert!(flags.contains(&"cd".to_string()), "{flags:?}\n{out}");
    }
    assert_eq!(up.count(), 1, "the second answer was a cache hit");
}

/// An upstream reply: `qname` CNAME `a.example.net`, that CNAME `b.example.org`, which
/// has eight addresses; compressed, as servers send it.
fn chain_reply(query: &[u8]) -> Vec<u8> {
    let msg = Message::from_octets(query).unwrap();
    let qname = msg.sole_question().unwrap().qname().to_name::<Bytes>();
    let b = MessageBuilder::from_target(StaticCompressor::new(Vec::new())).unwrap();
    let mut ans = b.start_answer(&msg, Rcode::NOERROR).unwrap();
    ans.header_mut().set_ra(true);
    let a: Name<Bytes> = "a.example.net".parse().unwrap();
    let b: Name<Bytes> = "b.example.org".parse().unwrap();
    ans.push((&qname, Class::IN, 300, Cname::new(a.clone())))
        .unwrap();
    ans.push((&a, Class::IN, 300, Cname::new(b.clone())))
        .unwrap();
    for i in 1..=8 {
        ans.push((&b, Class::IN, 300, A::new(Ipv4Addr::new(192, 0, 2, i))))
            .unwrap();
    }
    ans.additional().finish().into_target()
}

#[test]
fn cached_chain_is_no_larger_than_the_upstream_reply() {
    let up = FakeUpstream::start(|r| vec![Reply::Send(chain_reply(&r.bytes))]);
    let srv = start(&upstream_args(&[&up], &[]));
    let ask = |id| {
        udp_exchange(
            srv.udp_addr(),
            &query("www.example.com", Rtype::A, id, true, None),
            Duration::from_secs(3),
        )
        .expect("a reply")
    };
    let first = ask(1);
    let second = ask(2);
    assert_eq!(up.count(), 1, "the second reply is a cache hit");
    let (p1, p2) = (parse(&first), parse(&second));
    assert!(!p1.tc && !p2.tc, "{p1:?}\n{p2:?}");
    assert_eq!((p1.answers.len(), p2.answers.len()), (10, 10));
    // As big as the upstream's own (compressed) reply, or smaller.
    let upstream = chain_reply(&query("www.example.com", Rtype::A, 1, true, None)).len();
    for reply in [&first, &second] {
        assert!(
            reply.len() <= upstream,
            "reply {} bytes, upstream's {upstream} bytes",
            reply.len()
        );
    }
    // dig parses the compressed cache hit.
    let out = dig_at(srv.udp_addr(), &["+noedns", "www.example.com", "A"]);
    assert!(
        out.contains("ANSWER: 10,") && out.contains("b.example.org."),
        "{out}"
    );
    assert!(!out.contains("WARNING"), "{out}");
}
