//! Authoritative data: zones loaded from master files, answered per RFC 1034 4.3.2,
//! transferred with AXFR, and swapped whole on reload.
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
mod index;
mod load;

pub use answer::{ZoneSet, MAX_CNAME_CHAIN};
pub use axfr::{Cidr, ZoneResolver};
pub use index::Zone;
pub use load::{load_zone, Include, LoadError};

use std::sync::{Arc, RwLock};

/// Data shared by every worker and replaced whole on reload. A reader takes the
/// current `Arc` once per query, so a reload never changes data under a query.
pub struct Snapshot<T> {
    current: Arc<RwLock<Arc<T>>>,
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
            current: Arc::new(RwLock::new(Arc::new(value))),
        }
    }

    /// The current data.
    pub fn load(&self) -> Arc<T> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the data; readers holding the old `Arc` keep it until they finish.
    pub fn store(&self, value: T) {
        let value = Arc::new(value);
        match self.current.write() {
            Ok(mut guard) => *guard = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Snapshot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Snapshot").field(&self.load()).finish()
    }
}
