//! One client query's resolution: a stack of goals (the client's question at the bottom,
//! priming and the addresses of glueless NS names above it), each walking down from the
//! closest known delegation, one exchange at a time. The state lives in the query's
//! [`Context::state`] slot and is freed with it.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::base::iana::{Class, OptRcode, Rcode, Rtype};
use domain::base::{Message, Name, Record, ToName, Ttl};
use domain::rdata::{Aaaa, AllRecordData, Ns, A};

use super::delegation::{Point, Target};
use super::select::choose;
use super::Shared;
use crate::cache::rrset::lower;
use crate::record::Rr;
use crate::resolver::{Answer, Context, Exchange, ExchangeFailure, Exchanged, Query, Resolution};
use crate::scrub::{scrub, Scrubbed};
use crate::zone::MAX_CNAME_CHAIN;

/// Steps of the state machine per call, a guard beyond the limits that bound it anyway.
const MAX_STEPS: usize = 256;

/// What a goal is for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Purpose {
    /// The client's question.
    Client,
    /// The root's NS set, asked of a root server from the hints.
    Priming,
    /// Addresses of this NS name, for the goal below.
    Address(Name<Bytes>),
}

/// A name and type to resolve.
struct Goal {
    purpose: Purpose,
    qname: Name<Bytes>,
    qtype: Rtype,
    /// The delegation being asked; `None`: find the closest known one.
    point: Option<Point>,
    /// Servers that failed this goal (timeout, lame, unusable reply).
    tried: Vec<SocketAddr>,
    referrals: u32,
    /// Labels below the zone asked in the minimised question; `None`: the full name.
    minimise: Option<usize>,
    /// Minimised questions asked.
    minimised: u32,
    /// The CNAME/DNAME chain so far (the client gets it all).
    chain: Vec<Rr>,
    chain_steps: usize,
}

impl Goal {
    fn new(purpose: Purpose, qname: Name<Bytes>, qtype: Rtype, minimise: bool) -> Goal {
        let minimise = (minimise && purpose != Purpose::Priming && qtype != Rtype::DS).then_some(1);
        Goal {
            purpose,
            qname,
            qtype,
            point: None,
            tried: Vec::new(),
            referrals: 0,
            minimise,
            minimised: 0,
            chain: Vec::new(),
            chain_steps: 0,
        }
    }

    /// The question to send to the zone `zone`: minimised (`A` for one label more than
    /// the zone) while that is shorter than the name, else the full question.
    fn question(&self, zone: &Name<Bytes>, max_minimise: u32) -> (Name<Bytes>, Rtype, bool) {
        if let Some(extra) = self.minimise {
            let labels = zone.label_count() + extra;
            if labels < self.qname.label_count() && self.minimised < max_minimise {
                return (suffix(&self.qname, labels), Rtype::A, true);
            }
        }
        (self.qname.clone(), self.qtype, false)
    }

    /// Starts the goal over at `qname` (a CNAME/DNAME target).
    fn restart(&mut self, qname: Name<Bytes>) {
        self.qname = qname;
        self.point = None;
        self.tried.clear();
        self.referrals = 0;
        self.minimise = self.minimise.map(|_| 1);
    }
}

/// The exchange in flight.
struct Waiting {
    server: SocketAddr,
    zone: Name<Bytes>,
    qname: Name<Bytes>,
    qtype: Rtype,
    minimised: bool,
    edns: bool,
    sent_at: Instant,
}

/// A query's resolution state.
#[derive(Default)]
pub(super) struct Iteration {
    goals: Vec<Goal>,
    waiting: Option<Waiting>,
    /// Exchanges asked for.
    sent: u32,
    subqueries: u32,
    deepest: u32,
    /// Priming was tried (once per client query).
    primed: bool,
    dnssec_ok: bool,
    random: u64,
}

/// How a goal ended.
enum Outcome {
    Answer {
        rcode: Rcode,
        answer: Vec<Rr>,
        authority: Vec<Rr>,
        additional: Vec<Rr>,
    },
    Failed,
}

/// Starts resolving the client's question.
pub(super) fn start(shared: &Shared, q: &Query<'_>, cx: &mut Context) -> Resolution {
    let now = cx.now();
    let random = cx.random();
    let minimise = shared.config().qname_minimisation;
    let it = cx.state::<Iteration>();
    *it = Iteration {
        goals: vec![Goal::new(
            Purpose::Client,
            q.qname().clone(),
            q.qtype(),
            minimise,
        )],
        dnssec_ok: q.dnssec_ok(),
        random,
        ..Iteration::default()
    };
    step(shared, it, now)
}

/// The outcome of the exchange the resolution waits for.
pub(super) fn resume(
    shared: &Shared,
    _: &Query<'_>,
    done: Exchanged,
    cx: &mut Context,
) -> Resolution {
    let now = cx.now();
    let random = cx.random();
    let it = cx.state::<Iteration>();
    it.random = random;
    let Some(w) = it.waiting.take() else {
        return Resolution::Answer(Answer::servfail()); // not ours: never happens
    };
    let Some(goal) = it.goals.last_mut() else {
        return Resolution::Answer(Answer::servfail());
    };
    let zone_key = lower(&w.zone);
    match done {
        Exchanged::Failed(ExchangeFailure::TimedOut) => {
            shared.0.infra.timed_out(now, w.server, &zone_key);
            goal.tried.push(w.server);
        }
        Exchanged::Failed(_) => goal.tried.push(w.server),
        Exchanged::Reply(reply) => {
            if let Some(outcome) = judge(shared, goal, &w, &reply, now) {
                if let Some(done) = finish(shared, it, outcome, now) {
                    return done;
                }
            }
        }
    }
    step(shared, it, now)
}

/// Runs the resolution until it needs an exchange or has the client's answer.
fn step(shared: &Shared, it: &mut Iteration, now: Instant) -> Resolution {
    let config = shared.config();
    for _ in 0..MAX_STEPS {
        if it.sent >= config.max_sends {
            return give_up(shared, it);
        }
        let primed = it.primed;
        let Some(goal) = it.goals.last_mut() else {
            return Resolution::Answer(Answer::servfail());
        };
        let Some(point) = &goal.point else {
            // The closest known delegation; the root from the hints means priming first.
            let lookup = if goal.qtype == Rtype::DS && !goal.qname.is_root() {
                parent(&goal.qname)
            } else {
                goal.qname.clone()
            };
            match shared.0.delegations.closest(now, &lookup) {
                Some(point) => goal.point = Some(point),
                None if primed || goal.purpose == Purpose::Priming => {
                    goal.point = Some(Point::hints(&config.root_hints));
                }
                None => {
                    it.primed = true;
                    let mut priming =
                        Goal::new(Purpose::Priming, Name::root_bytes(), Rtype::NS, false);
                    priming.point = Some(Point::hints(&config.root_hints));
                    if !push(shared, it, priming) {
                        return give_up(shared, it);
                    }
                }
            }
            continue;
        };
        it.random = it
            .random
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let choice = choose(
            point,
            &goal.tried,
            &shared.0.infra,
            now,
            config,
            it.random >> 33,
        );
        if let Some(choice) = choice {
            let (qname, qtype, minimised) = goal.question(&point.zone, config.max_minimise);
            if minimised {
                goal.minimised += 1;
            }
            let edns = !choice.info.no_edns;
            it.waiting = Some(Waiting {
                server: choice.addr,
                zone: point.zone.clone(),
                qname: qname.clone(),
                qtype,
                minimised,
                edns,
                sent_at: now,
            });
            it.sent += 1;
            return Resolution::Exchange(Exchange {
                servers: Arc::from([choice.addr]),
                qname,
                qtype,
                qclass: Class::IN,
                recursion_desired: false,
                dnssec_ok: it.dnssec_ok,
                checking_disabled: false,
                edns,
                try_timeout: Some(Duration::from_millis(u64::from(choice.info.rto_ms))),
                iterative: true,
            });
        }
        // No address left to ask: look up a glueless NS name's, if the limits allow.
        if let Some(name) = next_target(shared, it) {
            let minimise = config.qname_minimisation;
            let goal = Goal::new(Purpose::Address(name.clone()), name, Rtype::A, minimise);
            if !push(shared, it, goal) {
                return give_up(shared, it);
            }
            continue;
        }
        if let Some(done) = finish(shared, it, Outcome::Failed, now) {
            return done;
        }
    }
    give_up(shared, it)
}

/// The NS name the goal on top needs addresses for (marked fetched), within the limits.
fn next_target(shared: &Shared, it: &mut Iteration) -> Option<Name<Bytes>> {
    let config = shared.config();
    if it.subqueries >= config.max_subqueries || it.goals.len() as u32 > config.max_depth {
        return None;
    }
    let on_stack: Vec<Vec<u8>> = it.goals.iter().map(|g| lower(&g.qname)).collect();
    let point = it.goals.last_mut()?.point.as_mut()?;
    let fetched = point
        .targets
        .iter()
        .filter(|t| t.fetched && !point.from_hints)
        .count();
    if fetched as u32 >= config.max_targets_per_delegation {
        return None;
    }
    let target: &mut Target = point
        .targets
        .iter_mut()
        .find(|t| !t.fetched && t.addrs.is_empty() && !on_stack.contains(&lower(&t.name)))?;
    target.fetched = true;
    Some(target.name.clone())
}

/// Pushes a sub-goal; `false` when a limit forbids it.
fn push(shared: &Shared, it: &mut Iteration, goal: Goal) -> bool {
    let config = shared.config();
    if it.subqueries >= config.max_subqueries || it.goals.len() as u32 > config.max_depth {
        return false;
    }
    it.subqueries += 1;
    it.goals.push(goal);
    it.deepest = it.deepest.max(it.goals.len() as u32 - 1);
    true
}

/// A limit ended the resolution: SERVFAIL.
fn give_up(shared: &Shared, it: &mut Iteration) -> Resolution {
    shared.0.limited.fetch_add(1, Ordering::Relaxed);
    shared.record(it.sent, it.deepest);
    it.goals.clear();
    Resolution::Answer(Answer::servfail())
}

/// Ends the goal on top. Returns the client's answer when that was the client's goal.
fn finish(
    shared: &Shared,
    it: &mut Iteration,
    outcome: Outcome,
    now: Instant,
) -> Option<Resolution> {
    let goal = it.goals.pop()?;
    let Some(below) = it.goals.last_mut() else {
        shared.record(it.sent, it.deepest);
        return Some(Resolution::Answer(match outcome {
            Outcome::Failed => Answer::servfail(),
            Outcome::Answer {
                rcode,
                answer,
                authority,
                additional,
            } => Answer {
                rcode: rcode.into(),
                answer,
                authority,
                additional,
                authoritative: false,
                upstream_authoritative: true,
                authenticated: false,
            },
        }));
    };
    match (&goal.purpose, outcome) {
        (
            Purpose::Priming,
            Outcome::Answer {
                answer, additional, ..
            },
        ) => {
            learn_delegation(shared, now, &Name::root_bytes(), &answer, &additional);
            below.point = None; // found again, now from the primed NS set
        }
        (Purpose::Address(name), Outcome::Answer { answer, .. }) => {
            let addrs: Vec<IpAddr> = answer
                .iter()
                .filter_map(|rr| match rr.data() {
                    AllRecordData::A(a) => Some(IpAddr::V4(a.addr())),
                    AllRecordData::Aaaa(a) => Some(IpAddr::V6(a.addr())),
                    _ => None,
                })
                .collect();
            for (rr, addr) in answer
                .iter()
                .filter(|rr| matches!(rr.rtype(), Rtype::A | Rtype::AAAA))
                .zip(&addrs)
            {
                shared
                    .0
                    .delegations
                    .put_addr(now, name, *addr, rr.ttl().as_secs());
            }
            if let Some(point) = below.point.as_mut() {
                point.learn(name, &addrs);
            }
            if addrs.is_empty() && goal.qtype == Rtype::A {
                // No IPv4 address: its IPv6 ones, once.
                let name = name.clone();
                let retry = Goal::new(
                    Purpose::Address(name.clone()),
                    name,
                    Rtype::AAAA,
                    shared.config().qname_minimisation,
                );
                if !push(shared, it, retry) {
                    return None; // the goal below goes on without it
                }
            }
        }
        _ => {}
    }
    None
}

/// Judges a reply to the goal on top: `Some` when it ends the goal, `None` when the goal
/// goes on (a referral, a server to skip, a minimisation step).
fn judge(
    shared: &Shared,
    goal: &mut Goal,
    w: &Waiting,
    reply: &Message<Bytes>,
    now: Instant,
) -> Option<Outcome> {
    let infra = &shared.0.infra;
    let zone_key = lower(&w.zone);
    infra.replied(
        now,
        w.server,
        &zone_key,
        now.saturating_duration_since(w.sent_at),
    );
    if w.edns && reply.opt().is_none() {
        infra.no_edns(now, w.server, &zone_key);
    }
    let rcode = reply.header().rcode();
    let lame = |goal: &mut Goal| {
        infra.lame(now, w.server, &zone_key);
        goal.tried.push(w.server);
        None
    };
    if rcode != Rcode::NOERROR && rcode != Rcode::NXDOMAIN {
        if w.minimised {
            goal.minimise = None; // relaxed: the full name instead
            return None;
        }
        return lame(goal);
    }
    let Some(s) = scrub(&w.qname, w.qtype, Class::IN, reply, &w.zone) else {
        goal.tried.push(w.server);
        return None;
    };
    if w.minimised {
        return minimised(shared, goal, w, s, now);
    }
    if rcode == Rcode::NXDOMAIN {
        if !s.aa {
            return lame(goal);
        }
        let mut answer = std::mem::take(&mut goal.chain);
        answer.extend(s.answer);
        return Some(Outcome::Answer {
            rcode,
            answer,
            authority: negative_authority(s.authority),
            additional: Vec::new(),
        });
    }
    if !s.answer.is_empty() {
        if !s.aa {
            return lame(goal);
        }
        let (last, steps, complete) = chain_end(&w.qname, w.qtype, &s.answer);
        goal.chain.extend(s.answer);
        goal.chain_steps += steps;
        if complete {
            return Some(Outcome::Answer {
                rcode,
                answer: std::mem::take(&mut goal.chain),
                authority: Vec::new(),
                additional: s.additional,
            });
        }
        if goal.chain_steps > MAX_CNAME_CHAIN {
            return Some(Outcome::Failed);
        }
        goal.restart(last);
        return None;
    }
    if let Some((zone, ns, ttl)) = referral(&w.zone, &w.qname, &s) {
        if goal.referrals >= shared.config().max_referrals {
            return Some(Outcome::Failed);
        }
        goal.referrals += 1;
        learn_delegation(shared, now, &zone, &s.authority, &s.additional);
        goal.point = Some(point_of(shared, now, zone, &ns, &s.additional, ttl));
        goal.tried.clear();
        goal.minimise = goal.minimise.map(|_| 1);
        return None;
    }
    if s.aa || s.authority.iter().any(|rr| rr.rtype() == Rtype::SOA) {
        let answer = std::mem::take(&mut goal.chain);
        return Some(Outcome::Answer {
            rcode,
            answer,
            authority: negative_authority(s.authority),
            additional: Vec::new(),
        });
    }
    lame(goal) // up or sideways, or nothing usable without authority
}

/// A reply to a minimised question: a referral goes down, any other answer means no
/// zone cut at that name (one label more), NXDOMAIN the full name (relaxed).
fn minimised(
    shared: &Shared,
    goal: &mut Goal,
    w: &Waiting,
    s: Scrubbed,
    now: Instant,
) -> Option<Outcome> {
    if s.rcode == OptRcode::from(Rcode::NXDOMAIN) {
        goal.minimise = None;
        return None;
    }
    if s.answer.is_empty() {
        if let Some((zone, ns, ttl)) = referral(&w.zone, &w.qname, &s) {
            if goal.referrals >= shared.config().max_referrals {
                return Some(Outcome::Failed);
            }
            goal.referrals += 1;
            learn_delegation(shared, now, &zone, &s.authority, &s.additional);
            goal.point = Some(point_of(shared, now, zone, &ns, &s.additional, ttl));
            goal.tried.clear();
            goal.minimise = goal.minimise.map(|_| 1);
            return None;
        }
    }
    goal.minimise = goal.minimise.map(|n| n + 1);
    None
}

/// A referral down from `zone` towards `qname`: the child zone, its NS names and TTL.
fn referral(
    zone: &Name<Bytes>,
    qname: &Name<Bytes>,
    s: &Scrubbed,
) -> Option<(Name<Bytes>, Vec<Name<Bytes>>, u32)> {
    if s.authority.iter().any(|rr| rr.rtype() == Rtype::SOA) {
        return None;
    }
    let first = s.authority.iter().find(|rr| rr.rtype() == Rtype::NS)?;
    let child = first.owner().clone();
    if child.label_count() <= zone.label_count()
        || !child.ends_with(zone)
        || !qname.ends_with(&child)
    {
        return None;
    }
    let ns: Vec<Name<Bytes>> = s
        .authority
        .iter()
        .filter(|rr| rr.rtype() == Rtype::NS && rr.owner().name_eq(&child))
        .filter_map(|rr| match rr.data() {
            AllRecordData::Ns(ns) => Some(ns.nsdname().clone()),
            _ => None,
        })
        .collect();
    Some((child, ns, first.ttl().as_secs()))
}

/// Keeps the NS set of `zone` among `records` and the addresses of its names among
/// `glue` (already scrubbed to the bailiwick of the server that sent them).
fn learn_delegation(
    shared: &Shared,
    now: Instant,
    zone: &Name<Bytes>,
    records: &[Rr],
    glue: &[Rr],
) {
    let ns: Vec<&Rr> = records
        .iter()
        .filter(|rr| rr.rtype() == Rtype::NS && rr.owner().name_eq(zone))
        .collect();
    let names: Vec<Name<Bytes>> = ns
        .iter()
        .filter_map(|rr| match rr.data() {
            AllRecordData::Ns(ns) => Some(ns.nsdname().clone()),
            _ => None,
        })
        .collect();
    let Some(ttl) = ns.iter().map(|rr| rr.ttl().as_secs()).min() else {
        return;
    };
    shared.0.delegations.put_zone(now, zone, &names, ttl);
    for rr in glue {
        if !names.iter().any(|n| n.name_eq(rr.owner())) {
            continue;
        }
        let addr = match rr.data() {
            AllRecordData::A(a) => IpAddr::V4(a.addr()),
            AllRecordData::Aaaa(a) => IpAddr::V6(a.addr()),
            _ => continue,
        };
        shared
            .0
            .delegations
            .put_addr(now, rr.owner(), addr, rr.ttl().as_secs());
    }
}

/// The delegation point of a referral: its NS names with the glue and known addresses.
fn point_of(
    shared: &Shared,
    now: Instant,
    zone: Name<Bytes>,
    ns: &[Name<Bytes>],
    glue: &[Rr],
    _ttl: u32,
) -> Point {
    let targets = ns
        .iter()
        .take(shared.config().max_ns_per_delegation)
        .map(|name| {
            let mut addrs = shared.0.delegations.addrs(now, name);
            for rr in glue.iter().filter(|rr| rr.owner().name_eq(name)) {
                let addr = match rr.data() {
                    AllRecordData::A(a) => IpAddr::V4(a.addr()),
                    AllRecordData::Aaaa(a) => IpAddr::V6(a.addr()),
                    _ => continue,
                };
                if !addrs.contains(&addr) {
                    addrs.push(addr);
                }
            }
            Target {
                name: name.clone(),
                addrs,
                fetched: false,
            }
        })
        .collect();
    Point {
        zone,
        targets,
        from_hints: false,
    }
}

/// The authority section of a negative answer: the SOA and the DNSSEC records proving it.
fn negative_authority(authority: Vec<Rr>) -> Vec<Rr> {
    authority
        .into_iter()
        .filter(|rr| rr.rtype() != Rtype::NS)
        .collect()
}

/// Where the answer's chain from `qname` ends: the last name, the CNAME steps taken, and
/// whether the RRset asked for is there (or the chain is the answer).
fn chain_end(qname: &Name<Bytes>, qtype: Rtype, answer: &[Rr]) -> (Name<Bytes>, usize, bool) {
    let mut name = qname.clone();
    for steps in 0..=MAX_CNAME_CHAIN {
        let here = |t: Rtype| {
            answer
                .iter()
                .any(|rr| rr.rtype() == t && rr.owner().name_eq(&name))
        };
        if qtype == Rtype::ANY && answer.iter().any(|rr| rr.owner().name_eq(&name)) || here(qtype) {
            return (name, steps, true);
        }
        let next = answer.iter().find_map(|rr| match rr.data() {
            AllRecordData::Cname(c) if rr.owner().name_eq(&name) => Some(c.cname().clone()),
            _ => None,
        });
        match next {
            Some(target) => name = target,
            None => return (name, steps, false),
        }
    }
    (name, MAX_CNAME_CHAIN + 1, false)
}

/// The last `labels` labels of `name` (its suffix with that many labels, the root one).
fn suffix(name: &Name<Bytes>, labels: usize) -> Name<Bytes> {
    let skip = name.label_count().saturating_sub(labels);
    let mut at = 0;
    let wire = name.as_slice();
    for _ in 0..skip {
        at += 1 + usize::from(wire.get(at).copied().unwrap_or(0));
    }
    Name::from_octets(name.as_octets().slice(at.min(wire.len())..))
        .unwrap_or_else(|_| Name::root_bytes())
}

/// `name` without its first label (the root for the root).
fn parent(name: &Name<Bytes>) -> Name<Bytes> {
    suffix(name, name.label_count().saturating_sub(1).max(1))
}

/// The answer to an RD=0 query the cache could not answer: a referral to the closest
/// delegation known (the root from the hints when nothing is), NOERROR, no AA.
pub(super) fn referral_answer(shared: &Shared, q: &Query<'_>, now: Instant) -> Answer {
    let point = shared
        .0
        .delegations
        .closest(now, q.qname())
        .unwrap_or_else(|| Point::hints(&shared.config().root_hints));
    let mut answer = Answer::new(Rcode::NOERROR.into());
    let ttl = Ttl::from_secs(0);
    for t in &point.targets {
        answer.authority.push(Record::new(
            point.zone.clone(),
            Class::IN,
            ttl,
            AllRecordData::Ns(Ns::new(t.name.clone())),
        ));
        for addr in &t.addrs {
            let data = match addr {
                IpAddr::V4(v4) => AllRecordData::A(A::new(*v4)),
                IpAddr::V6(v6) => AllRecordData::Aaaa(Aaaa::new(*v6)),
            };
            answer
                .additional
                .push(Record::new(t.name.clone(), Class::IN, ttl, data));
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name<Bytes> {
        let n: Name<Vec<u8>> = s.parse().unwrap();
        Name::from_octets(Bytes::from(n.into_octets())).unwrap()
    }

    #[test]
    fn suffixes_and_parents() {
        let n = name("a.b.example.com");
        // Label counts include the root label.
        assert_eq!(suffix(&n, 3).to_string(), "example.com");
        assert_eq!(suffix(&n, 9).to_string(), "a.b.example.com");
        assert!(suffix(&n, 0).is_root());
        assert_eq!(parent(&n).to_string(), "b.example.com");
        assert!(parent(&name("com")).is_root());
    }
}
