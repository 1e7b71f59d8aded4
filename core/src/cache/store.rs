//! The cache's storage: a fixed-capacity LRU map, sharded behind mutexes so workers
//! share one cache. The bound is exact: shard capacities add up to the configured size.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::rrset::RRsets;
use crate::fasthash::FastMap;
use crate::wire::WireRecords as Entry;

/// Longest key: a 255-byte name, type, class and flags.
pub(crate) const MAX_KEY: usize = 255 + 5;

/// Writes the key of a question into `buf` and returns it.
pub(crate) fn key_of<'b>(
    buf: &'b mut [u8; MAX_KEY],
    name: &[u8],
    qtype: u16,
    qclass: u16,
    flags: u8,
) -> &'b [u8] {
    let n = put_name_type_class(buf, &name[..name.len().min(255)], qtype, qclass);
    buf[n] = flags;
    &buf[..n + 1]
}

/// Writes `name` lower-cased, then `rtype` and `class`, at the start of `buf` (which has
/// room for them): the beginning of every cache key, of messages and of RRsets alike.
/// Returns the bytes written.
pub(crate) fn put_name_type_class(buf: &mut [u8], name: &[u8], rtype: u16, class: u16) -> usize {
    let n = name.len();
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    buf[n..n + 2].copy_from_slice(&rtype.to_be_bytes());
    buf[n + 2..n + 4].copy_from_slice(&class.to_be_bytes());
    n + 4
}

const NIL: u32 = u32::MAX;

struct Node {
    /// `None` once removed (the slot waits on the free list).
    entry: Option<Arc<Entry>>,
    prev: u32,
    next: u32,
}

/// One LRU list: a slab of nodes linked most recent first, and an index by the keyed
/// (SipHash) hash of the entry's key. The entry itself is checked against the key asked
/// for, so two keys of one hash (a 2^-64 chance, not one an attacker can aim at) only
/// cost a miss and one of them its place: the key is stored once, in the entry, or not at
/// all when it is the first RRset's owner.
struct Lru {
    capacity: usize,
    index: FastMap<u64, u32>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
}

impl Lru {
    fn new(capacity: usize) -> Lru {
        Lru {
            capacity,
            index: FastMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.nodes[i as usize].prev, self.nodes[i as usize].next);
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        self.nodes[i as usize].prev = NIL;
        self.nodes[i as usize].next = self.head;
        if self.head != NIL {
            self.nodes[self.head as usize].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn get(&mut self, hash: u64, key: &[u8]) -> Option<Arc<Entry>> {
        let i = *self.index.get(&hash)?;
        if !self.nodes[i as usize].entry.as_ref()?.has_key(key) {
            return None;
        }
        self.unlink(i);
        self.push_front(i);
        self.nodes[i as usize].entry.clone()
    }

    /// Inserts or replaces; returns whether an older entry was evicted to make room.
    /// `hash_of` gives the hash of an entry evicted.
    fn insert(&mut self, hash: u64, entry: Arc<Entry>, hash_of: impl Fn(&Entry) -> u64) -> bool {
        if let Some(&i) = self.index.get(&hash) {
            self.nodes[i as usize].entry = Some(entry);
            self.unlink(i);
            self.push_front(i);
            return false;
        }
        if self.index.len() >= self.capacity {
            let victim = self.tail;
            self.unlink(victim);
            if let Some(old) = self.nodes[victim as usize].entry.replace(entry) {
                self.index.remove(&hash_of(&old));
            }
            self.index.insert(hash, victim);
            self.push_front(victim);
            return true;
        }
        let node = Node {
            entry: Some(entry),
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        self.index.insert(hash, i);
        self.push_front(i);
        false
    }

    fn remove(&mut self, hash: u64, key: &[u8]) {
        let Some(&i) = self.index.get(&hash) else {
            return;
        };
        if self.nodes[i as usize]
            .entry
            .as_ref()
            .is_some_and(|e| e.has_key(key))
        {
            self.index.remove(&hash);
            self.unlink(i);
            self.nodes[i as usize].entry = None;
            self.free.push(i);
        }
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}

/// Counters of a cache, shared by every worker using it.
#[derive(Debug, Default)]
pub(crate) struct CacheCounters {
    /// Lookups answered from the cache.
    pub hits: AtomicU64,
    /// Lookups the cache could not answer.
    pub misses: AtomicU64,
    /// Answers stored.
    pub inserts: AtomicU64,
    /// Entries dropped to make room (least recently used first).
    pub evictions: AtomicU64,
    /// Expired answers served because every upstream failed (serve-stale).
    pub stale_served: AtomicU64,
    /// Background refreshes asked for (prefetch).
    pub prefetches: AtomicU64,
}

/// A snapshot of a cache's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups the cache could not answer.
    pub misses: u64,
    /// Answers stored.
    pub inserts: u64,
    /// Entries dropped to make room (least recently used first).
    pub evictions: u64,
    /// Expired answers served because every upstream failed (serve-stale).
    pub stale_served: u64,
    /// Background refreshes asked for (prefetch).
    pub prefetches: u64,
    /// Entries (messages) held now.
    pub entries: u64,
    /// RRsets held now, shared by the entries.
    pub rrsets: u64,
}

/// The shared store: `capacity` entries (messages) at most, over all shards, and the RRsets
/// they are built from.
pub struct Store {
    shards: Box<[Mutex<Lru>]>,
    pub(crate) rrsets: RRsets,
    hasher: std::hash::RandomState,
    capacity: usize,
    pub(crate) counters: CacheCounters,
}

impl Store {
    /// A store of exactly `capacity` entries (at least 1) split over `shards` shards.
    pub fn new(capacity: usize, shards: usize) -> Store {
        let capacity = capacity.max(1);
        let shards = shards.clamp(1, capacity);
        let per = capacity / shards;
        let extra = capacity % shards;
        Store {
            shards: (0..shards)
                .map(|i| Mutex::new(Lru::new(per + usize::from(i < extra))))
                .collect(),
            rrsets: RRsets::new(shards),
            hasher: std::hash::RandomState::new(),
            capacity,
            counters: CacheCounters::default(),
        }
    }

    /// The keyed hash of a key given as its name and last bytes.
    fn hash(&self, name: &[u8], tail: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(name);
        h.write(tail);
        h.finish()
    }

    fn hash_key(&self, key: &[u8]) -> u64 {
        let (name, tail) = key.split_at(key.len().saturating_sub(5));
        self.hash(name, tail)
    }

    fn hash_of(&self, entry: &Entry) -> u64 {
        self.hash(entry.key_name(), entry.key_tail())
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Lru> {
        let i = (hash as usize) % self.shards.len();
        // A poisoned shard only means another worker panicked mid-update of plain data.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<Arc<Entry>> {
        let hash = self.hash_key(key);
        self.shard(hash).get(hash, key)
    }

    /// Stores `entry` (replacing one of the same key) and returns it, shared.
    pub(crate) fn insert(&self, entry: Entry) -> Arc<Entry> {
        let entry = Arc::new(entry);
        let hash = self.hash_of(&entry);
        let evicted = self
            .shard(hash)
            .insert(hash, entry.clone(), |old| self.hash_of(old));
        self.counters.inserts.fetch_add(1, Ordering::Relaxed);
        if evicted {
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
        }
        entry
    }

    pub(crate) fn remove(&self, key: &[u8]) {
        let hash = self.hash_key(key);
        self.shard(hash).remove(hash, key);
    }

    /// Entries held now, over all shards.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The counters and the current size.
    pub fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            inserts: c.inserts.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            stale_served: c.stale_served.load(Ordering::Relaxed),
            prefetches: c.prefetches.load(Ordering::Relaxed),
            entries: self.len() as u64,
            rrsets: self.rrsets.live() as u64,
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests may read the clock for a fixed epoch
mod tests {
    use super::*;

    fn key_ref(n: u8) -> Vec<u8> {
        vec![1, n, 0, 0, 1, 0, 1, 0]
    }

    fn entry(n: u8) -> Entry {
        Entry::test_entry(&key_ref(n))
    }

    #[test]
    fn lru_evicts_least_recently_used_at_exact_bound() {
        let store = Store::new(3, 1);
        for n in 0..3 {
            store.insert(entry(n));
        }
        assert!(store.get(&key_ref(0)).is_some()); // 0 is now most recent; 1 is least
        store.insert(entry(3));
        assert_eq!(store.len(), 3);
        assert!(store.get(&key_ref(1)).is_none());
        assert!(
            store.get(&key_ref(0)).is_some()
                && store.get(&key_ref(2)).is_some()
                && store.get(&key_ref(3)).is_some()
        );
        assert_eq!(store.stats().evictions, 1);
    }

    #[test]
    fn sharded_bound_is_exact() {
        for capacity in [1, 2, 3, 7, 64, 100] {
            let store = Store::new(capacity, 8);
            for n in 0..=255u8 {
                store.insert(entry(n));
                assert!(store.len() <= capacity);
            }
            assert!(store.len() <= capacity);
        }
    }

    #[test]
    fn remove_frees_the_slot() {
        let store = Store::new(2, 1);
        store.insert(entry(1));
        store.remove(&key_ref(1));
        assert!(store.get(&key_ref(1)).is_none());
        store.insert(entry(2));
        store.insert(entry(3));
        assert_eq!(store.len(), 2);
        assert_eq!(store.stats().evictions, 0);
    }
}
