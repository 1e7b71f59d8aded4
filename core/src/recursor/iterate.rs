//! One client query's resolution: a stack of goals (the client's question at the bottom,
//! priming and the addresses of glueless NS names above it), each walking down from the
//! closest known delegation, one exchange at a time. The state lives in the query's
//! [`Context::state`] slot and is freed with it.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{Message, Name};
use domain::rdata::AllRecordData;

use super::delegation::{Point, Target};
use super::judge::{judge, learn_delegation};
use super::select::choose;
use super::Shared;
use crate::cache::rrset::lower;
use crate::record::Rr;
use crate::resolver::{Answer, Context, Exchange, ExchangeFailure, Exchanged, Query, Resolution};

/// Steps of the state machine per call, a guard beyond the limits that bound it anyway.
const MAX_STEPS: usize = 256;

/// Times one server may stay silent to one goal before it is skipped for it. Each timeout
/// doubles its timeout in the infra cache, so a server that answered fast once and then
/// lost one packet (a 50 ms timeout) is asked again, more patiently, while the budget and
/// `max_sends` allow: Unbound retries its servers the same way (outbound-msg-retry).
pub(super) const MAX_TIMEOUTS_PER_SERVER: u8 = 3;

/// What a goal is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// The client's question.
    Client,
    /// The root's NS set, asked of a root server from the hints.
    Priming,
    /// Addresses of this NS name, for the goal below.
    Address(Name<Bytes>),
}

/// A name and type to resolve.
pub(super) struct Goal {
    pub(super) purpose: Purpose,
    pub(super) qname: Name<Bytes>,
    pub(super) qtype: Rtype,
    /// The delegation being asked; `None`: find the closest known one.
    pub(super) point: Option<Point>,
    /// Servers that failed this goal (lame, unusable reply, silent too often).
    pub(super) tried: Vec<SocketAddr>,
    /// Servers silent to this goal, and how many times ([`MAX_TIMEOUTS_PER_SERVER`]).
    pub(super) silent: Vec<(SocketAddr, u8)>,
    pub(super) referrals: u32,
    /// Labels below the zone asked in the minimised question; `None`: the full name.
    pub(super) minimise: Option<usize>,
    /// Minimised questions asked.
    pub(super) minimised: u32,
    /// The CNAME/DNAME chain so far (the client gets it all).
    pub(super) chain: Vec<Rr>,
    pub(super) chain_steps: usize,
    /// A recursive server's reply (RA without AA) or an empty authoritative one, used
    /// when no other server is left.
    pub(super) last_resort: Option<(Waiting, Message<Bytes>)>,
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
            silent: Vec::new(),
            referrals: 0,
            minimise,
            minimised: 0,
            chain: Vec::new(),
            chain_steps: 0,
            last_resort: None,
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

    /// `server` was silent (again): skipped for this goal once it has been silent
    /// [`MAX_TIMEOUTS_PER_SERVER`] times.
    fn silent_once_more(&mut self, server: SocketAddr) {
        let count = match self.silent.iter_mut().find(|(s, _)| *s == server) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.silent.push((server, 1));
                1
            }
        };
        if count >= MAX_TIMEOUTS_PER_SERVER {
            self.tried.push(server);
        }
    }

    /// Starts the goal over at `qname` (a CNAME/DNAME target).
    pub(super) fn restart(&mut self, qname: Name<Bytes>) {
        self.qname = qname;
        self.point = None;
        self.tried.clear();
        self.silent.clear();
        self.referrals = 0;
        self.minimise = self.minimise.map(|_| 1);
    }
}

/// The exchange in flight.
#[derive(Clone)]
pub(super) struct Waiting {
    pub(super) server: SocketAddr,
    pub(super) zone: Name<Bytes>,
    pub(super) qname: Name<Bytes>,
    pub(super) qtype: Rtype,
    pub(super) minimised: bool,
    pub(super) edns: bool,
    pub(super) sent_at: Instant,
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
    /// Where the resolution is counted once it ends; `None` once counted. A resolution the
    /// server ends (the query's budget, a shutdown) is counted when its state is dropped.
    uncounted: Option<Shared>,
}

impl Iteration {
    /// Counts the resolution in the shared counters, once.
    fn count(&mut self) {
        if let Some(shared) = self.uncounted.take() {
            shared.record(self.sent, self.deepest);
        }
    }
}

impl Drop for Iteration {
    fn drop(&mut self) {
        self.count();
    }
}

/// How a goal ended.
pub(super) enum Outcome {
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
        waiting: None,
        sent: 0,
        subqueries: 0,
        deepest: 0,
        primed: false,
        dnssec_ok: q.dnssec_ok(),
        random,
        uncounted: Some(shared.clone()),
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
        // Silent, or unreachable (no route, a broken TCP stream): its timeout doubles.
        // Silent to a minimised question, it is asked the full name (relaxed: some
        // servers drop questions they find odd); silent to that too, it is skipped.
        Exchanged::Failed(ExchangeFailure::TimedOut | ExchangeFailure::AllFailed) => {
            shared.0.infra.timed_out(now, w.server, &zone_key);
            if w.minimised {
                goal.minimise = None;
            } else {
                goal.silent_once_more(w.server);
            }
        }
        Exchanged::Failed(_) => goal.tried.push(w.server),
        Exchanged::Reply(reply) => {
            if let Some(outcome) = judge(shared, goal, &w, &reply, now, false) {
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
                Some(mut point) => {
                    if point.zone.is_root() {
                        // A priming reply without glue: the hints know the addresses.
                        for hint in config.root_hints.servers() {
                            point.learn(&hint.name, &hint.addrs);
                        }
                    }
                    goal.point = Some(point);
                }
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
        // Nothing else left: the child's other servers and every address known.
        let Some(goal) = it.goals.last_mut() else {
            continue;
        };
        let delegations = &shared.0.delegations;
        if let Some(point) = goal.point.as_mut() {
            if point.widen(|name| delegations.addrs(now, name)) {
                continue;
            }
        }
        // Then a recursive server's reply, if one came.
        let outcome = match goal.last_resort.take() {
            Some((w, reply)) => match judge(shared, goal, &w, &reply, now, true) {
                Some(outcome) => outcome,
                None => continue,
            },
            None => Outcome::Failed,
        };
        if let Some(done) = finish(shared, it, outcome, now) {
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
    // A name with no IPv4 address known: glueless, or with only IPv6 glue (all of which
    // failed, or we would not be here), so its A record is looked up.
    let target: &mut Target = point.targets.iter_mut().find(|t| {
        !t.fetched && !t.addrs.iter().any(IpAddr::is_ipv4) && !on_stack.contains(&lower(&t.name))
    })?;
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
    it.count();
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
        it.count();
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
pub(super) fn parent(name: &Name<Bytes>) -> Name<Bytes> {
    suffix(name, name.label_count().saturating_sub(1).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name<Bytes> {
        s.parse().unwrap()
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
