//! Incremental zone transfer out (IXFR, RFC 1995): the differences between the last
//! versions of each zone, kept across reloads, and the replies built from them.
//!
//! A reload that changes a zone's serial records one [`Diff`] (records deleted, records
//! added) from the version before; a zone's [`History`] keeps the newest of them, at most
//! `max_versions`, and never more records than the zone itself holds (or 1,024 for a
//! smaller zone): past that an incremental transfer could be larger than the whole
//! zone, so the oldest diffs are dropped and a client that old gets the whole zone (as
//! RFC 1995 4 allows). A request
//! is answered with one condensed difference (RFC 1995 4: the diffs from the client's
//! serial to the current one folded into one deletion and one addition).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use domain::base::Name;

use super::{Serial, Zone, ZoneSet};
use crate::record::Rr;

/// Records a zone's history may hold however small the zone (about 100 KB).
const MIN_HISTORY_RECORDS: usize = 1024;

/// The difference between two versions of a zone.
#[derive(Clone, Debug)]
pub struct Diff {
    /// The SOA of the older version.
    pub from: Rr,
    /// The SOA of the newer version.
    pub to: Rr,
    /// Records of the older version not in the newer (the SOA aside).
    pub deleted: Vec<Rr>,
    /// Records of the newer version not in the older (the SOA aside).
    pub added: Vec<Rr>,
}

impl Diff {
    /// The difference from `old` to `new`. Records compare in canonical form (RFC 4034
    /// 6.2: names lowercased), TTL included: a changed TTL is a deletion and an addition.
    pub fn between(old: &Zone, new: &Zone) -> Diff {
        let old_set = canonical_set(&old.records);
        let new_set = canonical_set(&new.records);
        let only = |a: &BTreeMap<Vec<u8>, &Rr>, b: &BTreeMap<Vec<u8>, &Rr>| {
            a.iter()
                .filter(|(k, _)| !b.contains_key(*k))
                .map(|(_, rr)| (*rr).clone())
                .collect()
        };
        Diff {
            from: old.soa.clone(),
            to: new.soa.clone(),
            deleted: only(&old_set, &new_set),
            added: only(&new_set, &old_set),
        }
    }

    fn serials(&self) -> (Serial, Serial) {
        (soa_serial(&self.from), soa_serial(&self.to))
    }

    fn len(&self) -> usize {
        self.deleted.len() + self.added.len() + 2
    }
}

/// The diffs kept for one zone, oldest first, each starting where the one before ended.
#[derive(Clone, Debug, Default)]
pub struct History {
    diffs: VecDeque<Diff>,
}

impl History {
    /// The history after `diff`, trimmed to `max_versions` diffs and to at most
    /// `max_records` records in all (the newest diff is kept whatever its size).
    fn after(&self, diff: Diff, max_versions: usize, max_records: usize) -> History {
        let mut diffs = self.diffs.clone();
        // A history that does not end where this diff starts cannot be followed.
        if diffs
            .back()
            .is_some_and(|last| last.serials().1 != diff.serials().0)
        {
            diffs.clear();
        }
        diffs.push_back(diff);
        while diffs.len() > max_versions.max(1)
            || (diffs.len() > 1 && diffs.iter().map(Diff::len).sum::<usize>() > max_records)
        {
            diffs.pop_front();
        }
        History { diffs }
    }

    /// The serials a client may ask an incremental transfer from, oldest first.
    pub fn serials(&self) -> Vec<u32> {
        self.diffs.iter().map(|d| d.serials().0 .0).collect()
    }

    /// Records held in all diffs (SOAs counted).
    pub fn records(&self) -> usize {
        self.diffs.iter().map(Diff::len).sum()
    }

    /// One diff from `serial` to the newest version, if the history reaches back to it.
    pub fn condensed_from(&self, serial: u32) -> Option<Diff> {
        let start = self
            .diffs
            .iter()
            .position(|d| d.serials().0 == Serial(serial))?;
        let mut diffs = self.diffs.iter().skip(start);
        let first = diffs.next()?;
        let mut deleted = canonical_owned(&first.deleted);
        let mut added = canonical_owned(&first.added);
        let mut to = first.to.clone();
        for diff in diffs {
            // A record added earlier and deleted now was never there for the client.
            for rr in &diff.deleted {
                let key = canonical(rr);
                if added.remove(&key).is_none() {
                    deleted.insert(key, rr.clone());
                }
            }
            for rr in &diff.added {
                let key = canonical(rr);
                if deleted.remove(&key).is_none() {
                    added.insert(key, rr.clone());
                }
            }
            to = diff.to.clone();
        }
        Some(Diff {
            from: first.from.clone(),
            to,
            deleted: deleted.into_values().collect(),
            added: added.into_values().collect(),
        })
    }
}

impl ZoneSet {
    /// This set with the IXFR history of each zone carried over from `previous` (the set
    /// it replaces): a zone whose serial went forward gets the diff from its version in
    /// `previous` added; one with the same serial keeps its history; a new zone, or one
    /// whose serial did not go forward (RFC 1982), starts with none. At most
    /// `max_versions` diffs are kept per zone (0: none, every IXFR gets the whole zone),
    /// holding at most as many records as the zone (or 1,024).
    pub fn with_history_from(mut self, previous: &ZoneSet, max_versions: usize) -> ZoneSet {
        let mut histories = std::collections::HashMap::new();
        for zone in self.zones() {
            let Some(old) = previous.zone_at(&zone.origin) else {
                continue;
            };
            let kept = previous.history(&zone.origin).cloned().unwrap_or_default();
            let (old_serial, new_serial) = (Serial(old.serial), Serial(zone.serial));
            let history = if max_versions == 0 {
                continue;
            } else if new_serial == old_serial {
                kept
            } else if new_serial.is_newer_than(old_serial) {
                kept.after(
                    Diff::between(old, zone),
                    max_versions,
                    zone.record_count().max(MIN_HISTORY_RECORDS),
                )
            } else {
                continue;
            };
            histories.insert(origin_key(&zone.origin), Arc::new(history));
        }
        self.histories = histories;
        self
    }

    /// The IXFR history of the zone at `apex`.
    pub fn history(&self, apex: &Name<Bytes>) -> Option<&History> {
        self.histories.get(&origin_key(apex)).map(|h| &**h)
    }

    /// The answer records of an IXFR for the zone at `apex` from the client's `serial`
    /// (RFC 1995 4): the single current SOA when the client is up to date (or newer),
    /// the condensed difference when the history reaches back to its serial, else the
    /// whole zone AXFR-style. `None` when no zone has that apex.
    pub fn incremental(&self, apex: &Name<Bytes>, serial: Option<u32>) -> Option<Vec<Rr>> {
        let zone = self.zone_at(apex)?;
        let current = Serial(zone.serial);
        let Some(serial) = serial else {
            return self.transfer(apex);
        };
        let client = Serial(serial);
        if client == current || client.is_newer_than(current) {
            return Some(vec![zone.soa.clone()]);
        }
        match self.history(apex).and_then(|h| h.condensed_from(serial)) {
            Some(diff) => {
                let mut out = Vec::with_capacity(diff.deleted.len() + diff.added.len() + 4);
                out.push(zone.soa.clone());
                out.push(diff.from);
                out.extend(diff.deleted);
                out.push(diff.to);
                out.extend(diff.added);
                out.push(zone.soa.clone());
                Some(out)
            }
            None => self.transfer(apex),
        }
    }
}

fn soa_serial(soa: &Rr) -> Serial {
    match soa.data() {
        domain::rdata::AllRecordData::Soa(s) => Serial(s.serial().into_int()),
        _ => Serial(0),
    }
}

fn origin_key(name: &Name<Bytes>) -> Box<[u8]> {
    name.as_slice().to_ascii_lowercase().into()
}

/// A record's canonical wire form (RFC 4034 6.2), TTL included: the identity diffs use.
fn canonical(rr: &Rr) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = rr.compose_canonical(&mut out);
    out
}

fn canonical_set(records: &[Rr]) -> BTreeMap<Vec<u8>, &Rr> {
    records.iter().map(|rr| (canonical(rr), rr)).collect()
}

fn canonical_owned(records: &[Rr]) -> BTreeMap<Vec<u8>, Rr> {
    records
        .iter()
        .map(|rr| (canonical(rr), rr.clone()))
        .collect()
}
