//! Zones: loading master files, RFC 1034 4.3.2 answers, AXFR through the server.

// Tests take one real instant as the base time the core is given.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use names_core::domain::base::iana::{Class, Opcode, Rcode, Rtype};
use names_core::domain::base::Message;
use names_core::domain::rdata::AllRecordData;
use names_core::zone::{load_zone, Cidr, LoadError, Snapshot, Zone, ZoneResolver, ZoneSet};
use names_core::{Action, Answer, Chain, Config, ConnId, Origin, Rr, Server, Synth, SynthRule};
use names_tests::build::{frame, name, query_wire, unframe, Flags};
use names_tests::parse::answer_records;

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/core/data")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// Includes resolved from tests/core/data (the test plays the shell's part).
fn from_data(path: &str, _from: &str) -> Result<(String, String), String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/core/data")
        .join(path);
    std::fs::read_to_string(&p)
        .map(|t| (path.to_string(), t))
        .map_err(|e| format!("cannot read {path}: {e}"))
}

fn no_include(path: &str, _: &str) -> Result<(String, String), String> {
    Err(format!("unexpected include {path}"))
}

fn load(text: &str) -> Result<Zone, LoadError> {
    load_zone("test.zone", text, &mut no_include)
}

fn example() -> ZoneSet {
    let zone = load_zone("example.zone", &data("example.zone"), &mut from_data).unwrap();
    ZoneSet::new(vec![zone]).unwrap()
}

fn ask(set: &ZoneSet, qname: &str, qtype: Rtype) -> Answer {
    set.answer(&name(qname), qtype)
        .unwrap_or_else(|| panic!("{qname} should be inside a served zone"))
}

/// `owner type data` per record, for readable assertions.
fn lines(rrs: &[Rr]) -> Vec<String> {
    rrs.iter()
        .map(|r| format!("{} {} {}", r.owner(), r.rtype(), r.data()))
        .collect()
}

fn soa_ttl(a: &Answer) -> u32 {
    assert_eq!(
        a.authority.len(),
        1,
        "one SOA in authority: {:?}",
        lines(&a.authority)
    );
    assert_eq!(a.authority[0].rtype(), Rtype::SOA);
    assert_eq!(a.authority[0].owner(), &name("example.com"));
    a.authority[0].ttl().as_secs()
}

#[test]
fn loads_origin_serial_count_relative_names_at_parentheses_and_include() {
    let set = example();
    let zone = &set.zones()[0];
    assert_eq!(zone.origin(), &name("example.com"));
    assert_eq!(zone.serial(), 2024010101);
    // 20 records in example.zone (SOA included) + 2 in hosts.inc.
    assert_eq!(zone.record_count(), 22);
    // Relative name from the included file, with the origin in force at the $INCLUDE.
    assert_eq!(
        lines(&ask(&set, "sip.example.com", Rtype::A).answer),
        ["sip.example.com A 192.0.2.60"]
    );
    // $ORIGIN inside the include applies to the include only.
    assert_eq!(
        ask(&set, "printer.lab.example.com", Rtype::A).answer.len(),
        1
    );
    // `@` and the blank owner: NS and MX at the apex.
    assert_eq!(ask(&set, "example.com", Rtype::NS).answer.len(), 2);
}

#[test]
fn exact_match_is_authoritative_with_the_owner_as_asked() {
    let set = example();
    let a = ask(&set, "WWW.Example.COM", Rtype::A);
    assert_eq!(a.rcode, Rcode::NOERROR.into());
    assert!(a.authoritative);
    assert_eq!(lines(&a.answer), ["WWW.Example.COM A 192.0.2.80"]);
    assert_eq!(
        a.answer[0].owner().as_slice(),
        name("WWW.Example.COM").as_slice()
    );
    assert_eq!(a.answer[0].ttl().as_secs(), 300);
    assert!(a.authority.is_empty() && a.additional.is_empty());
}

#[test]
fn missing_type_is_nodata_with_negative_soa() {
    let a = ask(&example(), "www.example.com", Rtype::AAAA);
    assert_eq!(a.rcode, Rcode::NOERROR.into());
    assert!(a.authoritative && a.answer.is_empty());
    // min(SOA TTL 3600, MINIMUM 300)
    assert_eq!(soa_ttl(&a), 300);
}

#[test]
fn missing_name_is_nxdomain_with_negative_soa() {
    let a = ask(&example(), "nope.example.com", Rtype::A);
    assert_eq!(a.rcode, Rcode::NXDOMAIN.into());
    assert!(a.authoritative && a.answer.is_empty());
    assert_eq!(soa_ttl(&a), 300);
    // Deeper names too: the zone owns its whole subtree.
    let a = ask(&example(), "x.y.nope.example.com", Rtype::TXT);
    assert_eq!(a.rcode, Rcode::NXDOMAIN.into());
}

#[test]
fn negative_soa_ttl_is_the_soa_ttl_when_smaller_than_minimum() {
    let zone = load("z. 60 IN SOA ns h 1 2 3 4 900\nz. 60 NS ns.z.\nns.z. A 192.0.2.1\n").unwrap();
    let set = ZoneSet::new(vec![zone]).unwrap();
    let a = set.answer(&name("missing.z"), Rtype::A).unwrap();
    assert_eq!(a.rcode, Rcode::NXDOMAIN.into());
    assert_eq!(a.authority[0].ttl().as_secs(), 60);
}

#[test]
fn empty_non_terminal_is_nodata_not_nxdomain() {
    let set = example();
    for ent in ["b.c.example.com", "c.example.com", "wild.example.com"] {
        let a = ask(&set, ent, Rtype::A);
        assert_eq!(a.rcode, Rcode::NOERROR.into(), "{ent}");
        assert!(a.answer.is_empty(), "{ent}");
        assert_eq!(soa_ttl(&a), 300);
    }
    assert_eq!(ask(&set, "a.b.c.example.com", Rtype::A).answer.len(), 1);
}

#[test]
fn cname_is_followed_inside_served_zones() {
    let set = example();
    let a = ask(&set, "alias.example.com", Rtype::A);
    assert_eq!(
        lines(&a.answer),
        [
            "alias.example.com CNAME www.example.com.",
            "www.example.com A 192.0.2.80"
        ]
    );
    assert!(a.authoritative);
    // Asking for the CNAME itself gives just the CNAME.
    assert_eq!(ask(&set, "alias.example.com", Rtype::CNAME).answer.len(), 1);
    // A target outside every served zone is left to the client.
    let a = ask(&set, "outside.example.com", Rtype::A);
    assert_eq!(
        lines(&a.answer),
        ["outside.example.com CNAME www.example.net."]
    );
    assert_eq!(a.rcode, Rcode::NOERROR.into());
    assert!(a.authority.is_empty());
}

#[test]
fn cname_to_a_missing_type_ends_in_nodata_of_the_target_zone() {
    let a = ask(&example(), "alias.example.com", Rtype::MX);
    assert_eq!(a.answer.len(), 1);
    assert_eq!(a.rcode, Rcode::NOERROR.into());
    assert_eq!(soa_ttl(&a), 300);
}

#[test]
fn cname_loop_is_detected() {
    let a = ask(&example(), "loop1.example.com", Rtype::A);
    assert_eq!(
        lines(&a.answer),
        [
            "loop1.example.com CNAME loop2.example.com.",
            "loop2.example.com CNAME loop1.example.com."
        ]
    );
    assert_eq!(a.rcode, Rcode::NOERROR.into());
}

#[test]
fn cname_chain_length_is_bounded() {
    let mut text = String::from("$ORIGIN z.\n@ SOA ns h 1 2 3 4 5\n");
    for i in 0..20 {
        text.push_str(&format!("c{i} CNAME c{}\n", i + 1));
    }
    text.push_str("c20 A 192.0.2.1\n");
    let set = ZoneSet::new(vec![load(&text).unwrap()]).unwrap();
    let a = set.answer(&name("c0.z"), Rtype::A).unwrap();
    assert_eq!(a.answer.len(), names_core::zone::MAX_CNAME_CHAIN + 1);
    assert!(a.answer.iter().all(|r| r.rtype() == Rtype::CNAME));
}

#[test]
fn cname_chain_crosses_into_another_served_zone() {
    let one = load("$ORIGIN one.\n@ SOA ns h 1 2 3 4 5\nx CNAME y.two.\n").unwrap();
    let two = load("$ORIGIN two.\n@ SOA ns h 1 2 3 4 60\ny A 192.0.2.2\n").unwrap();
    let set = ZoneSet::new(vec![one, two]).unwrap();
    let a = set.answer(&name("x.one"), Rtype::A).unwrap();
    assert_eq!(
        lines(&a.answer),
        ["x.one CNAME y.two.", "y.two A 192.0.2.2"]
    );
    // The target missing: NXDOMAIN with the target zone's SOA.
    let three = load("$ORIGIN three.\n@ SOA ns h 1 2 3 4 5\nx CNAME gone.two.\n").unwrap();
    let two = load("$ORIGIN two.\n@ SOA ns h 1 2 3 4 60\n").unwrap();
    let set = ZoneSet::new(vec![three, two]).unwrap();
    let a = set.answer(&name("x.three"), Rtype::A).unwrap();
    assert_eq!(a.rcode, Rcode::NXDOMAIN.into());
    assert_eq!(a.authority[0].owner(), &name("two"));
}

#[test]
fn wildcard_synthesises_the_owner_as_asked() {
    let set = example();
    let a = ask(&set, "Host.WILD.example.com", Rtype::A);
    assert_eq!(lines(&a.answer), ["Host.WILD.example.com A 192.0.2.42"]);
    assert!(a.authoritative);
    // Deeper names match the same wildcard (closest encloser wild.example.com).
    assert_eq!(
        ask(&set, "a.b.wild.example.com", Rtype::TXT).answer.len(),
        1
    );
    // A type the wildcard lacks: NODATA.
    let a = ask(&set, "host.wild.example.com", Rtype::AAAA);
    assert_eq!(a.rcode, Rcode::NOERROR.into());
    assert!(a.answer.is_empty());
    assert_eq!(soa_ttl(&a), 300);
    // A wildcard does not cover names that exist (www) nor other branches.
    assert_eq!(ask(&set, "www.example.com", Rtype::TXT).answer.len(), 0);
    assert_eq!(
        ask(&set, "x.other.example.com", Rtype::A).rcode,
        Rcode::NXDOMAIN.into()
    );
}

#[test]
fn wildcard_cname_is_synthesised_and_followed() {
    let a = ask(&example(), "foo.cw.example.com", Rtype::A);
    assert_eq!(
        lines(&a.answer),
        [
            "foo.cw.example.com CNAME www.example.com.",
            "www.example.com A 192.0.2.80"
        ]
    );
}

#[test]
fn delegation_gives_a_referral_with_glue() {
    let set = example();
    for q in [
        "host.sub.example.com",
        "sub.example.com",
        "deep.er.sub.example.com",
    ] {
        let a = ask(&set, q, Rtype::A);
        assert_eq!(a.rcode, Rcode::NOERROR.into(), "{q}");
        assert!(!a.authoritative, "a referral is not authoritative: {q}");
        assert!(a.answer.is_empty());
        let mut ns = lines(&a.authority);
        ns.sort();
        assert_eq!(
            ns,
            [
                "sub.example.com NS ns.other.net.",
                "sub.example.com NS ns.sub.example.com."
            ]
        );
        // Glue only for the in-zone server.
        assert_eq!(lines(&a.additional), ["ns.sub.example.com A 192.0.2.99"]);
    }
    // Glue is not authoritative data: asking for it directly is referred too.
    assert!(!ask(&set, "ns.sub.example.com", Rtype::A).authoritative);
}

#[test]
fn the_root_zone_refers_and_answers_every_name() {
    let root = load(
        "$ORIGIN .\n. 3600 SOA a.root. hostmaster. 1 3600 600 86400 300\n. NS a.root.\n\
         a.root. A 192.0.2.1\ntest. NS ns.test.\nns.test. A 192.0.2.2\n",
    )
    .unwrap();
    let set = ZoneSet::new(vec![root]).unwrap();
    let referral = ask(&set, "www.Example.test", Rtype::A);
    assert_eq!(lines(&referral.authority), ["test NS ns.test."]);
    assert_eq!(lines(&referral.additional), ["ns.test A 192.0.2.2"]);
    let nxdomain = ask(&set, "nope", Rtype::A);
    assert_eq!(nxdomain.rcode, Rcode::NXDOMAIN.into());
    assert!(nxdomain.authoritative);
    assert_eq!(ask(&set, "a.root", Rtype::A).answer.len(), 1);
    assert_eq!(ask(&set, ".", Rtype::NS).answer.len(), 1);
}

#[test]
fn mx_ns_srv_answers_carry_target_addresses() {
    let set = example();
    let mx = ask(&set, "example.com", Rtype::MX);
    let mut add = lines(&mx.additional);
    add.sort();
    assert_eq!(
        add,
        [
            "mail.example.com A 192.0.2.25",
            "mail.example.com AAAA 2001:db8::25"
        ]
    );
    let ns = ask(&set, "example.com", Rtype::NS);
    assert_eq!(lines(&ns.additional), ["ns1.example.com A 192.0.2.53"]);
    let srv = ask(&set, "_sip._tcp.example.com", Rtype::SRV);
    assert_eq!(lines(&srv.additional), ["sip.example.com A 192.0.2.60"]);
}

#[test]
fn any_returns_every_rrset_at_the_name() {
    let a = ask(&example(), "example.com", Rtype::ANY);
    let mut types: Vec<String> = a.answer.iter().map(|r| r.rtype().to_string()).collect();
    types.sort();
    assert_eq!(types, ["MX", "NS", "NS", "SOA"]);
}

#[test]
fn names_outside_every_zone_pass() {
    let set = example();
    assert!(set.answer(&name("example.net"), Rtype::A).is_none());
    assert!(set.answer(&name("com"), Rtype::NS).is_none());
    assert!(set.answer(&name("notexample.com"), Rtype::A).is_none());
}

#[test]
fn most_specific_zone_wins() {
    let parent = load("$ORIGIN p.\n@ SOA ns h 1 2 3 4 5\nc NS ns.c\nns.c A 192.0.2.9\n").unwrap();
    let child = load("$ORIGIN c.p.\n@ SOA ns h 7 2 3 4 5\nwww A 192.0.2.10\n").unwrap();
    let set = ZoneSet::new(vec![parent, child]).unwrap();
    let a = set.answer(&name("www.c.p"), Rtype::A).unwrap();
    assert!(a.authoritative);
    assert_eq!(lines(&a.answer), ["www.c.p A 192.0.2.10"]);
}

// ---- zone file errors ------------------------------------------------------------

#[test]
fn broken_record_names_file_and_line() {
    let text = "$ORIGIN z.\n@ SOA ns h 1 2 3 4 5\n\nwww A 192.0.2.1\nbad A 999.1.2.3\n";
    let e = load(text).unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("test.zone", Some(5)), "{e}");
    assert!(e.to_string().starts_with("test.zone:5: "), "{e}");
}

#[test]
fn unbalanced_parenthesis_is_an_error() {
    let e = load("$ORIGIN z.\n@ SOA ns h ( 1 2 3 4 5\n").unwrap_err();
    assert_eq!(e.file, "test.zone");
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn missing_soa_is_refused() {
    let e = load("$ORIGIN z.\nwww A 192.0.2.1\n").unwrap_err();
    assert!(e.message.contains("no SOA"), "{e}");
    assert!(e.to_string().starts_with("test.zone"), "{e}");
}

#[test]
fn second_soa_is_refused_at_its_line() {
    let e = load("$ORIGIN z.\n@ SOA ns h 1 2 3 4 5\nwww A 192.0.2.1\nsub SOA ns h 1 2 3 4 5\n")
        .unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.message.contains("second SOA"), "{e}");
}

#[test]
fn record_outside_the_zone_is_refused_at_its_line() {
    let e = load("$ORIGIN z.\n@ SOA ns h (\n 1 2 3 4 5 )\nwww.y. A 192.0.2.1\n").unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
    assert!(e.message.contains("outside the zone"), "{e}");
}

#[test]
fn cname_and_other_data_is_refused() {
    let e = load("$ORIGIN z.\n@ SOA ns h 1 2 3 4 5\nx A 192.0.2.1\nx CNAME y\n").unwrap_err();
    assert_eq!(e.line, Some(4), "{e}");
}

#[test]
fn relative_names_without_origin_take_the_first_absolute_owner() {
    let zone = load("example.org. 3600 IN SOA ns1 host 5 1 1 1 1\nwww A 192.0.2.1\n").unwrap();
    assert_eq!(zone.origin(), &name("example.org"));
    let set = ZoneSet::new(vec![zone]).unwrap();
    assert_eq!(
        set.answer(&name("www.example.org"), Rtype::A)
            .unwrap()
            .answer
            .len(),
        1
    );
}

#[test]
fn include_errors_name_the_included_file() {
    let mut include = |path: &str, from: &str| -> Result<(String, String), String> {
        assert_eq!((path, from), ("inner.zone", "outer.zone"));
        Ok((
            "inner.zone".into(),
            "ok A 192.0.2.1\n\nbroken A not-an-ip\n".into(),
        ))
    };
    let text = "$ORIGIN z.\n@ SOA ns h 1 2 3 4 5\n$INCLUDE inner.zone\n";
    let e = load_zone("outer.zone", text, &mut include).unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("inner.zone", Some(3)), "{e}");
    let e = load_zone("outer.zone", text, &mut |_, _| {
        Err("cannot read inner.zone".into())
    })
    .unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("outer.zone", Some(3)), "{e}");
}

#[test]
fn include_with_origin_argument() {
    let mut include = |_: &str, _: &str| -> Result<(String, String), String> {
        Ok(("i".into(), "www A 192.0.2.5\n".into()))
    };
    let text = "$ORIGIN z.\n@ SOA ns h 1 2 3 4 5\n$INCLUDE i sub.z.\n";
    let set = ZoneSet::new(vec![load_zone("o", text, &mut include).unwrap()]).unwrap();
    assert_eq!(
        set.answer(&name("www.sub.z"), Rtype::A)
            .unwrap()
            .answer
            .len(),
        1
    );
}

#[test]
fn include_recursion_is_bounded() {
    let mut include = |_: &str, _: &str| -> Result<(String, String), String> {
        Ok(("self".into(), "$INCLUDE self\n".into()))
    };
    let e = load_zone(
        "o",
        "$ORIGIN z.\n@ SOA ns h 1 2 3 4 5\n$INCLUDE self\n",
        &mut include,
    )
    .unwrap_err();
    assert!(e.message.contains("nested"), "{e}");
}

#[test]
fn duplicate_zones_are_refused() {
    let a = load("$ORIGIN z.\n@ SOA ns h 1 2 3 4 5\n").unwrap();
    let b = load("$ORIGIN Z.\n@ SOA ns h 2 2 3 4 5\n").unwrap();
    assert!(ZoneSet::new(vec![a, b]).unwrap_err().contains("both serve"));
}

// ---- through the server: AA on the wire, chain order, AXFR ---------------------------

fn at() -> Instant {
    Instant::now()
}

fn peer(ip: &str) -> SocketAddr {
    format!("{ip}:5353").parse().unwrap()
}

fn server(set: ZoneSet, allow: Option<Vec<Cidr>>) -> Server {
    let mut resolver = ZoneResolver::new(Snapshot::new(set));
    if let Some(allow) = allow {
        resolver = resolver.allow_transfer(allow);
    }
    let synth = Synth::new(vec![SynthRule::parse("host=10.0.0").unwrap()]);
    Server::new(
        Config::default(),
        Chain::new().with(resolver).with(synth),
        [3; 32],
    )
}

fn query(qname: &str, qtype: Rtype, id: u16) -> Vec<u8> {
    let flags = Flags {
        rd: false,
        cd: false,
        opcode: Opcode::QUERY,
    };
    query_wire(&name(qname), qtype, Class::IN, id, flags, None)
}

fn udp(server: &mut Server, qname: &str, qtype: Rtype) -> Message<Bytes> {
    let from = names_tests::drive::udp_from(peer("127.0.0.1"));
    server.handle_client(at(), from, &query(qname, qtype, 9));
    let Some(Action::Reply { bytes, .. }) = server.poll_action() else {
        panic!("one reply")
    };
    assert!(server.poll_action().is_none());
    Message::from_octets(Bytes::from(bytes)).unwrap()
}

/// Sends one query over a new TCP connection from `ip`; returns every reply message.
fn tcp(server: &mut Server, ip: &str, qname: &str, qtype: Rtype) -> Vec<Message<Bytes>> {
    let conn = ConnId(77);
    server.handle_tcp_open(at(), conn, peer(ip));
    let q = query(qname, qtype, 4242);
    server.handle_client(at(), Origin::Tcp(conn), &frame(&q));
    let mut out = Vec::new();
    while let Some(action) = server.poll_action() {
        if let Action::Reply { bytes, to } = action {
            assert_eq!(to, Origin::Tcp(conn));
            let msg = unframe(&bytes);
            out.push(Message::from_octets(Bytes::copy_from_slice(msg)).unwrap());
        }
    }
    server.handle_tcp_closed(at(), conn);
    out
}

#[test]
fn wire_reply_sets_aa_and_zone_wins_over_later_resolvers() {
    let mut s = server(example(), None);
    let reply = udp(&mut s, "www.example.com", Rtype::A);
    assert!(reply.header().aa());
    assert_eq!(reply.header().rcode(), Rcode::NOERROR);
    // Synth would answer host7.*, but inside the zone the zone decides: NXDOMAIN.
    let reply = udp(&mut s, "host7.example.com", Rtype::A);
    assert_eq!(reply.header().rcode(), Rcode::NXDOMAIN);
    assert!(reply.header().aa());
    // Outside the zone the chain goes on to synth.
    let reply = udp(&mut s, "host7.example.net", Rtype::A);
    assert_eq!(reply.header().rcode(), Rcode::NOERROR);
    assert_eq!(reply.header_counts().ancount(), 1);
    // A referral on the wire: AA clear, NS in authority, glue in additional.
    let reply = udp(&mut s, "www.sub.example.com", Rtype::A);
    assert!(!reply.header().aa());
    assert_eq!(
        (
            reply.header_counts().ancount(),
            reply.header_counts().nscount()
        ),
        (0, 2)
    );
    assert_eq!(reply.header_counts().arcount(), 1);
}

fn big_zone(n: usize) -> ZoneSet {
    let mut text =
        String::from("$ORIGIN big.test.\n@ 3600 SOA ns h 42 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n");
    for i in 0..n {
        text.push_str(&format!(
            "host{i} A 198.51.{}.{}\nhost{i} TXT \"record number {i}\"\n",
            i / 256,
            i % 256
        ));
    }
    ZoneSet::new(vec![load(&text).unwrap()]).unwrap()
}

#[test]
fn axfr_over_tcp_is_split_with_soa_first_and_last() {
    let n = 1500;
    let set = big_zone(n);
    let expected: Vec<Rr> = set.transfer(&name("big.test")).unwrap();
    let mut s = server(set, None);
    let replies = tcp(&mut s, "127.0.0.1", "big.test", Rtype::AXFR);
    assert!(replies.len() > 2, "{} messages", replies.len());
    let mut got = Vec::new();
    for (i, m) in replies.iter().enumerate() {
        assert_eq!(m.header().id(), 4242);
        assert!(m.header().qr() && m.header().aa());
        assert_eq!(m.header().rcode(), Rcode::NOERROR);
        // The transfer message size of the core (16 KiB).
        assert!(m.as_slice().len() <= 16384);
        assert_eq!(m.header_counts().qdcount(), u16::from(i == 0));
        got.extend(answer_records(m));
    }
    assert_eq!(got.len(), 2 * n + 4);
    assert_eq!(got.len(), expected.len());
    assert_eq!(got.first().unwrap().rtype(), Rtype::SOA);
    assert_eq!(got.last().unwrap().rtype(), Rtype::SOA);
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(
            (g.owner(), g.rtype(), g.ttl(), g.data()),
            (e.owner(), e.rtype(), e.ttl(), e.data())
        );
    }
    assert!(matches!(got[0].data(), AllRecordData::Soa(soa) if soa.serial().into_int() == 42));
    // The connection is usable afterwards: nothing in flight.
    assert_eq!(s.open_connections(), 0);
}

#[test]
fn small_axfr_is_one_message() {
    let mut s = server(example(), None);
    let replies = tcp(&mut s, "127.0.0.1", "example.com", Rtype::AXFR);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].header_counts().ancount(), 23);
}

#[test]
fn axfr_refusals() {
    let mut s = server(example(), None);
    // Over UDP: REFUSED (TCP only).
    let reply = udp(&mut s, "example.com", Rtype::AXFR);
    assert_eq!(reply.header().rcode(), Rcode::REFUSED);
    // Not a served zone's apex: NOTAUTH.
    for q in ["example.net", "www.example.com"] {
        let replies = tcp(&mut s, "127.0.0.1", q, Rtype::AXFR);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].header().rcode(), Rcode::NOTAUTH, "{q}");
    }
    // A client outside the ACL (default loopback only): REFUSED.
    let replies = tcp(&mut s, "192.0.2.200", "example.com", Rtype::AXFR);
    assert_eq!(replies[0].header().rcode(), Rcode::REFUSED);
    assert_eq!(replies[0].header_counts().ancount(), 0);
    // With an ACL that admits it: the zone.
    let mut s = server(example(), Some(vec![Cidr::parse("192.0.2.0/24").unwrap()]));
    let replies = tcp(&mut s, "192.0.2.200", "example.com", Rtype::AXFR);
    assert_eq!(replies[0].header().rcode(), Rcode::NOERROR);
    let replies = tcp(&mut s, "127.0.0.1", "example.com", Rtype::AXFR);
    assert_eq!(replies[0].header().rcode(), Rcode::REFUSED);
}

/// Issue 10 #7: a refused transfer is checked before the zone's records are built, so a
/// refusal costs no copy of the zone, however big.
#[test]
fn refused_axfr_builds_no_records() {
    let zones = Snapshot::new(big_zone(2000));
    let resolver = ZoneResolver::new(zones.clone());
    let mut s = Server::new(Config::default(), Chain::new().with(resolver), [3; 32]);
    for _ in 0..3 {
        let replies = tcp(&mut s, "192.0.2.200", "big.test", Rtype::AXFR);
        assert_eq!(replies[0].header().rcode(), Rcode::REFUSED);
        let reply = udp(&mut s, "big.test", Rtype::AXFR);
        assert_eq!(reply.header().rcode(), Rcode::REFUSED);
    }
    assert_eq!(
        zones.load().transfers_built(),
        0,
        "a refusal built the zone"
    );
    let replies = tcp(&mut s, "127.0.0.1", "big.test", Rtype::AXFR);
    assert!(replies.len() > 1);
    assert_eq!(zones.load().transfers_built(), 1);
}

#[test]
fn cidr_parsing_and_matching() {
    let c = Cidr::parse("10.1.0.0/16").unwrap();
    assert!(c.contains("10.1.200.3".parse().unwrap()));
    assert!(!c.contains("10.2.0.1".parse().unwrap()));
    assert!(c.contains("::ffff:10.1.0.1".parse().unwrap()));
    assert!(Cidr::parse("::/0")
        .unwrap()
        .contains("2001:db8::1".parse().unwrap()));
    assert!(Cidr::parse("0.0.0.0/0")
        .unwrap()
        .contains("192.0.2.1".parse().unwrap()));
    assert!(Cidr::parse("2001:db8::1")
        .unwrap()
        .contains("2001:db8::1".parse().unwrap()));
    assert!(Cidr::parse("10.0.0.0/33").is_err());
    assert!(Cidr::parse("nope").is_err());
}

#[test]
fn reload_swaps_the_snapshot_for_new_queries_only() {
    let shared = Snapshot::new(example());
    let held = shared.load();
    let zone = load("$ORIGIN example.com.\n@ SOA ns h 2 2 3 4 5\nwww A 192.0.2.81\n").unwrap();
    shared.store(ZoneSet::new(vec![zone]).unwrap());
    assert_eq!(
        lines(&ask(&held, "www.example.com", Rtype::A).answer),
        ["www.example.com A 192.0.2.80"]
    );
    assert_eq!(
        lines(&ask(&shared.load(), "www.example.com", Rtype::A).answer),
        ["www.example.com A 192.0.2.81"]
    );
}

/// A repeated question is answered from the encoded form of its first answer: the same
/// records, AA set, the owner and question echoed as asked each time; a reload replaces
/// the encoded answers with the new data.
#[test]
fn repeated_questions_are_answered_alike_and_a_reload_refreshes_them() {
    let shared = Snapshot::new(example());
    let chain = Chain::new().with(ZoneResolver::new(shared.clone()));
    let mut s = Server::new(Config::default(), chain, [5; 32]);
    let first = udp(&mut s, "www.example.com", Rtype::A);
    let again = udp(&mut s, "WWW.Example.COM", Rtype::A);
    for reply in [&first, &again] {
        assert!(reply.header().aa());
        assert_eq!(reply.header_counts().ancount(), 1);
    }
    let record = |m: &Message<Bytes>| {
        let rr = m.answer().unwrap().next().unwrap().unwrap();
        let a = rr
            .to_record::<names_core::domain::rdata::A>()
            .unwrap()
            .unwrap();
        (
            rr.owner().to_string(),
            rr.ttl().as_secs(),
            a.data().addr().to_string(),
        )
    };
    let (owner, ttl, addr) = record(&again);
    assert_eq!(owner, "WWW.Example.COM", "owner as asked");
    assert_eq!(record(&first).1, ttl);
    assert_eq!(addr, "192.0.2.80");
    let zone = load("$ORIGIN example.com.\n@ SOA ns h 2 2 3 4 5\nwww A 192.0.2.81\n").unwrap();
    shared.store(ZoneSet::new(vec![zone]).unwrap());
    let after = udp(&mut s, "www.example.com", Rtype::A);
    assert_eq!(
        record(&after).2,
        "192.0.2.81",
        "the reload's data, not the encoded answer"
    );
}

/// Two reloads with no zone query between them: the second set may be allocated where the
/// first one was freed, so nothing derived from the data may be keyed by its address.
/// Every round must answer from the data stored last (the audit saw stale answers in 4
/// rounds of 5 when the encoded answers were keyed by the set's address).
#[test]
fn encoded_answers_never_outlive_two_reloads_in_a_row() {
    let set = |serial: u32, last: u8| {
        let text =
            format!("$ORIGIN example.com.\n@ SOA ns h {serial} 2 3 4 5\nwww A 192.0.2.{last}\n");
        ZoneSet::new(vec![load(&text).unwrap()]).unwrap()
    };
    let shared = Snapshot::new(set(1, 1));
    let chain = Chain::new().with(ZoneResolver::new(shared.clone()));
    let mut s = Server::new(Config::default(), chain, [5; 32]);
    let addr = |m: &Message<Bytes>| {
        let rr = m.answer().unwrap().next().unwrap().unwrap();
        let a = rr.to_record::<names_core::domain::rdata::A>().unwrap();
        a.unwrap().data().addr().to_string()
    };
    for current in 1..=20u8 {
        let answer = addr(&udp(&mut s, "www.example.com", Rtype::A));
        assert_eq!(answer, format!("192.0.2.{current}"), "round {current}");
        shared.store(set(u32::from(current) * 2, 200));
        shared.store(set(u32::from(current) * 2 + 1, current + 1));
    }
}

/// A zone with DNAMEs below the apex, a chain of two, and one whose results run long.
fn dname_zones() -> ZoneSet {
    let one = load(
        "$ORIGIN one.\n@ 3600 SOA ns h 1 2 3 4 60\n\
         old 600 DNAME new.one.\n\
         old 600 A 192.0.2.9\n\
         gone.old 600 A 192.0.2.66\n\
         www.new 300 A 192.0.2.1\n\
         a 700 DNAME b.one.\n\
         x.b 800 DNAME new.one.\n\
         out 500 DNAME elsewhere.test.\n\
         self 500 DNAME x.self.one.\n\
         cut NS ns.cut.one.\n\
         cut DNAME new.one.\n\
         long 900 DNAME aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.\
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.\
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.one.\n",
    )
    .unwrap();
    let apex = load("$ORIGIN apex.\n@ 3600 SOA ns h 1 2 3 4 60\n@ 400 DNAME one.\n").unwrap();
    ZoneSet::new(vec![one, apex]).unwrap()
}

#[test]
fn dname_synthesises_a_cname_and_follows_it() {
    let a = ask(&dname_zones(), "www.OLD.one", Rtype::A);
    assert_eq!(a.rcode, Rcode::NOERROR.into());
    assert!(a.authoritative);
    // The DNAME's owner is written as asked (as NSD does).
    assert_eq!(
        lines(&a.answer),
        [
            "OLD.one DNAME new.one.",
            "www.OLD.one CNAME www.new.one.",
            "www.new.one A 192.0.2.1"
        ]
    );
    // The CNAME has the DNAME's TTL.
    assert_eq!(a.answer[1].ttl().as_secs(), 600);
    // Data below the DNAME owner is occluded: the DNAME applies, not the A there.
    let a = ask(&dname_zones(), "gone.old.one", Rtype::A);
    assert_eq!(
        lines(&a.answer),
        ["old.one DNAME new.one.", "gone.old.one CNAME gone.new.one."]
    );
    assert_eq!(a.rcode, Rcode::NXDOMAIN.into());
    assert_eq!(a.authority[0].owner(), &name("one"));
}

#[test]
fn dname_owner_itself_is_an_ordinary_name() {
    let set = dname_zones();
    let a = ask(&set, "old.one", Rtype::A);
    assert_eq!(lines(&a.answer), ["old.one A 192.0.2.9"]);
    let a = ask(&set, "old.one", Rtype::DNAME);
    assert_eq!(lines(&a.answer), ["old.one DNAME new.one."]);
    let a = ask(&set, "old.one", Rtype::MX);
    assert!(a.answer.is_empty());
    assert_eq!(a.rcode, Rcode::NOERROR.into());
}

#[test]
fn dname_at_the_apex_and_into_another_zone() {
    let a = ask(&dname_zones(), "www.new.apex", Rtype::A);
    assert_eq!(
        lines(&a.answer),
        [
            "apex DNAME one.",
            "www.new.apex CNAME www.new.one.",
            "www.new.one A 192.0.2.1"
        ]
    );
    assert_eq!(a.answer[1].ttl().as_secs(), 400);
    // The apex itself keeps its SOA and its DNAME.
    let a = ask(&dname_zones(), "apex", Rtype::SOA);
    assert_eq!(a.answer[0].rtype(), Rtype::SOA);
}

#[test]
fn dname_chain_is_followed() {
    let a = ask(&dname_zones(), "www.x.a.one", Rtype::A);
    assert_eq!(
        lines(&a.answer),
        [
            "a.one DNAME b.one.",
            "www.x.a.one CNAME www.x.b.one.",
            "x.b.one DNAME new.one.",
            "www.x.b.one CNAME www.new.one.",
            "www.new.one A 192.0.2.1"
        ]
    );
    assert_eq!(a.answer[3].ttl().as_secs(), 800);
}

#[test]
fn dname_out_of_the_served_zones_leaves_the_rest_to_the_client() {
    let a = ask(&dname_zones(), "www.out.one", Rtype::A);
    assert_eq!(
        lines(&a.answer),
        [
            "out.one DNAME elsewhere.test.",
            "www.out.one CNAME www.elsewhere.test."
        ]
    );
    assert_eq!(a.rcode, Rcode::NOERROR.into());
    assert!(a.authority.is_empty());
}

#[test]
fn dname_into_its_own_subtree_is_not_followed() {
    // x.self.one -> x.x.self.one -> ... would grow by a label each step: one step, as NSD.
    let a = ask(&dname_zones(), "x.self.one", Rtype::A);
    assert_eq!(
        lines(&a.answer),
        [
            "self.one DNAME x.self.one.",
            "x.self.one CNAME x.x.self.one."
        ]
    );
    assert_eq!(a.rcode, Rcode::NOERROR.into());
}

#[test]
fn dname_result_too_long_is_yxdomain() {
    // 3 * 64 + 4 (one.) + the DNAME root = 197 octets of target; a 60-octet prefix overflows.
    let long = format!("{}.long.one", ["b".repeat(58)].join("."));
    let a = ask(&dname_zones(), &long, Rtype::A);
    assert_eq!(a.rcode, Rcode::YXDOMAIN.into());
    assert_eq!(
        lines(&a.answer),
        ["long.one DNAME ".to_string()
            + &"a".repeat(63)
            + "."
            + &"a".repeat(63)
            + "."
            + &"a".repeat(63)
            + ".one."]
    );
    // A short one fits.
    let a = ask(&dname_zones(), "b.long.one", Rtype::A);
    assert_eq!(a.answer[1].rtype(), Rtype::CNAME);
    assert_eq!(a.answer[1].data().to_string().len(), 2 + 3 * 64 + 4);
}

#[test]
fn dname_below_a_delegation_is_not_applied() {
    let a = ask(&dname_zones(), "www.cut.one", Rtype::A);
    assert!(!a.authoritative);
    assert!(a.answer.is_empty());
    assert_eq!(a.authority[0].rtype(), Rtype::NS);
}
