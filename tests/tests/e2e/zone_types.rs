//! Record types of every kind NSD reads, served by `names --zone` and compared byte for
//! byte (dig's generic form) with NSD serving the same file; AXFR and `check-zone` too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use names_tests::*;

fn types_zone() -> PathBuf {
    workspace_root().join("tests/tests/core/data/types.zone")
}

/// (owner, type) of every record of the file below its apex.
fn records() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(types_zone()).unwrap();
    let mut origin = "example.".to_string();
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["$ORIGIN", o, ..] => origin = o.to_string(),
            [owner, rtype, ..] if !line.starts_with([';', '$', '@', ' ']) && *owner != "ns" => {
                out.push((format!("{owner}.{origin}"), rtype.to_string()));
            }
            _ => {}
        }
    }
    out
}

/// The answer section as dig prints it in RFC 3597 generic form, TTL and class dropped.
fn generic_answer(server: SocketAddr, owner: &str, rtype: &str) -> String {
    let out = dig_at(
        server,
        &[owner, rtype, "+noall", "+answer", "+unknownformat"],
    );
    out.lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            format!(
                "{} {}",
                w.first().unwrap_or(&""),
                w.get(4..).unwrap_or(&[]).join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// NSD serving the types zone on a loopback port, stopped by PID when dropped.
struct Nsd {
    child: Child,
    addr: SocketAddr,
}

impl Nsd {
    fn start() -> Option<Nsd> {
        if Command::new("nsd")
            .arg("-v")
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("nsd is not installed: skipping the comparison with NSD (CI installs it)");
            return None;
        }
        let port = free_port();
        let dir = temp_dir("nsd-types");
        let conf = format!(
            "server:\n  ip-address: 127.0.0.1@{port}\n  port: {port}\n  username: \"\"\n  chroot: \"\"\n  \
             database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  zonelistfile: \"{d}/zone.list\"\n  \
             xfrdfile: \"{d}/xfrd.state\"\n  xfrdir: \"{d}\"\n  logfile: \"{d}/nsd.log\"\n  \
             server-count: 1\nremote-control:\n  control-enable: no\nzone:\n  name: example.\n  \
             zonefile: \"{z}\"\n",
            d = dir.display(),
            z = types_zone().display()
        );
        std::fs::write(dir.join("nsd.conf"), conf).unwrap();
        let child = Command::new("nsd")
            .args(["-d", "-c"])
            .arg(dir.join("nsd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nsd");
        let nsd = Nsd {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if dig_at(nsd.addr, &["example.", "SOA", "+short"]).contains("ns.example.") {
                return Some(nsd);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(dir.join("nsd.log")).unwrap_or_default();
        panic!(
            "nsd did not answer on {} within 10 s; its log:\n{log}",
            nsd.addr
        );
    }
}

impl Drop for Nsd {
    fn drop(&mut self) {
        send_signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn every_type_answers_as_nsd_answers() {
    let zone = types_zone().display().to_string();
    let srv = Server::start(&["--no-forward", "--zone", &zone]);
    let nsd = Nsd::start();
    let records = records();
    assert!(records.len() >= 70, "{} records", records.len());
    for (owner, rtype) in &records {
        let ours = generic_answer(srv.udp_addr(), owner, rtype);
        assert!(
            ours.starts_with(owner.as_str()) && ours.contains("\\#"),
            "{owner} {rtype}: no answer from names:\n{ours}"
        );
        if let Some(nsd) = &nsd {
            let theirs = generic_answer(nsd.addr, owner, rtype);
            assert_eq!(
                ours,
                theirs,
                "{owner} {rtype}: names and NSD differ; reproduce with dig @{} -p {} {owner} {rtype} +unknownformat",
                srv.udp_addr().ip(),
                srv.udp_addr().port()
            );
        }
    }
}

#[test]
fn unusual_types_appear_in_axfr_and_check_zone_accepts_the_file() {
    let zone = types_zone().display().to_string();
    let srv = Server::start(&[
        "--no-forward",
        "--zone",
        &zone,
        "--allow-transfer",
        "127.0.0.1",
    ]);
    let out = dig_at(
        srv.tcp_addr(),
        &["example.", "AXFR", "+unknownformat", "+noall", "+answer"],
    );
    for (owner, rtype) in records() {
        let number = match rtype.as_str() {
            "LOC" => "TYPE29",
            "SPF" => "TYPE99",
            "EUI48" => "TYPE108",
            "URI" => "TYPE256",
            "CSYNC" => "TYPE62",
            _ => continue,
        };
        assert!(
            out.lines()
                .any(|l| l.starts_with(owner.as_str()) && l.contains(number)),
            "{owner} {rtype} missing from AXFR:\n{out}"
        );
    }
    let check = run_names(&["check-zone", &zone]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("records 76"));
}

#[test]
fn check_zone_names_the_line_of_an_unsupported_type() {
    let dir = temp_dir("types-check");
    let path = dir.join("bad.zone");
    std::fs::write(
        &path,
        "$ORIGIN example.\n@ SOA ns h 1 2 3 4 5\nl LOC 42 21 54 N 71 06 18 W -24m\n\
         n NINFO \"x\"\n",
    )
    .unwrap();
    let out = run_names(&["check-zone", path.to_str().unwrap()]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.zone:4: type NINFO is not supported in presentation form; write it as RFC 3597 generic data (\\# len hex)"),
        "{stderr}"
    );
}
