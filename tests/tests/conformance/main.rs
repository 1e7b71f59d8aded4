//! The differential tests (issue 14): `names --zone` against NSD and Knot on the zone
//! files of `tests/conformance/`, and the `names` forwarder against Unbound, both
//! forwarding to one NSD, the query set sent twice so the second pass compares cache hits
//! with the first answers. Every difference not in `tests/conformance/allowed.toml` fails
//! the test with the `dig` commands that show it on both servers. Loopback only; NSD, Knot
//! and Unbound are started from the templates beside the zone files and stopped by PID.
//! Each test is skipped, saying so, when its reference server is not installed (`.ci/run`
//! installs them). `CONFORMANCE_DUMP=FILE` writes every unlisted difference to FILE.

mod compare;
mod peers;
mod queries;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use names_tests::*;

use compare::{differences, load_allowed, read, Allowed, Outcome, TtlWindow};
use peers::{data, Daemon};
use queries::Query;

/// Queries in flight at once, per server.
const CONCURRENCY: usize = 12;
/// The zones, as (origin, file in `tests/conformance/`).
const ZONES: &[(&str, &str)] = &[
    ("conf.test", "conf.test.zone"),
    ("apex-dname.test", "apex-dname.test.zone"),
];

/// How long one exchange may take; a UDP query unanswered in time is sent again, up to
/// `UDP_TRIES` times in all (a loaded machine may drop a datagram, and once in a few runs
/// NSD left one unanswered), a malformed one is not (silence is an answer).
const WAIT: Duration = Duration::from_millis(1500);
const WAIT_MALFORMED: Duration = Duration::from_millis(400);
const UDP_TRIES: usize = 5;

/// Asks `server` one query.
fn ask(server: SocketAddr, q: &Query, id: u16) -> Option<Vec<u8>> {
    let wire = q.wire(id);
    if q.tcp {
        return tcp_exchange_timeout(server, &[wire], WAIT)
            .into_iter()
            .next();
    }
    if q.raw.is_some() {
        return udp_exchange(server, &wire, WAIT_MALFORMED);
    }
    (0..UDP_TRIES).find_map(|_| udp_exchange(server, &wire, WAIT))
}

/// Every query asked of each server in `servers`, `CONCURRENCY` at a time; the raw replies
/// in query order, one per server.
fn ask_all(queries: &[Query], servers: &[SocketAddr]) -> Vec<Vec<Option<Vec<u8>>>> {
    let next = AtomicUsize::new(0);
    let replies = Mutex::new(vec![Vec::new(); queries.len()]);
    thread::scope(|s| {
        for _ in 0..CONCURRENCY {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(q) = queries.get(i) else { break };
                let id = (i as u16).wrapping_mul(7919);
                let got: Vec<_> = servers.iter().map(|&srv| ask(srv, q, id)).collect();
                replies.lock().unwrap()[i] = got;
            });
        }
    });
    replies.into_inner().unwrap()
}

/// The allowed differences, read once.
fn allowed() -> Vec<Allowed> {
    let text = std::fs::read_to_string(data("allowed.toml")).expect("read allowed.toml");
    load_allowed(&text)
}

/// Differences found, and how many each allowed entry covered.
#[derive(Default)]
struct Verdict {
    failures: Vec<String>,
    used: BTreeMap<String, usize>,
    compared: usize,
}

impl Verdict {
    /// Compares one pair of outcomes of `test`; an uncovered difference becomes a failure
    /// naming the dig commands that show it.
    fn check(
        &mut self,
        allowed: &[Allowed],
        test: &str,
        q: &Query,
        (names, peer): (&Outcome, &Outcome),
        (names_dig, peer_dig): (&str, &str),
        ttl: TtlWindow,
    ) {
        self.compared += 1;
        for d in differences(names, peer, ttl) {
            match allowed.iter().find(|a| a.covers(test, q, &d)) {
                Some(a) => *self.used.entry(a.id.clone()).or_default() += 1,
                None => self.failures.push(format!(
                    "{test}: {d}\n    {names_dig} {args}\n    {peer_dig} {args}",
                    args = q.dig_args()
                )),
            }
        }
    }

    /// Fails on differences not allowed, and on allowed entries for `tests` that covered
    /// nothing (stale: the difference is gone, so is its entry).
    fn finish(self, what: &str, tests: &[&str], allowed: &[Allowed], min_compared: usize) {
        eprintln!("{what}: {} replies compared", self.compared);
        for (id, n) in &self.used {
            eprintln!("  allowed {id}: {n}");
        }
        if let Some(path) = std::env::var_os("CONFORMANCE_DUMP") {
            std::fs::write(path, self.failures.join("\n")).expect("write the dump");
        }
        // One example of each kind of difference (its first line), with its count.
        let mut kinds: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        for f in &self.failures {
            let kind = f.lines().next().unwrap_or("");
            kinds.entry(kind).or_insert((0, f)).0 += 1;
        }
        assert!(
            self.failures.is_empty(),
            "{what}: {} differences not in tests/conformance/allowed.toml, {} kinds (first 60):\n{}",
            self.failures.len(),
            kinds.len(),
            kinds
                .values()
                .take(60)
                .map(|(n, f)| format!("[{n}x] {f}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let stale: Vec<&str> = allowed
            .iter()
            .filter(|a| tests.iter().any(|t| a.applies_to(t)))
            .filter(|a| !self.used.contains_key(&a.id))
            .map(|a| a.id.as_str())
            .collect();
        assert!(
            stale.is_empty(),
            "{what}: allowed differences that no longer occur: {stale:?}"
        );
        assert!(
            self.compared >= min_compared,
            "{what}: only {} compared",
            self.compared
        );
    }
}

/// The owners of every zone file.
fn all_owners() -> Vec<String> {
    ZONES
        .iter()
        .flat_map(|(_, file)| {
            queries::owners(&std::fs::read_to_string(data(file)).expect("read zone"))
        })
        .collect()
}

/// NSD serving the zone files.
fn nsd(tag: &str) -> Daemon {
    let files: Vec<_> = ZONES.iter().map(|(o, f)| (*o, data(f))).collect();
    let zones: Vec<_> = files.iter().map(|(o, f)| (*o, f.as_path())).collect();
    peers::nsd(tag, &zones)
}

/// Whether the reference programs are there; if not, says so (the test then passes).
fn have(programs: &[&str]) -> bool {
    let missing = peers::missing(programs);
    if !missing.is_empty() {
        let package = |p: &String| {
            if p == "knotd" {
                "knot".into()
            } else {
                p.clone()
            }
        };
        let packages: Vec<String> = missing.iter().map(package).collect();
        eprintln!(
            "SKIPPED: {} not installed (apt-get install {}; .ci/run does)",
            missing.join(", "),
            packages.join(" ")
        );
    }
    missing.is_empty()
}

fn names_dig(addr: SocketAddr) -> String {
    format!("dig @{} -p {}", addr.ip(), addr.port())
}

#[test]
fn names_answers_as_nsd_does() {
    if !have(&["nsd"]) {
        return;
    }
    eprintln!("against {}", peers::version("nsd", "-v"));
    answers_as("nsd", &nsd("auth"));
}

#[test]
fn names_answers_as_knot_does() {
    if !have(&["knotd"]) {
        return;
    }
    eprintln!("against {}", peers::version("knotd", "-V"));
    let files: Vec<_> = ZONES.iter().map(|(o, f)| (*o, data(f))).collect();
    let zones: Vec<_> = files.iter().map(|(o, f)| (*o, f.as_path())).collect();
    answers_as("knot", &peers::knot(&zones));
}

/// `names --zone` on the zone files against `peer` serving the same: the authoritative
/// query set, compared as test `test` (its name in `allowed.toml`).
fn answers_as(test: &str, peer: &Daemon) {
    let mut args = vec!["--no-forward".to_string()];
    for (_, file) in ZONES {
        args.push("--zone".into());
        args.push(data(file).to_str().unwrap().into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let names = Server::start(&args);

    let set = queries::authoritative(&all_owners());
    let start = Instant::now();
    let replies = ask_all(&set, &[names.udp_addr(), peer.addr]);
    eprintln!(
        "{test}: {} queries to each server in {:?}",
        set.len(),
        start.elapsed()
    );

    let allowed = allowed();
    let mut verdict = Verdict::default();
    let digs = (names_dig(names.udp_addr()), peer.dig_prefix());
    for (q, r) in set.iter().zip(&replies) {
        let (a, b) = (read(r[0].as_deref()), read(r[1].as_deref()));
        verdict.check(
            &allowed,
            test,
            q,
            (&a, &b),
            (&digs.0, &digs.1),
            TtlWindow::EXACT,
        );
    }
    verdict.finish(test, &[test], &allowed, 3000);
}

#[test]
fn names_forwards_as_unbound_does() {
    if !have(&["nsd", "unbound"]) {
        return;
    }
    eprintln!(
        "against {} forwarding to {}",
        peers::version("unbound", "-V").replace("Version", "Unbound"),
        peers::version("nsd", "-v")
    );
    let nsd = nsd("forward");
    let upstream = nsd.addr.to_string();
    let names = Server::start(&["--upstream", &upstream, "--cache-size", "100000"]);
    let unbound = peers::unbound(nsd.addr, ZONES[0].0);

    let set = queries::forwarding(&all_owners());
    let servers = [names.udp_addr(), unbound.addr];
    let start = Instant::now();
    let first = ask_all(&set, &servers);
    let second = ask_all(&set, &servers);
    let took = start.elapsed();
    eprintln!("{} queries to each server, twice, in {took:?}", set.len());

    // Both servers fetched each answer from NSD during the run, so their TTLs are the
    // zone's less at most the run's length; a cache hit's TTL is at most the first
    // answer's and at least that less the run's length.
    let run = took.as_secs() as u32 + 2;
    let across = TtlWindow {
        below: run,
        above: run,
    };
    let since_first = TtlWindow {
        below: run,
        above: 0,
    };
    let allowed = allowed();
    let mut verdict = Verdict::default();
    let (names_dig, unbound_dig) = (names_dig(names.udp_addr()), unbound.dig_prefix());
    for (i, q) in set.iter().enumerate() {
        let names_first = read(first[i][0].as_deref());
        let names_second = read(second[i][0].as_deref());
        let pairs = [
            (
                "forwarding",
                &names_first,
                read(first[i][1].as_deref()),
                &unbound_dig,
                across,
            ),
            (
                "cached",
                &names_second,
                read(second[i][1].as_deref()),
                &unbound_dig,
                across,
            ),
            (
                "cache-vs-first",
                &names_second,
                names_first.clone(),
                &names_dig,
                since_first,
            ),
        ];
        for (test, names_reply, peer_reply, peer_dig, ttl) in pairs {
            verdict.check(
                &allowed,
                test,
                q,
                (names_reply, &peer_reply),
                (&names_dig, peer_dig),
                ttl,
            );
        }
    }
    let tests = ["forwarding", "cached", "cache-vs-first"];
    verdict.finish("forwarding", &tests, &allowed, 3 * 3000);
}
