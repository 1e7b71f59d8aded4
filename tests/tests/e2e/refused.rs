//! `--no-forward` with no other source: everything is REFUSED.

use names_tests::*;

#[test]
fn no_forward_no_synth_refused_udp() {
    let srv = Server::start(&["--no-forward"]);
    let r = udp_ask(
        srv.udp_addr(),
        &query("www.Example.com", Rtype::A, 0xaaaa, true, None),
    );
    assert_eq!(r.id, 0xaaaa);
    assert!(r.qr);
    assert_eq!(r.rcode, 5, "expected REFUSED: {r:?}");
    assert!(!r.ra, "RA must be clear with --no-forward");
    assert!(!r.aa);
    assert!(r.rd, "RD echoed");
    assert!(r.answers.is_empty());
    assert_eq!(
        r.question,
        Some(("www.Example.com".into(), Rtype::A.to_int()))
    );
}

#[test]
fn no_forward_refused_tcp_and_edns() {
    let srv = Server::start(&["--no-forward"]);
    let r = tcp_ask(
        srv.tcp_addr(),
        &query("x.example", Rtype::MX, 0xabab, false, Some(1232)),
    );
    assert_eq!(r.id, 0xabab);
    assert_eq!(r.rcode, 5);
    assert!(!r.rd);
    assert!(!r.ra);
    assert!(r.has_opt, "OPT in reply because the query had one");
}

#[test]
fn ready_line_reports_chain() {
    let srv = Server::start(&["--no-forward", "--synth", "workstation=172.0.2"]);
    assert!(srv.ready_line().contains("chain="), "{}", srv.ready_line());
    assert!(
        !srv.ready_line().contains("forward"),
        "--no-forward must not list forward: {}",
        srv.ready_line()
    );
    assert_eq!(srv.udp_addr().port(), srv.tcp_addr().port());
    assert!(srv.udp_addr().ip().is_loopback());
}
