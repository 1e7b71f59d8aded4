//! End-to-end: zones, hosts, AXFR, SIGHUP reload and check-zone, through the real
//! `names` binary and the real `dig`, on loopback only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::base::iana::Class;
use domain::base::name::FlattenInto;
use domain::base::{Name, Record};
use domain::rdata::ZoneRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};
use names_tests::{dig_at, run_names, Server};

fn data(name: &str) -> String {
    names_tests::workspace_root()
        .join("tests/data/zones")
        .join(name)
        .display()
        .to_string()
}

/// A fresh directory for files a test rewrites.
fn scratch(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "names-zone-e2e-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, text: &str) {
    // Write then rename, so a reload never reads a half-written file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn serve(args: &[&str]) -> Server {
    let mut full = vec!["--no-forward"];
    full.extend_from_slice(args);
    Server::start(&full)
}

/// The record lines of dig's output (no comments, no blank lines), whitespace collapsed.
fn records(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The records of one section of dig's output (`ANSWER`, `AUTHORITY`, `ADDITIONAL`).
fn section(out: &str, name: &str) -> Vec<String> {
    let header = format!(";; {name} SECTION:");
    let mut lines = out.lines().skip_while(|l| !l.starts_with(&header));
    lines.next();
    lines
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn flags(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with(";; flags:"))
        .unwrap_or_else(|| panic!("no flags line in:\n{out}"))
        .to_string()
}

fn status(out: &str) -> String {
    let l = out
        .lines()
        .find(|l| l.contains("status:"))
        .unwrap_or_else(|| panic!("no status in:\n{out}"));
    l.split("status: ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string()
}

fn short(server: &Server, args: &[&str]) -> String {
    let mut full = vec!["+short"];
    full.extend_from_slice(args);
    dig_at(server.udp_addr(), &full).trim().to_string()
}

#[test]
fn authoritative_answer_has_aa_and_records() {
    let server = serve(&["--zone", &data("example.zone")]);
    assert!(
        server.ready_line().contains("chain=zones"),
        "{}",
        server.ready_line()
    );
    let out = dig_at(server.udp_addr(), &["+norec", "www.example.com", "A"]);
    assert_eq!(status(&out), "NOERROR");
    assert!(flags(&out).contains(" aa"), "{out}");
    assert_eq!(
        section(&out, "ANSWER"),
        ["www.example.com. 300 IN A 192.0.2.80"]
    );
    // A name from the $INCLUDEd file (resolved relative to the zone file).
    assert_eq!(short(&server, &["sip.example.com"]), "192.0.2.60");
    // MX answer carries the exchange's addresses.
    let out = dig_at(server.udp_addr(), &["example.com", "MX"]);
    let mut add = section(&out, "ADDITIONAL");
    add.sort();
    assert_eq!(
        add,
        [
            "mail.example.com. 3600 IN A 192.0.2.25",
            "mail.example.com. 3600 IN AAAA 2001:db8::25"
        ]
    );
}

#[test]
fn nxdomain_and_nodata_carry_the_soa_with_negative_ttl() {
    let server = serve(&["--zone", &data("example.zone")]);
    let soa = "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 900 1209600 300";
    let out = dig_at(server.udp_addr(), &["nope.example.com", "A"]);
    assert_eq!(status(&out), "NXDOMAIN");
    assert!(flags(&out).contains(" aa"), "{out}");
    assert_eq!(section(&out, "AUTHORITY"), [soa]);
    let out = dig_at(server.udp_addr(), &["www.example.com", "AAAA"]);
    assert_eq!(status(&out), "NOERROR");
    assert!(section(&out, "ANSWER").is_empty());
    assert_eq!(section(&out, "AUTHORITY"), [soa]);
    // An empty non-terminal: NODATA, not NXDOMAIN.
    let out = dig_at(server.udp_addr(), &["b.c.example.com", "A"]);
    assert_eq!(status(&out), "NOERROR");
}

#[test]
fn delegation_is_a_referral_with_glue() {
    let server = serve(&["--zone", &data("example.zone")]);
    let out = dig_at(server.udp_addr(), &["+norec", "host.sub.example.com", "A"]);
    assert_eq!(status(&out), "NOERROR");
    assert!(
        !flags(&out).contains(" aa"),
        "a referral is not authoritative:\n{out}"
    );
    assert!(section(&out, "ANSWER").is_empty());
    let mut ns = section(&out, "AUTHORITY");
    ns.sort();
    assert_eq!(
        ns,
        [
            "sub.example.com. 3600 IN NS ns.other.net.",
            "sub.example.com. 3600 IN NS ns.sub.example.com."
        ]
    );
    assert_eq!(
        section(&out, "ADDITIONAL"),
        ["ns.sub.example.com. 3600 IN A 192.0.2.99"]
    );
}

#[test]
fn wildcard_and_cname_through_dig() {
    let server = serve(&["--zone", &data("example.zone")]);
    assert_eq!(short(&server, &["anything.wild.example.com"]), "192.0.2.42");
    assert_eq!(
        short(&server, &["alias.example.com"]),
        "www.example.com.\n192.0.2.80"
    );
}

/// The zone file's records as `owner ttl IN TYPE data`, the way dig prints them.
fn zone_file_records(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut zf = Zonefile::from(text.as_str());
    zf.set_default_class(Class::IN);
    let mut out = Vec::new();
    while let Some(entry) = zf.next_entry().unwrap() {
        let Entry::Record(r) = entry else {
            panic!("no includes in generated zones")
        };
        let r: Record<Name<Bytes>, ZoneRecordData<Bytes, Name<Bytes>>> = r.flatten_into();
        let line = format!(
            "{} {} IN {} {}",
            r.owner().fmt_with_dot(),
            r.ttl().as_secs(),
            r.rtype(),
            r.data()
        );
        out.push(line.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    out
}

#[test]
fn full_axfr_matches_the_zone_file_record_by_record() {
    let dir = scratch("axfr");
    let path = dir.join("big.zone");
    let mut text = String::from(
        "$ORIGIN big.test.\n$TTL 600\n@ 3600 IN SOA ns1.big.test. hostmaster.big.test. 7 3600 600 86400 120\n@ IN NS ns1.big.test.\nns1 IN A 192.0.2.1\n",
    );
    for i in 0..2500 {
        text.push_str(&format!(
            "host{i}.big.test. IN A 198.51.{}.{}\nhost{i}.big.test. IN TXT \"record {i}\"\n",
            i / 256,
            i % 256
        ));
    }
    text.push_str("mail.big.test. IN MX 10 ns1.big.test.\n");
    write(&path, &text);
    let expected = zone_file_records(&path);
    let server = serve(&["--zone", path.to_str().unwrap()]);
    let out = dig_at(server.tcp_addr(), &["+tcp", "AXFR", "big.test"]);
    let got = records(&out);
    assert_eq!(
        got.len(),
        expected.len() + 1,
        "SOA twice:\n{}",
        &out[out.len().saturating_sub(500)..]
    );
    assert_eq!(got.first(), expected.first(), "SOA first");
    assert_eq!(got.last(), expected.first(), "SOA last");
    assert_eq!(&got[..expected.len()], &expected[..], "record by record");
    // Several messages: dig reports them.
    let summary = out
        .lines()
        .find(|l| l.contains("XFR size"))
        .expect("an XFR summary");
    let messages: usize = summary
        .split("messages ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(messages > 1, "{summary}");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn axfr_outside_the_acl_or_zone_fails() {
    let server = serve(&[
        "--zone",
        &data("example.zone"),
        "--allow-transfer",
        "10.0.0.0/8",
    ]);
    let out = dig_at(server.tcp_addr(), &["+tcp", "AXFR", "example.com"]);
    assert!(out.contains("Transfer failed"), "{out}");
    assert!(records(&out).is_empty(), "{out}");
    let server = serve(&["--zone", &data("example.zone")]);
    let out = dig_at(server.tcp_addr(), &["+tcp", "AXFR", "not-served.test"]);
    assert!(out.contains("Transfer failed"), "{out}");
    // Allowed (loopback by default) and served: the zone.
    let out = dig_at(server.tcp_addr(), &["+tcp", "AXFR", "example.com"]);
    assert_eq!(records(&out).len(), 23, "{out}");
}

fn sighup(server: &Server) {
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Polls `check` every 50 ms for up to 5 s.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    check()
}

fn small_zone(serial: u32, www: &str) -> String {
    format!("$ORIGIN r.test.\n@ 3600 IN SOA ns h {serial} 1 1 1 60\n@ NS ns\nns A 192.0.2.1\nwww 60 A {www}\n")
}

#[test]
fn sighup_reload_picks_up_a_changed_record_and_a_broken_file_keeps_the_old() {
    let dir = scratch("reload");
    let zone = dir.join("r.zone");
    let hosts = dir.join("hosts");
    write(&zone, &small_zone(1, "192.0.2.10"));
    write(&hosts, "192.0.2.50 box\n");
    let mut server = serve(&[
        "--zone",
        zone.to_str().unwrap(),
        "--hosts",
        hosts.to_str().unwrap(),
    ]);
    assert!(
        server.ready_line().contains("chain=zones,hosts"),
        "{}",
        server.ready_line()
    );
    assert_eq!(short(&server, &["www.r.test"]), "192.0.2.10");
    assert_eq!(short(&server, &["box"]), "192.0.2.50");

    // A changed record is served after SIGHUP.
    write(&zone, &small_zone(2, "192.0.2.20"));
    write(&hosts, "192.0.2.51 box\n");
    sighup(&server);
    assert!(
        eventually(|| short(&server, &["www.r.test"]) == "192.0.2.20"),
        "reload not seen; logs:\n{}",
        server.logs()
    );
    assert!(eventually(|| short(&server, &["box"]) == "192.0.2.51"));

    // A broken file: one error line naming file and line, old data still served.
    write(
        &zone,
        "$ORIGIN r.test.\n@ 3600 IN SOA ns h 3 1 1 1 60\nwww A 192.0.2.300\n",
    );
    write(&hosts, "not-an-address box\n");
    sighup(&server);
    let zone_err = format!("{}:3:", zone.display());
    let hosts_err = format!("{}:1:", hosts.display());
    assert!(
        eventually(|| server.logs().contains(&zone_err) && server.logs().contains(&hosts_err)),
        "no error lines; logs:\n{}",
        server.logs()
    );
    let errors: Vec<String> = server
        .logs()
        .lines()
        .filter(|l| l.starts_with("names: error: reload:"))
        .map(String::from)
        .collect();
    assert_eq!(errors.len(), 2, "one line per failing file: {errors:?}");
    assert!(server.is_running());
    assert_eq!(short(&server, &["www.r.test"]), "192.0.2.20");
    assert_eq!(short(&server, &["box"]), "192.0.2.51");
    let out = dig_at(server.udp_addr(), &["r.test", "SOA", "+short"]);
    assert!(out.contains(" 2 1 1 1 60"), "serial 2 still served: {out}");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn queries_keep_being_answered_during_reloads() {
    let dir = scratch("inflight");
    let zone = dir.join("r.zone");
    write(&zone, &small_zone(1, "192.0.2.10"));
    let server = serve(&["--zone", zone.to_str().unwrap(), "--workers", "2"]);
    for i in 0..10 {
        write(&zone, &small_zone(10 + i, &format!("192.0.2.{}", 10 + i)));
        sighup(&server);
        let out = dig_at(server.udp_addr(), &["www.r.test"]);
        assert_eq!(status(&out), "NOERROR", "{out}");
        assert_eq!(section(&out, "ANSWER").len(), 1, "{out}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hosts_file_names_aliases_and_ptr() {
    let server = serve(&["--hosts", &data("hosts")]);
    assert_eq!(short(&server, &["PRINTER.example.com"]), "192.0.2.10");
    assert_eq!(short(&server, &["printer", "AAAA"]), "2001:db8::10");
    assert_eq!(
        short(&server, &["-x", "192.0.2.10"]),
        "Printer.Example.COM.\nprinter."
    );
    assert_eq!(short(&server, &["-x", "2001:db8::10"]), "printer.");
    // Not in the file and no forwarding: REFUSED.
    let out = dig_at(server.udp_addr(), &["unknown.example.org"]);
    assert_eq!(status(&out), "REFUSED");
}

#[test]
fn zone_wins_over_hosts() {
    let server = serve(&["--zone", &data("example.zone"), "--hosts", &data("hosts")]);
    // www.example.com is in both (same address), printer.example.com only in hosts: but the
    // zone owns its subtree, so it is NXDOMAIN.
    let out = dig_at(server.udp_addr(), &["printer.example.com"]);
    assert_eq!(status(&out), "NXDOMAIN");
    assert_eq!(short(&server, &["printer"]), "192.0.2.10");
}

#[test]
fn check_zone_prints_origin_serial_and_count() {
    let path = data("example.zone");
    let out = run_names(&["check-zone", &path]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{path}: origin example.com. serial 2024010101 records 22")
    );
}

#[test]
fn broken_zone_is_one_error_line_with_file_and_line() {
    let dir = scratch("broken");
    let zone = dir.join("broken.zone");
    write(
        &zone,
        "$ORIGIN b.test.\n@ SOA ns h 1 1 1 1 1\nok A 192.0.2.1\nbad MX not-a-number x\n",
    );
    let out = run_names(&["check-zone", zone.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&format!("{}:4:", zone.display())), "{err}");
    // `serve` refuses to start, before binding anything.
    let e = Server::try_start(&["--no-forward", "--zone", zone.to_str().unwrap()])
        .err()
        .unwrap();
    assert!(e.contains(&format!("{}:4:", zone.display())), "{e}");
    assert!(!e.contains("names: ready"), "{e}");
    // Two SOAs: refused, naming the second one's line.
    write(
        &zone,
        "$ORIGIN b.test.\n@ SOA ns h 1 1 1 1 1\nx A 192.0.2.1\n@ SOA ns h 2 1 1 1 1\n",
    );
    let out = run_names(&["check-zone", zone.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(":4:") && err.contains("SOA"),
        "{err}"
    );
    let out = run_names(&["check-zone", dir.join("missing.zone").to_str().unwrap()]);
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(dir);
}

/// Audit: SIGHUP killed a server started without `--zone` or `--hosts` ("Hangup"). It is
/// always handled: one log line, and the server keeps answering.
#[test]
fn sighup_without_local_data_is_logged_and_the_server_keeps_serving() {
    let mut server = serve(&["--synth", "host=192.0.2", "--workers", "1"]);
    for round in 1..=3 {
        sighup(&server);
        assert!(
            eventually(|| server.logs().matches("nothing to reload").count() >= round),
            "no reload line; logs:\n{}",
            server.logs()
        );
    }
    assert!(server.is_running(), "SIGHUP ended the server");
    assert_eq!(short(&server, &["host7.example"]), "192.0.2.7");
}

/// Audit: after two reloads with no zone query between them, the new zone set could be
/// allocated where the freed one was, and the old encoded answers kept being served (4
/// rounds of 5). Once a reload has logged the new serial, every answer is the new data,
/// on every worker.
#[test]
fn two_reloads_in_a_row_never_leave_stale_answers() {
    let dir = scratch("reload-twice");
    let zone = dir.join("r.zone");
    write(&zone, &small_zone(1, "192.0.2.1"));
    let server = serve(&["--zone", zone.to_str().unwrap(), "--workers", "2"]);
    let mut serial = 1;
    for round in 1..=5u32 {
        // Every worker encodes the current answer (the queries come from fresh ports, so
        // SO_REUSEPORT spreads them).
        let expected = format!("192.0.2.{round}");
        for _ in 0..6 {
            assert_eq!(short(&server, &["www.r.test"]), expected, "round {round}");
        }
        for next in [
            format!("198.51.100.{round}"),
            format!("192.0.2.{}", round + 1),
        ] {
            serial += 1;
            write(&zone, &small_zone(serial, &next));
            sighup(&server);
            let logged = format!("zone r.test. serial {serial}");
            assert!(
                eventually(|| server.logs().contains(&logged)),
                "reload of serial {serial} not logged; logs:\n{}",
                server.logs()
            );
        }
    }
    for _ in 0..6 {
        assert_eq!(short(&server, &["www.r.test"]), "192.0.2.6");
    }
}

#[test]
fn dname_redirects_names_below_it_through_dig() {
    let server = serve(&[
        "--zone",
        &data("dname.zone"),
        "--zone",
        &data("dname-apex.zone"),
    ]);
    let ask = |args: &[&str]| dig_at(server.udp_addr(), args);

    // Below the owner: DNAME, the synthesised CNAME (the DNAME's TTL), the target's data.
    let out = ask(&["www.old.dname.test", "A"]);
    assert_eq!(status(&out), "NOERROR");
    assert!(flags(&out).contains(" aa"), "{out}");
    assert_eq!(
        section(&out, "ANSWER"),
        [
            "old.dname.test. 600 IN DNAME new.dname.test.",
            "www.old.dname.test. 600 IN CNAME www.new.dname.test.",
            "www.new.dname.test. 300 IN A 192.0.2.1"
        ]
    );
    // The target missing: NXDOMAIN, the redirection still shown.
    let out = ask(&["gone.old.dname.test", "A"]);
    assert_eq!(status(&out), "NXDOMAIN");
    assert_eq!(
        section(&out, "ANSWER"),
        [
            "old.dname.test. 600 IN DNAME new.dname.test.",
            "gone.old.dname.test. 600 IN CNAME gone.new.dname.test."
        ]
    );
    // Asked for the CNAME itself: the synthesised one is the answer, not followed (a
    // target that does not exist makes no NXDOMAIN).
    let out = ask(&["gone.old.dname.test", "CNAME"]);
    assert_eq!(status(&out), "NOERROR");
    assert_eq!(
        section(&out, "ANSWER"),
        [
            "old.dname.test. 600 IN DNAME new.dname.test.",
            "gone.old.dname.test. 600 IN CNAME gone.new.dname.test."
        ]
    );
    assert_eq!(section(&out, "AUTHORITY").len(), 0, "{out}");
    // The owner itself is an ordinary name.
    assert_eq!(short(&server, &["old.dname.test", "A"]), "192.0.2.9");
    assert_eq!(
        short(&server, &["old.dname.test", "DNAME"]),
        "new.dname.test."
    );

    // At the apex of another zone, and a chain of two.
    assert_eq!(
        short(&server, &["www.new.moved.test", "A"]),
        "dname.test.\nwww.new.dname.test.\n192.0.2.1"
    );
    assert_eq!(
        section(&ask(&["www.x.a.dname.test", "A"]), "ANSWER"),
        [
            "a.dname.test. 700 IN DNAME b.dname.test.",
            "www.x.a.dname.test. 700 IN CNAME www.x.b.dname.test.",
            "x.b.dname.test. 800 IN DNAME new.dname.test.",
            "www.x.b.dname.test. 800 IN CNAME www.new.dname.test.",
            "www.new.dname.test. 300 IN A 192.0.2.1"
        ]
    );
    // Out of the served zones: the client follows the CNAME.
    let out = ask(&["www.out.dname.test", "A"]);
    assert_eq!(status(&out), "NOERROR");
    assert_eq!(section(&out, "ANSWER").len(), 2, "{out}");

    // Too long a result: YXDOMAIN with the DNAME alone (RFC 6672 2.2).
    let long = format!("{}.long.dname.test", "b".repeat(58));
    let out = ask(&[&long, "A"]);
    assert_eq!(status(&out), "YXDOMAIN");
    let answer = section(&out, "ANSWER");
    assert_eq!(answer.len(), 1, "{out}");
    assert!(
        answer[0].starts_with("long.dname.test. 900 IN DNAME "),
        "{out}"
    );
    // The same over TCP, and the server still answers afterwards.
    let out = ask(&["+tcp", "www.old.dname.test", "A"]);
    assert_eq!(section(&out, "ANSWER").len(), 3, "{out}");
}

#[test]
fn svcb_and_https_answers_carry_their_targets_addresses() {
    // RFC 9460 4.1: the A and AAAA of an in-zone TargetName in the additional section;
    // a target of "." (the owner itself) adds nothing.
    let dir = scratch("svcb");
    let zone = dir.join("svcb.test.zone");
    write(
        &zone,
        "$ORIGIN svcb.test.\n\
         @ 3600 IN SOA ns hostmaster 1 7200 900 1209600 300\n\
         @ 3600 IN NS ns\n\
         ns 3600 IN A 192.0.2.53\n\
         svc 3600 IN SVCB 1 pool.svcb.test. port=8443\n\
         web 3600 IN HTTPS 1 pool alpn=h2\n\
         self 3600 IN HTTPS 1 . alpn=h2\n\
         self 3600 IN A 192.0.2.9\n\
         pool 3600 IN A 192.0.2.10\n\
         pool 3600 IN AAAA 2001:db8::10\n",
    );
    let server = serve(&["--zone", zone.to_str().unwrap()]);
    let pool = [
        "pool.svcb.test. 3600 IN A 192.0.2.10",
        "pool.svcb.test. 3600 IN AAAA 2001:db8::10",
    ];
    for (name, qtype) in [("svc.svcb.test", "SVCB"), ("web.svcb.test", "HTTPS")] {
        let out = dig_at(server.udp_addr(), &[name, qtype]);
        assert_eq!(section(&out, "ANSWER").len(), 1, "{out}");
        assert_eq!(section(&out, "ADDITIONAL"), pool, "{out}");
    }
    let out = dig_at(server.udp_addr(), &["self.svcb.test", "HTTPS"]);
    assert_eq!(section(&out, "ANSWER").len(), 1, "{out}");
    assert_eq!(section(&out, "ADDITIONAL"), Vec::<String>::new(), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}
