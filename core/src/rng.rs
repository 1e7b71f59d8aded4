//! The core's only source of randomness: a ChaCha20 CSPRNG seeded by the caller.
//!
//! Upstream IDs and source ports must be unguessable (RFC 5452), so this is a CSPRNG,
//! never a fast PCG, and never the global RNG.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Seeded random numbers for IDs and ports.
pub struct Rng(ChaCha20Rng);

/// Lowest source port drawn for upstream queries (below it are well-known ports).
pub const MIN_PORT: u16 = 1024;

impl Rng {
    pub fn new(seed: [u8; 32]) -> Rng {
        Rng(ChaCha20Rng::from_seed(seed))
    }

    /// A uniformly random message ID.
    pub fn id(&mut self) -> u16 {
        self.0.next_u32() as u16
    }

    /// A uniformly random 64-bit number.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniformly random source port in `MIN_PORT..=65535`.
    pub fn port(&mut self) -> u16 {
        let span = u32::from(u16::MAX - MIN_PORT) + 1;
        MIN_PORT + (self.0.next_u32() % span) as u16
    }
}
