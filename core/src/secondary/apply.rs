//! Turning a received transfer into a zone: a whole zone checked and indexed, or IXFR
//! steps applied to the zone served (RFC 1995 4), each step checked against the version
//! it starts from. Nothing here touches the zone served: a new one is built, or an error
//! says why not and the old one stays.

use std::collections::HashMap;

use domain::base::iana::Rtype;
use domain::base::rdata::ComposeRecordData;

use super::transfer::soa_serial;
use crate::record::Rr;
use crate::zone::Zone;

/// A whole zone: the SOA, its records, the SOA again with the same serial.
pub(crate) fn full_zone(mut records: Vec<Rr>, source: String) -> Result<Zone, String> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Err("an empty transfer".into());
    };
    let (Some(opening), Some(closing)) = (soa_serial(first), soa_serial(last)) else {
        return Err("the transfer does not start and end with the zone's SOA".into());
    };
    if records.len() < 2 {
        return Err("the transfer has no closing SOA".into());
    }
    if opening != closing {
        return Err(format!(
            "the closing SOA has serial {closing}, the opening one {opening}"
        ));
    }
    records.pop();
    let soa = records.remove(0);
    if let Some(other) = records.iter().find(|rr| rr.rtype() == Rtype::SOA) {
        return Err(format!(
            "a second SOA inside the zone (serial {})",
            soa_serial(other).unwrap_or(0)
        ));
    }
    Ok(Zone::build(soa, records, source))
}

/// The zone `base` with the IXFR steps of `records` applied.
pub(crate) fn incremental(base: &Zone, records: Vec<Rr>, source: String) -> Result<Zone, String> {
    let mut set = RecordSet::of(base);
    let mut records = records.into_iter();
    let new = records.next().and_then(|rr| soa_serial(&rr));
    let Some(new) = new else {
        return Err("an IXFR that does not start with an SOA".into());
    };
    let mut soa = base.soa().clone();
    let mut phase = Phase::Between;
    for rr in records {
        let current = soa_serial(&soa).unwrap_or(0);
        match (soa_serial(&rr), phase) {
            // The closing SOA.
            (Some(serial), Phase::Adding) if serial == new && current == new => break,
            // A step starts: its first SOA is the version it applies to.
            (Some(serial), Phase::Between | Phase::Adding) => {
                if serial != current {
                    return Err(format!(
                        "an IXFR step starts from serial {serial}, the zone is at {current}"
                    ));
                }
                phase = Phase::Deleting;
            }
            // The step's second SOA: the version it leads to; its additions follow.
            (Some(_), Phase::Deleting) => {
                soa = rr;
                phase = Phase::Adding;
            }
            (None, Phase::Deleting) => {
                if !set.remove(&rr) {
                    return Err(format!(
                        "an IXFR step deletes {} {} which the zone does not have",
                        rr.owner().fmt_with_dot(),
                        rr.rtype()
                    ));
                }
            }
            (None, Phase::Adding) => set.add(rr),
            (None, Phase::Between) => return Err("an IXFR record outside any step".into()),
        }
    }
    if soa_serial(&soa) != Some(new) {
        return Err(format!(
            "the IXFR steps end at serial {}, not at {new}",
            soa_serial(&soa).unwrap_or(0)
        ));
    }
    Ok(Zone::build(soa, set.into_records(), source))
}

/// Where an IXFR is: before a step, in its deletions, or in its additions.
#[derive(Clone, Copy)]
enum Phase {
    Between,
    Deleting,
    Adding,
}

/// The records of a zone being changed, findable by their content (owner, type, data;
/// names compared without case, TTLs not compared: RFC 1995 deletes by content).
struct RecordSet {
    records: Vec<Option<Rr>>,
    index: HashMap<Vec<u8>, usize>,
}

impl RecordSet {
    fn of(zone: &Zone) -> RecordSet {
        let mut set = RecordSet {
            records: Vec::with_capacity(zone.records.len()),
            index: HashMap::with_capacity(zone.records.len()),
        };
        for rr in &zone.records {
            set.add(rr.clone());
        }
        set
    }

    fn add(&mut self, rr: Rr) {
        let key = content_key(&rr);
        if !self.index.contains_key(&key) {
            self.index.insert(key, self.records.len());
            self.records.push(Some(rr));
        }
    }

    fn remove(&mut self, rr: &Rr) -> bool {
        match self.index.remove(&content_key(rr)) {
            Some(at) => self.records[at].take().is_some(),
            None => false,
        }
    }

    fn into_records(self) -> Vec<Rr> {
        self.records.into_iter().flatten().collect()
    }
}

/// The owner (lowercase wire form), type and canonical record data of a record.
fn content_key(rr: &Rr) -> Vec<u8> {
    let mut key: Vec<u8> = rr
        .owner()
        .as_slice()
        .iter()
        .map(u8::to_ascii_lowercase)
        .collect();
    key.extend_from_slice(&rr.rtype().to_int().to_be_bytes());
    // Composing into a Vec cannot fail.
    let _ = rr.data().compose_canonical_rdata(&mut key);
    key
}
