//! The hosts(5) resolver: names and aliases, PTR, passing what the file lacks.

// Tests take one real instant as the base time the core is given.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use bytes::Bytes;
use names_core::domain::base::iana::{Rcode, Rtype};
use names_core::domain::base::{Message, Name};
use names_core::hosts::{Hosts, HostsResolver, HOSTS_TTL};
use names_core::zone::{load_zone, Snapshot, ZoneResolver, ZoneSet};
use names_core::{Action, Chain, Config, Server};

const FILE: &str = "\
# comment line
127.0.0.1   localhost
192.0.2.10  Printer.Example.COM printer lp   # office printer
192.0.2.11  scanner.example.com
2001:db8::10 printer.example.com
fe80::1%eth0 linklocal
192.0.2.12  www.zone.test
";

fn name(s: &str) -> Name<Bytes> {
    s.parse().unwrap()
}

fn hosts() -> Hosts {
    Hosts::parse("hosts", FILE).unwrap()
}

fn lines(h: &Hosts, q: &str, t: Rtype) -> Option<Vec<String>> {
    h.answer(&name(q), t).map(|a| {
        assert!(a.authoritative);
        assert_eq!(a.rcode, Rcode::NOERROR.into());
        a.answer
            .iter()
            .map(|r| {
                assert_eq!(r.ttl().as_secs(), HOSTS_TTL);
                format!("{} {} {}", r.owner(), r.rtype(), r.data())
            })
            .collect()
    })
}

#[test]
fn names_and_aliases_case_insensitive() {
    let h = hosts();
    assert_eq!(
        lines(&h, "printer.example.com", Rtype::A).unwrap(),
        ["printer.example.com A 192.0.2.10"]
    );
    assert_eq!(
        lines(&h, "PRINTER", Rtype::A).unwrap(),
        ["PRINTER A 192.0.2.10"]
    );
    assert_eq!(lines(&h, "lp", Rtype::A).unwrap(), ["lp A 192.0.2.10"]);
    assert_eq!(
        lines(&h, "printer.example.com", Rtype::AAAA).unwrap(),
        ["printer.example.com AAAA 2001:db8::10"]
    );
    assert_eq!(
        lines(&h, "linklocal", Rtype::AAAA).unwrap(),
        ["linklocal AAAA fe80::1"]
    );
    assert_eq!(h.names(), 7);
}

#[test]
fn known_name_without_that_family_is_nodata() {
    assert_eq!(
        lines(&hosts(), "scanner.example.com", Rtype::AAAA).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn ptr_for_v4_and_v6() {
    let h = hosts();
    assert_eq!(
        lines(&h, "10.2.0.192.in-addr.arpa", Rtype::PTR).unwrap(),
        [
            "10.2.0.192.in-addr.arpa PTR Printer.Example.COM.",
            "10.2.0.192.in-addr.arpa PTR printer.",
            "10.2.0.192.in-addr.arpa PTR lp."
        ]
    );
    let v6 = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.IP6.ARPA";
    assert_eq!(lines(&h, v6, Rtype::PTR).unwrap().len(), 1);
    assert_eq!(
        lines(&h, "1.0.0.127.in-addr.arpa", Rtype::PTR).unwrap(),
        ["1.0.0.127.in-addr.arpa PTR localhost."]
    );
}

#[test]
fn everything_else_passes() {
    let h = hosts();
    assert!(h.answer(&name("unknown.example.com"), Rtype::A).is_none());
    assert!(h.answer(&name("printer.example.com"), Rtype::MX).is_none());
    assert!(h
        .answer(&name("99.2.0.192.in-addr.arpa"), Rtype::PTR)
        .is_none());
    assert!(h
        .answer(&name("printer.example.com.extra"), Rtype::A)
        .is_none());
}

#[test]
fn bad_lines_name_the_line() {
    let e = Hosts::parse("/etc/hosts", "127.0.0.1 localhost\n\n300.1.1.1 bad\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/hosts:3: \"300.1.1.1\" is not an IP address"
    );
    let e = Hosts::parse("h", "192.0.2.1\n").unwrap_err();
    assert_eq!(e.line, Some(1));
}

#[test]
fn zone_answers_before_hosts_and_hosts_before_later_resolvers() {
    let zone = load_zone(
        "z",
        "$ORIGIN zone.test.\n@ SOA ns h 1 2 3 4 5\nwww A 192.0.2.99\n",
        &mut |_, _| Err("none".into()),
    )
    .unwrap();
    let chain = Chain::new()
        .with(ZoneResolver::new(Snapshot::new(
            ZoneSet::new(vec![zone]).unwrap(),
        )))
        .with(HostsResolver::new(Snapshot::new(hosts())));
    let mut server = Server::new(Config::default(), chain, [1; 32]);
    let mut ask = |q: &str| {
        let query = names_tests::build::query(q, Rtype::A, 1, true, None);
        let from = names_tests::drive::udp_from("127.0.0.1:999".parse().unwrap());
        server.handle_client(Instant::now(), from, &query);
        let Some(Action::Reply { bytes, .. }) = server.poll_action() else {
            panic!()
        };
        Message::from_octets(Bytes::from(bytes)).unwrap()
    };
    let zone_answer = ask("www.zone.test");
    let rr = zone_answer.answer().unwrap().next().unwrap().unwrap();
    assert_eq!(
        rr.to_record::<names_core::domain::rdata::A>()
            .unwrap()
            .unwrap()
            .data()
            .addr()
            .to_string(),
        "192.0.2.99"
    );
    let hosts_answer = ask("printer");
    assert_eq!(hosts_answer.header().rcode(), Rcode::NOERROR);
    assert_eq!(hosts_answer.header_counts().ancount(), 1);
    // Neither knows it and nothing follows: REFUSED.
    assert_eq!(ask("nobody.example").header().rcode(), Rcode::REFUSED);
}
