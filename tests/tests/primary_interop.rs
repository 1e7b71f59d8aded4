//! `names` as a primary, end to end through the real binary: IXFR replies, TSIG and the
//! refused cases with `dig`, and NSD and Knot as secondaries on loopback ports (initial
//! AXFR, a zone edit + SIGHUP -> NOTIFY -> IXFR, TSIG on, a wrong key refused).
//! `.ci/run` installs `nsd` and `knot` (a test whose daemon is missing is skipped, saying
//! so); each daemon runs with a temporary config and is stopped by its PID. All traffic
//! stays on 127.0.0.1.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use names_core::domain::base::iana::{Opcode, Rcode};
use names_core::domain::base::{Message, MessageBuilder};
use names_core::domain::rdata::Soa;
use names_tests::{dig_at, free_port, installed, run_names, temp_dir, terminate, within, Server};

/// The secret of the key `xfr` (base64 of "secret-secret-secret").
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQ=";
const KEY: &str = "xfr:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQ=";

fn zone(serial: u32, www: &str, extra: &str) -> String {
    format!(
        "$ORIGIN p.test.\n@ 3600 IN SOA ns h {serial} 7200 900 1209600 60\n@ NS ns\nns A 192.0.2.53\nwww 60 A {www}\n{extra}"
    )
}

/// Writes the zone, sends SIGHUP and waits for the reload line naming `serial`.
fn edit(server: &Server, path: &Path, text: &str, serial: u32) {
    std::fs::write(path, text).unwrap();
    server.signal("HUP");
    let line = format!("reloaded: zone p.test. serial {serial}");
    assert!(
        within(Duration::from_secs(5), || server.logs().contains(&line)),
        "no reload to {serial}:\n{}",
        server.logs()
    );
}

/// The SOA serials in a dig transfer output, in order.
fn serials(out: &str) -> Vec<u32> {
    out.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(3) == Some(&"SOA")).then(|| f[6].parse().unwrap())
        })
        .collect()
}

fn start_primary(dir: &Path, extra: &[&str]) -> (Server, PathBuf) {
    let path = dir.join("p.test.zone");
    std::fs::write(&path, zone(1, "192.0.2.1", "")).unwrap();
    let mut args = vec![
        "--no-forward",
        "--workers",
        "1",
        "--log-queries",
        "--zone",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    (Server::start(&args), path)
}

#[test]
fn ixfr_replies_through_dig() {
    let dir = temp_dir("ixfr-dig");
    let (server, path) = start_primary(&dir, &[]);
    let at = server.tcp_addr();
    edit(
        &server,
        &path,
        &zone(2, "192.0.2.2", "new 60 A 192.0.2.9\n"),
        2,
    );
    edit(
        &server,
        &path,
        &zone(3, "192.0.2.2", "new2 60 A 192.0.2.10\n"),
        3,
    );

    // From 1: one condensed difference, 1 -> 3: the old www out, the new one and new2 in.
    let out = dig_at(at, &["p.test", "IXFR=1"]);
    assert_eq!(serials(&out), vec![3, 1, 3, 3], "{out}");
    let deleted = out.split("\tSOA\t").nth(2).unwrap();
    assert!(
        deleted.contains("192.0.2.1") && !deleted.contains("192.0.2.9"),
        "{out}"
    );
    assert!(
        out.contains("new2.p.test.") && !out.contains("\nnew.p.test."),
        "{out}"
    );
    // From 2: deleted new, added new2.
    let out = dig_at(at, &["p.test", "IXFR=2"]);
    assert_eq!(serials(&out), vec![3, 2, 3, 3], "{out}");
    // Up to date, or newer: the single current SOA.
    for ask in ["IXFR=3", "IXFR=4"] {
        assert_eq!(serials(&dig_at(at, &["p.test", ask])), vec![3], "{ask}");
    }
    // Older (RFC 1982: 3 is ahead of 2^32 - 6) but unknown to the history: the whole
    // zone, AXFR-style.
    let out = dig_at(at, &["p.test", "IXFR=4294967290"]);
    assert_eq!(serials(&out), vec![3, 3], "{out}");
    assert!(
        out.contains("ns.p.test.") && out.contains("new2.p.test."),
        "{out}"
    );
    // Over UDP: the current SOA alone, whatever the client has (the client asks over TCP).
    let out = dig_at(at, &["+notcp", "p.test", "IXFR=1"]);
    assert_eq!(serials(&out), vec![3], "{out}");
    assert!(server
        .logs()
        .contains("transport=udp name=p.test. type=IXFR rcode=NOERROR"));

    // --ixfr-versions 0: no history, always the whole zone.
    let (server, path) = start_primary(&dir, &["--ixfr-versions", "0"]);
    edit(&server, &path, &zone(2, "192.0.2.2", ""), 2);
    assert_eq!(
        serials(&dig_at(server.tcp_addr(), &["p.test", "IXFR=1"])),
        vec![2, 2]
    );
}

#[test]
fn tsig_through_dig() {
    let dir = temp_dir("tsig-dig");
    let (server, _) = start_primary(
        &dir,
        &[
            "--tsig-key",
            KEY,
            "--tsig-key",
            "other:hmac-sha256:b3RoZXItc2VjcmV0",
            "--allow-transfer",
            "127.0.0.1,key=xfr",
        ],
    );
    let at = server.tcp_addr();
    let signed = format!("hmac-sha256:xfr:{SECRET}");
    // A known key that is not the rule's: NOTAUTH with BADKEY, as Knot answers.
    let other = dig_at(
        at,
        &["-y", "hmac-sha256:other:b3RoZXItc2VjcmV0", "p.test", "AXFR"],
    );
    assert!(
        other.contains("BADKEY") && !other.contains("\tSOA\t"),
        "{other}"
    );
    let other = dig_at(
        at,
        &["-y", "hmac-sha256:other:b3RoZXItc2VjcmV0", "p.test", "SOA"],
    );
    assert!(
        other.contains("status: NOERROR") && !other.contains("ouldn't verify"),
        "{other}"
    );

    // Signed with the key: answered and signed, dig verifies every message.
    for args in [
        &["p.test", "SOA"][..],
        &["p.test", "AXFR"],
        &["p.test", "IXFR=0"],
    ] {
        let mut full = vec!["-y", &signed];
        full.extend_from_slice(args);
        let out = dig_at(at, &full);
        assert!(
            out.contains("\tSOA\t") && out.contains("TSIG"),
            "{args:?}: {out}"
        );
        assert!(
            !out.contains("ouldn't verify") && !out.contains("could not be validated"),
            "{args:?}: {out}"
        );
    }
    // The wrong secret: NOTAUTH/BADSIG; an unknown key: NOTAUTH/BADKEY; no records.
    let forged = dig_at(at, &["-y", "hmac-sha256:xfr:Zm9yZ2Vk", "p.test", "SOA"]);
    assert!(
        forged.contains("status: NOTAUTH") && forged.contains("BADSIG"),
        "{forged}"
    );
    let unknown = dig_at(
        at,
        &[
            "-y",
            &format!("hmac-sha256:stranger:{SECRET}"),
            "p.test",
            "SOA",
        ],
    );
    assert!(
        unknown.contains("status: NOTAUTH") && unknown.contains("BADKEY"),
        "{unknown}"
    );
    for out in [&forged, &unknown] {
        assert!(out.contains("ANSWER: 0"), "{out}");
    }
    // Unsigned transfers where the rule wants the key: NOTAUTH, no records. An unsigned
    // SOA query is still answered (TSIG is asked only of transfers).
    for qtype in ["AXFR", "IXFR=0"] {
        let out = dig_at(at, &["p.test", qtype]);
        assert!(!out.contains("\tSOA\t"), "{qtype}: {out}");
    }
    assert!(within(Duration::from_secs(2), || {
        let logs = server.logs();
        logs.contains("type=AXFR rcode=NOTAUTH") && logs.contains("type=IXFR rcode=NOTAUTH")
    }));
    assert!(dig_at(at, &["p.test", "SOA", "+norec"]).contains("status: NOERROR"));
}

#[test]
fn primary_flags_are_checked_in_one_line() {
    for (args, why) in [
        (
            &["--tsig-key", "xfr:hmac-md5:c2VjcmV0"][..],
            "unknown algorithm",
        ),
        (&["--tsig-key", "xfr:hmac-sha256:%%%"], "not valid base64"),
        (&["--tsig-key", "xfr:hmac-sha256:"], "secret is empty"),
        (&["--tsig-key", KEY, "--tsig-key", KEY], "given twice"),
        (
            &["--allow-transfer", "127.0.0.1,key=nokey"],
            "no --tsig-key named nokey",
        ),
        (
            &["--allow-transfer", "127.0.0.1,kee=x"],
            "expected CIDR or CIDR,key=NAME",
        ),
        (
            &["--notify", "127.0.0.1:5300,key=nokey"],
            "no --tsig-key named nokey",
        ),
        (&["--notify", "nowhere"], "--notify"),
        (&["--ixfr-versions", "many"], "ixfr"),
    ] {
        let mut full = vec!["serve", "--no-forward", "--listen", "127.0.0.1:0"];
        full.extend_from_slice(args);
        let out = run_names(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(why) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

/// A secondary daemon, stopped by its PID (SIGTERM, then SIGKILL) on drop.
struct Daemon {
    child: Child,
    log: PathBuf,
    addr: SocketAddr,
}

impl Daemon {
    fn start(program: &str, args: &[&str], dir: &Path, port: u16) -> Daemon {
        let log = dir.join(format!("{program}.out"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("{program} is required (.ci/run installs it): {e}"));
        Daemon {
            child,
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The serial the secondary serves for p.test, if it serves it.
    fn serial(&self) -> Option<u32> {
        let out = dig_at(self.addr, &["+short", "+norec", "p.test", "SOA"]);
        out.split_whitespace().nth(2)?.parse().ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(5));
    }
}

fn nsd(dir: &Path, primary: SocketAddr, port: u16, secret: &str) -> Daemon {
    let d = dir.display();
    let conf = format!(
        "server:\n  ip-address: 127.0.0.1\n  port: {port}\n  username: \"\"\n  chroot: \"\"\n  \
         zonesdir: \"{d}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  xfrdfile: \"{d}/xfrd.state\"\n  \
         zonelistfile: \"{d}/zone.list\"\n  xfrdir: \"{d}\"\n  verbosity: 2\n\
         remote-control:\n  control-enable: no\n\
         key:\n  name: \"xfr\"\n  algorithm: hmac-sha256\n  secret: \"{secret}\"\n\
         zone:\n  name: \"p.test\"\n  zonefile: \"p.test.secondary\"\n  \
         request-xfr: {}@{} xfr\n  allow-notify: 127.0.0.1 xfr\n",
        primary.ip(),
        primary.port()
    );
    let path = dir.join("nsd.conf");
    std::fs::write(&path, conf).unwrap();
    Daemon::start("nsd", &["-d", "-c", path.to_str().unwrap()], dir, port)
}

fn knot(dir: &Path, primary: SocketAddr, port: u16, secret: &str) -> Daemon {
    let d = dir.display();
    let conf = format!(
        "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
         log:\n  - target: stderr\n    any: info\n\
         database:\n    storage: \"{d}\"\n\
         key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: {secret}\n\
         remote:\n  - id: primary\n    address: {}@{}\n    key: xfr\n\
         acl:\n  - id: notify\n    address: 127.0.0.1\n    key: xfr\n    action: notify\n\
         zone:\n  - domain: p.test\n    storage: \"{d}\"\n    file: p.test.secondary\n    \
         master: primary\n    acl: notify\n",
        primary.ip(),
        primary.port()
    );
    let path = dir.join("knot.conf");
    std::fs::write(&path, conf).unwrap();
    Daemon::start("knotd", &["-c", path.to_str().unwrap()], dir, port)
}

type Secondary = fn(&Path, SocketAddr, u16, &str) -> Daemon;

/// `names` as the primary of `secondary`, TSIG on: the initial AXFR, then a zone edit +
/// SIGHUP -> NOTIFY -> IXFR, the new serial served within a few seconds.
fn follows(secondary: Secondary, program: &str, tag: &str) {
    if !installed(program) {
        return;
    }
    let dir = temp_dir(tag);
    // The secondary's port is picked first, so names can be told to notify it.
    let port = free_port();
    let notify = format!("127.0.0.1:{port},key=xfr");
    let (server, path) = start_primary(
        &dir,
        &[
            "--tsig-key",
            KEY,
            "--allow-transfer",
            "127.0.0.1,key=xfr",
            "--notify",
            &notify,
        ],
    );
    let secondary = secondary(&dir, server.tcp_addr(), port, SECRET);
    assert!(
        within(Duration::from_secs(15), || secondary.serial() == Some(1)),
        "{tag}: no initial transfer\n{}\n{}",
        secondary.log(),
        server.logs()
    );
    assert!(
        server.logs().contains("type=AXFR rcode=NOERROR"),
        "{}",
        server.logs()
    );

    let edited = Instant::now();
    edit(
        &server,
        &path,
        &zone(2, "192.0.2.2", "new 60 A 192.0.2.9\n"),
        2,
    );
    assert!(
        within(Duration::from_secs(3), || secondary.serial() == Some(2)),
        "{tag}: NOTIFY did not bring serial 2\n{}\n{}",
        secondary.log(),
        server.logs()
    );
    eprintln!(
        "{tag}: serial 2 served {:?} after the edit",
        edited.elapsed()
    );
    assert!(
        server.logs().contains("type=IXFR rcode=NOERROR"),
        "{}",
        server.logs()
    );
    let answered = format!("notify: 127.0.0.1:{port} answered NOERROR for zone p.test. serial 2");
    assert!(
        within(Duration::from_secs(2), || server.logs().contains(&answered)),
        "{}",
        server.logs()
    );
    let www = dig_at(secondary.addr, &["+short", "www.p.test", "A"]);
    assert_eq!(www.trim(), "192.0.2.2");
    // names first: no NOTIFY retry may go to the secondary's port once it is free again.
    drop(server);
}

#[test]
fn nsd_follows_by_notify_and_ixfr_with_tsig() {
    follows(nsd, "nsd", "nsd");
}

#[test]
fn knot_follows_by_notify_and_ixfr_with_tsig() {
    follows(knot, "knotd", "knot");
}

#[test]
fn a_secondary_with_the_wrong_key_gets_nothing() {
    if !installed("nsd") {
        return;
    }
    let dir = temp_dir("nsd-wrong-key");
    let (server, _) = start_primary(
        &dir,
        &["--tsig-key", KEY, "--allow-transfer", "127.0.0.1,key=xfr"],
    );
    let secondary = nsd(&dir, server.tcp_addr(), free_port(), "d3Jvbmcgc2VjcmV0");
    // NSD asks at once on start; give it time to try (and retry).
    thread::sleep(Duration::from_secs(3));
    assert!(
        within(Duration::from_secs(2), || dig_at(
            secondary.addr,
            &["p.test", "SOA"]
        )
        .contains("status: SERVFAIL")),
        "{}",
        secondary.log()
    );
    assert_eq!(secondary.serial(), None, "{}", secondary.log());
    let logs = server.logs();
    assert!(!logs.contains("rcode=NOERROR"), "nothing answered:\n{logs}");
}

#[test]
fn journals_keep_key_names_but_not_secrets() {
    let dir = temp_dir("tsig-journal");
    let journal = dir.join("journal");
    let (mut server, _) = start_primary(
        &dir,
        &[
            "--tsig-key",
            KEY,
            "--allow-transfer",
            "127.0.0.1,key=xfr",
            "--record",
            journal.to_str().unwrap(),
        ],
    );
    assert!(dig_at(server.udp_addr(), &["p.test", "SOA"]).contains("status: NOERROR"));
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    let bytes = std::fs::read(&journal).unwrap();
    let has = |s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(
        has("xfr:hmac-sha256:") && !has(SECRET),
        "the secret was recorded"
    );
    let out = run_names(&["replay", journal.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Receives one datagram within `limit`.
fn receive(socket: &UdpSocket, limit: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let (n, from) = socket.recv_from(&mut buf).ok()?;
    Some((buf[..n].to_vec(), from))
}

#[test]
fn notify_is_retried_until_answered_and_sent_again_on_reload() {
    let secondary = UdpSocket::bind("127.0.0.1:0").unwrap();
    let other_zone = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = temp_dir("notify-retry");
    let other_path = dir.join("q.test.zone");
    std::fs::write(
        &other_path,
        "q.test. 60 IN SOA ns h 5 1 1 1 1\nq.test. 60 IN NS ns\n",
    )
    .unwrap();
    let all = secondary.local_addr().unwrap().to_string();
    let only_q = format!("q.test={}", other_zone.local_addr().unwrap());
    let (server, path) = start_primary(
        &dir,
        &[
            "--zone",
            other_path.to_str().unwrap(),
            "--notify",
            &all,
            "--notify",
            &only_q,
        ],
    );
    // At start: one NOTIFY per zone to the first, only q.test to the second.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (bytes, _) = receive(&secondary, Duration::from_secs(5)).expect("a NOTIFY at start");
        let msg = Message::from_octets(bytes).unwrap();
        assert_eq!(msg.header().opcode(), Opcode::NOTIFY);
        assert!(msg.header().aa());
        seen.push(msg.sole_question().unwrap().qname().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["p.test", "q.test"]);
    let (bytes, from) = receive(&other_zone, Duration::from_secs(5)).expect("q.test's NOTIFY");
    let q = Message::from_octets(bytes).unwrap();
    assert_eq!(q.sole_question().unwrap().qname().to_string(), "q.test");
    let answer = MessageBuilder::new_vec()
        .start_answer(&q, Rcode::NOERROR)
        .unwrap()
        .finish();
    other_zone.send_to(&answer, from).unwrap();

    // Unanswered, the first target gets both again after about a second, with fresh IDs;
    // answering p.test's ends its retries.
    let started = Instant::now();
    let mut retried = Vec::new();
    while retried.len() < 2 {
        let (bytes, from) = receive(&secondary, Duration::from_secs(5)).expect("a retry");
        let msg = Message::from_octets(bytes).unwrap();
        if msg.sole_question().unwrap().qname().to_string() == "p.test" {
            let answer = MessageBuilder::new_vec()
                .start_answer(&msg, Rcode::NOERROR)
                .unwrap()
                .finish();
            secondary.send_to(&answer, from).unwrap();
        }
        retried.push(msg.header().id());
    }
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "{:?}",
        started.elapsed()
    );
    assert!(within(Duration::from_secs(2), || server
        .logs()
        .contains("answered NOERROR for zone p.test. serial 1")));

    // A reload that changes p.test notifies p.test again, with the new SOA.
    edit(&server, &path, &zone(9, "192.0.2.9", ""), 9);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no NOTIFY for serial 9");
        let (bytes, _) = receive(&secondary, Duration::from_secs(5)).expect("a NOTIFY");
        let msg = Message::from_octets(bytes).unwrap();
        let soa = msg
            .answer()
            .unwrap()
            .limit_to::<Soa<_>>()
            .next()
            .unwrap()
            .unwrap();
        if soa.owner().to_string() == "p.test" && soa.data().serial().into_int() == 9 {
            break;
        }
    }
}
