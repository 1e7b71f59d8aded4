//! The infrastructure cache: what the recursor learnt of each authoritative server, per
//! server address and zone (as Unbound's `services/cache/infra.c`): its smoothed RTT and
//! retransmission timeout, whether it speaks EDNS, whether it is lame for the zone.
//! Bounded in entries (the oldest goes first) and expiring (`host_ttl` after creation).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The timeout given to a server never heard from (Unbound's `UNKNOWN_SERVER_NICENESS`).
pub(crate) const UNKNOWN_RTO_MS: u32 = 376;
/// The least retransmission timeout (Unbound's `RTT_MIN_TIMEOUT`).
pub(crate) const MIN_RTO_MS: u32 = 50;
/// The largest retransmission timeout (Unbound's `RTT_MAX_TIMEOUT`).
pub(crate) const MAX_RTO_MS: u32 = 120_000;

/// What is known of one server for one zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServerInfo {
    /// The retransmission timeout: a try waits this long.
    pub rto_ms: u32,
    /// It answered FORMERR to EDNS (or without OPT): asked without it.
    pub no_edns: bool,
    /// It answered REFUSED, SERVFAIL or NOTIMP, or referred up or sideways, or answered
    /// without authority: not asked for this zone until the entry expires.
    pub lame: bool,
    /// It answered as a recursive server does (RA without AA, Unbound's `rec_lame`):
    /// asked only when no other server is left.
    pub rec_lame: bool,
}

impl Default for ServerInfo {
    fn default() -> ServerInfo {
        ServerInfo {
            rto_ms: UNKNOWN_RTO_MS,
            no_edns: false,
            lame: false,
            rec_lame: false,
        }
    }
}

#[derive(Clone, Copy)]
struct Entry {
    info: ServerInfo,
    /// Smoothed RTT and its variance, in ms (RFC 6298); `None` before the first reply.
    srtt: Option<(u32, u32)>,
    expires: Instant,
}

type Key = (SocketAddr, Box<[u8]>);

#[derive(Default)]
struct Table {
    entries: HashMap<Key, Entry>,
    /// Keys in creation order, for eviction (a key may be here after its entry expired).
    order: VecDeque<Key>,
}

/// The shared infrastructure cache.
pub(crate) struct Infra {
    table: Mutex<Table>,
    max_entries: usize,
    host_ttl: Duration,
    /// Servers found lame so far (a counter).
    pub lame_marked: AtomicU64,
}

impl Infra {
    pub fn new(max_entries: usize, host_ttl: Duration) -> Infra {
        Infra {
            table: Mutex::new(Table::default()),
            max_entries: max_entries.max(1),
            host_ttl,
            lame_marked: AtomicU64::new(0),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // A poisoned lock only means another worker panicked mid-update of plain data.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What is known of `server` for `zone` (lower-cased wire name); defaults if nothing.
    pub fn get(&self, now: Instant, server: SocketAddr, zone: &[u8]) -> ServerInfo {
        let table = self.table();
        match table.entries.get(&(server, zone.into())) {
            Some(e) if e.expires > now => e.info,
            _ => ServerInfo::default(),
        }
    }

    /// Changes the entry of `server` for `zone`, made (or renewed, once expired) first.
    fn update(&self, now: Instant, server: SocketAddr, zone: &[u8], f: impl FnOnce(&mut Entry)) {
        let mut table = self.table();
        let key: Key = (server, zone.into());
        let fresh = Entry {
            info: ServerInfo::default(),
            srtt: None,
            expires: now + self.host_ttl,
        };
        if let Some(e) = table.entries.get_mut(&key) {
            if e.expires <= now {
                *e = fresh;
            }
            return f(e);
        }
        while table.entries.len() >= self.max_entries {
            let Some(old) = table.order.pop_front() else {
                break;
            };
            table.entries.remove(&old);
        }
        // Keys whose entries were evicted some other way never pile up beyond the bound.
        if table.order.len() >= self.max_entries.saturating_mul(2) {
            let Table { entries, order } = &mut *table;
            order.retain(|k| entries.contains_key(k));
        }
        let mut e = fresh;
        f(&mut e);
        table.order.push_back(key.clone());
        table.entries.insert(key, e);
    }

    /// A reply came after `rtt`: the smoothed RTT and the timeout follow (RFC 6298).
    pub fn replied(&self, now: Instant, server: SocketAddr, zone: &[u8], rtt: Duration) {
        let rtt = u32::try_from(rtt.as_millis()).unwrap_or(u32::MAX);
        self.update(now, server, zone, |e| {
            let (srtt, var) = match e.srtt {
                None => (rtt, rtt / 2),
                Some((srtt, var)) => {
                    let var = (3 * u64::from(var) + u64::from(srtt.abs_diff(rtt))) / 4;
                    let srtt = (7 * u64::from(srtt) + u64::from(rtt)) / 8;
                    (srtt as u32, var as u32)
                }
            };
            e.srtt = Some((srtt, var));
            e.info.rto_ms = srtt
                .saturating_add(var.saturating_mul(4))
                .clamp(MIN_RTO_MS, MAX_RTO_MS);
        });
    }

    /// A try timed out: the timeout doubles (exponential backoff).
    pub fn timed_out(&self, now: Instant, server: SocketAddr, zone: &[u8]) {
        self.update(now, server, zone, |e| {
            e.info.rto_ms = e.info.rto_ms.saturating_mul(2).min(MAX_RTO_MS);
        });
    }

    /// The server is lame for `zone`.
    pub fn lame(&self, now: Instant, server: SocketAddr, zone: &[u8]) {
        self.lame_marked.fetch_add(1, Ordering::Relaxed);
        let until = now + self.host_ttl; // remembered a full host TTL from now
        self.update(now, server, zone, |e| {
            e.info.lame = true;
            e.expires = until;
        });
    }

    /// The server answers as a recursive server for `zone`.
    pub fn rec_lame(&self, now: Instant, server: SocketAddr, zone: &[u8]) {
        self.update(now, server, zone, |e| e.info.rec_lame = true);
    }

    /// The server does not speak EDNS.
    pub fn no_edns(&self, now: Instant, server: SocketAddr, zone: &[u8]) {
        self.update(now, server, zone, |e| e.info.no_edns = true);
    }

    /// Entries held, and how many of them mark a lame server.
    pub fn counts(&self) -> (usize, usize) {
        let table = self.table();
        let lame = table
            .order
            .iter()
            .filter(|k| table.entries.get(*k).is_some_and(|e| e.info.lame))
            .count();
        (table.entries.len(), lame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, n], 53))
    }

    #[test]
    fn rtt_backoff_lameness_bound_and_expiry() {
        #[allow(clippy::disallowed_methods)] // a test: any start will do
        let t0 = Instant::now();
        let infra = Infra::new(2, Duration::from_secs(900));
        assert_eq!(infra.get(t0, addr(1), b"\0").rto_ms, UNKNOWN_RTO_MS);
        infra.replied(t0, addr(1), b"\0", Duration::from_millis(20));
        assert_eq!(infra.get(t0, addr(1), b"\0").rto_ms, MIN_RTO_MS.max(60));
        infra.timed_out(t0, addr(2), b"\0");
        assert_eq!(infra.get(t0, addr(2), b"\0").rto_ms, 2 * UNKNOWN_RTO_MS);
        infra.lame(t0, addr(2), b"\0");
        assert!(infra.get(t0, addr(2), b"\0").lame);
        assert!(
            !infra.get(t0, addr(2), b"\x03com\0").lame,
            "lameness is per zone"
        );
        assert_eq!(infra.counts(), (2, 1));
        infra.no_edns(t0, addr(3), b"\0"); // the oldest (addr 1) goes
        assert_eq!(infra.counts().0, 2);
        assert_eq!(infra.get(t0, addr(1), b"\0"), ServerInfo::default());
        let later = t0 + Duration::from_secs(901);
        assert_eq!(infra.get(later, addr(2), b"\0"), ServerInfo::default());
    }
}
