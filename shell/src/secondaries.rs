//! `names serve --secondary`: the secondary machine started beside the workers, the
//! zones it brings published like a reload, and saved in `--zone-dir`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use names_core::secondary::{master_file, Limits, NotifyPolicy, Secondary, SecondaryZone};
use names_core::zone::{Cidr, Zone};
use names_shell::secondary::{NotifyRoute, Publish, SecondaryProbe, NOTIFY_QUEUE};
use names_shell::Options;

use crate::reload::{self, Data};

/// The secondary zones' settings, checked.
pub struct Secondaries {
    pub zones: Vec<SecondaryZone>,
    pub allow_notify: Vec<Cidr>,
    pub zone_dir: Option<String>,
    pub limits: Limits,
}

impl Secondaries {
    /// Starts the machine's thread (nothing without `--secondary`): the saved copies in
    /// `--zone-dir` are served at once, and the workers pass their NOTIFYs on.
    pub fn start(self, options: &mut Options, data: &Arc<Data>) -> Result<(), String> {
        if self.zones.is_empty() {
            return Ok(());
        }
        let dir = self.zone_dir.map(PathBuf::from);
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("--zone-dir {}: {e}", dir.display()))?;
        }
        let (to, notified) = smol::channel::bounded(NOTIFY_QUEUE);
        options.notify = Some(NotifyRoute {
            policy: NotifyPolicy::new(&self.zones, self.allow_notify),
            to,
        });
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no OS randomness: {e}"))?;
        let now = Instant::now();
        let mut machine = Secondary::new(self.zones.clone(), self.limits, seed, now);
        // TSIG signs with wall-clock seconds; the machine derives them from this reading.
        machine.set_unix_time(now, names_shell::unix_now());
        if let Some(dir) = &dir {
            for zone in &self.zones {
                if let Some(saved) = saved_copy(dir, zone) {
                    machine.preload(now, saved);
                }
            }
        }
        let probe = SecondaryProbe::default();
        options.secondary_probe = Some(probe.clone());
        let data = data.clone();
        let publish = move |p: Publish| {
            if let (Publish::Serve(zone, true), Some(dir)) = (&p, &dir) {
                save(dir, zone);
            }
            data.publish_secondary(p);
        };
        names_shell::secondary::spawn(machine, notified, probe, Box::new(publish))
            .map_err(|e| format!("cannot start the secondary zones' thread: {e}"))
    }
}

/// `ZONE.zone` in `dir`, the zone's name in lowercase with every character but letters,
/// digits, `.`, `-` and `_` (a `/` in an escaped label, say) written `_`; the root zone
/// is `root.zone`.
fn file_of(dir: &Path, origin: &names_core::domain::base::Name<bytes::Bytes>) -> PathBuf {
    let name = origin.to_string().to_ascii_lowercase();
    let name: String = name
        .trim_end_matches('.')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = if name.is_empty() || name.starts_with('.') {
        format!("root{name}")
    } else {
        name
    };
    dir.join(format!("{name}.zone"))
}

/// The copy saved before, if there is one that loads and is the zone asked for.
fn saved_copy(dir: &Path, zone: &SecondaryZone) -> Option<Zone> {
    let path = file_of(dir, &zone.origin);
    if !path.exists() {
        return None;
    }
    match reload::read_zone(&path.display().to_string()) {
        Ok(saved) if saved.origin() == &zone.origin => {
            log::info!(
                "zone {}: serial {} loaded from {}",
                zone.origin.fmt_with_dot(),
                saved.serial(),
                path.display()
            );
            Some(saved)
        }
        Ok(other) => {
            log::warn!(
                "{} holds the zone {}, not {}: ignored",
                path.display(),
                other.origin().fmt_with_dot(),
                zone.origin.fmt_with_dot()
            );
            None
        }
        Err(e) => {
            log::warn!("{e}: ignored, the zone is transferred afresh");
            None
        }
    }
}

/// Writes the zone to its file atomically: a temporary file, then a rename over the old.
fn save(dir: &Path, zone: &Zone) {
    let path = file_of(dir, zone.origin());
    let tmp = path.with_extension("zone.tmp");
    let written =
        std::fs::write(&tmp, master_file(zone)).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        log::warn!(
            "cannot save the zone {} to {}: {e}",
            zone.origin().fmt_with_dot(),
            path.display()
        );
    }
}
