//! End to end: `names --secondary` against Knot DNS as the primary (initial AXFR, a change
//! reaching names by NOTIFY and IXFR within a second, TSIG, EXPIRE, `--zone-dir`), and
//! `names` as the primary of three `names` secondaries. Loopback only; every process
//! (knotd, names) stopped by PID. Knot comes from Debian's `knot` package (`.ci/run`
//! installs it; without it the Knot tests are skipped, saying so).

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use std::str::FromStr;

use domain::base::iana::{Opcode, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, Name};
use names_tests::{
    dig_at, free_port, installed, metrics_addr, run_names, scrape, temp_dir, terminate, within,
    Server,
};

const KEY: &str = "xfr:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";

/// The tests here measure times: one at a time, so they do not slow each other down.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The test zone with these SOA timers and `www` at 192.0.2.`www`.
fn zone_text(serial: u32, timers: &str, www: u8) -> String {
    format!(
        "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 host {serial} {timers} 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.{www}\n"
    )
}

fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A knotd serving example.com from `dir` on `port`, NOTIFYing `notify` (with the key
/// when `tsig`); stopped by PID on drop.
struct Knot {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Knot {
    fn config(dir: &Path, port: u16, notify: u16, tsig: bool) -> String {
        let d = dir.display();
        let (key, key_ref) = if tsig {
            let secret = KEY.rsplit(':').next().unwrap();
            (
                format!("key:\n  - id: xfr\n    algorithm: hmac-sha256\n    secret: {secret}\n"),
                "    key: xfr\n",
            )
        } else {
            (String::new(), "")
        };
        format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n\
             log:\n  - target: stderr\n    any: info\n\
             database:\n    storage: \"{d}\"\n\
             control:\n    listen: \"{d}/knot.sock\"\n\
             {key}\
             remote:\n  - id: names\n    address: 127.0.0.1@{notify}\n{key_ref}\
             acl:\n  - id: xfr\n    address: 127.0.0.0/8\n    action: transfer\n{key_ref}\
             template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    zonefile-load: difference\n    journal-content: changes\n\
             zone:\n  - domain: example.com\n    file: example.com.zone\n    notify: names\n    acl: xfr\n"
        )
    }

    fn start(dir: &Path, port: u16, notify: u16, tsig: bool) -> Knot {
        write(
            &dir.join("knot.conf"),
            &Knot::config(dir, port, notify, tsig),
        );
        let log = std::fs::File::create(dir.join("knot.log")).unwrap();
        let child = Command::new("knotd")
            .arg("-c")
            .arg(dir.join("knot.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start knotd");
        let knot = Knot {
            child,
            dir: dir.to_path_buf(),
            port,
        };
        knot.wait_serving();
        knot
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits until knotd answers for the zone (at most 10 s).
    fn wait_serving(&self) {
        let ok = within(Duration::from_secs(10), || {
            dig_at(self.addr(), &["+norec", "example.com", "SOA"]).contains("status: NOERROR")
        });
        assert!(ok, "knotd did not come up:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("knot.log")).unwrap_or_default()
    }

    /// Replaces the zone file and has knotd load it (NOTIFY follows).
    fn change(&self, text: &str) {
        write(&self.dir.join("example.com.zone"), text);
        let out = Command::new("knotc")
            .arg("-c")
            .arg(self.dir.join("knot.conf"))
            .args(["zone-reload", "example.com"])
            .output()
            .expect("run knotc");
        assert!(out.status.success(), "knotc: {out:?}");
    }

    fn stop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(10));
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `names` answers for www.example.com A: its address, or the status.
fn www(server: SocketAddr) -> String {
    let out = dig_at(server, &["+norec", "+time=1", "www.example.com", "A"]);
    if out.contains("status: NOERROR") {
        out.lines()
            .find(|l| l.starts_with("www.example.com.") && l.contains("\tA\t"))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or("no address")
            .to_string()
    } else {
        out.lines()
            .find_map(|l| l.split("status: ").nth(1))
            .map_or("no reply".to_string(), |s| {
                s.split(',').next().unwrap().to_string()
            })
    }
}

/// A secondary `names` on a port chosen beforehand (the primary's NOTIFY target).
fn names_secondary(port: u16, args: &[&str]) -> Server {
    let listen = format!("127.0.0.1:{port}");
    let mut full = vec![
        "serve",
        "--listen",
        &listen,
        "--no-forward",
        "--workers",
        "2",
    ];
    full.extend_from_slice(args);
    Server::try_start_raw(&full).unwrap_or_else(|e| panic!("names {full:?}: {e}"))
}

/// Knot serving the zone (serial 1, www 192.0.2.2, refresh an hour) and wanting TSIG for
/// transfers, and `names` its secondary (`,key=xfr` or not: `key`), with `args`.
fn knot_and_names(tag: &str, key: &str, args: &[&str]) -> (Knot, Server) {
    let dir = temp_dir(tag);
    let (knot_port, names_port) = (free_port(), free_port());
    write(
        &dir.join("example.com.zone"),
        &zone_text(1, "3600 600 86400", 2),
    );
    let knot = Knot::start(&dir, knot_port, names_port, true);
    let secondary = format!("example.com=127.0.0.1:{knot_port}{key}");
    let mut all = args.to_vec();
    all.extend(["--secondary", &secondary]);
    (knot, names_secondary(names_port, &all))
}

#[test]
fn knot_primary_axfr_then_notify_and_ixfr_within_a_second_with_tsig() {
    if !installed("knotd") {
        return;
    }
    let _one = one_at_a_time();
    let (knot, names) = knot_and_names("knot-tsig", ",key=xfr", &["--tsig-key", KEY]);
    assert!(
        within(Duration::from_secs(5), || www(names.udp_addr())
            == "192.0.2.2"),
        "initial AXFR: {}\n{}",
        names.logs(),
        knot.log()
    );
    assert!(knot.log().contains("AXFR, outgoing"), "{}", knot.log());
    // A change on the primary, NOTIFY, and names serves it within a second, by IXFR.
    let changed = Instant::now();
    knot.change(&zone_text(2, "3600 600 86400", 22));
    assert!(
        within(Duration::from_secs(1), || www(names.udp_addr())
            == "192.0.2.22"),
        "the change did not arrive within a second: {}\n{}",
        names.logs(),
        knot.log()
    );
    eprintln!("change to served: {:?}", changed.elapsed());
    let logs = names.logs();
    assert!(logs.contains("NOTIFY for example.com."), "{logs}");
    assert!(logs.contains("serial 2 transferred by IXFR"), "{logs}");
    assert!(knot.log().contains("IXFR, outgoing"), "{}", knot.log());
}

#[test]
fn unsigned_transfers_are_refused_by_a_primary_that_wants_tsig() {
    if !installed("knotd") {
        return;
    }
    let _one = one_at_a_time();
    let (_knot, names) = knot_and_names("knot-notsig", "", &[]);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        www(names.udp_addr()),
        "SERVFAIL",
        "never transferred: {}",
        names.logs()
    );
    assert!(names.logs().contains("not served yet"), "{}", names.logs());
}

#[test]
fn past_expire_servfail_then_the_primary_back_brings_the_zone_back() {
    if !installed("knotd") {
        return;
    }
    let _one = one_at_a_time();
    let dir = temp_dir("knot-expire");
    let (knot_port, names_port) = (free_port(), free_port());
    // refresh 1, retry 1, expire 3 (seconds).
    write(&dir.join("example.com.zone"), &zone_text(1, "1 1 3", 2));
    let mut knot = Knot::start(&dir, knot_port, names_port, false);
    let zone_dir = dir.join("saved");
    let secondary = format!("example.com=127.0.0.1:{knot_port}");
    let zd = zone_dir.display().to_string();
    let names = names_secondary(
        names_port,
        &[
            "--secondary",
            &secondary,
            "--zone-dir",
            &zd,
            "--metrics",
            "127.0.0.1:0",
        ],
    );
    assert!(within(Duration::from_secs(5), || www(names.udp_addr())
        == "192.0.2.2"));
    let metrics = metrics_addr(&names);
    let body = scrape(metrics);
    assert!(
        body.contains("names_secondary_zone_serial{zone=\"example.com.\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("names_secondary_transfers_ok_total 1\n"),
        "{body}"
    );
    assert!(body.contains("names_secondary_zones_expired 0\n"), "{body}");
    knot.stop();
    let stopped = Instant::now();
    assert!(
        within(Duration::from_secs(8), || www(names.udp_addr())
            == "SERVFAIL"),
        "not expired: {}",
        names.logs()
    );
    assert!(
        stopped.elapsed() >= Duration::from_secs(2),
        "served until EXPIRE"
    );
    assert!(names.logs().contains("not refreshed within its SOA EXPIRE"));
    let body = scrape(metrics);
    assert!(body.contains("names_secondary_zones_expired 1\n"), "{body}");
    assert!(
        body.contains("names_secondary_expirations_total 1\n"),
        "{body}"
    );
    let knot = Knot::start(&dir, knot_port, names_port, false);
    assert!(
        within(Duration::from_secs(5), || www(names.udp_addr())
            == "192.0.2.2"),
        "not back: {}\n{}",
        names.logs(),
        knot.log()
    );
    let saved = std::fs::read_to_string(zone_dir.join("example.com.zone")).unwrap();
    assert!(
        saved.contains("www.example.com. 300 IN A 192.0.2.2"),
        "{saved}"
    );
}

#[test]
fn the_zone_dir_copy_is_served_at_once_after_a_restart() {
    if !installed("knotd") {
        return;
    }
    let _one = one_at_a_time();
    let dir = temp_dir("knot-zone-dir");
    let (knot_port, names_port) = (free_port(), free_port());
    // Expire after a minute: the saved copy outlives the primary for the whole test.
    write(&dir.join("example.com.zone"), &zone_text(1, "1 1 60", 2));
    let mut knot = Knot::start(&dir, knot_port, names_port, false);
    let zd = dir.join("saved").display().to_string();
    let secondary = format!("example.com=127.0.0.1:{knot_port}");
    let args = ["--secondary", secondary.as_str(), "--zone-dir", zd.as_str()];
    let mut names = names_secondary(names_port, &args);
    assert!(within(Duration::from_secs(5), || www(names.udp_addr())
        == "192.0.2.2"));
    knot.stop();
    names.signal("TERM");
    names.wait_exit(Duration::from_secs(10));
    drop(names);
    // No primary now: only the saved copy can answer.
    let names = names_secondary(names_port, &args);
    assert!(
        within(Duration::from_secs(3), || www(names.udp_addr())
            == "192.0.2.2"),
        "{}",
        names.logs()
    );
    assert!(names.logs().contains("loaded from"), "{}", names.logs());
}

#[test]
fn names_primary_and_three_names_secondaries() {
    let _one = one_at_a_time();
    let dir = temp_dir("names-fanout");
    let zone = dir.join("example.com.zone");
    // Refresh after an hour: only NOTIFY can bring a change within the test.
    write(&zone, &zone_text(1, "3600 600 86400", 2));
    let zone_arg = zone.display().to_string();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let notify: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut args = vec!["--no-forward", "--zone", &zone_arg];
    for n in &notify {
        args.extend(["--notify", n.as_str()]);
    }
    let primary = Server::start(&args);
    let from = format!("example.com={}", primary.tcp_addr());
    let secondaries: Vec<Server> = ports
        .iter()
        .map(|p| names_secondary(*p, &["--secondary", &from]))
        .collect();
    for s in &secondaries {
        assert!(
            within(Duration::from_secs(5), || www(s.udp_addr()) == "192.0.2.2"),
            "{}",
            s.logs()
        );
    }
    let changed = Instant::now();
    write(&zone, &zone_text(2, "3600 600 86400", 22));
    primary.signal("HUP");
    for s in &secondaries {
        assert!(
            within(Duration::from_secs(2), || www(s.udp_addr()) == "192.0.2.22"),
            "not by NOTIFY: {}\n{}",
            s.logs(),
            primary.logs()
        );
        // names answers IXFR now: the change came as differences.
        assert!(
            s.logs().contains("serial 2 transferred by IXFR"),
            "{}",
            s.logs()
        );
    }
    eprintln!("change to served on all three: {:?}", changed.elapsed());
    // A NOTIFY from the primary's address is taken; from another, REFUSED.
    let target = secondaries[0].udp_addr();
    assert_eq!(notify_from("127.0.0.1", target), Rcode::NOERROR);
    assert_eq!(notify_from("127.0.0.3", target), Rcode::REFUSED);
}

/// Sends a NOTIFY for example.com from `source` to `to`; the answer's rcode.
fn notify_from(source: &str, to: SocketAddr) -> Rcode {
    let socket = UdpSocket::bind((source, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(4321);
    b.header_mut().set_opcode(Opcode::NOTIFY);
    b.header_mut().set_aa(true);
    let mut q = b.question();
    q.push((
        Name::<Vec<u8>>::from_str("example.com").unwrap(),
        Rtype::SOA,
    ))
    .unwrap();
    socket.send_to(&q.finish(), to).unwrap();
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("an answer to the NOTIFY");
    let answer = Message::from_octets(&buf[..n]).unwrap();
    assert_eq!(
        (answer.header().id(), answer.header().opcode()),
        (4321, Opcode::NOTIFY)
    );
    answer.header().rcode()
}

#[test]
fn bad_secondary_flags_are_one_line_and_exit_2() {
    for (args, words) in [
        (vec!["--secondary", "example.com"], "ZONE=PRIMARY"),
        (vec!["--secondary", "example.com=nowhere"], "not an address"),
        (
            vec!["--secondary", "exa..mple=127.0.0.1"],
            "not a domain name",
        ),
        (
            vec!["--secondary", "example.com=127.0.0.1,key=nope"],
            "no --tsig-key named nope",
        ),
        (
            vec!["--secondary", "example.com=127.0.0.1,tsig=x"],
            "expected ,key=NAME",
        ),
        (
            vec![
                "--secondary",
                "example.com=127.0.0.1",
                "--secondary",
                "EXAMPLE.com=127.0.0.2",
            ],
            "given twice",
        ),
        (
            vec!["--allow-notify", "10.0.0.0/8"],
            "--allow-notify needs --secondary",
        ),
        (
            vec![
                "--secondary",
                "a.example=127.0.0.1",
                "--allow-notify",
                "10.0.0.0/33",
            ],
            "--allow-notify \"10.0.0.0/33\"",
        ),
        (vec!["--zone-dir", "/tmp"], "--zone-dir needs --secondary"),
        (
            vec![
                "--secondary",
                "a.example=127.0.0.1",
                "--max-transfer-bytes",
                "0",
            ],
            "at least 1",
        ),
    ] {
        let mut full = vec!["serve", "--listen", "127.0.0.1:0", "--no-forward"];
        full.extend_from_slice(&args);
        let out = run_names(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(words), "{args:?}: {err}");
    }
}
