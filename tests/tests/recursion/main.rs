//! Recursion end to end: `names serve --recursive` through the loopback [`Hierarchy`]
//! (a root, TLDs, second-level zones and odd servers at port 53 on 127.53.B.x), asked with
//! the real `dig`; conditional forwarding (`--forward`); the flags' errors.
//!
//! Each test owns its block B of addresses (see [`Block`]), so tests run in parallel.

mod cli;
mod forward;
mod hierarchy;
mod odd_servers;
mod resolution;

use std::time::Duration;

use names_tests::{dig_at, Hierarchy, Server};

/// The address blocks of the tests (127.53.B.x): one each, never shared.
#[derive(Clone, Copy)]
#[repr(u8)]
pub enum Block {
    Layout = 1,
    Resolution = 2,
    Negative = 10,
    Flood = 11,
    Replay = 12,
    OddServers = 3,
    Poisoning = 4,
    Loops = 5,
    Nxns = 6,
    Localhost = 7,
    ForwardRecursive = 8,
    RecursionDesired = 9,
}

/// The hierarchy of `block`.
pub fn hierarchy(block: Block) -> Hierarchy {
    Hierarchy::start(block as u8)
}

/// `names serve --recursive --query-localhost --root-hints` over `hierarchy`, plus `extra`.
pub fn recursor(hierarchy: &Hierarchy, extra: &[&str]) -> Server {
    let mut args = hierarchy.recursive_args();
    // The query log shows, when a test fails, which queries were answered and how fast.
    args.push("--log-queries".to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

/// `dig` at `server` (port and all) with `args`, waiting up to 8 s (the machine may be
/// loaded; the recursors' budgets are shorter).
pub fn ask(server: &Server, args: &[&str]) -> String {
    let mut full = vec!["+time=8"];
    full.extend_from_slice(args);
    dig_at(server.udp_addr(), &full)
}

/// Asks `server` for the A of `qname` and checks that it is `addr` alone; the dig output.
pub fn resolves(server: &Server, qname: &str, addr: impl std::fmt::Display) -> String {
    let out = ask(server, &[qname, "A"]);
    let want = format!("{}. a {addr}", qname.trim_end_matches('.'));
    assert_eq!(answers(&out), [want], "{out}\n{}", server.logs());
    out
}

/// Asks `server` for `qname`, which must fail (SERVFAIL) within `budget`; then waits a
/// for late queries and returns how many queries the hierarchy received.
pub fn fails_within(server: &Server, h: &Hierarchy, qname: &str, budget: Duration) -> usize {
    let started = std::time::Instant::now();
    let out = ask(server, &[qname]);
    assert_eq!(status(&out), "SERVFAIL", "{out}\n{}", server.logs());
    assert!(started.elapsed() < budget + Duration::from_millis(100));
    h.settle()
}

/// The `status:` of a dig output (`NOERROR`, `NXDOMAIN`, ...), or the whole output.
pub fn status(dig: &str) -> &str {
    dig.split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or(dig)
}

/// The records of a dig output's ANSWER section, one `owner type data` string each
/// (TTL and class left out), lower case.
pub fn answers(dig: &str) -> Vec<String> {
    section(dig, "ANSWER")
}

/// The records of a dig output's AUTHORITY section, as [`answers`].
pub fn authority(dig: &str) -> Vec<String> {
    section(dig, "AUTHORITY")
}

fn section(dig: &str, name: &str) -> Vec<String> {
    let header = format!(";; {name} SECTION:");
    let Some(start) = dig.find(&header) else {
        return Vec::new();
    };
    dig[start + header.len()..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // owner TTL class type data...
            let mut kept = vec![f[0]];
            kept.extend(f.iter().skip(3));
            kept.join(" ").to_ascii_lowercase()
        })
        .collect()
}

/// Waits (bounded) until `f` holds; whether it did.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
