//! The same key checks through the real `dig`.

use std::net::SocketAddr;

use names_tests::*;

use crate::{start, upstream_args, UP_IP};

fn dig_srv(srv: SocketAddr, args: &[&str]) -> String {
    dig_at(srv, args)
}

/// The `flags:` of dig's header line, e.g. ["qr", "rd", "ra"].
fn dig_flags(out: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.contains(";; flags:"))
        .unwrap_or_else(|| panic!("no flags line in dig output:\n{out}"));
    let after = line.split(";; flags:").nth(1).unwrap();
    let flags = after.split(';').next().unwrap();
    flags.split_whitespace().map(String::from).collect()
}

#[test]
fn dig_short_synth() {
    let srv = Server::start(&["--synth", "workstation=172.0.2", "--no-forward"]);
    let out = dig_srv(srv.udp_addr(), &["workstation5.example.com", "A", "+short"]);
    assert_eq!(out.trim(), "172.0.2.5", "dig output:\n{out}");
}

#[test]
fn dig_synth_full_output() {
    let srv = Server::start(&["--synth", "workstation=172.0.2", "--no-forward"]);
    let out = dig_srv(srv.udp_addr(), &["WorkStation6.Example.com", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    let flags = dig_flags(&out);
    assert!(flags.contains(&"aa".to_string()), "flags {flags:?}\n{out}");
    assert!(!flags.contains(&"ra".to_string()), "flags {flags:?}\n{out}");
    assert!(out.contains("172.0.2.6"), "{out}");
    assert!(
        out.contains("WorkStation6.Example.com."),
        "question case:\n{out}"
    );
    assert!(!out.contains("WARNING: Message has"), "{out}");
}

#[test]
fn dig_forwarding() {
    let up = FakeUpstream::answering(&[UP_IP]);
    let srv = start(&upstream_args(&[&up], &[]));
    let out = dig_srv(srv.udp_addr(), &["www.example.com", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("192.0.2.1"), "{out}");
    let flags = dig_flags(&out);
    assert!(
        flags.contains(&"ra".to_string()) && flags.contains(&"rd".to_string()),
        "flags {flags:?}\n{out}"
    );
    assert!(
        !flags.contains(&"aa".to_string()),
        "AA must be cleared: {flags:?}"
    );
    let short = dig_srv(srv.udp_addr(), &["www.example.com", "A", "+short"]);
    assert_eq!(short.trim(), "192.0.2.1");
}

#[test]
fn dig_tcp() {
    let srv = Server::start(&["--synth", "workstation=172.0.2", "--no-forward"]);
    let out = dig_srv(srv.tcp_addr(), &["workstation8.lan", "A", "+tcp", "+short"]);
    assert_eq!(out.trim(), "172.0.2.8", "dig output:\n{out}");
    let up = FakeUpstream::answering(&[UP_IP]);
    let srv = start(&upstream_args(&[&up], &[]));
    let out = dig_srv(srv.tcp_addr(), &["www.example.com", "A", "+tcp", "+short"]);
    assert_eq!(out.trim(), "192.0.2.1", "dig output:\n{out}");
}

#[test]
fn dig_refused() {
    let srv = Server::start(&["--no-forward"]);
    let out = dig_srv(srv.udp_addr(), &["www.example.com", "A"]);
    assert!(out.contains("status: REFUSED"), "{out}");
}

#[test]
fn dig_servfail() {
    let up = FakeUpstream::silent();
    let srv = start(&upstream_args(
        &[&up],
        &["--timeout", "600", "--try-timeout", "200"],
    ));
    let out = dig_srv(srv.udp_addr(), &["slow.example.com", "A"]);
    assert!(out.contains("status: SERVFAIL"), "{out}");
}

#[test]
fn dig_nxdomain_with_soa() {
    let up = FakeUpstream::start(|r| vec![Reply::Send(answer_nxdomain_soa(&r.bytes))]);
    let srv = start(&upstream_args(&[&up], &[]));
    let out = dig_srv(srv.udp_addr(), &["nope.example", "A"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(out.contains("AUTHORITY: 1"), "{out}");
    assert!(out.contains("SOA"), "{out}");
}

#[test]
fn dig_large_answer_falls_back_to_tcp() {
    // dig retries over TCP when it sees TC=1
    let up = FakeUpstream::start(|r| vec![Reply::Send(answer_many_a(&r.bytes, 60, 300))]);
    let srv = start(&upstream_args(&[&up], &[]));
    let out = dig_srv(
        srv.udp_addr(),
        &["big.example.com", "A", "+noedns", "+short"],
    );
    assert_eq!(out.lines().count(), 60, "dig output:\n{out}");
}
