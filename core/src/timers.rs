//! Deadlines behind `poll_timeout` / `handle_timeout`: an ordered map, so the next one
//! is the first key.

use std::collections::BTreeMap;
use std::time::Instant;

/// A key that names one armed timer, so it can be cancelled.
pub(crate) type TimerKey = (Instant, u64);

pub(crate) struct Timers<T> {
    map: BTreeMap<TimerKey, T>,
    seq: u64,
}

impl<T> Timers<T> {
    pub fn new() -> Self {
        Timers {
            map: BTreeMap::new(),
            seq: 0,
        }
    }

    pub fn arm(&mut self, at: Instant, what: T) -> TimerKey {
        self.seq += 1;
        let key = (at, self.seq);
        self.map.insert(key, what);
        key
    }

    pub fn cancel(&mut self, key: TimerKey) {
        self.map.remove(&key);
    }

    pub fn next(&self) -> Option<Instant> {
        self.map.keys().next().map(|k| k.0)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        let entry = self.map.first_entry()?;
        if entry.key().0 <= now {
            Some(entry.remove())
        } else {
            None
        }
    }
}

/// What a server timer wakes up for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// An exchange's per-try timeout.
    Try(u64),
    /// An exchange's total budget.
    Budget(u64),
    /// A lookup's budget.
    Lookup(u64),
    /// A client TCP connection's idle deadline.
    TcpIdle(crate::action::ConnId),
    /// Under connection pressure: close the connections idle for the short timeout.
    TcpSweep,
}
