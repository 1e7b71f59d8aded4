//! Authoritative data: zones loaded from master files.
//!
//! They are answered per RFC 1034 4.3.2, transferred with AXFR and IXFR (a reload keeps
//! the differences from the versions before: [`ZoneSet::with_history_from`]), and swapped
//! whole on reload.
//!
//! The core reads no files: [`load_zone`] takes the text (and a callback for
//! `$INCLUDE`s); the runtime reads the files and, on reload, stores a new
//! [`ZoneSet`] into the [`Snapshot`] that every worker's [`ZoneResolver`] shares.
//!
//! ```
//! use names_core::zone::{load_zone, Snapshot, ZoneResolver, ZoneSet};
//! let text = "example.com. 3600 IN SOA ns1 host 1 7200 900 1209600 300\nwww 300 A 192.0.2.1\n";
//! let zone = load_zone("example.zone", text, &mut |_, _| Err("no includes".into())).unwrap();
//! assert_eq!((zone.serial(), zone.record_count()), (1, 2));
//! let zones = Snapshot::new(ZoneSet::new(vec![zone]).unwrap());
//! let _resolver = ZoneResolver::new(zones.clone());
//! // Later, on reload: zones.store(new_set); queries in flight keep the old snapshot.
//! ```

mod answer;
mod axfr;
mod entries;
mod index;
mod ixfr;
mod load;
mod presentation;
mod serial;

pub use answer::{ZoneSet, MAX_CNAME_CHAIN};
pub use axfr::{Cidr, TransferRule, ZoneResolver};
pub use index::Zone;
pub use ixfr::{Diff, History};
pub use load::{load_zone, Include, LoadError};
pub use serial::Serial;

use std::sync::{Arc, RwLock};

/// Data shared by every worker and replaced whole on reload. A reader takes the
/// current `Arc` once per query, so a reload never changes data under a query.
///
/// Each stored value has a generation number, so a reader that keeps something derived
/// from the data (the zone resolver's encoded answers) can tell it is stale. An address
/// cannot tell: a new value may be allocated where a freed one was.
pub struct Snapshot<T> {
    current: Arc<RwLock<Versioned<T>>>,
}

struct Versioned<T> {
    generation: u64,
    value: Arc<T>,
}

impl<T> Clone for Snapshot<T> {
    fn clone(&self) -> Self {
        Snapshot {
            current: self.current.clone(),
        }
    }
}

impl<T> Snapshot<T> {
    /// A snapshot holding `value` until it is replaced.
    pub fn new(value: T) -> Snapshot<T> {
        Snapshot {
            current: Arc::new(RwLock::new(Versioned {
                generation: 0,
                value: Arc::new(value),
            })),
        }
    }

    /// The current data.
    pub fn load(&self) -> Arc<T> {
        self.load_versioned().1
    }

    /// The current data's generation (0 at first, one more on every store) and the data.
    pub fn load_versioned(&self) -> (u64, Arc<T>) {
        let read = |v: &Versioned<T>| (v.generation, v.value.clone());
        match self.current.read() {
            Ok(guard) => read(&guard),
            Err(poisoned) => read(&poisoned.into_inner()),
        }
    }

    /// Replaces the data; readers holding the old `Arc` keep it until they finish.
    pub fn store(&self, value: T) {
        let value = Arc::new(value);
        let replace = |v: &mut Versioned<T>| {
            v.generation += 1;
            v.value = value;
        };
        match self.current.write() {
            Ok(mut guard) => replace(&mut guard),
            Err(poisoned) => replace(&mut poisoned.into_inner()),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Snapshot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Snapshot").field(&self.load()).finish()
    }
}
