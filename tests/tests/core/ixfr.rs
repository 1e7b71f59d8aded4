//! IXFR out (RFC 1995): zone histories across reloads and the replies built from them.
//! The property: whatever the versions, applying the reply to the client's version gives
//! the current one, whether the reply is a condensed difference or the whole zone.

use std::collections::BTreeSet;

use names_core::domain::base::iana::Rtype;
use names_core::domain::rdata::AllRecordData;
use names_core::zone::{load_zone, Zone, ZoneSet};
use names_core::Rr;
use names_tests::build::name;
use proptest::prelude::*;

/// A version of `example.test.`: its serial and its records besides SOA and NS, as
/// `(label, ttl, last address octet)`.
fn zone_text(serial: u32, records: &BTreeSet<(u8, u32, u8)>) -> String {
    let mut text = format!(
        "example.test. 3600 IN SOA ns.example.test. admin.example.test. {serial} 7200 900 1209600 300\n\
         example.test. 3600 IN NS ns.example.test.\n"
    );
    for (label, ttl, octet) in records {
        text.push_str(&format!(
            "h{label}.example.test. {ttl} IN A 192.0.2.{octet}\n"
        ));
    }
    text
}

fn load(serial: u32, records: &BTreeSet<(u8, u32, u8)>) -> Zone {
    load_zone("example.zone", &zone_text(serial, records), &mut |p, _| {
        Err(format!("no include {p}"))
    })
    .unwrap()
}

/// A record as the test compares it: owner, type, TTL and data as text.
fn key(rr: &Rr) -> String {
    format!(
        "{} {} {} {}",
        rr.owner(),
        rr.ttl().as_secs(),
        rr.rtype(),
        rr.data()
    )
    .to_lowercase()
}

fn serial_of(rr: &Rr) -> Option<u32> {
    match rr.data() {
        AllRecordData::Soa(s) => Some(s.serial().into_int()),
        _ => None,
    }
}

/// The zone's records (SOA included) as a set.
fn contents(set: &ZoneSet) -> BTreeSet<String> {
    set.transfer(&name("example.test."))
        .unwrap()
        .iter()
        .skip(1)
        .map(key)
        .collect()
}

/// Applies an IXFR reply (RFC 1995 4) to a client holding `have`, as a secondary would.
fn apply(have: &BTreeSet<String>, reply: &[Rr]) -> BTreeSet<String> {
    let current = serial_of(&reply[0]).expect("the reply starts with the current SOA");
    if reply.len() == 1 {
        return have.clone(); // up to date
    }
    if serial_of(&reply[1]).is_none() {
        // AXFR-style: the whole zone, SOA first and last.
        assert_eq!(serial_of(reply.last().unwrap()), Some(current));
        return reply[..reply.len() - 1].iter().map(key).collect();
    }
    let mut zone = have.clone();
    let mut deleting = true;
    let mut soas = 0;
    for rr in &reply[1..reply.len() - 1] {
        if serial_of(rr).is_some() {
            soas += 1;
            deleting = soas % 2 == 1;
            if deleting {
                assert!(
                    zone.remove(&key(rr)),
                    "the old SOA {} must be held",
                    key(rr)
                );
            } else {
                zone.insert(key(rr));
            }
            continue;
        }
        if deleting {
            assert!(
                zone.remove(&key(rr)),
                "deleting {} the client does not hold",
                key(rr)
            );
        } else {
            assert!(zone.insert(key(rr)), "adding {} the client holds", key(rr));
        }
    }
    assert_eq!(serial_of(reply.last().unwrap()), Some(current));
    zone
}

type Version = BTreeSet<(u8, u32, u8)>;

fn versions() -> impl Strategy<Value = Vec<Version>> {
    let version = proptest::collection::btree_set(
        (0u8..12, prop_oneof![Just(60u32), Just(300)], 1u8..4),
        0..10,
    );
    proptest::collection::vec(version, 1..7)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_reply_applied_to_any_kept_version_gives_the_current_one(
        versions in versions(),
        first_serial in any::<u32>(),
        max_versions in 0usize..8,
    ) {
        let mut set = ZoneSet::new(vec![load(first_serial, &versions[0])]).unwrap();
        let mut held = vec![(first_serial, contents(&set))];
        for (i, records) in versions.iter().enumerate().skip(1) {
            let serial = first_serial.wrapping_add(i as u32);
            let next = ZoneSet::new(vec![load(serial, records)]).unwrap();
            set = next.with_history_from(&set, max_versions);
            held.push((serial, contents(&set)));
        }
        let (current_serial, current) = held.last().unwrap().clone();
        let apex = name("example.test.");
        let kept = set.history(&apex).map_or(0, |h| h.serials().len());
        prop_assert!(kept <= max_versions);
        for (serial, have) in &held {
            let reply = set.incremental(&apex, Some(*serial)).unwrap();
            prop_assert_eq!(apply(have, &reply), current.clone());
            if *serial == current_serial {
                prop_assert_eq!(reply.len(), 1);
            }
        }
        // Every kept serial is answered incrementally, not with the whole zone.
        for serial in set.history(&apex).map(|h| h.serials()).unwrap_or_default() {
            let reply = set.incremental(&apex, Some(serial)).unwrap();
            prop_assert!(serial_of(&reply[1]).is_some(), "serial {} got the whole zone", serial);
        }
        // A client newer than the server is up to date; an unknown one gets the zone.
        prop_assert_eq!(set.incremental(&apex, Some(current_serial.wrapping_add(5))).unwrap().len(), 1);
        let unknown = set.incremental(&apex, Some(current_serial.wrapping_sub(1000))).unwrap();
        prop_assert_eq!(apply(&BTreeSet::new(), &unknown), current);
    }
}

#[test]
fn the_history_is_bounded_by_versions_and_by_the_zone_size() {
    let apex = name("example.test.");
    let one = |n: u8| BTreeSet::from([(n, 60, 1)]);
    let mut set = ZoneSet::new(vec![load(1, &one(0))]).unwrap();
    for serial in 2..40 {
        let next = ZoneSet::new(vec![load(serial, &one(serial as u8))]).unwrap();
        set = next.with_history_from(&set, 16);
    }
    let serials = set.history(&apex).unwrap().serials();
    assert_eq!(
        serials,
        (23..39).collect::<Vec<u32>>(),
        "the 16 newest diffs"
    );

    // Diffs that together hold more records than the floor drop the oldest.
    let wide = |salt: u8| {
        (0..=250u8)
            .map(|i| (i % 12, 60 + u32::from(i), salt))
            .collect::<Version>()
    };
    let mut set = ZoneSet::new(vec![load(1, &wide(1))]).unwrap();
    for serial in 2..8 {
        let next = ZoneSet::new(vec![load(serial, &wide(serial as u8))]).unwrap();
        set = next.with_history_from(&set, 16);
    }
    let history = set.history(&apex).unwrap();
    assert!(
        history.records() <= 1024 + 504,
        "{} records",
        history.records()
    );
    assert!(history.serials().len() < 6, "{:?}", history.serials());
    assert_eq!(history.serials().last(), Some(&6));
}

#[test]
fn a_serial_going_back_or_a_new_zone_starts_without_history() {
    let apex = name("example.test.");
    let recs = BTreeSet::from([(1, 60, 1)]);
    let v5 = ZoneSet::new(vec![load(5, &recs)]).unwrap();
    let v6 = ZoneSet::new(vec![load(6, &BTreeSet::new())])
        .unwrap()
        .with_history_from(&v5, 16);
    assert_eq!(v6.history(&apex).unwrap().serials(), vec![5]);
    let back = ZoneSet::new(vec![load(4, &recs)])
        .unwrap()
        .with_history_from(&v6, 16);
    assert!(back.history(&apex).is_none());
    let reply = back.incremental(&apex, Some(5)).unwrap();
    assert_eq!(serial_of(&reply[0]), Some(4));
    assert_eq!(
        reply.len(),
        1,
        "a client at 5 is newer than 4 in serial arithmetic"
    );
    let again = ZoneSet::new(vec![load(6, &BTreeSet::new())])
        .unwrap()
        .with_history_from(&v6, 16);
    assert_eq!(
        again.history(&apex).unwrap().serials(),
        vec![5],
        "same serial: kept"
    );
    let reply = again.incremental(&apex, None).unwrap();
    assert_eq!(
        reply[1].rtype(),
        Rtype::NS,
        "no client serial: the whole zone"
    );
}
