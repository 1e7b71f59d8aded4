//! What operators expect from the binary, end to end through the real `names`:
//! `--version`, systemd notifications (`Type=notify`) to a fake `NOTIFY_SOCKET`, socket
//! activation (`LISTEN_FDS`), and the example unit files checked by `systemd-analyze`.
//! Everything stays on 127.0.0.1 or in the temp dir; every wait has a deadline; every
//! process started is stopped.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use names_tests::{names_bin, query, run_names, tcp_ask, udp_ask, workspace_root, Rtype, Server};
use socket2::{Domain, Protocol, SockRef, Socket, Type};

const DEADLINE: Duration = Duration::from_secs(10);

#[test]
fn version_prints_the_name_and_version_and_exits_0() {
    for flag in ["--version", "-V"] {
        let out = run_names(&[flag]);
        assert!(out.status.success(), "names {flag}: {:?}", out.status);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout, format!("names {}\n", env!("CARGO_PKG_VERSION")));
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        String::from_utf8_lossy(&run_names(&["--version"]).stdout),
        "names 0.1.0\n"
    );
    // Before a command it wins over the command, which does not run.
    let out = run_names(&["--version", "query", "example.com"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "names 0.1.0\n");
    let help = run_names(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("--version"));
}

// ---------------------------------------------------------------------------
// A `names serve` process started the way a service manager would
// ---------------------------------------------------------------------------

/// The A addresses (and ID) a server gives for `name`, asked over UDP or TCP.
fn ask(server: SocketAddr, name: &str, id: u16, tcp: bool) -> (u16, Vec<Ipv4Addr>) {
    let q = query(name, Rtype::A, id, true, None);
    let reply = if tcp {
        tcp_ask(server, &q)
    } else {
        udp_ask(server, &q)
    };
    (reply.id, reply.a_addrs())
}

/// A fresh path in the temp dir.
fn temp_path(what: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("names-ops-{}-{what}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// The next notification on the fake NOTIFY_SOCKET.
fn notification(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the deadline");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    let path = temp_path("notify.sock");
    let notify = UnixDatagram::bind(&path).expect("bind the fake NOTIFY_SOCKET");
    notify.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut cmd = Command::new(names_bin());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
        .args(["--no-forward", "--synth", "host=10.1.2"])
        .env("NOTIFY_SOCKET", &path);
    let names = Server::try_start_command(cmd).expect("names becomes ready");
    let first = notification(&notify);
    assert!(first.lines().any(|l| l == "READY=1"), "{first:?}");
    assert!(first.contains("STATUS=ready udp="), "{first:?}");
    let udp = names.udp_addr();
    assert_eq!(
        ask(udp, "host7.example", 7, false),
        (7, vec![Ipv4Addr::new(10, 1, 2, 7)])
    );

    names.signal("HUP");
    let reloading = notification(&notify);
    let lines: Vec<&str> = reloading.lines().collect();
    assert_eq!(lines.first(), Some(&"RELOADING=1"), "{reloading:?}");
    let usec = lines
        .iter()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec.parse::<u64>().expect("a number") > 0);
    let again = notification(&notify);
    assert!(again.lines().any(|l| l == "READY=1"), "{again:?}");
    // Still serving after the reload.
    assert_eq!(
        ask(udp, "host8.example", 8, false),
        (8, vec![Ipv4Addr::new(10, 1, 2, 8)])
    );

    names.signal("TERM");
    let stopping = notification(&notify);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let mut names = names;
    let status = names
        .wait_exit(DEADLINE)
        .expect("names exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_file(&path);
}

/// A bound socket, CLOEXEC as usual (the child clears it on its copy).
fn bound(addr: SocketAddr, tcp: bool) -> Socket {
    let (ty, proto) = if tcp {
        (Type::STREAM, Protocol::TCP)
    } else {
        (Type::DGRAM, Protocol::UDP)
    };
    let s = Socket::new(Domain::IPV4, ty, Some(proto)).unwrap();
    if tcp {
        s.set_reuse_address(true).unwrap();
    }
    s.bind(&addr.into()).unwrap();
    if tcp {
        s.listen(64).unwrap();
    }
    s
}

/// `names ARGS` started as systemd starts a socket-activated service: `sockets` as
/// descriptors 3, 4, ..., `LISTEN_FDS` their count and `LISTEN_PID` the process's own
/// PID (set by the shell that then execs `names`, keeping its PID).
fn socket_activated(sockets: &[&Socket], args: &[&str]) -> Result<Server, String> {
    let fds: Vec<i32> = sockets.iter().map(|s| s.as_raw_fd()).collect();
    let high = fds
        .iter()
        .copied()
        .max()
        .unwrap_or(2)
        .max(4 + fds.len() as i32);
    // Copy each inherited descriptor above all of them first, then down to 3, 4, ...:
    // an original may itself be 3 or 4.
    let mut script = String::new();
    for (i, fd) in fds.iter().enumerate() {
        script += &format!("exec {}<&{fd}; ", high + 1 + i as i32);
    }
    for fd in &fds {
        script += &format!("exec {fd}<&-; ");
    }
    for i in 0..fds.len() {
        let tmp = high + 1 + i as i32;
        script += &format!("exec {}<&{tmp} {tmp}<&-; ", 3 + i);
    }
    script += &format!("LISTEN_PID=$$ LISTEN_FDS={} exec \"$0\" \"$@\"", fds.len());
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script).arg(names_bin()).args(args);
    // Whatever manager runs the tests hears nothing from this server.
    cmd.env_remove("NOTIFY_SOCKET");
    // SAFETY: runs in the child between fork and exec; it only clears FD_CLOEXEC on
    // descriptors the parent keeps open for the whole spawn (fcntl, async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &fds {
                // SAFETY: `fd` is open in the child (inherited from the parent's socket).
                let fd = BorrowedFd::borrow_raw(fd);
                SockRef::from(&fd).set_cloexec(false)?;
            }
            Ok(())
        });
    }
    Server::try_start_command(cmd)
}

fn has_bash() -> bool {
    Command::new("bash")
        .args(["-c", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn socket_activation_serves_the_sockets_handed_over() {
    if !has_bash() {
        eprintln!("skipped: bash (used to hand the sockets over as fd 3 and 4) is missing");
        return;
    }
    let udp = bound("127.0.0.1:0".parse().unwrap(), false);
    let addr = udp.local_addr().unwrap().as_socket().unwrap();
    let tcp = bound(addr, true);
    // --listen names another address: the handed-over sockets win.
    let mut names = socket_activated(
        &[&udp, &tcp],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--no-forward",
            "--synth",
            "host=10.1.2",
        ],
    )
    .expect("names becomes ready on the sockets handed over");
    assert_eq!(
        (names.udp_addrs(), names.tcp_addrs()),
        (&[addr][..], &[addr][..]),
        "{}",
        names.ready_line()
    );
    // Close the test's copies: only the server holds the sockets now.
    drop((udp, tcp));
    for id in 1..=8u16 {
        let expect = (id, vec![Ipv4Addr::new(10, 1, 2, id as u8)]);
        assert_eq!(ask(addr, &format!("host{id}.example"), id, false), expect);
    }
    assert_eq!(
        ask(addr, "host9.example", 9, true),
        (9, vec![Ipv4Addr::new(10, 1, 2, 9)])
    );
    names.signal("TERM");
    assert!(names
        .wait_exit(DEADLINE)
        .expect("exits after SIGTERM")
        .success());
}

#[test]
fn socket_activation_refuses_a_lone_tcp_socket_in_one_line() {
    if !has_bash() {
        eprintln!("skipped: bash (used to hand the sockets over as fd 3) is missing");
        return;
    }
    let tcp = bound("127.0.0.1:0".parse().unwrap(), true);
    let Err(stderr) = socket_activated(&[&tcp], &["serve", "--no-forward"]) else {
        panic!("names served with a lone TCP socket");
    };
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("socket activation: fd 3: TCP socket on"),
        "{stderr}"
    );
    assert!(errors[0].contains("has no UDP socket"), "{stderr}");
    assert!(
        stderr.contains("exited before ready (exit status: 2)"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// ---------------------------------------------------------------------------
// Unit files
// ---------------------------------------------------------------------------

/// `systemd-analyze verify` on the example units, with `ExecStart=` pointed at the built
/// binary (verify checks that it exists). Skipped, with the reason, where there is no
/// systemd-analyze.
#[test]
fn example_unit_files_pass_systemd_analyze_verify() {
    let examples = workspace_root().join("examples");
    let service = std::fs::read_to_string(examples.join("names.service")).expect("names.service");
    let socket = std::fs::read_to_string(examples.join("names.socket")).expect("names.socket");
    // What the units promise, whether or not systemd-analyze is here to check them.
    assert!(service.contains("Type=notify"), "{service}");
    assert!(service.contains("ExecReload="), "{service}");
    assert!(
        socket.contains("ListenDatagram=") && socket.contains("ListenStream="),
        "{socket}"
    );
    let probe = Command::new("systemd-analyze").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: systemd-analyze is not installed");
        return;
    }
    let dir = temp_path("units");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bin = names_bin();
    let service = service
        .lines()
        .map(|l| match l.strip_prefix("ExecStart=/usr/local/bin/names") {
            Some(rest) => format!("ExecStart={}{rest}", bin.display()),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(service.contains(&format!("ExecStart={}", bin.display())));
    std::fs::write(dir.join("names.service"), service + "\n").unwrap();
    std::fs::write(dir.join("names.socket"), socket).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.join("names.socket"))
        .arg(dir.join("names.service"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Findings about the machine rather than the units (no running systemd in a
    // container, a missing user, ...) are not the units' fault; anything naming the
    // units is.
    let about_units: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("names.service") || l.contains("names.socket"))
        .collect();
    assert!(
        about_units.is_empty() && (out.status.success() || !stderr.contains("names.")),
        "systemd-analyze verify: {:?}\n{stderr}",
        out.status
    );
    let _ = std::fs::remove_dir_all(&dir);
}
