//! The cache resolver: repeated questions answered from memory.
//!
//! It is filled from the answers of the resolvers after it (the forwarder), the way
//! Unbound or dnsmasq do.
//!
//! - Keyed by lower-cased name, type, class, DO and CD.
//! - Served TTLs count down by whole seconds spent in the cache; an entry is never served
//!   at or past its TTL (except serve-stale, RFC 8767, with TTL 30).
//! - Negative answers (NXDOMAIN, NODATA) are cached for min(SOA TTL, SOA MINIMUM), RFC 2308,
//!   and served with that SOA. Without an SOA they are not cached.
//! - SERVFAIL and other failures are never cached (no hold-down).
//! - Only the answer's own chain is kept: answer records owned by the question name or a
//!   CNAME/DNAME target along it, and the SOA for negative answers. The additional section
//!   and unrelated records are dropped, so an upstream cannot plant data for other names.
//! - Bounded by an exact entry count, least recently used out first ([`Store`]).
//!
//! A cache hit is a [`crate::Prebuilt`] answer: its records are copied into the
//! reply, not encoded again.

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
use store::{key_of, MAX_KEY};

/// TTL of records served stale (RFC 8767 recommends 30 s).
pub const STALE_TTL: u32 = 30;
/// Longest CNAME chain followed when picking the records to keep.
const MAX_CHAIN: usize = 16;

/// Cache settings (`--cache-size`, `--min-ttl`, `--max-ttl`, `--serve-stale`).
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
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            size: 10_000,
            min_ttl: 0,
            max_ttl: 86_400,
            serve_stale: None,
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

    /// The entry for an answer worth caching, or `None`.
    fn entry_for(&self, q: &Query<'_>, answer: &Answer, cx: &Context) -> Option<WireRecords> {
        let rcode = answer.rcode;
        if rcode != Rcode::NOERROR.into() && rcode != Rcode::NXDOMAIN.into() {
            return None;
        }
        let chain = chain_records(q.qname(), q.qtype(), &answer.answer);
        let positive = chain
            .iter()
            .any(|rr| rr.rtype() == q.qtype() || q.qtype() == Rtype::ANY);
        let soa = if positive && rcode == Rcode::NOERROR.into() {
            None
        } else {
            // RFC 2308: negative (NXDOMAIN or NODATA) answers need the SOA; cache for min(TTL, MINIMUM).
            let soa = answer
                .authority
                .iter()
                .find(|rr| rr.rtype() == Rtype::SOA)?;
            let AllRecordData::Soa(data) = soa.data() else {
                return None;
            };
            let target = chain.last().map_or(q.qname(), |rr| rr.owner());
            if !(target.ends_with(soa.owner())) {
                return None; // an SOA from outside the question's tree
            }
            Some((soa, soa.ttl().as_secs().min(data.minimum().as_secs())))
        };
        let (min, max) = (self.config.min_ttl, self.config.max_ttl);
        let authority: Vec<&Rr> = soa.iter().map(|(rr, _)| *rr).collect();
        let negative_ttl = soa.map(|(_, ttl)| ttl);
        let mut buf = [0u8; MAX_KEY];
        let entry = WireRecords::build(
            Cache::lookup(&mut buf, q),
            q.qname(),
            &chain,
            &authority,
            rcode,
            answer.authenticated,
            false,
            Some(cx.now()),
            |ttl| {
                let ttl = negative_ttl.map_or(ttl, |n| ttl.min(n));
                ttl.clamp(min, max.max(min))
            },
        )?;
        (entry.ttl > 0).then_some(entry)
    }
}

/// The answer records along the question's CNAME chain, in order: the rest is dropped.
fn chain_records<'a>(qname: &Name<Bytes>, qtype: Rtype, records: &'a [Rr]) -> Vec<&'a Rr> {
    let mut kept: Vec<&Rr> = Vec::with_capacity(records.len());
    let mut owner = qname.clone();
    for _ in 0..MAX_CHAIN {
        let mut next = None;
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
        match self.store.get(key) {
            Some(entry) => {
                let age = entry.age(cx.now());
                if age < entry.ttl {
                    counters.hits.fetch_add(1, Ordering::Relaxed);
                    return Resolution::Prebuilt(Prebuilt {
                        records: entry,
                        ttls: Ttls::CountDown { age },
                    });
                }
                let keep_for_stale = self
                    .config
                    .serve_stale
                    .is_some_and(|window| age < entry.ttl.saturating_add(window));
                if !keep_for_stale {
                    self.store.remove(key);
                }
                counters.misses.fetch_add(1, Ordering::Relaxed);
                Resolution::Pass
            }
            None => {
                counters.misses.fetch_add(1, Ordering::Relaxed);
                Resolution::Pass
            }
        }
    }

    fn on_later_answer(
        &mut self,
        q: &Query<'_>,
        answer: &Answer,
        cx: &mut Context,
    ) -> Option<Resolution> {
        if answer.rcode == Rcode::SERVFAIL.into() {
            let window = self.config.serve_stale?;
            let mut buf = [0u8; MAX_KEY];
            let entry = self.store.get(Cache::lookup(&mut buf, q))?;
            if entry.age(cx.now()) >= entry.ttl.saturating_add(window) {
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
        if let Some(entry) = self.entry_for(q, answer, cx) {
            self.store.insert(entry);
        }
        None
    }
}
