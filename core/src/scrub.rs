//! Scrubbing an upstream reply before anything uses it, after Unbound's iterator/iter_scrub.c:
//! only the question's RRset with its CNAME/DNAME chain, the NS/SOA (and their DNSSEC records)
//! of the name's zone and the addresses those records point to survive.
//!
//! The rules, in order:
//! - the reply must be a response to a QUERY with exactly our question, and every record must
//!   be readable, or it is not used at all (`None`); only an A or AAAA record of the wrong
//!   RDATA length is dropped alone, as Unbound's scrubber drops it;
//! - records of another class, OPT and TSIG are dropped everywhere, and so are records
//!   outside the bailiwick (the zone of the server asked: a recursor's; the root for a
//!   forwarder);
//! - duplicate records are merged, an RRset's TTLs set to its minimum, and at most
//!   [`MAX_RRSIGS`] RRSIGs kept per RRset;
//! - answer: the chain from the question's name, at most [`MAX_CHAIN`] CNAME/DNAME steps,
//!   a DNAME's synthesised CNAME checked against the one sent (made when missing or wrong),
//!   then the RRset(s) of the question's type at the chain's last name; nothing else;
//! - authority: NS, SOA and DS owned by the chain's last name or an ancestor of it,
//!   NSEC/NSEC3 within the zone of a kept NS or SOA, and RRSIGs over kept RRsets;
//! - additional: A and AAAA (and their RRSIGs) of names a kept NS, MX, SRV, NAPTR, MB, MD or
//!   MF record points to.

use std::collections::HashMap;

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, OptRcode, Rtype};
use domain::base::{Message, Name, Record, ToName};
use domain::rdata::{AllRecordData, Cname};

use crate::record::{read_sections_dropping_bad_lengths, Rr};
use crate::zone::MAX_CNAME_CHAIN;

/// Most CNAME/DNAME steps followed in an answer (as for authoritative answers).
pub(crate) const MAX_CHAIN: usize = MAX_CNAME_CHAIN;

/// Most RRSIGs kept per RRset (Unbound's `iter-scrub-rrsig`).
pub(crate) const MAX_RRSIGS: usize = 8;

/// An upstream reply after scrubbing (iter_scrub.c as the model): only what may be used.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Scrubbed {
    /// The rcode, with the OPT's extended bits.
    pub rcode: OptRcode,
    /// The upstream's AA bit (for trust ranks; never shown to clients).
    pub aa: bool,
    /// The upstream's AD bit.
    pub ad: bool,
    /// The question's RRset and its CNAME/DNAME chain, in chain order, duplicates merged.
    pub answer: Vec<Rr>,
    /// NS/SOA (+ their RRSIG/NSEC/NSEC3/DS) for the chain's last name or an ancestor of it.
    pub authority: Vec<Rr>,
    /// A/AAAA (+ RRSIG) of names that kept NS/MX/SRV/... records point to.
    pub additional: Vec<Rr>,
    /// Records removed (merged duplicates and replaced CNAMEs included).
    pub dropped: usize,
}

/// Scrubs `reply` to the question (`qname`, `qtype`, `qclass`), keeping only records at or
/// below `bailiwick`, the zone of the server asked (the root for a forwarder's upstream,
/// which answers for every zone). `None`: the reply must not
/// be used at all (question missing or different, unreadable records, not a response,
/// opcode not QUERY, a CNAME or DNAME RRset on the chain with more than one record).
pub(crate) fn scrub(
    qname: &Name<Bytes>,
    qtype: Rtype,
    qclass: Class,
    reply: &Message<Bytes>,
    bailiwick: &Name<Bytes>,
) -> Option<Scrubbed> {
    let header = reply.header();
    if !header.qr() || header.opcode() != Opcode::QUERY || reply.header_counts().qdcount() != 1 {
        return None;
    }
    let question = reply.first_question()?;
    if !question.qname().name_eq(qname) || question.qtype() != qtype || question.qclass() != qclass
    {
        return None;
    }
    let sections = read_sections_dropping_bad_lengths(reply).ok()?;
    let input = sections.answer.len() + sections.authority.len() + sections.additional.len();
    let usable = |rr: &Rr| {
        rr.class() == qclass
            && rr.rtype() != Rtype::TSIG
            && rr.rtype() != Rtype::OPT
            && rr.owner().ends_with(bailiwick)
    };

    let mut synthesised = 0;
    let (answer, last) = walk_chain(
        qname,
        qtype,
        qclass,
        rrsets(sections.answer.into_iter().filter(usable)),
        &mut synthesised,
    )?;
    let authority = keep_authority(
        &last,
        rrsets(sections.authority.into_iter().filter(|rr| {
            usable(rr)
                && matches!(
                    rr.rtype(),
                    Rtype::NS | Rtype::SOA | Rtype::DS | Rtype::NSEC | Rtype::NSEC3 | Rtype::RRSIG
                )
        })),
    );
    let targets: Vec<&Name<Bytes>> = answer
        .iter()
        .chain(authority.iter())
        .filter_map(|rr| additional_name(rr.data()))
        .collect();
    let additional = keep_additional(
        &targets,
        rrsets(sections.additional.into_iter().filter(|rr| {
            usable(rr) && matches!(rr.rtype(), Rtype::A | Rtype::AAAA | Rtype::RRSIG)
        })),
    );
    let kept = answer.len() + authority.len() + additional.len() - synthesised;
    Some(Scrubbed {
        rcode: sections.rcode,
        aa: header.aa(),
        ad: header.ad(),
        answer,
        authority,
        additional,
        dropped: input.saturating_sub(kept),
    })
}

/// The records of one RRset (an RRSIG set is per covered type), duplicates merged.
struct Set {
    owner: Name<Bytes>,
    rtype: Rtype,
    /// For RRSIGs, the type they cover.
    covered: Option<Rtype>,
    records: Vec<Rr>,
}

impl Set {
    fn is(&self, owner: &Name<Bytes>, rtype: Rtype) -> bool {
        self.covered.is_none() && self.rtype == rtype && self.owner.name_eq(owner)
    }

    fn signs(&self, owner: &Name<Bytes>, rtype: Rtype) -> bool {
        self.covered == Some(rtype) && self.owner.name_eq(owner)
    }

    fn single_target(&self) -> Option<&Name<Bytes>> {
        match self.records.as_slice() {
            [one] => match one.data() {
                AllRecordData::Cname(c) => Some(c.cname()),
                AllRecordData::Dname(d) => Some(d.dname()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Groups records into RRsets in order of first appearance: duplicates merged, each set's
/// TTLs lowered to its minimum, RRSIG sets cut to [`MAX_RRSIGS`].
fn rrsets(records: impl Iterator<Item = Rr>) -> Vec<Set> {
    let mut sets: Vec<Set> = Vec::new();
    let mut index: HashMap<(Vec<u8>, Rtype, Option<Rtype>), usize> = HashMap::new();
    for rr in records {
        let covered = match rr.data() {
            AllRecordData::Rrsig(sig) => Some(sig.type_covered()),
            _ => None,
        };
        let key = (
            rr.owner().as_slice().to_ascii_lowercase(),
            rr.rtype(),
            covered,
        );
        let at = *index.entry(key).or_insert_with(|| {
            sets.push(Set {
                owner: rr.owner().clone(),
                rtype: rr.rtype(),
                covered,
                records: Vec::new(),
            });
            sets.len() - 1
        });
        let set = &mut sets[at];
        if covered.is_some() && set.records.len() >= MAX_RRSIGS {
            continue;
        }
        match set.records.iter_mut().find(|old| old.data() == rr.data()) {
            Some(old) => old.set_ttl(old.ttl().min(rr.ttl())),
            None => set.records.push(rr),
        }
    }
    for set in &mut sets {
        if let Some(min) = set.records.iter().map(|r| r.ttl()).min() {
            set.records.iter_mut().for_each(|r| r.set_ttl(min));
        }
    }
    sets
}

/// The answer being built from the answer section's RRsets.
struct Chain {
    sets: Vec<Set>,
    used: Vec<bool>,
    out: Vec<Rr>,
}

impl Chain {
    /// Moves set `i` and the RRSIGs over it to the answer, once.
    fn take(&mut self, i: usize) {
        let sigs = (0..self.sets.len())
            .find(|&j| self.sets[j].signs(&self.sets[i].owner, self.sets[i].rtype));
        for at in std::iter::once(i).chain(sigs) {
            if !self.used[at] {
                self.used[at] = true;
                self.out.append(&mut self.sets[at].records);
            }
        }
    }

    fn find(&self, owner: &Name<Bytes>, rtype: Rtype) -> Option<usize> {
        self.sets.iter().position(|s| s.is(owner, rtype))
    }

    /// The DNAME at the closest strict ancestor of `name`.
    fn dname_above(&self, name: &Name<Bytes>) -> Option<usize> {
        (0..self.sets.len())
            .filter(|&i| {
                let set = &self.sets[i];
                set.covered.is_none()
                    && set.rtype == Rtype::DNAME
                    && name.ends_with(&set.owner)
                    && !name.name_eq(&set.owner)
            })
            .max_by_key(|&i| self.sets[i].owner.label_count())
    }
}

/// Keeps the question's chain and final RRset(s), in chain order. Returns them and the
/// chain's last name; `None` for a CNAME or DNAME RRset on the chain with several records.
fn walk_chain(
    qname: &Name<Bytes>,
    qtype: Rtype,
    qclass: Class,
    sets: Vec<Set>,
    synthesised: &mut usize,
) -> Option<(Vec<Rr>, Name<Bytes>)> {
    let mut chain = Chain {
        used: vec![false; sets.len()],
        sets,
        out: Vec::new(),
    };
    let mut sname = qname.clone();
    for step in 0..=MAX_CHAIN {
        if let Some(d) = chain.dname_above(&sname) {
            if chain.used[d] || step == MAX_CHAIN {
                break;
            }
            let target = chain.sets[d].single_target()?.clone();
            let ttl = chain.sets[d].records[0].ttl();
            let owner = chain.sets[d].owner.clone();
            chain.take(d);
            let Some(alias) = rewrite(&sname, &owner, &target) else {
                break; // longer than a name may be: the upstream's YXDOMAIN
            };
            match chain.find(&sname, Rtype::CNAME) {
                Some(c)
                    if !chain.used[c]
                        && chain.sets[c]
                            .single_target()
                            .is_some_and(|t| t.name_eq(&alias)) =>
                {
                    chain.take(c)
                }
                _ => {
                    let cname = AllRecordData::Cname(Cname::new(alias.clone()));
                    chain
                        .out
                        .push(Record::new(sname.clone(), qclass, ttl, cname));
                    *synthesised += 1;
                }
            }
            if qtype == Rtype::CNAME {
                break; // the CNAME is the answer
            }
            sname = alias;
            continue;
        }
        if qtype != Rtype::CNAME {
            if let Some(c) = chain.find(&sname, Rtype::CNAME) {
                if chain.used[c] || step == MAX_CHAIN {
                    break;
                }
                let target = chain.sets[c].single_target()?.clone();
                chain.take(c);
                sname = target;
                continue;
            }
        }
        let finals: Vec<usize> = (0..chain.sets.len())
            .filter(|&i| {
                let set = &chain.sets[i];
                set.owner.name_eq(&sname)
                    && match qtype {
                        Rtype::ANY => set.covered.is_none(),
                        Rtype::RRSIG => set.rtype == Rtype::RRSIG,
                        _ => set.covered.is_none() && set.rtype == qtype,
                    }
            })
            .collect();
        for i in finals {
            chain.take(i);
        }
        break;
    }
    Some((chain.out, sname))
}

/// `name` with its suffix `owner` replaced by `target`; `None` if longer than 255 octets.
fn rewrite(name: &Name<Bytes>, owner: &Name<Bytes>, target: &Name<Bytes>) -> Option<Name<Bytes>> {
    let prefix = name.as_slice().len() - owner.as_slice().len();
    let mut wire = Vec::with_capacity(prefix + target.as_slice().len());
    wire.extend_from_slice(&name.as_slice()[..prefix]);
    wire.extend_from_slice(target.as_slice());
    Name::from_octets(Bytes::from(wire)).ok()
}

/// NS, SOA and DS at `last` or above, NSEC/NSEC3 in the zone of a kept NS or SOA, and the
/// RRSIGs over what was kept.
fn keep_authority(last: &Name<Bytes>, sets: Vec<Set>) -> Vec<Rr> {
    let mut zones: Vec<Name<Bytes>> = Vec::new();
    let mut keep = vec![false; sets.len()];
    for (i, set) in sets.iter().enumerate() {
        if set.covered.is_none()
            && matches!(set.rtype, Rtype::NS | Rtype::SOA | Rtype::DS)
            && last.ends_with(&set.owner)
        {
            keep[i] = true;
            if set.rtype != Rtype::DS {
                zones.push(set.owner.clone());
            }
        }
    }
    for (i, set) in sets.iter().enumerate() {
        if set.covered.is_none()
            && matches!(set.rtype, Rtype::NSEC | Rtype::NSEC3)
            && zones.iter().any(|z| set.owner.ends_with(z))
        {
            keep[i] = true;
        }
    }
    signatures(&sets, &mut keep);
    collect(sets, &keep)
}

/// A/AAAA at one of `targets`, and their RRSIGs.
fn keep_additional(targets: &[&Name<Bytes>], sets: Vec<Set>) -> Vec<Rr> {
    let mut keep: Vec<bool> = sets
        .iter()
        .map(|set| {
            set.covered.is_none()
                && matches!(set.rtype, Rtype::A | Rtype::AAAA)
                && targets.iter().any(|t| t.name_eq(&set.owner))
        })
        .collect();
    signatures(&sets, &mut keep);
    collect(sets, &keep)
}

/// Marks the RRSIG sets over kept sets as kept.
fn signatures(sets: &[Set], keep: &mut [bool]) {
    for i in 0..sets.len() {
        if let Some(covered) = sets[i].covered {
            keep[i] = (0..sets.len()).any(|j| keep[j] && sets[j].is(&sets[i].owner, covered));
        }
    }
}

fn collect(sets: Vec<Set>, keep: &[bool]) -> Vec<Rr> {
    sets.into_iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .flat_map(|(set, _)| set.records)
        .collect()
}

/// The name whose addresses may come along as additional data (Unbound's
/// `get_additional_name`).
fn additional_name(data: &AllRecordData<Bytes, Name<Bytes>>) -> Option<&Name<Bytes>> {
    match data {
        AllRecordData::Ns(ns) => Some(ns.nsdname()),
        AllRecordData::Mx(mx) => Some(mx.exchange()),
        AllRecordData::Srv(srv) => Some(srv.target()),
        AllRecordData::Naptr(naptr) => Some(naptr.replacement()),
        AllRecordData::Mb(mb) => Some(mb.madname()),
        AllRecordData::Md(md) => Some(md.madname()),
        AllRecordData::Mf(mf) => Some(mf.madname()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
