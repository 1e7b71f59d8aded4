//! Conditional forwarding (`--forward ZONE=ADDR[,ADDR...]`): the names of a zone go to its
//! servers, the longest zone winning; the rest to the upstreams, or, with `--recursive`,
//! through the hierarchy.

use std::net::Ipv4Addr;

use names_tests::loopback::WWW_A;
use names_tests::*;

use crate::{answers, ask, hierarchy, recursor, status, Block};

const DEFAULT_A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const CORP_A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const LAB_A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);

fn a(dig: &str) -> Vec<String> {
    answers(dig)
        .iter()
        .filter_map(|r| r.split(" a ").nth(1).map(str::to_string))
        .collect()
}

#[test]
fn routed_zones_go_to_their_servers_the_rest_to_the_upstreams() {
    let default = FakeUpstream::answering(&[DEFAULT_A]);
    let corp = FakeUpstream::answering(&[CORP_A]);
    let lab = FakeUpstream::answering(&[LAB_A]);
    let dead = FakeUpstream::silent();
    let corp_route = format!("corp.test={},{}", dead.arg(), corp.arg());
    let lab_route = format!("lab.Corp.Test.={}", lab.arg());
    let srv = Server::start(&[
        "--upstream",
        &default.arg(),
        "--forward",
        &corp_route,
        "--forward",
        &lab_route,
        "--try-timeout",
        "200",
    ]);
    assert!(
        srv.ready_line().contains("chain=cache,forward"),
        "{}",
        srv.ready_line()
    );
    for (qname, want) in [
        ("www.corp.test", CORP_A),
        ("WWW.CORP.test", CORP_A),
        ("corp.test", CORP_A),
        ("host.lab.corp.test", LAB_A),
        ("xcorp.test", DEFAULT_A),
        ("www.example.com", DEFAULT_A),
    ] {
        let out = ask(&srv, &[qname, "A"]);
        assert_eq!(
            a(&out),
            [want.to_string()],
            "{qname}: {out}\n{}",
            srv.logs()
        );
    }
    // The dead server of the route was tried first, then its second server.
    assert!(dead.count() >= 1);
    assert_eq!(lab.count(), 1);
    assert_eq!(default.count(), 2);
    // A route's answers are cached like any other.
    let before = corp.count();
    let again = ask(&srv, &["www.corp.test", "A"]);
    assert_eq!(a(&again), [CORP_A.to_string()]);
    assert_eq!(corp.count(), before, "served from the cache");
}

#[test]
fn routes_without_upstreams_refuse_the_rest() {
    let corp = FakeUpstream::answering(&[CORP_A]);
    let route = format!("corp.test={}", corp.arg());
    let srv = Server::start(&["--no-forward", "--forward", &route]);
    assert_eq!(a(&ask(&srv, &["www.corp.test"])), [CORP_A.to_string()]);
    assert_eq!(status(&ask(&srv, &["www.example.com"])), "REFUSED");
    assert_eq!(corp.count(), 1);
}

#[test]
fn routed_zones_are_not_recursed_the_rest_is() {
    let h = hierarchy(Block::ForwardRecursive);
    let corp = FakeUpstream::answering(&[CORP_A]);
    let route = format!("corp.test={}", corp.arg());
    let srv = recursor(&h, &["--forward", &route]);
    assert_eq!(a(&ask(&srv, &["www.corp.test"])), [CORP_A.to_string()]);
    assert_eq!(corp.count(), 1);
    let www = ask(&srv, &["www.example.test"]);
    assert_eq!(a(&www), [WWW_A.to_string()], "{www}\n{}", srv.logs());
    assert_eq!(corp.count(), 1, "the rest is not forwarded");
    h.settle();
    for k in [1, 2] {
        assert_eq!(
            h.asked(k, "corp.test."),
            0,
            "host {k} asked about a routed zone"
        );
    }
}
