//! Delegation knowledge: which servers serve which zone. A [`Point`] is a zone with its NS
//! names and the addresses known for them (Unbound's delegation point, `iter_delegpt.c`);
//! [`Delegations`] keeps the NS sets and addresses learnt from referrals, priming and
//! address sub-queries, shared by every worker, bounded in entries and expiring by TTL
//! (capped by the cache's max TTL). [`Delegations::closest`] finds the deepest zone known
//! to enclose a name (Unbound's `dns_cache_find_delegation`).
//!
//! Parent and child may disagree on a zone's NS set and on its servers' addresses. The
//! parent's NS set (from referrals) is used first, the names only the child gives (in the
//! authority section of its authoritative answers) are kept in reserve; an NS name's
//! addresses from glue and from answers are kept together. A goal whose servers all
//! failed *widens* its point ([`Point::widen`]): the reserve and every address known
//! join, as in Unbound's parent-side last resort (`processLastResort`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::base::iana::{Class, Rcode};
use domain::base::{Name, Record, ToName, Ttl};
use domain::rdata::{Aaaa, AllRecordData, Ns, A};

use super::hints::RootHints;
use crate::cache::rrset::lower;
use crate::resolver::Answer;

/// One name server of a delegation: its name and the addresses known for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub name: Name<Bytes>,
    pub addrs: Vec<IpAddr>,
    /// Whether its addresses were already looked up by a sub-query for this query.
    pub fetched: bool,
}

/// A zone and its servers, as one query uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Point {
    pub zone: Name<Bytes>,
    pub targets: Vec<Target>,
    /// Made from the root hints, not from a primed NS set.
    pub from_hints: bool,
    /// The NS names only the child gives, for the last resort.
    pub reserve: Vec<Target>,
}

impl Point {
    /// The root from the hints.
    pub fn hints(hints: &RootHints) -> Point {
        Point {
            zone: Name::root_bytes(),
            targets: hints
                .servers()
                .iter()
                .map(|s| Target {
                    name: s.name.clone(),
                    addrs: s.addrs.clone(),
                    fetched: true,
                })
                .collect(),
            from_hints: true,
            reserve: Vec::new(),
        }
    }

    /// The last resort: the reserve's names join the targets and every address `known`
    /// for a target (glue from the parent, answers from the child) is added. Whether
    /// anything new came (so widening again and again ends).
    pub fn widen(&mut self, known: impl Fn(&Name<Bytes>) -> Vec<IpAddr>) -> bool {
        let mut grew = !self.reserve.is_empty();
        self.targets.append(&mut self.reserve);
        for t in &mut self.targets {
            for a in known(&t.name) {
                if !t.addrs.contains(&a) {
                    t.addrs.push(a);
                    grew = true;
                }
            }
        }
        grew
    }

    /// Adds `addrs` to the target `name`, if it is one.
    pub fn learn(&mut self, name: &Name<Bytes>, addrs: &[IpAddr]) {
        for t in self.targets.iter_mut().filter(|t| t.name.name_eq(name)) {
            for a in addrs {
                if !t.addrs.contains(a) {
                    t.addrs.push(*a);
                }
            }
        }
    }
}

/// Addresses kept per NS name.
const MAX_ADDRS_PER_NAME: usize = 8;

impl Point {
    /// The point as a referral answer (an RD=0 query's, Unbound's
    /// `answer_norec_from_cache`): NOERROR, no AA, its NS set in authority and the
    /// addresses known in additional, TTL 0 (the recursor keeps no TTL per record here).
    pub fn referral(&self) -> Answer {
        let mut answer = Answer::new(Rcode::NOERROR.into());
        let ttl = Ttl::from_secs(0);
        for t in &self.targets {
            let ns = AllRecordData::Ns(Ns::new(t.name.clone()));
            answer
                .authority
                .push(Record::new(self.zone.clone(), Class::IN, ttl, ns));
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
}

struct ZoneEntry {
    zone: Name<Bytes>,
    /// The parent's NS set.
    ns: Vec<Name<Bytes>>,
    /// The names only the child gives.
    reserve: Vec<Name<Bytes>>,
    expires: Instant,
}

struct AddrEntry {
    addrs: Vec<(IpAddr, Instant)>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Zone(Box<[u8]>),
    Addrs(Box<[u8]>),
}

#[derive(Default)]
struct Tables {
    zones: HashMap<Box<[u8]>, ZoneEntry>,
    addrs: HashMap<Box<[u8]>, AddrEntry>,
    /// Keys in creation order, for eviction.
    order: VecDeque<Key>,
}

/// The shared delegation store.
pub(crate) struct Delegations {
    tables: Mutex<Tables>,
    max_entries: usize,
    max_ttl: Duration,
    max_ns: usize,
}

impl Delegations {
    pub fn new(max_entries: usize, max_ttl: Duration, max_ns: usize) -> Delegations {
        Delegations {
            tables: Mutex::new(Tables::default()),
            max_entries: max_entries.max(1),
            max_ttl,
            max_ns,
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A poisoned lock only means another worker panicked mid-update of plain data.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expiry(&self, now: Instant, ttl: u32) -> Instant {
        now + Duration::from_secs(u64::from(ttl)).min(self.max_ttl)
    }

    /// Keeps `zone`'s NS set from a referral (the parent's; at most `max_ns` names) for
    /// `ttl` seconds.
    pub fn put_zone(&self, now: Instant, zone: &Name<Bytes>, ns: &[Name<Bytes>], ttl: u32) {
        let ns: Vec<Name<Bytes>> = ns.iter().take(self.max_ns).cloned().collect();
        if ns.is_empty() {
            return;
        }
        let entry = ZoneEntry {
            zone: zone.clone(),
            ns,
            reserve: Vec::new(),
            expires: self.expiry(now, ttl),
        };
        let key: Box<[u8]> = lower(zone).into();
        let mut t = self.tables();
        if !t.zones.contains_key(&key) {
            make_room(&mut t, self.max_entries);
            t.order.push_back(Key::Zone(key.clone()));
        }
        t.zones.insert(key, entry);
    }

    /// Notes the NS names the child gives for `zone` (in its authoritative answers) that
    /// the parent's set lacks: kept in reserve, for when the parent's servers all fail.
    /// Never in place of the parent's set, so an answer cannot take a delegation over;
    /// only for a live delegation, so the child never makes it last longer.
    pub fn put_child_ns(&self, now: Instant, zone: &Name<Bytes>, ns: &[Name<Bytes>]) {
        let mut t = self.tables();
        let Some(entry) = t.zones.get_mut(&*lower(zone)).filter(|z| z.expires > now) else {
            return;
        };
        for name in ns {
            let known = entry.ns.iter().chain(&entry.reserve);
            if entry.reserve.len() < self.max_ns && !known.into_iter().any(|n| n.name_eq(name)) {
                entry.reserve.push(name.clone());
            }
        }
    }

    /// Keeps the address `addr` of `name` for `ttl` seconds.
    pub fn put_addr(&self, now: Instant, name: &Name<Bytes>, addr: IpAddr, ttl: u32) {
        let expires = self.expiry(now, ttl);
        let key: Box<[u8]> = lower(name).into();
        let mut t = self.tables();
        if !t.addrs.contains_key(&key) {
            make_room(&mut t, self.max_entries);
            t.order.push_back(Key::Addrs(key.clone()));
        }
        let entry = t
            .addrs
            .entry(key)
            .or_insert(AddrEntry { addrs: Vec::new() });
        entry.addrs.retain(|(_, until)| *until > now);
        let held = entry.addrs.len();
        match entry.addrs.iter_mut().find(|(a, _)| *a == addr) {
            Some(known) => known.1 = expires,
            // A handful per name is plenty; a flood of addresses cannot grow an entry.
            None if held < MAX_ADDRS_PER_NAME => entry.addrs.push((addr, expires)),
            None => {}
        }
    }

    /// The live addresses known for `name`.
    pub fn addrs(&self, now: Instant, name: &Name<Bytes>) -> Vec<IpAddr> {
        let t = self.tables();
        addrs_of(&t, now, &lower(name))
    }

    /// The deepest live zone known at or above `name` (or `None`: only the root hints),
    /// with the addresses known for its NS names.
    pub fn closest(&self, now: Instant, name: &Name<Bytes>) -> Option<Point> {
        let t = self.tables();
        let wire = lower(name);
        let mut at = 0;
        loop {
            let suffix = &wire[at..];
            if let Some(z) = t.zones.get(suffix).filter(|z| z.expires > now) {
                let targets = |names: &[Name<Bytes>]| -> Vec<Target> {
                    names
                        .iter()
                        .map(|ns| Target {
                            name: ns.clone(),
                            addrs: addrs_of(&t, now, &lower(ns)),
                            fetched: false,
                        })
                        .collect()
                };
                return Some(Point {
                    zone: z.zone.clone(),
                    targets: targets(&z.ns),
                    from_hints: false,
                    reserve: targets(&z.reserve),
                });
            }
            let len = usize::from(*suffix.first()?);
            if len == 0 {
                return None;
            }
            at += 1 + len;
        }
    }

    /// Zone and address entries held.
    pub fn len(&self) -> usize {
        let t = self.tables();
        t.zones.len() + t.addrs.len()
    }
}

fn addrs_of(t: &Tables, now: Instant, key: &[u8]) -> Vec<IpAddr> {
    t.addrs.get(key).map_or_else(Vec::new, |e| {
        e.addrs
            .iter()
            .filter(|(_, until)| *until > now)
            .map(|(a, _)| *a)
            .collect()
    })
}

/// Evicts the oldest entries until one more fits.
fn make_room(t: &mut Tables, max: usize) {
    while t.zones.len() + t.addrs.len() >= max {
        let Some(old) = t.order.pop_front() else {
            break;
        };
        match old {
            Key::Zone(k) => t.zones.remove(&k).map(|_| ()),
            Key::Addrs(k) => t.addrs.remove(&k).map(|_| ()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name<Bytes> {
        s.parse().unwrap()
    }

    #[test]
    fn closest_enclosing_zone_bounded_and_expiring() {
        #[allow(clippy::disallowed_methods)] // a test: any start will do
        let t0 = Instant::now();
        let d = Delegations::new(3, Duration::from_secs(100), 2);
        d.put_zone(
            t0,
            &name("com"),
            &[name("a.gtld"), name("b.gtld"), name("c.gtld")],
            50,
        );
        d.put_addr(t0, &name("A.gtld"), "192.0.2.1".parse().unwrap(), 500);
        let p = d.closest(t0, &name("www.Example.COM")).unwrap();
        assert_eq!(p.zone.to_string(), "com");
        assert_eq!(p.targets.len(), 2, "at most max_ns names");
        assert_eq!(p.targets[0].addrs, ["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert!(d.closest(t0, &name("org")).is_none());
        let later = t0 + Duration::from_secs(51);
        assert!(d.closest(later, &name("com")).is_none(), "expired by TTL");
        assert!(d
            .addrs(t0 + Duration::from_secs(101), &name("a.gtld"))
            .is_empty());
        d.put_zone(t0, &name("net"), &[name("x")], 50);
        d.put_zone(t0, &name("org"), &[name("y")], 50);
        assert_eq!(d.len(), 3);
        assert!(
            d.closest(t0, &name("com")).is_none(),
            "the oldest went first"
        );
    }
}
