//! Zone and hosts files: read before any socket is bound (a failure stops `names serve`
//! with one line naming the file and line), and re-read on SIGHUP.
//!
//! The core reads no files: this module reads them and hands the text to
//! `names_core::zone::load_zone` / `names_core::hosts::Hosts::parse`, resolving each
//! `$INCLUDE` relative to the file that names it. The parsed data goes into a
//! [`Snapshot`] shared by every worker; a reload stores a new snapshot, so queries in
//! flight finish on the data they started with and none is dropped. A file that fails
//! to reload keeps its old data serving, and the error is logged on one line.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_signal::{Signal, Signals};
use bytes::Bytes;
use names_core::domain::base::Name;
use names_core::hosts::Hosts;
use names_core::zone::{load_zone, Snapshot, Zone, ZoneSet};
use names_shell::secondary::Publish;
use smol::stream::StreamExt;

/// Reads and parses one zone file (and its includes).
pub fn read_zone(path: &str) -> Result<Zone, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read zone file {path}: {e}"))?;
    let mut include = |inc: &str, from: &str| -> Result<(String, String), String> {
        let full = if Path::new(inc).is_absolute() {
            PathBuf::from(inc)
        } else {
            Path::new(from).parent().unwrap_or(Path::new("")).join(inc)
        };
        let name = full.display().to_string();
        std::fs::read_to_string(&full)
            .map(|text| (name.clone(), text))
            .map_err(|e| format!("cannot read $INCLUDE file {name}: {e}"))
    };
    load_zone(path, &text, &mut include).map_err(|e| e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(l) => l,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Reads and parses a hosts file.
pub fn read_hosts(path: &str) -> Result<Hosts, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read hosts file {path}: {e}"))?;
    Hosts::parse(path, &text).map_err(|e| e.to_string())
}

/// The local data being served and where it came from.
pub struct Data {
    /// Shared by every worker's zone resolver; `None` without `--zone`.
    pub zones: Option<Snapshot<ZoneSet>>,
    /// Shared by every worker's hosts resolver; `None` without `--hosts`.
    pub hosts: Option<Snapshot<Hosts>>,
    zone_paths: Vec<String>,
    hosts_path: Option<String>,
    /// The last zone that loaded from each path, in `zone_paths` order.
    loaded: Mutex<Vec<Arc<Zone>>>,
    /// The secondary zones served, and the origins of those not served (SERVFAIL).
    secondaries: Mutex<Vec<Arc<Zone>>>,
    unavailable: Option<Snapshot<Vec<Name<Bytes>>>>,
    /// Versions of each zone whose differences are kept for IXFR (`--ixfr-versions`).
    ixfr_versions: usize,
    /// Where zones whose serial a reload changed are told (`--notify`).
    notify: Option<smol::channel::Sender<crate::notify::Changes>>,
}

impl Data {
    /// Loads every file; the first failure is the error.
    pub fn load(zone_paths: Vec<String>, hosts_path: Option<String>) -> Result<Data, String> {
        let loaded = zone_paths
            .iter()
            .map(|p| read_zone(p).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let zones = if zone_paths.is_empty() {
            None
        } else {
            Some(Snapshot::new(ZoneSet::from_shared(loaded.clone())?))
        };
        let hosts = match &hosts_path {
            Some(p) => Some(Snapshot::new(read_hosts(p)?)),
            None => None,
        };
        Ok(Data {
            zones,
            hosts,
            zone_paths,
            hosts_path,
            loaded: Mutex::new(loaded),
            secondaries: Mutex::new(Vec::new()),
            unavailable: None,
            ixfr_versions: 0,
            notify: None,
        })
    }

    /// Adds secondary zones, none served yet. One that is also a `--zone` is an error.
    pub fn with_secondaries(mut self, origins: Vec<Name<Bytes>>) -> Result<Data, String> {
        if origins.is_empty() {
            return Ok(self);
        }
        if let Some(zones) = &self.zones {
            for zone in zones.load().zones() {
                if origins.iter().any(|o| o == zone.origin()) {
                    return Err(format!(
                        "the zone {} is both a --zone ({}) and a --secondary",
                        zone.origin().fmt_with_dot(),
                        zone.source()
                    ));
                }
            }
        }
        self.zones
            .get_or_insert_with(|| Snapshot::new(ZoneSet::default()));
        self.unavailable = Some(Snapshot::new(origins));
        Ok(self)
    }

    /// The origins of the secondary zones not served now, when there are secondaries.
    pub fn unavailable(&self) -> Option<Snapshot<Vec<Name<Bytes>>>> {
        self.unavailable.clone()
    }

    /// Serves a secondary zone's new data, or stops serving it: a new zone set for every
    /// worker, as a reload stores.
    pub fn publish_secondary(&self, change: Publish) {
        let (Some(zones), Some(unavailable)) = (&self.zones, &self.unavailable) else {
            return;
        };
        let loaded = lock(&self.loaded);
        let mut secondaries = lock(&self.secondaries);
        let origin = match &change {
            Publish::Serve(zone, _) => zone.origin().clone(),
            Publish::Expire(origin) => origin.clone(),
        };
        secondaries.retain(|z| z.origin() != &origin);
        let mut down: Vec<Name<Bytes>> = unavailable.load().to_vec();
        down.retain(|o| o != &origin);
        match change {
            Publish::Serve(zone, _) => secondaries.push(zone),
            Publish::Expire(origin) => down.push(origin),
        }
        match ZoneSet::from_shared(loaded.iter().chain(secondaries.iter()).cloned().collect()) {
            Ok(set) => zones.store(set),
            Err(e) => log::error!("secondary zone {}: {e}", origin.fmt_with_dot()),
        }
        unavailable.store(down);
    }

    /// Tells `changes` about every zone whose serial a reload changes.
    pub fn notify_to(mut self, changes: smol::channel::Sender<crate::notify::Changes>) -> Data {
        self.notify = Some(changes);
        self
    }

    /// Every zone's origin and SOA.
    pub fn current_soas(&self) -> crate::notify::Changes {
        let Some(zones) = &self.zones else {
            return Vec::new();
        };
        let set = zones.load();
        set.zones()
            .iter()
            .map(|z| (z.origin().clone(), z.soa().clone()))
            .collect()
    }

    /// Keeps the differences of up to `n` versions of each zone across reloads, for IXFR.
    pub fn keep_ixfr_versions(mut self, n: usize) -> Data {
        self.ixfr_versions = n;
        self
    }

    /// Re-reads every file. A file that fails keeps its old data; each failure is one
    /// error line. Returns how many files failed.
    pub fn reload(&self) -> usize {
        let mut failed = 0;
        if let Some(zones) = &self.zones {
            let mut loaded = lock(&self.loaded);
            let mut next = loaded.clone();
            for (slot, path) in next.iter_mut().zip(&self.zone_paths) {
                match read_zone(path) {
                    Ok(zone) => *slot = Arc::new(zone),
                    Err(e) => {
                        failed += 1;
                        log::error!("reload: {e} (keeping the zone loaded before)");
                    }
                }
            }
            let secondaries = lock(&self.secondaries).clone();
            match ZoneSet::from_shared(next.iter().chain(&secondaries).cloned().collect()) {
                Ok(set) => {
                    let before = zones.load();
                    let changed: crate::notify::Changes = set
                        .zones()
                        .iter()
                        .filter(|z| {
                            before
                                .zone_at(z.origin())
                                .is_none_or(|b| b.serial() != z.serial())
                        })
                        .map(|z| (z.origin().clone(), z.soa().clone()))
                        .collect();
                    zones.store(set.with_history_from(&before, self.ixfr_versions));
                    if let Some(notify) = self.notify.as_ref().filter(|_| !changed.is_empty()) {
                        let _ = notify.try_send(changed);
                    }
                    *loaded = next;
                }
                Err(e) => {
                    failed += 1;
                    log::error!("reload: {e} (keeping the zones loaded before)");
                }
            }
        }
        if let (Some(hosts), Some(path)) = (&self.hosts, &self.hosts_path) {
            match read_hosts(path) {
                Ok(h) => hosts.store(h),
                Err(e) => {
                    failed += 1;
                    log::error!("reload: {e} (keeping the hosts loaded before)");
                }
            }
        }
        let summary = self.summary();
        if self.is_empty() {
            log::info!("reload: nothing to reload (no --zone or --hosts given)");
        } else if failed == 0 {
            log::info!("reloaded: {summary}");
        } else {
            log::info!("reloaded with {failed} error(s): {summary}");
        }
        failed
    }

    /// `zone example.com. serial 3, ...` for the log.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(zones) = &self.zones {
            for z in zones.load().zones() {
                parts.push(format!(
                    "zone {} serial {}",
                    z.origin().fmt_with_dot(),
                    z.serial()
                ));
            }
        }
        if let Some(hosts) = &self.hosts {
            parts.push(format!("hosts {} names", hosts.load().names()));
        }
        parts.join(", ")
    }

    /// Whether there is anything to reload.
    pub fn is_empty(&self) -> bool {
        self.zones.is_none() && self.hosts.is_none()
    }

    /// Installs the SIGHUP handler (call before binding sockets, so a SIGHUP sent after
    /// the ready line never finds the default action, which would end the process) and
    /// reloads on a thread of its own each time the signal comes.
    pub fn reload_on_sighup(self: Arc<Self>) -> io::Result<()> {
        let mut signals = Signals::new([Signal::Hup])?;
        std::thread::Builder::new()
            .name("names-reload".into())
            .spawn(move || {
                smol::block_on(async {
                    while let Some(signal) = signals.next().await {
                        if signal.is_ok() {
                            names_shell::systemd::reloading();
                            self.reload();
                            names_shell::systemd::ready("reloaded");
                        }
                    }
                })
            })?;
        Ok(())
    }
}
