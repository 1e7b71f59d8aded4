//! A fast, unkeyed hasher for maps whose keys the server makes itself (its own ids,
//! tokens and ports) or loads from trusted files (zone and hosts data). Maps that an
//! attacker fills with keys of his choosing (the cache, in-flight questions) keep std's
//! keyed SipHash against hash flooding.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`MixHasher`].
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;
/// A `HashSet` with [`MixHasher`].
pub type FastSet<K> = HashSet<K, BuildHasherDefault<MixHasher>>;

/// Multiplicative mixing of the written words (the FxHash scheme).
#[derive(Clone, Copy, Debug, Default)]
pub struct MixHasher(u64);

const SEED: u64 = 0x517c_c1b7_2722_0a95;

impl MixHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn equal_keys_hash_equal_and_nearby_keys_spread() {
        let b = BuildHasherDefault::<MixHasher>::default();
        assert_eq!(
            b.hash_one(b"www.example.com"),
            b.hash_one(b"www.example.com")
        );
        // hashbrown picks the bucket with the low bits and tags it with the top 7.
        let low: std::collections::BTreeSet<u64> =
            (0u64..1000).map(|i| b.hash_one(i) & 1023).collect();
        assert_eq!(low.len(), 1000, "sequential ids land in distinct buckets");
        let top: std::collections::BTreeSet<u64> =
            (0u64..1000).map(|i| b.hash_one(i) >> 57).collect();
        assert!(top.len() >= 100, "{} distinct tags of 128", top.len());
    }
}
