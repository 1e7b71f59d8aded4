//! Authoritative answers from loaded zones (RFC 1034 4.3.2, RFC 2308, RFC 4592).

use std::sync::Arc;

use bytes::Bytes;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{Name, Record};
use domain::rdata::{AllRecordData, Cname};

use super::index::{Key, Node, Zone};
use crate::fasthash::FastMap;
use crate::record::Rr;
use crate::resolver::Answer;

/// Most CNAMEs followed for one query (a CNAME synthesised from a DNAME counts as one).
pub const MAX_CNAME_CHAIN: usize = 8;

/// The zones served, indexed by origin.
#[derive(Debug, Default)]
pub struct ZoneSet {
    zones: Vec<Arc<Zone>>,
    by_origin: FastMap<Box<[u8]>, usize>,
    /// Fewest and most labels of any origin, to bound the search for a name's zone.
    min_labels: usize,
    max_labels: usize,
    /// Transfers whose records were built (a refused one must build none: it is cheap).
    transfers_built: std::sync::atomic::AtomicU64,
    /// IXFR histories by lowercase origin (`ixfr.rs`).
    pub(super) histories: std::collections::HashMap<Box<[u8]>, Arc<super::ixfr::History>>,
}

/// What one zone says about one name.
enum Lookup<'z> {
    /// The RRset(s) asked for, with the owner to put on them.
    Found(&'z Node),
    /// A CNAME at the name, the type asked for being absent.
    Cname(&'z Rr),
    /// A DNAME at a strict ancestor of the name (RFC 6672 3.2), and that ancestor's
    /// number of labels.
    Dname(&'z Rr, usize),
    /// The name exists, the type does not (or the name is an empty non-terminal).
    NoData,
    NxDomain,
    /// The name is at or below a zone cut: the cut's node.
    Referral(&'z Node),
}

impl ZoneSet {
    /// The zones served; two zones with the same origin are an error.
    pub fn new(zones: Vec<Zone>) -> Result<ZoneSet, String> {
        ZoneSet::from_shared(zones.into_iter().map(Arc::new).collect())
    }

    /// Like [`ZoneSet::new`], with zones that may also be in other sets (a reload keeps
    /// the zones whose files failed to load, and shares them with the new set).
    pub fn from_shared(zones: Vec<Arc<Zone>>) -> Result<ZoneSet, String> {
        let mut set = ZoneSet {
            min_labels: usize::MAX,
            ..ZoneSet::default()
        };
        for zone in zones {
            let key = Key::new(&zone.origin);
            if let Some(&other) = set.by_origin.get(key.full()) {
                return Err(format!(
                    "{} and {} both serve the zone {}",
                    set.zones[other].source,
                    zone.source,
                    zone.origin.fmt_with_dot()
                ));
            }
            set.min_labels = set.min_labels.min(key.labels());
            set.max_labels = set.max_labels.max(key.labels());
            set.by_origin.insert(key.full().into(), set.zones.len());
            set.zones.push(zone);
        }
        Ok(set)
    }

    /// The zones, in the order given.
    pub fn zones(&self) -> &[Arc<Zone>] {
        &self.zones
    }

    /// Whether there is no zone.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// The most specific served zone that contains the name.
    fn zone_for(&self, key: &Key) -> Option<&Zone> {
        if self.zones.is_empty() || key.labels() < self.min_labels {
            return None;
        }
        let top = key.labels().min(self.max_labels);
        (self.min_labels..=top)
            .rev()
            .find_map(|keep| self.by_origin.get(key.suffix(keep)))
            .map(|&i| &*self.zones[i])
    }

    /// The zone whose apex is exactly this name.
    pub fn zone_at(&self, name: &Name<Bytes>) -> Option<&Zone> {
        let key = Key::new(name);
        self.by_origin.get(key.full()).map(|&i| &*self.zones[i])
    }

    /// How many transfers had their records built (cloned) so far.
    pub fn transfers_built(&self) -> u64 {
        self.transfers_built
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a served zone contains the name.
    pub fn serves(&self, name: &Name<Bytes>) -> bool {
        self.zone_for(&Key::new(name)).is_some()
    }

    /// The authoritative answer for a class IN question, or `None` when the name is
    /// outside every served zone. `qname` is used as asked for answer owners.
    ///
    /// ANY is answered with every RRset at the name (this is the served data itself,
    /// so there is no amplification worry beyond what TCP and truncation already limit).
    pub fn answer(&self, qname: &Name<Bytes>, qtype: Rtype) -> Option<Answer> {
        let mut key = Key::new(qname);
        let mut zone = self.zone_for(&key)?;
        let mut answer = Answer::new(Rcode::NOERROR.into());
        answer.authoritative = true;
        let mut name = qname.clone();
        let mut visited: Vec<Name<Bytes>> = Vec::new();
        for step in 0..=MAX_CNAME_CHAIN {
            let found = zone.lookup(&key, qtype);
            match found {
                Lookup::Found(node) => {
                    for (rtype, rrs) in &node.rrsets {
                        if qtype == Rtype::ANY || *rtype == qtype {
                            answer
                                .answer
                                .extend(rrs.iter().map(|rr| with_owner(rr, &name)));
                        }
                    }
                    break;
                }
                Lookup::Cname(_) | Lookup::Dname(..) => {
                    let target = match found {
                        Lookup::Cname(rr) => {
                            answer.answer.push(with_owner(rr, &name));
                            let AllRecordData::Cname(c) = rr.data() else {
                                break;
                            };
                            c.cname().clone()
                        }
                        Lookup::Dname(rr, keep) => {
                            let suffix_len = key.suffix(keep).len();
                            // The owner as asked, as NSD writes it.
                            let owner =
                                name.as_octets().slice(name.as_slice().len() - suffix_len..);
                            match Name::from_octets(owner) {
                                Ok(owner) => answer.answer.push(with_owner(rr, &owner)),
                                Err(_) => answer.answer.push(rr.clone()),
                            }
                            match synthesise(rr, &name, suffix_len) {
                                Some(cname) => {
                                    let target = match cname.data() {
                                        AllRecordData::Cname(c) => c.cname().clone(),
                                        _ => break,
                                    };
                                    answer.answer.push(cname);
                                    if qtype == Rtype::CNAME {
                                        // The synthesised CNAME is the answer asked for
                                        // (RFC 1034 4.3.2 step 3a), as NSD answers.
                                        break;
                                    }
                                    if target.ends_with(rr.owner()) {
                                        // Into its own subtree: every step would grow the
                                        // name by the same labels. Stop, as NSD does.
                                        break;
                                    }
                                    target
                                }
                                None => {
                                    // RFC 6672 2.2: the result would be too long.
                                    answer.rcode = Rcode::YXDOMAIN.into();
                                    break;
                                }
                            }
                        }
                        _ => break,
                    };
                    visited.push(name);
                    if step == MAX_CNAME_CHAIN || visited.iter().any(|v| v == &target) {
                        break; // too long, or a loop: the client sees the chain so far
                    }
                    let target_key = Key::new(&target);
                    match self.zone_for(&target_key) {
                        Some(z) => {
                            zone = z;
                            key = target_key;
                            name = target;
                        }
                        None => break, // outside our zones: the client follows it
                    }
                }
                Lookup::NoData => {
                    answer.authority.push(zone.negative_soa.clone());
                    break;
                }
                Lookup::NxDomain => {
                    answer.rcode = Rcode::NXDOMAIN.into();
                    answer.authority.push(zone.negative_soa.clone());
                    break;
                }
                Lookup::Referral(cut) => {
                    if step == 0 {
                        answer.authoritative = false;
                    }
                    if let Some(ns) = cut.rrset(Rtype::NS) {
                        answer.authority.extend(ns.iter().cloned());
                        for rr in ns {
                            if let AllRecordData::Ns(n) = rr.data() {
                                // Glue lives below the cut: look in the zone's raw data.
                                zone.push_addresses(n.nsdname(), &mut answer.additional);
                            }
                        }
                    }
                    break;
                }
            }
        }
        self.additional(&mut answer);
        Some(answer)
    }

    /// In-zone addresses of MX, NS, SRV, SVCB and HTTPS targets in the answer section.
    fn additional(&self, answer: &mut Answer) {
        for i in 0..answer.answer.len() {
            let target = match answer.answer[i].data() {
                AllRecordData::Mx(mx) => mx.exchange(),
                AllRecordData::Ns(ns) => ns.nsdname(),
                AllRecordData::Srv(srv) => srv.target(),
                // RFC 9460 4.1: the addresses of SVCB and HTTPS targets in the zone, as Knot
                // adds them ("." names the owner itself, whose addresses the client asks
                // for anyway).
                AllRecordData::Svcb(svcb) if !svcb.target().is_root() => svcb.target(),
                AllRecordData::Https(https) if !https.target().is_root() => https.target(),
                _ => continue,
            };
            let key = Key::new(target);
            if let Some(zone) = self.zone_for(&key) {
                let target = target.clone();
                zone.push_addresses(&target, &mut answer.additional);
            }
        }
    }

    /// The records of a zone transfer of the zone at `apex`: SOA, every other record,
    /// SOA again. `None` when no zone has that apex.
    pub fn transfer(&self, apex: &Name<Bytes>) -> Option<Vec<Rr>> {
        let zone = self.zone_at(apex)?;
        self.transfers_built
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut out = Vec::with_capacity(zone.records.len() + 2);
        out.push(zone.soa.clone());
        out.extend(zone.records.iter().cloned());
        out.push(zone.soa.clone());
        Some(out)
    }
}

impl Zone {
    /// RFC 1034 4.3.2 step 3 within this zone, for a name at or below its origin.
    fn lookup(&self, key: &Key, qtype: Rtype) -> Lookup<'_> {
        let mut node = match self.node(key.suffix(self.origin_labels)) {
            Some(apex) => apex,
            None => return Lookup::NxDomain,
        };
        // Walk down from the apex: a cut on the way refers; a DNAME above the name
        // redirects it; a missing name stops the walk.
        for keep in self.origin_labels + 1..=key.labels() {
            if let Some(dname) = node.rrset(Rtype::DNAME).and_then(|d| d.first()) {
                return Lookup::Dname(dname, keep - 1);
            }
            match self.node(key.suffix(keep)) {
                Some(next) => {
                    node = next;
                    // At the cut itself, DS belongs to the parent (RFC 4035 3.1.4.1).
                    if node.cut && !(keep == key.labels() && qtype == Rtype::DS) {
                        return Lookup::Referral(node);
                    }
                }
                None => {
                    // `keep - 1` labels: the closest encloser. Its wildcard, if any, answers.
                    let mut buf = [0u8; 257];
                    let wildcard = key.wildcard(keep - 1, &mut buf);
                    return match self.node(wildcard) {
                        Some(w) => select(w, qtype),
                        None => Lookup::NxDomain,
                    };
                }
            }
        }
        select(node, qtype)
    }

    /// The A and AAAA records at `name` (no wildcards), once each.
    fn push_addresses(&self, name: &Name<Bytes>, out: &mut Vec<Rr>) {
        if !name.ends_with(&self.origin) {
            return;
        }
        let key = Key::new(name);
        let Some(node) = self.node(key.full()) else {
            return;
        };
        for rtype in [Rtype::A, Rtype::AAAA] {
            for rr in node.rrset(rtype).unwrap_or_default() {
                if !out
                    .iter()
                    .any(|o| o.owner() == rr.owner() && o.data() == rr.data())
                {
                    out.push(rr.clone());
                }
            }
        }
    }
}

/// Exact-match processing at a node (or at the wildcard standing in for the name).
fn select(node: &Node, qtype: Rtype) -> Lookup<'_> {
    if node.is_empty() {
        return Lookup::NoData;
    }
    if qtype == Rtype::ANY || node.rrset(qtype).is_some() {
        return Lookup::Found(node);
    }
    match node.rrset(Rtype::CNAME).and_then(|c| c.first()) {
        Some(cname) => Lookup::Cname(cname),
        None => Lookup::NoData,
    }
}

/// The CNAME a DNAME stands for at `name` (RFC 6672 3.2): `name` with its last
/// `suffix_len` wire octets (the DNAME owner) replaced by the DNAME target, with the
/// DNAME's TTL. `None` when the result would be longer than 255 octets.
fn synthesise(dname: &Rr, name: &Name<Bytes>, suffix_len: usize) -> Option<Rr> {
    let AllRecordData::Dname(d) = dname.data() else {
        return None;
    };
    let wire = name.as_slice();
    let prefix = &wire[..wire.len().checked_sub(suffix_len)?];
    let tail = d.dname().as_slice();
    if prefix.len() + tail.len() > 255 {
        return None;
    }
    let mut out = Vec::with_capacity(prefix.len() + tail.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(tail);
    let target = Name::from_octets(Bytes::from(out)).ok()?;
    Some(Record::new(
        name.clone(),
        Class::IN,
        dname.ttl(),
        AllRecordData::Cname(Cname::new(target)),
    ))
}

/// The record with the name being answered (as asked) as its owner.
fn with_owner(rr: &Rr, owner: &Name<Bytes>) -> Rr {
    Record::new(owner.clone(), Class::IN, rr.ttl(), rr.data().clone())
}
