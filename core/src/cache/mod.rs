//! The cache resolver: repeated questions answered from memory.
//!
//! It is filled from the answers of the resolvers after it (the forwarder, which scrubs
//! every upstream reply first), the way Unbound does.
//!
//! - Two levels: cached messages, keyed by lower-cased name, type, class, DO and CD, refer
//!   to RRsets (owner, type, class) held once in an RRset cache shared by every message
//!   that uses them, and freed with the last of them.
//! - Every RRset carries a trust rank (RFC 2181 5.4.1): answer of an authoritative reply >
//!   answer > authority > additional. Data of a lower rank never replaces an unexpired RRset
//!   of a higher rank; an equal-rank copy with the same records does not reset its TTL
//!   (Unbound's rrset_rettl); other records of an equal or higher rank replace it
//!   (rrset_updated), and every message using it is rebuilt on its next hit.
//! - Every reply, the first one included, is built from the cache's current RRsets; its
//!   TTLs are their remaining TTLs. An entry is never served at or past the expiry of one
//!   of its RRsets (except serve-stale, RFC 8767, with TTL 30).
//! - Negative answers (NXDOMAIN, NODATA) are cached for min(SOA TTL, SOA MINIMUM), RFC 2308,
//!   and served with that SOA. Without an SOA they are not cached. That negative TTL caps
//!   only the negative part, the SOA and the NSEC/NSEC3 proofs and their signatures
//!   (RFC 9077); a CNAME chain leading to the negative answer keeps its own TTLs (RFC 2308
//!   5), though the message itself expires with its shortest RRset.
//! - SERVFAIL and other failures are never cached (no hold-down).
//! - Only the answer's own chain is kept: answer records owned by the question name or a
//!   CNAME target along it; authority NS/SOA (and their DNSSEC records) owned by an ancestor
//!   of the chain's end; additional addresses of the kept NS/MX/SRV targets.
//! - Minimal responses (default): replies carry authority only for negative answers (the
//!   SOA and its proofs) and no additional records; otherwise they carry the authority and
//!   glue RRsets the cache holds for the answer.
//! - Prefetch (off by default): a hit in the last tenth of the entry's TTL asks the server
//!   for one background refresh of the entry, while the client gets the cached answer.
//! - Bounded by an exact message count, least recently used out first ([`Store`]); the
//!   RRset index holds at most twice the RRsets alive, plus 64 a shard.
//!
//! A cache hit is a [`crate::Prebuilt`] answer: its RRsets' records are copied into the
//! reply, not encoded again.

pub(crate) mod rrset;
pub(crate) mod store;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use domain::base::iana::{Rcode, Rtype};
use domain::base::{Name, ToName};
use domain::rdata::AllRecordData;

pub use store::{CacheStats, Store};

use crate::record::Rr;
use crate::resolver::{Answer, Context, Query, Resolution, Resolver};
use crate::wire::{Prebuilt, Ttls, WireRecords};
use rrset::{group, lower, targets, RRset, Rank};
use store::{key_of, MAX_KEY};

/// TTL of records served stale (RFC 8767 recommends 30 s).
pub const STALE_TTL: u32 = 30;
/// Longest CNAME chain followed when picking the records to keep.
const MAX_CHAIN: usize = 16;

/// Cache settings (`--cache-size`, `--min-ttl`, `--max-ttl`, `--serve-stale`,
/// `--minimal-responses`, `--prefetch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most entries held (10000 by default; 0 means no cache at all).
    pub size: usize,
    /// TTLs below this are raised to it (0).
    pub min_ttl: u32,
    /// TTLs above this are lowered to it (86400).
    pub max_ttl: u32,
    /// Serve expired entries up to this many seconds past expiry when every upstream fails (off).
    pub serve_stale: Option<u32>,
    /// Authority and additional records only where the protocol needs them (true).
    pub minimal_responses: bool,
    /// Refresh an entry asked for in the last tenth of its TTL in the background (off).
    pub prefetch: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            size: 10_000,
            min_ttl: 0,
            max_ttl: 86_400,
            serve_stale: None,
            minimal_responses: true,
            prefetch: false,
        }
    }
}

/// The cache resolver. Clones share one store (one per worker, one store for all).
#[derive(Clone)]
pub struct Cache {
    store: Arc<Store>,
    config: CacheConfig,
}

impl Cache {
    /// A cache over `store`, shared with every other `Cache` made from the same `Arc`.
    pub fn new(store: Arc<Store>, config: CacheConfig) -> Cache {
        Cache { store, config }
    }

    /// A cache with its own store.
    pub fn with_config(config: CacheConfig) -> Cache {
        Cache::new(Arc::new(Store::new(config.size, 1)), config)
    }

    /// The shared store (size and counters).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn lookup<'b>(buf: &'b mut [u8; MAX_KEY], q: &Query<'_>) -> &'b [u8] {
        let flags = u8::from(q.dnssec_ok()) | u8::from(q.checking_disabled()) << 1;
        key_of(
            buf,
            q.qname().as_slice(),
            q.qtype().to_int(),
            q.qclass().to_int(),
            flags,
        )
    }

    /// Stores an answer worth caching: its RRsets, offered to the RRset cache, and the
    /// message made of the RRsets the cache holds after that. `None` if not worth caching.
    fn store_answer(
        &self,
        q: &Query<'_>,
        answer: &Answer,
        cx: &Context,
    ) -> Option<Arc<WireRecords>> {
        let rcode = answer.rcode;
        if rcode != Rcode::NOERROR.into() && rcode != Rcode::NXDOMAIN.into() {
            return None;
        }
        let chain = chain_records(q.qname(), q.qtype(), &answer.answer);
        let positive = rcode == Rcode::NOERROR.into()
            && chain
                .iter()
                .any(|rr| rr.rtype() == q.qtype() || q.qtype() == Rtype::ANY);
        let end = chain.last().map_or(q.qname(), |rr| rr.owner()).clone();
        let end = match chain.last().map(|rr| rr.data()) {
            Some(AllRecordData::Cname(c)) => c.cname().clone(),
            _ => end,
        };
        // Authority: NS, SOA and their DNSSEC records, owned by an ancestor of the chain's end.
        let authority: Vec<&Rr> = answer
            .authority
            .iter()
            .filter(|rr| {
                matches!(
                    rr.rtype(),
                    Rtype::NS | Rtype::SOA | Rtype::DS | Rtype::RRSIG | Rtype::NSEC | Rtype::NSEC3
                ) && (end.ends_with(rr.owner()) || q.qname().ends_with(rr.owner()))
            })
            .collect();
        let negative_ttl = if positive {
            None
        } else {
            // RFC 2308: negative (NXDOMAIN or NODATA) answers need the SOA; cache for min(TTL, MINIMUM).
            let soa = authority.iter().find(|rr| rr.rtype() == Rtype::SOA)?;
            let AllRecordData::Soa(data) = soa.data() else {
                return None;
            };
            Some(soa.ttl().as_secs().min(data.minimum().as_secs()))
        };
        let names = if answer.additional.is_empty() {
            Default::default()
        } else {
            let mut glue_for: Vec<&Rr> = chain.clone();
            glue_for.extend(authority.iter().filter(|rr| rr.rtype() == Rtype::NS));
            targets(&glue_for)
        };
        let additional: Vec<&Rr> = answer
            .additional
            .iter()
            .filter(|rr| {
                matches!(rr.rtype(), Rtype::A | Rtype::AAAA | Rtype::RRSIG)
                    && names.contains(&lower(rr.owner()))
            })
            .collect();

        let (min, max) = (self.config.min_ttl, self.config.max_ttl);
        let clamp = |ttl: u32| ttl.clamp(min, max.max(min));
        let now = self.store.rrsets.clock(cx.now());
        let refresh = cx.is_background();
        let rrsets = &self.store.rrsets;
        let answer_rank = if answer.upstream_authoritative {
            Rank::AuthoritativeAnswer
        } else {
            Rank::Answer
        };
        let offer = |set: &[&Rr], rank: Rank, negative: bool| {
            let capped = negative && negative_ttl.is_some();
            let built = RRset::build(set, rank, now, |ttl| match negative_ttl {
                Some(n) if capped => clamp(ttl.min(n)),
                _ => clamp(ttl),
            })?;
            if capped {
                // The copy capped by the negative TTL belongs to this answer alone: shared,
                // a positive answer's copy of the same SOA (TTL 3600, say) would replace
                // it and stretch the negative answer's life and its SOA's TTL.
                return Some(Arc::new(built));
            }
            Some(rrsets.offer(built, now, refresh))
        };
        // Served RRsets first, section by section; those only held for their rank after.
        let mut sets = Vec::with_capacity(chain.len() + authority.len() + additional.len());
        let mut held = Vec::new();
        for set in group(&chain) {
            sets.push(offer(&set, answer_rank, false)?);
        }
        let answers = sets.len();
        for set in group(&authority) {
            let negative_proof = matches!(
                set[0].rtype(),
                Rtype::SOA | Rtype::NSEC | Rtype::NSEC3 | Rtype::RRSIG
            );
            // The negative TTL bounds the negative part only: the SOA and the proofs of
            // the nonexistence (RFC 2308 5, RFC 9077), never the answer's CNAME chain.
            let set = offer(&set, Rank::Authority, negative_proof)?;
            if !self.config.minimal_responses || (!positive && negative_proof) {
                sets.push(set);
            } else {
                held.push(set);
            }
        }
        let authorities = sets.len() - answers;
        for set in group(&additional) {
            let set = offer(&set, Rank::Additional, false)?;
            if self.config.minimal_responses {
                held.push(set);
            } else {
                sets.push(set);
            }
        }
        let served = [
            u16::try_from(answers).ok()?,
            u16::try_from(authorities).ok()?,
            u16::try_from(sets.len() - answers - authorities).ok()?,
        ];
        sets.extend(held);
        let mut buf = [0u8; MAX_KEY];
        let entry = WireRecords::from_rrsets(
            Cache::lookup(&mut buf, q),
            sets,
            served,
            rcode,
            answer.authenticated,
            now,
        )?;
        if entry.ttl == 0 {
            return None;
        }
        Some(self.store.insert(entry))
    }

    /// The entry rebuilt from the current copies of its RRsets, once one was replaced;
    /// `None` (a miss) when one is no longer held.
    fn rebuild(&self, entry: &WireRecords, now: u32) -> Option<Arc<WireRecords>> {
        let mut sets = Vec::with_capacity(entry.rrsets.len());
        for set in entry.rrsets.iter() {
            if set.is_replaced() {
                sets.push(self.store.rrsets.current(set.key())?);
            } else {
                sets.push(set.clone());
            }
        }
        let mut key = [0u8; MAX_KEY];
        let rebuilt = WireRecords::from_rrsets(
            entry.write_key(&mut key),
            sets,
            entry.served,
            entry.rcode,
            entry.authenticated,
            now,
        )?;
        Some(self.store.insert(rebuilt))
    }
}

/// The answer records along the question's CNAME chain, in order: the rest is dropped.
fn chain_records<'a>(qname: &Name<Bytes>, qtype: Rtype, records: &'a [Rr]) -> Vec<&'a Rr> {
    let mut kept: Vec<&Rr> = Vec::with_capacity(records.len());
    let mut owner = qname.clone();
    for _ in 0..MAX_CHAIN {
        let mut next = None;
        // A DNAME owned by an ancestor of the current name comes before the CNAME it
        // synthesises (RFC 6672 3.1: validators need it, so a cached reply keeps it).
        let dname_above = |rr: &&Rr| {
            matches!(rr.data(), AllRecordData::Dname(_))
                && !rr.owner().name_eq(&owner)
                && owner.ends_with(rr.owner())
        };
        for rr in records.iter().filter(dname_above) {
            if !kept.iter().any(|k| std::ptr::eq(*k, rr)) {
                kept.push(rr);
            }
        }
        for rr in records.iter().filter(|rr| rr.owner().name_eq(&owner)) {
            if let AllRecordData::Cname(c) = rr.data() {
                if qtype != Rtype::CNAME && next.is_none() {
                    next = Some(c.cname().clone());
                }
            }
            if !kept.iter().any(|k| std::ptr::eq(*k, rr)) {
                kept.push(rr);
            }
        }
        match next {
            Some(target) if !target.name_eq(&owner) => owner = target,
            _ => break,
        }
    }
    kept
}

impl Resolver for Cache {
    fn name(&self) -> &str {
        "cache"
    }

    fn resolve(&mut self, q: &Query<'_>, cx: &mut Context) -> Resolution {
        let mut buf = [0u8; MAX_KEY];
        let key = Cache::lookup(&mut buf, q);
        let counters = &self.store.counters;
        let now = self.store.rrsets.clock(cx.now());
        let mut found = self.store.get(key);
        if let Some(entry) = &found {
            if entry.rrsets.iter().any(|set| set.is_replaced()) {
                found = self.rebuild(entry, now);
                if found.is_none() {
                    self.store.remove(key);
                }
            }
        }
        let Some(entry) = found else {
            counters.misses.fetch_add(1, Ordering::Relaxed);
            return Resolution::Pass;
        };
        let left = entry.remaining(now);
        if left > 0 {
            counters.hits.fetch_add(1, Ordering::Relaxed);
            if self.config.prefetch
                && left.saturating_mul(10) <= i64::from(entry.ttl)
                && !entry.prefetching.swap(true, Ordering::Relaxed)
            {
                counters.prefetches.fetch_add(1, Ordering::Relaxed);
                cx.ask_prefetch();
            }
            return Resolution::Prebuilt(Prebuilt {
                records: entry,
                ttls: Ttls::At(now),
            });
        }
        let keep_for_stale = self
            .config
            .serve_stale
            .is_some_and(|window| -left < i64::from(window));
        if !keep_for_stale {
            self.store.remove(key);
        }
        counters.misses.fetch_add(1, Ordering::Relaxed);
        Resolution::Pass
    }

    fn on_later_answer(
        &mut self,
        q: &Query<'_>,
        answer: &Answer,
        cx: &mut Context,
    ) -> Option<Resolution> {
        if answer.rcode == Rcode::SERVFAIL.into() {
            let window = self.config.serve_stale?;
            if cx.is_background() {
                return None;
            }
            let mut buf = [0u8; MAX_KEY];
            let entry = self.store.get(Cache::lookup(&mut buf, q))?;
            if -entry.remaining(self.store.rrsets.clock(cx.now())) >= i64::from(window) {
                return None;
            }
            self.store
                .counters
                .stale_served
                .fetch_add(1, Ordering::Relaxed);
            return Some(Resolution::Prebuilt(Prebuilt {
                records: entry,
                ttls: Ttls::Fixed(STALE_TTL),
            }));
        }
        if let Some(entry) = self.store_answer(q, answer, cx) {
            return Some(Resolution::Prebuilt(Prebuilt {
                records: entry,
                ttls: Ttls::At(self.store.rrsets.clock(cx.now())),
            }));
        }
        if self.config.minimal_responses
            && (!answer.additional.is_empty() || !answer.authority.is_empty())
        {
            // Not cached, but minimal all the same: the authority only for a negative answer.
            let mut minimal = answer.clone();
            minimal.additional.clear();
            let negative = minimal.answer.iter().all(|rr| rr.rtype() != q.qtype());
            if !negative {
                minimal.authority.clear();
            }
            return Some(Resolution::Answer(minimal));
        }
        None
    }
}
