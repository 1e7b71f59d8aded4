//! The reference servers: NSD and Unbound started from the templates in
//! `tests/conformance/` on free loopback ports, each in its own temp dir, stopped by PID.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use names_tests::*;

/// How long a reference server gets to answer its first query.
const READY: Duration = Duration::from_secs(10);
/// How long it gets to exit after SIGTERM before it is killed.
const STOP: Duration = Duration::from_secs(5);

/// The data directory of the differential tests.
pub fn data(file: &str) -> PathBuf {
    workspace_root().join("tests/conformance").join(file)
}

/// The programs of `wanted` that are not on the PATH.
pub fn missing(wanted: &[&str]) -> Vec<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    wanted
        .iter()
        .filter(|p| !std::env::split_paths(&path).any(|d| d.join(p).is_file()))
        .map(|p| p.to_string())
        .collect()
}

/// A reference server process; SIGTERM (so NSD stops the children it forks), then SIGKILL,
/// by its PID when dropped.
pub struct Daemon {
    child: Child,
    what: &'static str,
    /// Where it serves, UDP and TCP.
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl Daemon {
    /// A `dig` command line that asks this server.
    pub fn dig_prefix(&self) -> String {
        format!("dig @{} -p {}", self.addr.ip(), self.addr.port())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        terminate(&mut self.child, STOP);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `template` from the data directory with every `(placeholder, value)` filled in.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut text =
        std::fs::read_to_string(data(template)).unwrap_or_else(|e| panic!("read {template}: {e}"));
    for (key, value) in values {
        text = text.replace(key, value);
    }
    text
}

/// Starts `cmd` and waits until it answers an SOA query for `probe` with NOERROR.
fn start(
    what: &'static str,
    mut cmd: Command,
    port: u16,
    dir: PathBuf,
    probe_name: &str,
) -> Daemon {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("stderr")).expect("stderr file"),
        ))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut daemon = Daemon {
        child,
        what,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        dir,
    };
    let deadline = Instant::now() + READY;
    let probe = query(probe_name, Rtype::SOA, 1, true, None);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!(
                "{} exited ({status}) before answering:\n{}",
                daemon.what,
                std::fs::read_to_string(daemon.dir.join("stderr")).unwrap_or_default()
            );
        }
        // NOERROR: the zone is loaded (a server that failed to load it answers SERVFAIL).
        let reply = udp_exchange(daemon.addr, &probe, Duration::from_millis(200));
        if reply
            .and_then(|r| try_parse(&r).ok())
            .is_some_and(|p| p.rcode == 0)
        {
            return daemon;
        }
        sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} did not answer {probe_name} SOA with NOERROR within {READY:?}:\n{}",
        std::fs::read_to_string(daemon.dir.join("stderr")).unwrap_or_default()
    );
}

/// NSD serving `zones` (origin, file) on a free loopback port.
pub fn nsd(tag: &str, zones: &[(&str, &Path)]) -> Daemon {
    let zone = |origin: &str, file: &str| {
        format!("\nzone:\n    name: \"{origin}\"\n    zonefile: \"{file}\"\n")
    };
    serve_zones(
        "NSD",
        &format!("nsd-{tag}"),
        "nsd.conf",
        zones,
        zone,
        |conf| {
            let mut cmd = Command::new("nsd");
            cmd.arg("-d").arg("-c").arg(conf);
            cmd
        },
    )
}

/// Knot DNS serving `zones` (origin, file) on a free loopback port.
pub fn knot(zones: &[(&str, &Path)]) -> Daemon {
    let zone =
        |origin: &str, file: &str| format!("  - domain: \"{origin}\"\n    file: \"{file}\"\n");
    serve_zones("Knot", "knot", "knot.conf", zones, zone, |conf| {
        let mut cmd = Command::new("knotd");
        cmd.arg("-c").arg(conf);
        cmd
    })
}

/// An authoritative server from `template` (its `@WORK@` and `@PORT@` filled in, then one
/// `zone(origin, file)` entry per zone appended), started by `command(config path)`.
fn serve_zones(
    what: &'static str,
    tag: &str,
    template: &str,
    zones: &[(&str, &Path)],
    zone: impl Fn(&str, &str) -> String,
    command: impl FnOnce(&Path) -> Command,
) -> Daemon {
    let dir = temp_dir(tag);
    let port = free_port();
    let mut conf = fill(
        template,
        &[
            ("@WORK@", dir.to_str().unwrap()),
            ("@PORT@", &port.to_string()),
        ],
    );
    for (origin, file) in zones {
        conf.push_str(&zone(origin, &file.display().to_string()));
    }
    let path = dir.join(template);
    std::fs::write(&path, conf).unwrap_or_else(|e| panic!("write {template}: {e}"));
    start(what, command(&path), port, dir, zones[0].0)
}

/// Unbound forwarding everything to `upstream`, on a free loopback port.
pub fn unbound(upstream: SocketAddr, probe: &str) -> Daemon {
    let dir = temp_dir("unbound");
    let port = free_port();
    let conf = fill(
        "unbound.conf",
        &[
            ("@WORK@", dir.to_str().unwrap()),
            ("@PORT@", &port.to_string()),
            ("@UPSTREAM@", &upstream.port().to_string()),
        ],
    );
    let path = dir.join("unbound.conf");
    std::fs::write(&path, conf).expect("write unbound.conf");
    let mut cmd = Command::new("unbound");
    cmd.arg("-d").arg("-c").arg(&path);
    start("Unbound", cmd, port, dir, probe)
}

/// The version line of `program` (`nsd -v`, `unbound -V`), for the report.
pub fn version(program: &str, flag: &str) -> String {
    Command::new(program)
        .arg(flag)
        .output()
        .map(|o| {
            let text = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}
