//! [`Hierarchy`]: a DNS tree on loopback for the end-to-end recursion tests (the core's
//! tests have one in memory: [`crate::hierarchy`]). A root, TLDs and
//! second-level zones, each served by its own `names serve --zone FILE --no-forward` on its
//! own address at port 53, odd servers ([`FakeUpstream`]s) on more addresses, and a root
//! hints file (named.root format) that points at the root.
//!
//! Block `B` (one per test, so tests never share an address; a block another process
//! holds is replaced by a spare, B + 16, B + 32, ...) uses 127.53.B.k, port 53:
//!
//! | k  | server | zone, behaviour |
//! |----|--------|-----------------|
//! | 1  | names  | `.` (NS `a.root.`) |
//! | 2  | names  | `test.` (delegates everything below, and `loop1.test`/`loop2.test` to each other, glueless) |
//! | 3  | names  | `example.test.`: `www` A+AAAA, `alias` CNAME `www.other.`, `dname` DNAME `other.` |
//! | 4  | names  | `sub.example.test.`: `deep` A (three referrals from the root) |
//! | 5  | names  | `other.`: `www` A |
//! | 6  | names  | `glueless.other.`, delegated to `ns-glueless.example.test.` (no glue) |
//! | 10 | names  | `mixed.test.`: `www` A; its other name servers are 11, 12, 13 |
//! | 11 | fake   | lame: REFUSED to everything |
//! | 12 | fake   | dead: never answers |
//! | 13 | fake   | upward referral: refers every query to the root |
//! | 20 | fake   | `tc.test.`: TC over UDP, answers over TCP only |
//! | 21 | fake   | `formerr.test.`: FORMERR to a query with EDNS, answers one without |
//! | 22 | fake   | `evil.test.`: answers, and slips in out-of-bailiwick glue and NS for `example.test` |
//! | 23 | fake   | `nxns.test.`: refers every name to 100 glueless NS names under `victim.test` |
//! | 24 | fake   | `victim.test.`: NXDOMAIN to everything (counts what the NXNS referral costs it) |
//!
//! Binding port 53 needs root (or CAP_NET_BIND_SERVICE), as the tests have in CI; the
//! recursor only ever asks port 53, so there is no high-port fallback. Every process is
//! stopped by PID when the hierarchy is dropped.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{Name, Record, Serial, Ttl};
use domain::rdata::{AllRecordData, Ns, Soa, A};

use crate::build::{name, raw_header, reply_sections, with_tc};
use crate::parse::{msg_id, parse, question_bytes};
use crate::process::{temp_dir, Server};
use crate::upstream::{FakeUpstream, Received, Reply};

/// `www.example.test` A.
pub const WWW_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// `www.example.test` AAAA.
pub const WWW_AAAA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// `deep.sub.example.test` A.
pub const DEEP_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 4);
/// `www.other` A (also the end of `alias.example.test` and `www.dname.example.test`).
pub const OTHER_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 5);
/// `www.glueless.other` A.
pub const GLUELESS_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 6);
/// `www.mixed.test` A.
pub const MIXED_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// `www.tc.test` A (over TCP only).
pub const TC_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
/// `www.formerr.test` A (without EDNS only).
pub const FORMERR_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 21);
/// Any name under `evil.test` A.
pub const EVIL_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 22);
/// The address `evil.test`'s server tries to plant for `www.example.test`.
pub const POISON_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
/// How many glueless NS names the NXNS referral carries.
pub const NXNS_NAMES: usize = 100;

/// What an odd server does with each query.
type Behaviour = Box<dyn Fn(&Received) -> Vec<Reply> + Send + Sync>;

/// Blocks a test may ask for (1..=16), and how far apart its spare blocks are.
const SPARE_STRIDE: u8 = 16;

/// A running loopback hierarchy (see the module doc for its layout).
pub struct Hierarchy {
    block: u8,
    hints: PathBuf,
    /// The authoritative `names` processes, by host number.
    names: Vec<(u8, Server)>,
    /// The odd servers, by host number.
    fakes: Vec<(u8, FakeUpstream)>,
}

impl Hierarchy {
    /// Starts the whole hierarchy on 127.53.`block`.k (`block` 1..=16, one per test of a
    /// test binary). Another process (a test run in another checkout) may hold the block: then
    /// the next free one of `block` + 16, + 32, ... is taken.
    pub fn start(block: u8) -> Hierarchy {
        assert!((1..=SPARE_STRIDE).contains(&block), "blocks are 1..=16");
        let mut taken = String::new();
        for spare in 0..SPARE_STRIDE - 1 {
            match Hierarchy::try_start(block + SPARE_STRIDE * spare) {
                Ok(hierarchy) => return hierarchy,
                Err(e) if e.contains("Address already in use") => taken = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("every block for {block} is taken:\n{taken}")
    }

    /// Starts the hierarchy on exactly this block, or says why not.
    fn try_start(block: u8) -> Result<Hierarchy, String> {
        let dir = temp_dir(&format!("hierarchy-{block}"));
        let ip = |k: u8| Ipv4Addr::new(127, 53, block, k);
        let hints = dir.join("root.hints");
        std::fs::write(
            &hints,
            format!(
                ";; the loopback hierarchy's root\n.\t3600000\tNS\ta.root.\na.root.\t3600000\tA\t{}\n",
                ip(1)
            ),
        )
        .expect("write root hints");
        let mut hierarchy = Hierarchy {
            block,
            hints,
            names: Vec::new(),
            fakes: Vec::new(),
        };
        for (k, origin, body) in zones(block) {
            let path = dir.join(format!("{k}.zone"));
            std::fs::write(&path, zone_file(origin, &body)).expect("write zone file");
            hierarchy.serve_names(k, &path)?;
        }
        hierarchy.start_fakes();
        Ok(hierarchy)
    }

    /// The address of host `k` of this block, port 53.
    pub fn addr(&self, k: u8) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(127, 53, self.block, k), 53))
    }

    /// The root hints file (named.root format) pointing at host 1.
    pub fn hints(&self) -> &Path {
        &self.hints
    }

    /// `--recursive --query-localhost --root-hints FILE`, for `names serve`.
    pub fn recursive_args(&self) -> Vec<String> {
        vec![
            "--recursive".into(),
            "--query-localhost".into(),
            "--root-hints".into(),
            self.hints.display().to_string(),
        ]
    }

    /// The odd server on host `k`.
    pub fn fake(&self, k: u8) -> &FakeUpstream {
        self.fakes
            .iter()
            .find(|(host, _)| *host == k)
            .map(|(_, fake)| fake)
            .unwrap_or_else(|| panic!("no fake server on host {k}"))
    }

    /// Queries that host `k` received so far (a `names` server's answered ones, from its
    /// query log; a fake's, all of them).
    pub fn queries(&self, k: u8) -> usize {
        if let Some((_, server)) = self.names.iter().find(|(host, _)| *host == k) {
            return server.logs().matches("names: query ").count();
        }
        self.fake(k).count()
    }

    /// Queries for `qname` or a name under it (lower case, with the trailing dot) that
    /// host `k` received so far, once they [`settle`](Hierarchy::settle).
    pub fn asked(&self, k: u8, qname: &str) -> usize {
        self.settle();
        let under = |n: &str| n == qname || n.ends_with(&format!(".{qname}")) || qname == ".";
        if let Some((_, server)) = self.names.iter().find(|(host, _)| *host == k) {
            let logs = server.logs().to_ascii_lowercase();
            return logs
                .lines()
                .filter_map(|l| l.split(" name=").nth(1)?.split(' ').next())
                .filter(|n| under(n))
                .count();
        }
        let received = self.fake(k).received();
        let names = received.iter().filter_map(|r| question(&r.bytes));
        names.filter(|(n, _)| under(n)).count()
    }

    /// Waits (at most 2 s) until no more queries arrive for 100 ms: a `names` server logs
    /// a query a moment after answering it, so counts read right after an answer may be
    /// short. Returns [`all_queries`](Hierarchy::all_queries) then.
    pub fn settle(&self) -> usize {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut last = self.all_queries();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let now = self.all_queries();
            if now == last || std::time::Instant::now() >= deadline {
                return now;
            }
            last = now;
        }
    }

    /// Queries that every server of the hierarchy received so far.
    pub fn all_queries(&self) -> usize {
        let hosts = self.names.iter().map(|(k, _)| *k);
        hosts
            .chain(self.fakes.iter().map(|(k, _)| *k))
            .map(|k| self.queries(k))
            .sum()
    }

    fn serve_names(&mut self, k: u8, zone: &Path) -> Result<(), String> {
        let listen = self.addr(k).to_string();
        let zone = zone.display().to_string();
        let args = [
            "serve",
            "--listen",
            &listen,
            "--zone",
            &zone,
            "--no-forward",
            "--workers",
            "1",
            "--log-queries",
        ];
        let server = Server::try_start_raw(&args).map_err(|e| {
            format!(
                "the hierarchy's server {listen} did not start (binding port 53 needs root):\n{e}"
            )
        })?;
        self.names.push((k, server));
        Ok(())
    }

    fn start_fakes(&mut self) {
        let block = self.block;
        let ip = move |k: u8| Ipv4Addr::new(127, 53, block, k);
        let root_ns = rr(".", Ns::new(name("a.root.")));
        let root_glue = rr("a.root.", A::new(ip(1)));
        let tc = Authority::new("tc.test.", ip(20), &[("www.tc.test.", TC_A)]);
        let formerr = Authority::new("formerr.test.", ip(21), &[("www.formerr.test.", FORMERR_A)]);
        let victim = Authority::new("victim.test.", ip(24), &[]);
        let fakes: Vec<(u8, Behaviour)> = vec![
            (11, Box::new(|r| send(refused(&r.bytes)))),
            (12, Box::new(|_| vec![Reply::Nothing])),
            (
                13,
                Box::new(move |r| {
                    let (ns, glue) = (root_ns.clone(), root_glue.clone());
                    send(reply_sections(
                        &r.bytes,
                        Rcode::NOERROR,
                        false,
                        [&[], &[ns], &[glue]],
                    ))
                }),
            ),
            (
                20,
                Box::new(move |r| {
                    let full = tc.reply(&r.bytes);
                    send(if r.tcp {
                        full
                    } else {
                        with_tc(&empty(&r.bytes))
                    })
                }),
            ),
            (
                21,
                Box::new(move |r| {
                    let edns = parse(&r.bytes).has_opt;
                    send(if edns {
                        formerr_reply(&r.bytes)
                    } else {
                        formerr.reply(&r.bytes)
                    })
                }),
            ),
            (22, Box::new(move |r| send(evil(&r.bytes, ip(22))))),
            (23, Box::new(|r| send(nxns(&r.bytes)))),
            (24, Box::new(move |r| send(victim.reply(&r.bytes)))),
        ];
        for (k, handler) in fakes {
            let fake = FakeUpstream::start_on(self.addr(k), handler);
            self.fakes.push((k, fake));
        }
    }
}

/// The zones the `names` servers serve: host, origin, records besides SOA and NS.
fn zones(block: u8) -> Vec<(u8, &'static str, String)> {
    let ip = |k: u8| Ipv4Addr::new(127, 53, block, k);
    let delegate =
        |zone: &str, k: u8| format!("{zone} NS {ns}\n{ns} A {}\n", ip(k), ns = ns_host(zone));
    let mut test = String::new();
    for (zone, k) in [
        ("example.test.", 3),
        ("tc.test.", 20),
        ("formerr.test.", 21),
        ("evil.test.", 22),
        ("nxns.test.", 23),
        ("victim.test.", 24),
    ] {
        test.push_str(&delegate(zone, k));
    }
    for (host, k) in [("good", 10), ("lame", 11), ("dead", 12), ("upward", 13)] {
        test.push_str(&format!(
            "mixed.test. NS {host}.mixed.test.\n{host}.mixed.test. A {}\n",
            ip(k)
        ));
    }
    test.push_str("loop1.test. NS ns.loop2.test.\nloop2.test. NS ns.loop1.test.\n");
    let mixed: String = test
        .lines()
        .filter(|l| l.contains("mixed.test. "))
        .map(|l| format!("{l}\n"))
        .collect();
    let glueless = "glueless.other. NS ns-glueless.example.test.\n";
    vec![
        (1, ".", delegate(".", 1) + &delegate("test.", 2) + &delegate("other.", 5)),
        (2, "test.", delegate("test.", 2) + &test),
        (
            3,
            "example.test.",
            delegate("example.test.", 3)
                + &format!(
                    "www A {WWW_A}\nwww AAAA {WWW_AAAA}\nalias CNAME www.other.\ndname DNAME other.\nns-glueless A {}\n",
                    ip(6)
                )
                + &delegate("sub.example.test.", 4),
        ),
        (4, "sub.example.test.", delegate("sub.example.test.", 4) + &format!("deep A {DEEP_A}\n")),
        (5, "other.", delegate("other.", 5) + &format!("www A {OTHER_A}\n{glueless}")),
        (6, "glueless.other.", format!("{glueless}www A {GLUELESS_A}\n")),
        (10, "mixed.test.", format!("{mixed}www A {MIXED_A}\n")),
    ]
}

/// The name server host of `zone`: `a.root.` for the root, `ns.ZONE` otherwise.
fn ns_host(zone: &str) -> String {
    match zone {
        "." => "a.root.".to_string(),
        zone => format!("ns.{zone}"),
    }
}

/// A master file: the SOA, then `body` (the apex NS first).
fn zone_file(origin: &str, body: &str) -> String {
    let hostmaster = if origin == "." {
        "hostmaster.".to_string()
    } else {
        format!("hostmaster.{origin}")
    };
    format!(
        "$ORIGIN {origin}\n$TTL 3600\n{origin} SOA {} {hostmaster} 1 3600 600 86400 300\n{body}",
        ns_host(origin)
    )
}

/// A record of class IN, TTL 3600.
fn rr(owner: &str, data: impl Into<AllRecordData<Bytes, Name<Bytes>>>) -> names_core::Rr {
    Record::new(name(owner), Class::IN, Ttl::from_secs(3600), data.into())
}

fn send(bytes: Vec<u8>) -> Vec<Reply> {
    vec![Reply::Send(bytes)]
}

fn refused(query: &[u8]) -> Vec<u8> {
    reply_sections(query, Rcode::REFUSED, false, [&[], &[], &[]])
}

fn empty(query: &[u8]) -> Vec<u8> {
    reply_sections(query, Rcode::NOERROR, true, [&[], &[], &[]])
}

/// FORMERR without OPT (the question echoed, RD kept), as an old server that does not
/// know EDNS answers.
fn formerr_reply(query: &[u8]) -> Vec<u8> {
    let rd = u16::from(query.get(2).is_some_and(|b| b & 1 == 1)) << 8;
    let flags = 0x8000 | rd | u16::from(Rcode::FORMERR.to_int());
    let mut reply = raw_header(msg_id(query), flags, 1, 0, 0, 0);
    reply.extend_from_slice(question_bytes(query));
    reply
}

/// The question of a query: its name (lower case, with the trailing dot) and type.
fn question(query: &[u8]) -> Option<(String, u16)> {
    let (qname, qtype) = parse(query).question?;
    Some((
        format!("{}.", qname.trim_end_matches('.')).to_ascii_lowercase(),
        qtype,
    ))
}

/// A small authoritative server for one zone with A records only.
struct Authority {
    origin: String,
    ns: (String, Ipv4Addr),
    records: Vec<(String, Ipv4Addr)>,
}

impl Authority {
    fn new(origin: &str, ns_addr: Ipv4Addr, records: &[(&str, Ipv4Addr)]) -> Authority {
        Authority {
            origin: origin.to_string(),
            ns: (ns_host(origin), ns_addr),
            records: records.iter().map(|(n, a)| (n.to_string(), *a)).collect(),
        }
    }

    fn soa(&self) -> names_core::Rr {
        let t = Ttl::from_secs;
        let host = name(&format!("hostmaster.{}", self.origin));
        let soa = Soa::new(
            name(&self.ns.0),
            host,
            Serial(1),
            t(3600),
            t(600),
            t(86400),
            t(300),
        );
        rr(&self.origin, soa)
    }

    /// The authoritative reply to `query`: the A asked for, the apex NS, NODATA or
    /// NXDOMAIN with the SOA.
    fn reply(&self, query: &[u8]) -> Vec<u8> {
        let Some((qname, qtype)) = question(query) else {
            return refused(query);
        };
        if !qname.ends_with(&self.origin) {
            return refused(query);
        }
        let (ns, ns_a) = (
            rr(&self.origin, Ns::new(name(&self.ns.0))),
            rr(&self.ns.0, A::new(self.ns.1)),
        );
        let a = |addr: Ipv4Addr| rr(&qname, A::new(addr));
        let found: Vec<Ipv4Addr> = self
            .records
            .iter()
            .chain(std::iter::once(&self.ns))
            .filter(|(owner, _)| *owner == qname)
            .map(|(_, addr)| *addr)
            .collect();
        let ok = Rcode::NOERROR;
        if qname == self.origin && qtype == Rtype::NS.to_int() {
            return reply_sections(query, ok, true, [&[ns], &[], &[ns_a]]);
        }
        if qtype == Rtype::A.to_int() && !found.is_empty() {
            let answer: Vec<_> = found.into_iter().map(a).collect();
            return reply_sections(query, ok, true, [&answer, &[], &[]]);
        }
        let exists = !found.is_empty() || qname == self.origin;
        let rcode = if exists { ok } else { Rcode::NXDOMAIN };
        reply_sections(query, rcode, true, [&[], &[self.soa()], &[]])
    }
}

/// `evil.test`'s server: the A asked for, with an NS for `example.test` in the authority
/// section and addresses for `www.example.test` and `ns.example.test` in the additional
/// one: out of its bailiwick, all to be dropped.
fn evil(query: &[u8], own: Ipv4Addr) -> Vec<u8> {
    let Some((qname, _)) = question(query) else {
        return refused(query);
    };
    let answer = [rr(&qname, A::new(EVIL_A))];
    let authority = [
        rr("evil.test.", Ns::new(name("ns.evil.test."))),
        rr("example.test.", Ns::new(name("ns.evil.test."))),
    ];
    let additional = [
        rr("ns.evil.test.", A::new(own)),
        rr("www.example.test.", A::new(POISON_A)),
        rr("ns.example.test.", A::new(own)),
    ];
    reply_sections(
        query,
        Rcode::NOERROR,
        true,
        [&answer, &authority, &additional],
    )
}

/// `nxns.test`'s server: every name is referred to [`NXNS_NAMES`] glueless name servers
/// under `victim.test`.
fn nxns(query: &[u8]) -> Vec<u8> {
    let Some((qname, _)) = question(query) else {
        return refused(query);
    };
    let cut = if qname == "nxns.test." {
        "x.nxns.test.".to_string()
    } else {
        qname
    };
    let authority: Vec<_> = (0..NXNS_NAMES)
        .map(|i| rr(&cut, Ns::new(name(&format!("ns{i}.victim.test.")))))
        .collect();
    reply_sections(query, Rcode::NOERROR, false, [&[], &authority, &[]])
}
