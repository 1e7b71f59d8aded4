//! Plays a [`Scenario`] against the real binary: every scenario server address becomes
//! a loopback address at port 53 with a fake authoritative server ([`FakeUpstream`])
//! answering from the scenario's ranges, the root stub becomes a `--root-hints` file, and
//! `names serve --recursive --query-localhost` gets the client steps.
//!
//! Addresses in the data are rewritten too, in what the fakes send and in the expected
//! answers alike: an `A` (or `AAAA`) record holding a server's address holds its loopback
//! address instead (an IPv6 server is reached over IPv4 loopback, its `AAAA` records
//! carry the IPv4-mapped form), and every other address one on 127.54.0.0/15 that no
//! one serves, so that nothing in a scenario can lead `names` off loopback.
//!
//! Differences from testbound, on purpose: time is real (a `TIME_PASSES` of more than
//! [`MAX_ELAPSE`] seconds ends the replay there, a shorter one is slept), sections are
//! compared as sets (order is Unbound's implementation detail), TTLs may be up to
//! [`TTL_SLACK`] seconds lower than expected, and the OPT record is not compared. A fake
//! server's reply always carries the query's ID (and its question, when the entry's names
//! the same one): testbound hands a reply to its query unchecked, `names` checks both.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::base::iana::Rtype;
use domain::base::{Message, MessageBuilder, ParsedName, Record, ToName};
use domain::rdata::{Aaaa, AllRecordData, ZoneRecordData, A};

use super::{Entry, Range, Scenario, ScenarioRecord, StepKind};
use crate::net::UdpClient;
use crate::process::{temp_dir, Server};
use crate::upstream::{FakeUpstream, Received, Reply};

/// The longest `TIME_PASSES` slept for real; a longer one ends the replay.
pub const MAX_ELAPSE: f64 = 2.0;
/// Seconds a TTL may have lost to real time.
pub const TTL_SLACK: u32 = 3;
/// How long a client query waits for its reply.
const REPLY_WAIT: Duration = Duration::from_secs(8);
/// Scenario servers one replay can map (hosts per slot).
const SLOT_HOSTS: u8 = 31;

/// What a replay that did not fail got through.
#[derive(Debug)]
pub struct Played {
    /// `CHECK_ANSWER` steps that matched.
    pub checked: usize,
    /// Steps not played, and why (an empty list: all of them were).
    pub skipped: Vec<String>,
}

/// Why a scenario cannot be replayed here, from its configuration and steps alone;
/// `None`: it can.
pub fn unsupported(s: &Scenario) -> Option<String> {
    for (key, value) in &s.config.options {
        let why = match key.as_str() {
            k if k.starts_with("trust-anchor") && k != "trust-anchor-signaling" => {
                "DNSSEC validation"
            }
            "module-config" if value.contains("validator") => "DNSSEC validation",
            "forward-first" | "stub-first" if value == "yes" => {
                "falling back from a forward or stub zone to recursion"
            }
            "do-nat64" | "nat64-prefix" => "NAT64 synthesis",
            "private-address" | "private-domain" => "private-address filtering",
            "do-not-query-address" => "an address blocklist",
            "root-hints" | "auth-zone" => "root hints or zones from a file of the scenario",
            k if k.starts_with("TEMPFILE_") => "files the scenario writes",
            "max-global-quota" => "a global query quota",
            _ => continue,
        };
        return Some(format!("{why} ({key}: {value})"));
    }
    let root_stub = s
        .config
        .stubs
        .iter()
        .any(|z| z.name == "." && !z.addrs.is_empty());
    if !root_stub {
        return Some("no root stub-zone with stub-addr lines to make root hints of".into());
    }
    if let Some(z) = s.config.stubs.iter().find(|z| z.name != ".") {
        return Some(format!("a stub zone below the root ({})", z.name));
    }
    if s.config
        .forwards
        .iter()
        .any(|z| !z.hosts.is_empty() || z.addrs.is_empty())
    {
        return Some("a forward zone by host name".into());
    }
    for step in &s.steps {
        if let StepKind::Other(kind, _) = &step.kind {
            if kind != "CHECK_OUT_QUERY" && kind != "NOTHING" && kind != "TRAFFIC" {
                return Some(format!(
                    "STEP {kind} (outgoing replies scripted step by step)"
                ));
            }
        }
    }
    None
}

/// Replays `s` on the loopback slot `slot` (0..448: 127.53.(200 + slot / 8).x, 31
/// addresses each, so replays running at the same time never share one), with `flags`
/// added to `names serve`. The error is one readable report: scenario, step, difference.
pub fn play(file: &str, s: &Scenario, slot: u16, flags: &[&str]) -> Result<Played, String> {
    if let Some(why) = unsupported(s) {
        return Err(format!("{file}: cannot be replayed: {why}"));
    }
    let map = AddressMap::new(s, slot)?;
    let step = Arc::new(AtomicU32::new(0));
    let ranges = Arc::new(s.ranges.clone());
    let fakes: Vec<FakeUpstream> = map
        .servers()
        .iter()
        .map(|&(original, _)| {
            let (step, ranges, map2) = (step.clone(), ranges.clone(), map.clone());
            let at = SocketAddr::from((map.get(original), 53));
            FakeUpstream::start_on(at, move |q| {
                answer(&ranges, &map2, original, step.load(Ordering::SeqCst), q)
            })
        })
        .collect();

    let dir = temp_dir(&format!("rpl-{slot}"));
    let hints = dir.join("root.hints");
    let mut text = String::from(";; the scenario's root stub, mapped to loopback\n");
    let roots = s
        .config
        .stubs
        .iter()
        .filter(|z| z.name == ".")
        .flat_map(|z| &z.addrs);
    for (i, &ip) in roots.enumerate() {
        text.push_str(&format!(".\t3600000\tNS\troot{i}.hints.invalid.\n"));
        text.push_str(&format!(
            "root{i}.hints.invalid.\t3600000\tA\t{}\n",
            map.get(ip)
        ));
    }
    std::fs::write(&hints, text).map_err(|e| format!("{file}: write root hints: {e}"))?;
    let hints = hints.display().to_string();
    let mut args = vec![
        "--recursive",
        "--query-localhost",
        "--root-hints",
        &hints,
        "--workers",
        "1",
    ];
    let minimal = s.config.get("minimal-responses").unwrap_or("yes");
    args.extend([
        "--minimal-responses",
        if minimal == "no" { "false" } else { "true" },
    ]);
    let forwards: Vec<String> = s
        .config
        .forwards
        .iter()
        .map(|z| {
            let addrs: Vec<String> = z.addrs.iter().map(|&ip| map.get(ip).to_string()).collect();
            format!("{}={}", z.name, addrs.join(","))
        })
        .collect();
    for f in &forwards {
        args.extend(["--forward", f]);
    }
    args.extend_from_slice(flags);
    let server =
        Server::try_start(&args).map_err(|e| format!("{file}: names did not start: {e}"))?;

    let mut played = Played {
        checked: 0,
        skipped: Vec::new(),
    };
    let mut pending: Vec<(usize, UdpClient)> = Vec::new();
    for (i, st) in s.steps.iter().enumerate() {
        let at = format!("{file} STEP {} (line {})", st.number, st.line);
        match &st.kind {
            StepKind::Query(entry) => {
                // testbound answers the queries a step causes at the next step's time.
                let next = s.steps.get(i + 1).map_or(st.number, |n| n.number);
                step.store(next, Ordering::SeqCst);
                let client = UdpClient::new(server.udp_addr());
                client.send(&client_query(entry, &map).map_err(|e| format!("{at}: {e}"))?);
                pending.push((i, client));
            }
            StepKind::CheckAnswer(entry) => {
                step.store(st.number, Ordering::SeqCst);
                if pending.is_empty() {
                    return Err(format!("{at}: CHECK_ANSWER without a query waiting"));
                }
                let (_, client) = pending.remove(0);
                let Some(reply) = client.recv(REPLY_WAIT) else {
                    return Err(format!(
                        "{at}: no reply within {REPLY_WAIT:?}\n{}",
                        server_tail(&server)
                    ));
                };
                let expected = message(entry, &map, None).map_err(|e| format!("{at}: {e}"))?;
                if let Some(diff) = compare(entry, &map, &expected, &reply) {
                    let asked = format!("{}{}", asked(&map, &fakes), server_tail(&server));
                    return Err(format!(
                        "{at}: the reply differs from the scenario's\n{diff}{asked}"
                    ));
                }
                played.checked += 1;
            }
            StepKind::TimePasses(secs) if *secs <= MAX_ELAPSE => {
                std::thread::sleep(Duration::from_secs_f64(*secs));
            }
            StepKind::TimePasses(secs) => {
                played
                    .skipped
                    .push(format!("{at} and after: TIME_PASSES {secs} s"));
                break;
            }
            StepKind::Other(kind, _) => {
                step.store(st.number, Ordering::SeqCst);
                played.skipped.push(format!("{at}: {kind} not checked"));
            }
        }
    }
    drop(fakes);
    Ok(played)
}

/// What the scenario's servers were asked, in the order they were asked: for a failure
/// report.
fn asked(map: &AddressMap, fakes: &[FakeUpstream]) -> String {
    let mut all: Vec<(std::time::Instant, String)> = Vec::new();
    for (&(original, _), fake) in map.servers().iter().zip(fakes) {
        for q in fake.received() {
            let parsed = crate::parse::parse(&q.bytes);
            if let Some((qname, qtype)) = parsed.question {
                let transport = if q.tcp { "tcp" } else { "udp" };
                let qtype = Rtype::from_int(qtype);
                all.push((
                    q.at,
                    format!("  {original} {qname}. {qtype} ({transport})\n"),
                ));
            }
        }
    }
    all.sort_by_key(|(at, _)| *at);
    let lines: String = all.into_iter().map(|(_, line)| line).collect();
    format!("the scenario's servers were asked:\n{lines}")
}

fn server_tail(server: &Server) -> String {
    let logs = server.logs();
    let lines: Vec<&str> = logs.lines().collect();
    format!(
        "names' last log lines:\n{}",
        lines[lines.len().saturating_sub(10)..].join("\n")
    )
}

/// Scenario server addresses and the loopback addresses standing in for them.
#[derive(Clone, Debug)]
struct AddressMap {
    /// Original and loopback address: the servers first, then the other addresses.
    pairs: Vec<(IpAddr, Ipv4Addr)>,
    /// How many of `pairs` are servers.
    servers: usize,
}

impl AddressMap {
    fn new(s: &Scenario, slot: u16) -> Result<AddressMap, String> {
        let third = u8::try_from(200 + slot / 8).map_err(|_| format!("slot {slot} is past 447"))?;
        let base = (slot % 8) as u8 * 32;
        let mut originals: Vec<IpAddr> = Vec::new();
        let stubs = s
            .config
            .stubs
            .iter()
            .chain(&s.config.forwards)
            .flat_map(|z| z.addrs.iter());
        for &ip in s
            .ranges
            .iter()
            .flat_map(|r| r.addresses.iter())
            .chain(stubs)
        {
            if !originals.contains(&ip) {
                originals.push(ip);
            }
        }
        if originals.len() > usize::from(SLOT_HOSTS) {
            return Err(format!(
                "{} server addresses, more than a slot's {SLOT_HOSTS}",
                originals.len()
            ));
        }
        let servers = originals.len();
        let mut pairs: Vec<(IpAddr, Ipv4Addr)> = originals
            .into_iter()
            .zip(1..)
            .map(|(ip, k)| (ip, Ipv4Addr::new(127, 53, third, base + k)))
            .collect();
        // Every other address in the data becomes a loopback address nobody serves, so
        // that names can never be led to a real address (lame glue, addresses Unbound
        // never asks): on 127.54+.
        let entries = s
            .ranges
            .iter()
            .flat_map(|r| &r.entries)
            .chain(s.steps.iter().filter_map(|st| match &st.kind {
                StepKind::Query(e) | StepKind::CheckAnswer(e) | StepKind::Other(_, Some(e)) => {
                    Some(e)
                }
                _ => None,
            }));
        let mut others: Vec<IpAddr> = Vec::new();
        for record in entries.flat_map(|e| e.sections.iter().flatten()) {
            let ip = match record.data() {
                ZoneRecordData::A(a) => IpAddr::V4(a.addr()),
                ZoneRecordData::Aaaa(a) => IpAddr::V6(a.addr()),
                _ => continue,
            };
            if !others.contains(&ip) && !pairs.iter().any(|(o, _)| *o == ip) {
                others.push(ip);
            }
        }
        if others.len() > 254 {
            return Err(format!(
                "{} addresses in the data, more than 254",
                others.len()
            ));
        }
        let [hi, lo] = slot.to_be_bytes();
        let dead = |k: u8| Ipv4Addr::new(127, 54 + hi, lo, k);
        pairs.extend(others.into_iter().zip(1..).map(|(ip, k)| (ip, dead(k))));
        Ok(AddressMap { pairs, servers })
    }

    fn get(&self, ip: IpAddr) -> Ipv4Addr {
        self.lookup(ip)
            .unwrap_or_else(|| panic!("{ip} is not a scenario server"))
    }

    fn lookup(&self, ip: IpAddr) -> Option<Ipv4Addr> {
        self.pairs.iter().find(|(o, _)| *o == ip).map(|&(_, l)| l)
    }

    /// The scenario's address a loopback one stands for.
    fn original(&self, ip: IpAddr) -> Option<IpAddr> {
        self.pairs
            .iter()
            .find(|(_, l)| IpAddr::V4(*l) == ip)
            .map(|&(o, _)| o)
    }

    /// The scenario's servers: original and loopback address.
    fn servers(&self) -> &[(IpAddr, Ipv4Addr)] {
        &self.pairs[..self.servers]
    }

    /// `record` with its address (if it is an A or AAAA) replaced by its loopback one.
    fn rewrite(&self, record: &ScenarioRecord) -> ScenarioRecord {
        let data = match record.data() {
            ZoneRecordData::A(a) => match self.lookup(IpAddr::V4(a.addr())) {
                Some(l) => ZoneRecordData::A(A::new(l)),
                None => record.data().clone(),
            },
            ZoneRecordData::Aaaa(a) => match self.lookup(IpAddr::V6(a.addr())) {
                Some(l) => ZoneRecordData::Aaaa(Aaaa::new(l.to_ipv6_mapped())),
                None => record.data().clone(),
            },
            other => other.clone(),
        };
        Record::new(record.owner().clone(), record.class(), record.ttl(), data)
    }
}

/// The fake server at `original`: the first entry of the first range covering `step`
/// (and this server) whose MATCH fits the query; silence when none does.
fn answer(
    ranges: &[Range],
    map: &AddressMap,
    original: IpAddr,
    step: u32,
    q: &Received,
) -> Vec<Reply> {
    let Ok(query) = Message::from_octets(Bytes::from(q.bytes.clone())) else {
        return Vec::new();
    };
    let covering = ranges
        .iter()
        .filter(|r| r.start <= step && step <= r.end)
        .filter(|r| r.addresses.is_empty() || r.addresses.contains(&original));
    for range in covering {
        if let Some(entry) = range.entries.iter().find(|e| fits(e, &query, q.tcp)) {
            // testbound hands a reply to the query it answers without checking its ID or
            // the case of its question; names checks both, so both are the query's (the
            // question's case only when the entry's names the same question).
            let same_question = match (query.first_question(), entry.question.first()) {
                (Some(asked), Some(own)) => asked.qname().name_eq(&own.0),
                _ => false,
            };
            let copy = entry.copy_query || same_question;
            let Ok(mut reply) = message(entry, map, copy.then_some(&query)) else {
                return Vec::new();
            };
            reply[..2].copy_from_slice(&q.bytes[..2]);
            return vec![match entry.sleep_ms {
                0 => Reply::Send(reply),
                ms => Reply::Delay(Duration::from_millis(ms), reply),
            }];
        }
    }
    Vec::new()
}

/// testpkts' `find_match` for one entry: every MATCH keyword must hold.
fn fits(entry: &Entry, query: &Message<Bytes>, tcp: bool) -> bool {
    let Some(Ok(asked)) = query.question().next() else {
        return false;
    };
    let wanted = entry.question.first();
    let opt = query.opt();
    entry.matches.iter().all(|m| match m.as_str() {
        "opcode" => query.header().opcode() == entry.opcode,
        "qtype" => wanted.is_some_and(|w| w.1 == asked.qtype()),
        "qname" => wanted.is_some_and(|w| w.0.name_eq(asked.qname())),
        "subdomain" => wanted.is_some_and(|w| asked.qname().ends_with(&w.0)),
        "question" | "all" | "all_noedns" => wanted.is_some_and(|w| {
            w.0.name_eq(asked.qname()) && w.1 == asked.qtype() && w.2 == asked.qclass()
        }),
        "tcp" => tcp,
        "udp" => !tcp,
        "do" => opt.as_ref().is_some_and(|o| o.dnssec_ok()),
        "noedns" => opt.is_none(),
        "rcode" => query.header().rcode() == entry.rcode,
        // Not about the query, or not distinguishable here.
        "ttl" | "ednsdata" | "answer" => true,
        _ => false,
    })
}

/// The wire form of `entry`, addresses rewritten; with `query`, its question instead
/// of the entry's (ADJUST copy_query).
fn message(
    entry: &Entry,
    map: &AddressMap,
    query: Option<&Message<Bytes>>,
) -> Result<Vec<u8>, String> {
    let mut b = MessageBuilder::new_vec();
    let h = b.header_mut();
    h.set_opcode(entry.opcode);
    h.set_rcode(entry.rcode);
    h.set_qr(entry.flag("QR"));
    h.set_aa(entry.flag("AA"));
    h.set_tc(entry.flag("TC"));
    h.set_rd(entry.flag("RD"));
    h.set_ra(entry.flag("RA"));
    h.set_ad(entry.flag("AD"));
    h.set_cd(entry.flag("CD"));
    let mut q = b.question();
    let full = |e| format!("message too long: {e}");
    match query.map(|m| m.question().next()) {
        Some(Some(Ok(asked))) => q.push(asked).map_err(full)?,
        _ => {
            for question in &entry.question {
                q.push(question).map_err(full)?;
            }
        }
    }
    let mut a = q.answer();
    for r in &entry.sections[0] {
        a.push(map.rewrite(r)).map_err(full)?;
    }
    let mut au = a.authority();
    for r in &entry.sections[1] {
        au.push(map.rewrite(r)).map_err(full)?;
    }
    let mut ad = au.additional();
    for r in &entry.sections[2] {
        ad.push(map.rewrite(r)).map_err(full)?;
    }
    if entry.dnssec_ok {
        ad.opt(|o| {
            o.set_udp_payload_size(4096);
            o.set_dnssec_ok(true);
            Ok(())
        })
        .map_err(full)?;
    }
    Ok(ad.finish())
}

/// A client query: the entry's question and flags, a fixed ID.
fn client_query(entry: &Entry, map: &AddressMap) -> Result<Vec<u8>, String> {
    let mut wire = message(entry, map, None)?;
    wire[..2].copy_from_slice(&0x4242u16.to_be_bytes());
    Ok(wire)
}

/// testbound's CHECK_ANSWER: `None` when `got` matches `expected` under the entry's
/// MATCH keywords, else the difference, one line per item (addresses as the scenario
/// writes them).
fn compare(entry: &Entry, map: &AddressMap, expected: &[u8], got: &[u8]) -> Option<String> {
    let ttl = entry.matches("ttl");
    let want = match View::of(expected, map) {
        Ok(v) => v,
        Err(e) => return Some(format!("the expected reply does not parse: {e}")),
    };
    let have = match View::of(got, map) {
        Ok(v) => v,
        Err(e) => return Some(format!("the reply does not parse: {e}")),
    };
    let mut diff = Vec::new();
    let all = entry.matches("all") || entry.matches("all_noedns");
    if (all || entry.matches("opcode")) && want.opcode != have.opcode {
        diff.push(format!(
            "opcode: expected {}, got {}",
            want.opcode, have.opcode
        ));
    }
    if all && want.flags != have.flags {
        diff.push(format!(
            "flags: expected {:?}, got {:?}",
            want.flags, have.flags
        ));
    }
    if (all || entry.matches("rcode")) && want.rcode != have.rcode {
        diff.push(format!(
            "rcode: expected {}, got {}",
            want.rcode, have.rcode
        ));
    }
    if (all || entry.matches("question") || entry.matches("qname") || entry.matches("qtype"))
        && want.question != have.question
    {
        diff.push(format!(
            "question: expected {:?}, got {:?}",
            want.question, have.question
        ));
    }
    let sections: &[usize] = if all {
        &[0, 1, 2]
    } else if entry.matches("answer") {
        &[0]
    } else {
        &[]
    };
    for &i in sections {
        let name = ["answer", "authority", "additional"][i];
        let (w, h) = (&want.sections[i], &have.sections[i]);
        let missing = w.iter().filter(|(rr, t)| {
            !h.iter()
                .any(|(r, u)| r == rr && (!ttl || ttl_close(*t, *u)))
        });
        let extra = h.iter().filter(|(rr, u)| {
            !w.iter()
                .any(|(r, t)| r == rr && (!ttl || ttl_close(*t, *u)))
        });
        for (rr, t) in missing {
            diff.push(format!("{name}: missing  {rr} (ttl {t})"));
        }
        for (rr, u) in extra {
            diff.push(format!("{name}: unexpected {rr} (ttl {u})"));
        }
    }
    (!diff.is_empty()).then(|| {
        let mut out = diff.join("\n");
        out.push_str(&format!(
            "\nexpected:\n{}\ngot:\n{}",
            want.render(),
            have.render()
        ));
        out
    })
}

fn ttl_close(expected: u32, got: u32) -> bool {
    got <= expected && expected - got <= TTL_SLACK
}

/// A message in comparable pieces: lower case, records as `owner class type rdata`.
struct View {
    opcode: String,
    flags: Vec<&'static str>,
    rcode: String,
    question: Vec<String>,
    /// Answer, authority, additional (without OPT): each record and its TTL, sorted.
    sections: [Vec<(String, u32)>; 3],
}

impl View {
    fn of(wire: &[u8], map: &AddressMap) -> Result<View, String> {
        let msg = Message::from_octets(Bytes::copy_from_slice(wire)).map_err(|e| e.to_string())?;
        let h = msg.header();
        let flags = [
            ("qr", h.qr()),
            ("aa", h.aa()),
            ("tc", h.tc()),
            ("rd", h.rd()),
            ("ra", h.ra()),
            ("ad", h.ad()),
            ("cd", h.cd()),
        ];
        let question = msg
            .question()
            .map(|q| {
                q.map(|q| {
                    format!("{} {} {}", q.qname(), q.qclass(), q.qtype()).to_ascii_lowercase()
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let mut sections: [Vec<(String, u32)>; 3] = Default::default();
        let mut section = msg.answer().map_err(|e| e.to_string())?;
        for (i, out) in sections.iter_mut().enumerate() {
            for rr in &mut section {
                let rr = rr.map_err(|e| e.to_string())?;
                if rr.rtype() == Rtype::OPT {
                    continue;
                }
                let rr = rr
                    .to_record::<AllRecordData<Bytes, ParsedName<Bytes>>>()
                    .map_err(|e| e.to_string())?
                    .ok_or("a record without data")?;
                let data = match rr.data() {
                    AllRecordData::A(a) => map.original(IpAddr::V4(a.addr())),
                    AllRecordData::Aaaa(a) => a
                        .addr()
                        .to_ipv4_mapped()
                        .and_then(|v4| map.original(IpAddr::V4(v4))),
                    _ => None,
                };
                let data = data.map_or_else(|| rr.data().to_string(), |ip| ip.to_string());
                let text = format!("{} {} {} {data}", rr.owner(), rr.class(), rr.rtype());
                out.push((text.to_ascii_lowercase(), rr.ttl().as_secs()));
            }
            out.sort();
            if i < 2 {
                section = match section.next_section() {
                    Ok(Some(next)) => next,
                    Ok(None) => break,
                    Err(e) => return Err(e.to_string()),
                };
            }
        }
        Ok(View {
            opcode: h.opcode().to_string(),
            flags: flags
                .iter()
                .filter(|(_, on)| *on)
                .map(|(f, _)| *f)
                .collect(),
            rcode: msg.opt_rcode().to_string(),
            question,
            sections,
        })
    }

    fn render(&self) -> String {
        let mut out = format!(
            "  {} {} flags {}\n",
            self.opcode,
            self.rcode,
            self.flags.join(" ")
        );
        for q in &self.question {
            out.push_str(&format!("  ? {q}\n"));
        }
        for (records, section) in self.sections.iter().zip(["AN", "NS", "AR"]) {
            for (rr, ttl) in records {
                out.push_str(&format!("  {section} {rr} (ttl {ttl})\n"));
            }
        }
        out
    }
}
