//! Judging an authoritative server's reply to one exchange (Unbound's
//! `response_type_from_server` as the model): after scrubbing it to the zone asked, an
//! answer (whose chain may lead elsewhere), NXDOMAIN or NODATA with the SOA, a referral
//! down (kept, with its in-bailiwick glue), a step of QNAME minimisation, or a lame server
//! to skip (an error rcode, a referral up or sideways, a recursive server's answer: RA
//! without AA).

use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;
use domain::base::iana::{Class, OptRcode, Rcode, Rtype};
use domain::base::{Message, Name, ToName};
use domain::rdata::AllRecordData;

use super::delegation::{Point, Target};
use super::iterate::{parent, Goal, Outcome, Waiting};
use super::Shared;
use crate::cache::rrset::lower;
use crate::record::Rr;
use crate::scrub::{scrub, Scrubbed};
use crate::zone::MAX_CNAME_CHAIN;

/// Judges a reply to the goal on top: `Some` when it ends the goal, `None` when the goal
/// goes on (a referral, a server to skip, a minimisation step). A recursive server's
/// reply (RA without AA), and an empty authoritative one, is put aside unless it is the
/// `last_resort`: it is used only when no other server is left (as Unbound does).
pub(super) fn judge(
    shared: &Shared,
    goal: &mut Goal,
    w: &Waiting,
    reply: &Message<Bytes>,
    now: Instant,
    last_resort: bool,
) -> Option<Outcome> {
    let infra = &shared.0.infra;
    let zone_key = lower(&w.zone);
    if !last_resort {
        let rtt = now.saturating_duration_since(w.sent_at);
        infra.replied(now, w.server, &zone_key, rtt);
        if w.edns && reply.opt().is_none() {
            infra.no_edns(now, w.server, &zone_key);
        }
    }
    let rcode = reply.header().rcode();
    let lame = |goal: &mut Goal| {
        infra.lame(now, w.server, &zone_key);
        goal.tried.push(w.server);
        None
    };
    // YXDOMAIN with a DNAME: the substituted name would be too long (RFC 6672 section
    // 2.2), an answer for the client like NXDOMAIN.
    let yxdomain = rcode == Rcode::YXDOMAIN && has_dname(reply);
    if rcode != Rcode::NOERROR && rcode != Rcode::NXDOMAIN && !yxdomain {
        if w.minimised {
            goal.minimise = None; // relaxed: the full name instead
            return None;
        }
        if rcode == Rcode::YXDOMAIN {
            // Without a DNAME it is no answer, but says nothing of the server's other
            // names: skipped for this question only.
            goal.tried.push(w.server);
            return None;
        }
        return lame(goal);
    }
    // Truncated even over TCP (a UDP one was retried over TCP): incomplete, not used.
    if reply.header().tc() {
        goal.tried.push(w.server);
        return None;
    }
    let Some(s) = scrub(&w.qname, w.qtype, Class::IN, reply, &w.zone) else {
        goal.tried.push(w.server);
        return None;
    };
    // A recursive server's reply (RA without AA) is no authoritative data (Unbound's
    // REC_LAME). Without RA, data without AA is taken, as Unbound takes it.
    if reply.header().ra() && !reply.header().aa() && !last_resort {
        infra.rec_lame(now, w.server, &zone_key);
        goal.tried.push(w.server);
        goal.last_resort = Some((w.clone(), reply.clone()));
        return None;
    }
    if s.aa && referral(&w.zone, &w.qname, &s).is_none() {
        learn_child_ns(shared, now, &w.zone, &s.authority);
    }
    if w.minimised {
        return minimised(shared, goal, w, s, now);
    }
    // DS lives in the parent zone. Asked of a zone above the parent, a server that also
    // serves the name's own zone answers from there: the cut above the name is looked
    // for first by asking for the parent name (once).
    if w.qtype == Rtype::DS
        && rcode == Rcode::NOERROR
        && goal.minimised == 0
        && above(&w.zone, &parent(&w.qname))
        && referral(&w.zone, &w.qname, &s).is_none()
    {
        goal.minimise = Some(1);
        return None;
    }
    if rcode == Rcode::NXDOMAIN || yxdomain {
        let mut answer = std::mem::take(&mut goal.chain);
        answer.extend(s.answer);
        return Some(Outcome::Answer {
            rcode,
            answer,
            authority: s.authority,
            additional: Vec::new(),
        });
    }
    if !s.answer.is_empty() {
        let (last, steps, complete) = chain_end(&w.qname, w.qtype, &s.answer);
        goal.chain.extend(s.answer);
        goal.chain_steps += steps;
        if complete {
            return Some(Outcome::Answer {
                rcode,
                answer: std::mem::take(&mut goal.chain),
                authority: s.authority,
                additional: s.additional,
            });
        }
        if goal.chain_steps > MAX_CNAME_CHAIN {
            return Some(Outcome::Failed);
        }
        goal.restart(last);
        return None;
    }
    if let Some((zone, ns)) = referral(&w.zone, &w.qname, &s) {
        return descend(shared, goal, zone, &ns, &s, now);
    }
    let soa = s.authority.iter().any(|rr| rr.rtype() == Rtype::SOA);
    // An empty authoritative reply (no SOA, nothing at all) is weak proof of NODATA:
    // another server is asked, this reply kept for when none is left (as Unbound
    // ignores empty responses while other servers remain).
    if s.aa && s.authority.is_empty() && !last_resort {
        goal.tried.push(w.server);
        // Emptied by the scrub of an NS set above its zone: an upward referral with AA,
        // lame for this question (Unbound marks it lame for this type only; lameness
        // here is per zone, so it is skipped for this question and not remembered).
        if refers_up(reply, &w.zone) {
            return None;
        }
        goal.last_resort
            .get_or_insert_with(|| (w.clone(), reply.clone()));
        return None;
    }
    if soa || s.aa || last_resort {
        let answer = std::mem::take(&mut goal.chain);
        return Some(Outcome::Answer {
            rcode,
            answer,
            authority: s.authority,
            additional: s.additional,
        });
    }
    // A referral up or sideways (to the zone itself, without AA), or nothing usable.
    lame(goal)
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
        if let Some((zone, ns)) = referral(&w.zone, &w.qname, &s) {
            return descend(shared, goal, zone, &ns, &s, now);
        }
    }
    goal.minimise = goal.minimise.map(|n| n + 1);
    None
}

/// Follows a referral down to `zone` (kept for later queries too), within the limit.
fn descend(
    shared: &Shared,
    goal: &mut Goal,
    zone: Name<Bytes>,
    ns: &[Name<Bytes>],
    s: &Scrubbed,
    now: Instant,
) -> Option<Outcome> {
    if goal.referrals >= shared.config().max_referrals {
        return Some(Outcome::Failed);
    }
    goal.referrals += 1;
    learn_delegation(shared, now, &zone, &s.authority, &s.additional);
    goal.point = Some(point_of(shared, now, zone, ns, &s.additional));
    goal.tried.clear();
    goal.minimise = goal.minimise.map(|_| 1);
    None
}

/// A referral down from `zone` towards `qname`: the child zone and its NS names.
fn referral(
    zone: &Name<Bytes>,
    qname: &Name<Bytes>,
    s: &Scrubbed,
) -> Option<(Name<Bytes>, Vec<Name<Bytes>>)> {
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
    Some((child, ns))
}

/// Keeps the NS set of `zone` among `records` and the addresses of its names among
/// `glue` (already scrubbed to the bailiwick of the server that sent them).
pub(super) fn learn_delegation(
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

/// Notes the zone's own NS set, as its authoritative answer gives it in authority.
fn learn_child_ns(shared: &Shared, now: Instant, zone: &Name<Bytes>, authority: &[Rr]) {
    let ns: Vec<Name<Bytes>> = authority
        .iter()
        .filter(|rr| rr.owner().name_eq(zone))
        .filter_map(|rr| match rr.data() {
            AllRecordData::Ns(ns) => Some(ns.nsdname().clone()),
            _ => None,
        })
        .collect();
    shared.0.delegations.put_child_ns(now, zone, &ns);
}

/// The delegation point of a referral: its NS names with the glue and known addresses.
fn point_of(
    shared: &Shared,
    now: Instant,
    zone: Name<Bytes>,
    ns: &[Name<Bytes>],
    glue: &[Rr],
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
        reserve: Vec::new(),
    }
}

/// Whether `zone` is a proper ancestor of `name`.
fn above(zone: &Name<Bytes>, name: &Name<Bytes>) -> bool {
    name.ends_with(zone) && !name.name_eq(zone)
}

/// Whether the authority section holds an NS set of a zone above `zone`.
fn refers_up(reply: &Message<Bytes>, zone: &Name<Bytes>) -> bool {
    let Ok(authority) = reply.authority() else {
        return false;
    };
    authority.flatten().any(|rr| {
        rr.rtype() == Rtype::NS && zone.ends_with(&rr.owner()) && !zone.name_eq(&rr.owner())
    })
}

/// Whether the answer section holds a DNAME.
fn has_dname(reply: &Message<Bytes>) -> bool {
    let Ok(answer) = reply.answer() else {
        return false;
    };
    answer.flatten().any(|rr| rr.rtype() == Rtype::DNAME)
}

/// Where the answer's chain from `qname` ends: the last name, the CNAME steps taken, and
/// whether the RRset asked for is there (or the chain is the answer). A chain that loops
/// within the answer (a DNAME onto itself synthesises `x CNAME x`) is the answer as it
/// stands, as Unbound gives it: there is nothing further to ask.
fn chain_end(qname: &Name<Bytes>, qtype: Rtype, answer: &[Rr]) -> (Name<Bytes>, usize, bool) {
    let mut name = qname.clone();
    let mut seen: Vec<Name<Bytes>> = Vec::new();
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
            Some(target) if target.name_eq(&name) || seen.iter().any(|n| n.name_eq(&target)) => {
                return (target, steps + 1, true);
            }
            Some(target) => seen.push(std::mem::replace(&mut name, target)),
            None => return (name, steps, false),
        }
    }
    (name, MAX_CNAME_CHAIN + 1, false)
}
