//! Command line: bad flags fail cleanly, `names query` works like dig.

use std::process::Output;

use names_tests::*;

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A serve invocation that must fail before ready with one clean line.
fn assert_serve_fails(args: &[&str]) {
    if let Ok(srv) = Server::try_start(args) {
        panic!(
            "names serve {args:?} started (ready: {}) but should have failed",
            srv.ready_line()
        );
    }
    // run it once more as a one-shot to see the exit code and exact stderr
    let mut full = vec!["serve", "--listen", "127.0.0.1:0"];
    full.extend_from_slice(args);
    let o = run_names(&full);
    let err = stderr_of(&o);
    assert!(!o.status.success(), "names {full:?} exited 0");
    assert!(!err.contains("panicked"), "names {full:?} panicked:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "names {full:?}: expected exactly one error line on stderr, got:\n{err}"
    );
}

#[test]
fn unknown_flag_fails() {
    assert_serve_fails(&["--definitely-not-a-flag"]);
}

#[test]
fn bad_upstream_fails() {
    assert_serve_fails(&["--upstream", "notanaddress"]);
}

#[test]
fn bad_listen_fails() {
    let o = run_names(&["serve", "--listen", "not-an-addr"]);
    assert!(!o.status.success());
    assert!(!stderr_of(&o).contains("panicked"), "{}", stderr_of(&o));
}

#[test]
fn unreadable_resolv_conf_fails() {
    assert_serve_fails(&["--resolv-conf", "/nonexistent/names-test/resolv.conf"]);
}

#[test]
fn bad_synth_fails() {
    assert_serve_fails(&["--synth", "workstation"]);
    assert_serve_fails(&["--synth", "workstation=not.a.net"]);
}

#[test]
fn readable_resolv_conf_accepted() {
    let dir = std::env::temp_dir().join(format!("names-e2e-resolv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("resolv.conf");
    std::fs::write(
        &path,
        "# test\nsearch example\nnameserver 127.0.0.1\nnameserver ::1\noptions ndots:1\n",
    )
    .unwrap();
    let res = Server::try_start(&["--resolv-conf", path.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    let srv = res.unwrap_or_else(|e| panic!("a readable resolv.conf must be accepted:\n{e}"));
    assert!(srv.ready_line().contains("forward"), "{}", srv.ready_line());
}

#[test]
fn query_against_synth_server() {
    let srv = Server::start(&["--synth", "workstation=172.0.2", "--no-forward"]);
    let at = format!("@{}", srv.udp_addr());
    let o = run_names(&["query", &at, "workstation3.x", "A"]);
    let out = stdout_of(&o);
    assert!(
        o.status.success(),
        "names query exited {:?}\nstdout:\n{out}\nstderr:\n{}",
        o.status,
        stderr_of(&o)
    );
    let line = out
        .lines()
        .find(|l| l.contains("172.0.2.3"))
        .unwrap_or_else(|| panic!("no line with 172.0.2.3 in:\n{out}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        f.len(),
        5,
        "expected `owner TTL class type rdata`: {line:?}"
    );
    assert!(
        f[0].trim_end_matches('.')
            .eq_ignore_ascii_case("workstation3.x"),
        "{line:?}"
    );
    assert!(f[1].parse::<u32>().is_ok(), "TTL field: {line:?}");
    assert_eq!((f[2], f[3], f[4]), ("IN", "A", "172.0.2.3"), "{line:?}");
}

#[test]
fn query_over_tcp() {
    let srv = Server::start(&["--synth", "workstation=172.0.2", "--no-forward"]);
    let at = format!("@{}", srv.tcp_addr());
    let o = run_names(&["query", &at, "workstation4.x", "A", "--tcp"]);
    assert!(o.status.success(), "stderr:\n{}", stderr_of(&o));
    assert!(stdout_of(&o).contains("172.0.2.4"), "{}", stdout_of(&o));
}

#[test]
fn query_over_tcp_flag_first() {
    let srv = Server::start(&["--synth", "workstation=172.0.2", "--no-forward"]);
    let at = format!("@{}", srv.tcp_addr());
    let o = run_names(&["query", "--tcp", &at, "workstation4.x", "A"]);
    assert!(o.status.success(), "stderr:\n{}", stderr_of(&o));
    assert!(stdout_of(&o).contains("172.0.2.4"), "{}", stdout_of(&o));
}

#[test]
fn query_default_type_is_a() {
    let srv = Server::start(&["--synth", "workstation=172.0.2", "--no-forward"]);
    let at = format!("@{}", srv.udp_addr());
    let o = run_names(&["query", &at, "workstation5.x"]);
    assert!(o.status.success(), "stderr:\n{}", stderr_of(&o));
    assert!(stdout_of(&o).contains("172.0.2.5"), "{}", stdout_of(&o));
}

#[test]
fn query_refused_is_an_error() {
    let srv = Server::start(&["--no-forward"]);
    let at = format!("@{}", srv.udp_addr());
    let o = run_names(&["query", &at, "www.example.com", "A"]);
    assert!(!o.status.success(), "REFUSED must give a non-zero exit");
    let all = format!("{}{}", stdout_of(&o), stderr_of(&o));
    assert!(all.contains("REFUSED"), "rcode must be named:\n{all}");
    assert!(!all.contains("panicked"), "{all}");
}

#[test]
fn query_nxdomain_is_an_error() {
    let up = FakeUpstream::start(|r| vec![Reply::Send(answer_nxdomain_soa(&r.bytes))]);
    let srv = Server::start(&["--upstream", &up.arg()]);
    let at = format!("@{}", srv.udp_addr());
    let o = run_names(&["query", &at, "nope.example", "A"]);
    assert!(!o.status.success());
    let all = format!("{}{}", stdout_of(&o), stderr_of(&o));
    assert!(all.contains("NXDOMAIN"), "{all}");
}
