//! The RRset cache: every RRset (owner, type, class) the cache holds, stored once, with
//! the trust rank of the section it came from (RFC 2181 5.4.1), shared by the cached
//! messages that use it and freed with the last of them.
//!
//! The index maps a hash of the RRset's key to a weak reference: messages own their RRsets,
//! the index only finds the current one. Dead references are swept out when the index has
//! doubled since the last sweep, so it stays within twice the live RRsets (plus a few).

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use bytes::Bytes;
use domain::base::rdata::ComposeRecordData;
use domain::base::Name;
use domain::rdata::AllRecordData;

use super::store::put_name_type_class;
use crate::record::Rr;

/// Trust of an RRset by where it was seen (RFC 2181 5.4.1), lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    /// The additional section (glue).
    Additional,
    /// The authority section.
    Authority,
    /// The answer section of a reply without AA.
    Answer,
    /// The answer section of an authoritative (AA) reply.
    AuthoritativeAnswer,
}

impl Rank {
    /// The rank stored as `rank as u8`.
    fn from_u8(n: u8) -> Rank {
        match n {
            0 => Rank::Additional,
            1 => Rank::Authority,
            2 => Rank::Answer,
            _ => Rank::AuthoritativeAnswer,
        }
    }
}

/// One RRset in wire format: a 4-byte header (owner length, record count, rank), its key
/// (lower-cased owner, type, class, and the covered type for RRSIGs), then each record's
/// rdata behind its length. All records share the RRset's TTL. Small on purpose (24
/// bytes beside its data): every cached name holds one.
#[derive(Debug)]
pub(crate) struct RRset {
    data: Box<[u8]>,
    /// When it expires, on the cache's clock ([`RRsets::clock`]).
    expires: u32,
    /// The seconds it was fresh for when stored (the smallest clamped TTL of its records,
    /// at most 2^31 - 1), and in the top bit whether a newer copy replaced this one in the
    /// index (messages using it then rebuild).
    ttl_replaced: AtomicU32,
}

/// Bytes before the key in an RRset's data: owner length, count (2 bytes), rank.
const HEADER: usize = 4;
/// The `replaced` bit of `ttl_replaced`.
const REPLACED: u32 = 1 << 31;

/// Longest RRset key: a 255-byte owner, type, class, covered type.
pub(crate) const MAX_RRSET_KEY: usize = 255 + 6;

impl RRset {
    /// The RRset of `records` (one owner, type and class, as grouped by [`group`]).
    /// `None` when a record cannot be encoded.
    pub(crate) fn build(
        records: &[&Rr],
        rank: Rank,
        now: u32,
        clamp: impl Fn(u32) -> u32,
    ) -> Option<RRset> {
        let first = records.first()?;
        let mut key = [0u8; MAX_RRSET_KEY];
        let key = key_of(&mut key, first)?;
        // The key, then each rdata behind its length, composed in place.
        let mut data = Vec::with_capacity(HEADER + key.len() + 16 * records.len());
        data.extend_from_slice(&[0; HEADER]);
        data.extend_from_slice(key);
        let mut ttl = u32::MAX;
        for rr in records {
            rr.data().compose_len_rdata(&mut data).ok()?;
            ttl = ttl.min(clamp(rr.ttl().as_secs()));
        }
        let mut count = records.len();
        if count > 1 {
            // Canonical order, duplicates merged: equal sets compare equal.
            let mut rdatas: Vec<&[u8]> = Vec::with_capacity(count);
            let mut rest = &data[HEADER + key.len()..];
            while rest.len() >= 2 {
                let len = 2 + usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let (rdata, tail) = rest.split_at_checked(len)?;
                rdatas.push(rdata);
                rest = tail;
            }
            rdatas.sort_unstable();
            rdatas.dedup();
            count = rdatas.len();
            let mut sorted = Vec::with_capacity(data.len());
            sorted.extend_from_slice(&[0; HEADER]);
            sorted.extend_from_slice(key);
            for rdata in rdatas {
                sorted.extend_from_slice(rdata);
            }
            data = sorted;
        }
        data[0] = u8::try_from(first.owner().as_slice().len()).ok()?;
        data[1..3].copy_from_slice(&u16::try_from(count).ok()?.to_le_bytes());
        data[3] = rank as u8;
        let ttl = ttl.min(REPLACED - 1);
        Some(RRset {
            data: data.into_boxed_slice(),
            expires: now.saturating_add(ttl),
            ttl_replaced: AtomicU32::new(ttl),
        })
    }

    fn owner_len(&self) -> usize {
        usize::from(self.data[0])
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.data[HEADER..HEADER + self.owner_len() + 6]
    }

    /// The owner, lower-cased, in wire format.
    pub(crate) fn owner(&self) -> &[u8] {
        &self.data[HEADER..HEADER + self.owner_len()]
    }

    fn type_class(&self) -> &[u8] {
        let o = HEADER + self.owner_len();
        &self.data[o..o + 4]
    }

    /// The records' rdata, each behind its 2-byte length.
    fn rdatas(&self) -> &[u8] {
        &self.data[HEADER + self.owner_len() + 6..]
    }

    /// The number of records.
    pub(crate) fn count(&self) -> u16 {
        u16::from_le_bytes([self.data[1], self.data[2]])
    }

    /// Where it was seen.
    pub(crate) fn rank(&self) -> Rank {
        Rank::from_u8(self.data[3])
    }

    /// Seconds it was fresh for when stored.
    pub(crate) fn ttl(&self) -> u32 {
        self.ttl_replaced.load(Ordering::Relaxed) & !REPLACED
    }

    /// Seconds left before expiry at `now`, on the cache's clock (negative: past it).
    pub(crate) fn remaining(&self, now: u32) -> i64 {
        i64::from(self.expires) - i64::from(now)
    }

    pub(crate) fn is_replaced(&self) -> bool {
        self.ttl_replaced.load(Ordering::Relaxed) & REPLACED != 0
    }

    /// Bytes this RRset takes in a reply: owners as a 2-byte pointer when `compressed`.
    pub(crate) fn wire_len(&self, compressed: bool) -> usize {
        let owner = if compressed { 2 } else { self.owner().len() };
        usize::from(self.count()) * (owner + 8) + self.rdatas().len()
    }

    /// Appends the records to `out`: `owner` (as the caller compressed it), type, class,
    /// `ttl`, rdata. Calls `rdata_at` with the position of each rdata in `out` and the
    /// type (big-endian), so the caller can point later names at names in it.
    pub(crate) fn write(
        &self,
        out: &mut Vec<u8>,
        owner: &[u8],
        ttl: u32,
        mut rdata_at: impl FnMut(&[u8], usize, [u8; 2]),
    ) {
        let tc = self.type_class();
        let rtype = [tc[0], tc[1]];
        let mut rest = self.rdatas();
        while rest.len() >= 2 {
            let len = 2 + usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let Some((rdata, tail)) = rest.split_at_checked(len) else {
                return;
            };
            out.extend_from_slice(owner);
            out.extend_from_slice(tc);
            out.extend_from_slice(&ttl.to_be_bytes());
            out.extend_from_slice(rdata);
            rdata_at(out, out.len() - (len - 2), rtype);
            rest = tail;
        }
    }

    /// Whether `other` holds the same records (TTLs and ranks aside).
    pub(crate) fn same_records(&self, other: &RRset) -> bool {
        self.data[..3] == other.data[..3] && self.data[HEADER..] == other.data[HEADER..]
    }
}

/// The key of `rr`'s RRset: lower-cased owner, type, class, covered type (RRSIG) or 0.
fn key_of<'b>(buf: &'b mut [u8; MAX_RRSET_KEY], rr: &Rr) -> Option<&'b [u8]> {
    let owner = rr.owner().as_slice();
    let n = owner.len();
    if n > 255 {
        return None;
    }
    let covered = match rr.data() {
        AllRecordData::Rrsig(sig) => sig.type_covered().to_int(),
        _ => 0,
    };
    let n = put_name_type_class(buf, owner, rr.rtype().to_int(), rr.class().to_int());
    buf[n..n + 2].copy_from_slice(&covered.to_be_bytes());
    Some(&buf[..n + 2])
}

/// The records of a section grouped into RRsets, in order of first appearance.
/// Linear in the records (a hostile reply may hold thousands of RRsets).
pub(crate) fn group<'a>(records: &[&'a Rr]) -> Vec<Vec<&'a Rr>> {
    let mut sets: Vec<Vec<&'a Rr>> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut buf = [0u8; MAX_RRSET_KEY];
    for rr in records {
        let Some(key) = key_of(&mut buf, rr) else {
            continue;
        };
        // A few sets are searched in place; past that, by their keys.
        let found = if sets.len() <= 8 {
            sets.iter().position(|set| {
                let mut other = [0u8; MAX_RRSET_KEY];
                key_of(&mut other, set[0]) == Some(key)
            })
        } else {
            if index.is_empty() {
                for (i, set) in sets.iter().enumerate() {
                    let mut other = [0u8; MAX_RRSET_KEY];
                    if let Some(k) = key_of(&mut other, set[0]) {
                        index.insert(k.to_vec(), i);
                    }
                }
            }
            index.get(key).copied()
        };
        match found {
            Some(i) => sets[i].push(rr),
            None => {
                if !index.is_empty() {
                    index.insert(key.to_vec(), sets.len());
                }
                sets.push(vec![*rr]);
            }
        }
    }
    sets
}

struct Shard {
    index: HashMap<u64, Weak<RRset>>,
    /// Index size after the last sweep of dead references.
    swept: usize,
}

/// The shared index of current RRsets, and the cache's clock.
pub(crate) struct RRsets {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::hash::RandomState,
    epoch: OnceLock<Instant>,
}

impl RRsets {
    pub(crate) fn new(shards: usize) -> RRsets {
        RRsets {
            shards: (0..shards.max(1))
                .map(|_| {
                    Mutex::new(Shard {
                        index: HashMap::new(),
                        swept: 0,
                    })
                })
                .collect(),
            hasher: std::hash::RandomState::new(),
            epoch: OnceLock::new(),
        }
    }

    /// The cache's clock: whole seconds since the first time it was read (4 bytes an RRset
    /// instead of an `Instant`; expiry rounds down to the second, never later).
    pub(crate) fn clock(&self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_init(|| now);
        u32::try_from(now.saturating_duration_since(epoch).as_secs()).unwrap_or(u32::MAX)
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard> {
        let i = (hash as usize) % self.shards.len();
        // A poisoned shard only means another worker panicked mid-update of plain data.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current RRset of `key`, if one is held.
    pub(crate) fn current(&self, key: &[u8]) -> Option<Arc<RRset>> {
        let hash = self.hasher.hash_one(key);
        let found = self.shard(hash).index.get(&hash).and_then(Weak::upgrade);
        found.filter(|set| set.key() == key)
    }

    /// Offers `new` to the cache (Unbound's rrset_cache_update): it replaces the current
    /// copy when it ranks higher, when the current one has expired (or, for a `refresh`,
    /// is within the last tenth of its TTL), or when it ranks the same with other records.
    /// Otherwise the current copy stays (an equal copy does not reset its TTL) and is
    /// returned for the message to use.
    pub(crate) fn offer(&self, new: RRset, now: u32, refresh: bool) -> Arc<RRset> {
        let hash = self.hasher.hash_one(new.key());
        let mut shard = self.shard(hash);
        let current = shard
            .index
            .get(&hash)
            .and_then(Weak::upgrade)
            .filter(|set| set.key() == new.key());
        if let Some(current) = current {
            let left = current.remaining(now);
            let expired = left <= 0 || (refresh && left * 10 <= i64::from(current.ttl()));
            let keep = !expired
                && (new.rank() < current.rank()
                    || (new.rank() == current.rank() && new.same_records(&current)));
            if keep {
                drop(shard);
                return current;
            }
            current.ttl_replaced.fetch_or(REPLACED, Ordering::Relaxed);
        }
        let new = Arc::new(new);
        shard.index.insert(hash, Arc::downgrade(&new));
        if shard.index.len() >= 2 * shard.swept + 64 {
            shard.index.retain(|_, set| set.strong_count() > 0);
            shard.swept = shard.index.len();
        }
        new
    }

    /// RRsets alive now (held by a cached message).
    #[allow(clippy::disallowed_methods)] // a count: the order does not matter
    pub(crate) fn live(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let shard = s.lock().unwrap_or_else(|p| p.into_inner());
                shard
                    .index
                    .values()
                    .filter(|w| w.strong_count() > 0)
                    .count()
            })
            .sum()
    }
}

/// Targets of NS, MX, SRV records among `rrs` (lower-cased wire names): the names whose
/// addresses are glue.
pub(crate) fn targets(rrs: &[&Rr]) -> HashSet<Vec<u8>> {
    rrs.iter()
        .filter_map(|rr| match rr.data() {
            AllRecordData::Ns(ns) => Some(lower(ns.nsdname())),
            AllRecordData::Mx(mx) => Some(lower(mx.exchange())),
            AllRecordData::Srv(srv) => Some(lower(srv.target())),
            _ => None,
        })
        .collect()
}

/// A name's wire format, lower-cased.
pub(crate) fn lower(name: &Name<Bytes>) -> Vec<u8> {
    name.as_slice().to_ascii_lowercase()
}

/// The RRsets of a cached message: the first inline (most messages have one, and so no
/// second allocation), the rest boxed.
#[derive(Debug, Default)]
pub(crate) struct Sets {
    first: Option<Arc<RRset>>,
    rest: Box<[Arc<RRset>]>,
}

impl Sets {
    pub(crate) fn new(sets: Vec<Arc<RRset>>) -> Sets {
        let mut sets = sets.into_iter();
        Sets {
            first: sets.next(),
            rest: sets.collect(),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<RRset>> {
        self.first.iter().chain(self.rest.iter())
    }

    pub(crate) fn first(&self) -> Option<&Arc<RRset>> {
        self.first.as_ref()
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_round_trip_through_their_byte() {
        for rank in [
            Rank::Additional,
            Rank::Authority,
            Rank::Answer,
            Rank::AuthoritativeAnswer,
        ] {
            assert_eq!(Rank::from_u8(rank as u8), rank);
        }
    }

    #[test]
    fn an_rrset_stays_small() {
        // Every cached name holds one: 24 bytes beside its data (48 with its Arc's counts).
        assert_eq!(std::mem::size_of::<RRset>(), 24);
    }
}
