//! `names serve`: flags -> core configuration and chain, then the runtime.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use names_core::cache::CacheConfig;
use names_core::config::MAX_OPEN_TRIES;
use names_core::hosts::Hosts;
use names_core::journal::Header;
use names_core::notify::NotifyTarget;
use names_core::recursor::{RecursorConfig, RootHints};
use names_core::secondary::{Limits, SecondaryZone};
use names_core::setup::Setup;
use names_core::zone::{Cidr, TransferRule};
use names_core::zone::{Snapshot, ZoneSet};
use names_core::{parse_server, tsig, Config, ConfigError, ForwardRoute, SynthRule};
use names_shell::record::Recording;
use names_shell::{parse_listen, resolv_conf, Options};

use crate::cli::Serve;
use crate::config_file;
use crate::reload;
use crate::replay;
use crate::secondaries::Secondaries;

const DEFAULT_LISTEN: &str = "127.0.0.1:10053";
const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
/// `--record-max-bytes` unless given: 1 GiB.
const DEFAULT_RECORD_MAX_BYTES: u64 = 1 << 30;
/// What a journal keeps of each `--tsig-key` secret: base64 of "redacted".
const REDACTED_SECRET: &str = "cmVkYWN0ZWQ=";
/// `--ixfr-versions` unless given.
const DEFAULT_IXFR_VERSIONS: usize = 16;

/// What the flags say, checked.
struct Plan {
    options: Options,
    synth: Vec<SynthRule>,
    upstreams: Vec<SocketAddr>,
    routes: Vec<ForwardRoute>,
    recursion: Option<Recursion>,
    cache: CacheConfig,
    log_level: log::LevelFilter,
    zones: Vec<String>,
    hosts: Option<String>,
    allow_transfer: Vec<TransferRule>,
    ixfr_versions: usize,
    notify: Vec<NotifyTarget>,
    /// `--secondary`, `--allow-notify`, `--zone-dir`, `--max-transfer-bytes`.
    secondaries: Secondaries,
    /// `--record FILE` and `--record-max-bytes`.
    record: Option<(String, u64)>,
    /// The settings that rebuild the chain, as TOML (for the journal's header).
    settings: String,
    /// Whether `--max-inflight` / `--max-tcp` were given (else they may be lowered to fit
    /// the file descriptor limit).
    explicit_limits: (bool, bool),
}

/// A flag value that fails: the key it came from (`None` for a failure of several keys
/// together), and why.
struct Bad(Option<&'static str>, ConfigError);

/// Names the key of a failing value.
fn key<T>(key: &'static str, r: Result<T, ConfigError>) -> Result<T, Bad> {
    r.map_err(|e| Bad(Some(key), e))
}

/// The flags with `--config FILE` under them, checked; a value that fails and came from
/// the config file is named with the file and its key.
fn checked_plan(flags: Serve) -> Result<Plan, String> {
    let Some(path) = flags.config.clone() else {
        return plan(flags, &read_disk).map_err(|Bad(_, e)| e.to_string());
    };
    let (flags, from_file) = config_file::load(&path)?.under(flags);
    plan(flags, &read_disk).map_err(|Bad(key, e)| match key {
        Some(key) if from_file.contains(&key) => {
            format!("config file {path}: key {key:?}: {e}")
        }
        _ => e.to_string(),
    })
}

/// `names check-config FILE`: loads and checks the file as `names serve --config FILE`
/// would, without binding anything.
pub fn check_config(path: &str) -> Result<ExitCode, String> {
    let flags = Serve {
        config: Some(path.to_string()),
        ..Serve::default()
    };
    let plan = checked_plan(flags)?;
    // The zone and hosts files it names must load too, as `serve` would load them.
    reload::Data::load(plan.zones, plan.hosts)?;
    println!("names: {path}: ok");
    Ok(ExitCode::SUCCESS)
}

pub fn run(flags: Serve) -> Result<ExitCode, String> {
    let plan = checked_plan(flags)?;
    names_shell::logging::init(plan.log_level);
    let Plan {
        mut options,
        synth,
        upstreams,
        routes,
        recursion,
        cache,
        log_level: _,
        zones,
        hosts,
        allow_transfer,
        ixfr_versions,
        notify,
        secondaries,
        record,
        settings,
        explicit_limits,
    } = plan;
    fit_descriptor_limit(&mut options, explicit_limits);
    if let Some((path, max_bytes)) = record {
        let mut header = Header {
            names_version: env!("CARGO_PKG_VERSION").to_string(),
            workers: u16::try_from(options.workers).unwrap_or(u16::MAX),
            config: options.config.clone(),
            settings: settings.into_bytes(),
            files: replay::gather_files(&zones, hosts.as_deref())?,
        };
        // The root hints too, so a replay resolves from the hints recorded.
        if let Some(path) = recursion.as_ref().and_then(|r| r.hints_file.clone()) {
            let text = read_disk(&path)?;
            header.files.push((path, text));
        }
        let recording = Recording::start(&path, max_bytes, &header)
            .map_err(|e| format!("cannot record: {e}"))?;
        options.record = Some(recording);
    }
    // Local data is loaded before any socket is bound; SIGHUP re-reads it. The handler is
    // installed even with nothing to reload: SIGHUP's default action ends the process.
    let origins: Vec<_> = secondaries.zones.iter().map(|z| z.origin.clone()).collect();
    let mut data = reload::Data::load(zones, hosts)?
        .keep_ixfr_versions(ixfr_versions)
        .with_secondaries(origins)?;
    if !notify.is_empty() {
        let changes = crate::notify::start(notify, options.tsig_keys.clone())
            .map_err(|e| format!("cannot start notifying: {e}"))?;
        // Every zone at start (as NSD and Knot), once the sockets are bound.
        let all = data.current_soas();
        let startup = changes.clone();
        options.on_ready = Some(names_shell::OnReady::new(move || {
            let _ = startup.try_send(all.clone());
        }));
        data = data.notify_to(changes);
    }
    let data = Arc::new(data);
    data.clone()
        .reload_on_sighup()
        .map_err(|e| format!("cannot watch SIGHUP: {e}"))?;
    // One setup shared by every worker: the zones and hosts a reload replaces, and one
    // cache store (an answer cached by one worker is a hit on all).
    let chain = Sources {
        synth,
        upstreams,
        routes,
        recursion,
        cache,
        allow_transfer,
    };
    if let Some(recursion) = &chain.recursion {
        log::info!("{}", recursion.describe());
    }
    let mut setup = chain.setup(options.workers, data.zones.clone(), data.hosts.clone());
    if let Some(unavailable) = data.unavailable() {
        setup = setup.unavailable(unavailable);
    }
    let setup = Arc::new(setup);
    secondaries.start(&mut options, &data)?;
    if setup.cache_stats().is_some() || setup.recursor_stats().is_some() {
        let setup = setup.clone();
        options.cache_probe = Some(names_shell::CacheProbe::adding(move |stats| {
            if let Some(cache) = setup.cache_stats() {
                stats.set_cache(cache);
            }
            if let Some(recursor) = setup.recursor_stats() {
                stats.set_recursor(recursor);
            }
        }));
    }
    let make_chain = move || setup.build();
    names_shell::serve(options, make_chain).map_err(|e| format!("cannot serve: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// `--recursive`: the recursor's settings, and where its root hints came from.
pub struct Recursion {
    pub config: RecursorConfig,
    /// The `--root-hints` file, or `None` for the hints built in.
    pub hints_file: Option<String>,
}

impl Recursion {
    /// What the startup log says about the hints: where from, how many servers.
    fn describe(&self) -> String {
        let hints = &self.config.root_hints;
        format!(
            "recursion from {} root servers ({} addresses) of {}{}",
            hints.servers().len(),
            hints.addresses(self.config.port).len(),
            self.hints_file
                .as_deref()
                .unwrap_or("the IANA root hints built in"),
            if self.config.query_localhost {
                ", loopback servers asked"
            } else {
                ""
            }
        )
    }
}

/// What the chain is built from besides the zone and hosts data.
pub struct Sources {
    pub synth: Vec<SynthRule>,
    pub upstreams: Vec<SocketAddr>,
    pub routes: Vec<ForwardRoute>,
    pub recursion: Option<Recursion>,
    pub cache: CacheConfig,
    pub allow_transfer: Vec<TransferRule>,
}

impl Sources {
    /// The one setup shared by every worker: zones, hosts, synth, cache (one store for
    /// `workers` workers), forwarder. `names serve` and `names replay` build it alike.
    pub fn setup(
        self,
        workers: usize,
        zones: Option<Snapshot<ZoneSet>>,
        hosts: Option<Snapshot<Hosts>>,
    ) -> Setup {
        let mut setup = Setup::new()
            .allow_transfer(self.allow_transfer)
            .synth(self.synth)
            .cache(self.cache, workers)
            .forward_to(self.upstreams)
            .forward_zones(self.routes);
        if let Some(recursion) = self.recursion {
            setup = setup.recurse(recursion.config);
        }
        if let Some(zones) = zones {
            setup = setup.zones(zones);
        }
        if let Some(hosts) = hosts {
            setup = setup.hosts(hosts);
        }
        setup
    }
}

/// Reads a file the flags name (a root hints file): from disk, or from a journal.
pub type ReadFile<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// A file from disk, the error one line naming it.
fn read_disk(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

/// The settings of a journal's header, checked as `names serve` checks its flags (the
/// files they name read by `read`): the chain's sources and the number of workers.
pub fn replay_sources(
    settings: &str,
    read: ReadFile<'_>,
) -> Result<(Sources, Vec<String>, Option<String>), String> {
    let flags = config_file::parse("the journal's settings", settings)?
        .under(Serve::default())
        .0;
    let plan = plan(flags, read).map_err(|Bad(_, e)| format!("the journal's settings: {e}"))?;
    Ok((
        Sources {
            synth: plan.synth,
            upstreams: plan.upstreams,
            routes: plan.routes,
            recursion: plan.recursion,
            cache: plan.cache,
            allow_transfer: plan.allow_transfer,
        },
        plan.zones,
        plan.hosts,
    ))
}

/// Raises the soft file descriptor limit to the hard one, and makes sure the connection and
/// in-flight limits fit in it: a limit not given on the command line is lowered to fit
/// (logged); one given is kept, with a warning naming what to raise.
fn fit_descriptor_limit(options: &mut Options, (explicit_inflight, explicit_tcp): (bool, bool)) {
    let (before, limit) = match names_shell::net::raise_fd_limit() {
        Ok(limits) => limits,
        Err(e) => return log::warn!("cannot raise the file descriptor limit: {e}"),
    };
    if limit > before {
        log::info!("file descriptor limit raised from {before} to {limit}");
    }
    // Listening sockets, the metrics listener, and each worker's poller and wakers.
    let reserve = 64 + options.listen.len() * (options.workers + 1) * 2;
    let available = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(reserve);
    let config = &mut options.config;
    if config.descriptors_needed() <= available {
        return;
    }
    if !explicit_tcp {
        config.max_tcp = config.max_tcp.min(available / 4).max(1);
    }
    if !explicit_inflight {
        let left = available.saturating_sub(config.max_tcp);
        config.max_exchanges = (left / MAX_OPEN_TRIES).max(1);
    }
    if config.descriptors_needed() <= available {
        log::warn!(
            "file descriptor limit {limit}: --max-inflight {} and --max-tcp {} to fit (raise it with ulimit -n)",
            config.max_exchanges,
            config.max_tcp
        );
    } else {
        log::warn!(
            "file descriptor limit {limit}: --max-inflight {} and --max-tcp {} may need {} descriptors; raise the limit (ulimit -n) or lower them",
            config.max_exchanges,
            config.max_tcp,
            config.descriptors_needed() + reserve
        );
    }
}

/// The secondary zones' flags, checked.
fn secondaries(f: &Serve, keys: &tsig::KeyRing) -> Result<Secondaries, Bad> {
    let zones: Vec<SecondaryZone> = key(
        "secondary",
        f.secondary
            .iter()
            .map(|s| SecondaryZone::parse(s, keys))
            .collect(),
    )?;
    for (i, z) in zones.iter().enumerate() {
        if zones[..i].iter().any(|o| o.origin == z.origin) {
            let e = ConfigError::new(format!(
                "--secondary: the zone {} is given twice",
                z.origin.fmt_with_dot()
            ));
            return Err(Bad(Some("secondary"), e));
        }
    }
    let allow_notify = key(
        "allow_notify",
        f.allow_notify
            .iter()
            .map(|c| {
                Cidr::parse(c)
                    .map_err(|e| ConfigError::new(format!("--allow-notify {}", e.message)))
            })
            .collect(),
    )?;
    for (given, name, flag) in [
        (!f.allow_notify.is_empty(), "allow_notify", "--allow-notify"),
        (f.zone_dir.is_some(), "zone_dir", "--zone-dir"),
        (
            f.max_transfer_bytes.is_some(),
            "max_transfer_bytes",
            "--max-transfer-bytes",
        ),
    ] {
        if given && zones.is_empty() {
            let e = ConfigError::new(format!("{flag} needs --secondary ZONE=PRIMARY"));
            return Err(Bad(Some(name), e));
        }
    }
    let mut limits = Limits::default();
    if let Some(max) = f.max_transfer_bytes {
        if max == 0 {
            let e = ConfigError::new("--max-transfer-bytes must be at least 1");
            return Err(Bad(Some("max_transfer_bytes"), e));
        }
        limits.max_transfer_bytes = max;
    }
    Ok(Secondaries {
        zones,
        allow_notify,
        zone_dir: f.zone_dir.clone(),
        limits,
    })
}

fn plan(f: Serve, read: ReadFile<'_>) -> Result<Plan, Bad> {
    // The flags as the journal's header keeps them (without those about this process).
    let mut settings = toml::Value::try_from(&f)
        .ok()
        .and_then(|v| v.as_table().cloned())
        .unwrap_or_default();
    for k in [
        "record",
        "record_max_bytes",
        "config",
        "metrics",
        "resolv_conf",
        // The secondary zones' machine is not recorded: a replay serves without it.
        "secondary",
        "allow_notify",
        "zone_dir",
        "max_transfer_bytes",
    ] {
        settings.remove(k);
    }
    // Secrets stay out of journals: the key names stay (rules name them), the secrets do not.
    let redacted = f.tsig_key.iter().map(|k| {
        let name_and_algorithm = k.rsplit_once(':').map_or(k.as_str(), |(head, _)| head);
        toml::Value::from(format!("{name_and_algorithm}:{REDACTED_SECRET}"))
    });
    settings.insert("tsig_key".into(), toml::Value::Array(redacted.collect()));
    if f.record.is_none() && f.record_max_bytes.is_some() {
        let e = ConfigError::new("--record-max-bytes needs --record FILE");
        return Err(Bad(Some("record_max_bytes"), e));
    }
    let tsig_keys = f
        .tsig_key
        .iter()
        .map(|k| tsig::Key::parse(k))
        .collect::<Result<Vec<_>, _>>()
        .and_then(tsig::KeyRing::from_keys);
    let tsig_keys = key("tsig_key", tsig_keys)?;
    let secondaries = secondaries(&f, &tsig_keys)?;
    let record = f
        .record
        .clone()
        .map(|p| (p, f.record_max_bytes.unwrap_or(DEFAULT_RECORD_MAX_BYTES)));
    let routes = key(
        "forward",
        f.forward.iter().map(|r| ForwardRoute::parse(r)).collect(),
    )?;
    let recursion = recursion(&f, read)?;
    let listen = if f.listen.is_empty() {
        vec![DEFAULT_LISTEN.to_string()]
    } else {
        f.listen
    };
    let listen = key("listen", listen.iter().map(|l| parse_listen(l)).collect())?;
    let synth = key(
        "synth",
        f.synth.iter().map(|s| SynthRule::parse(s)).collect(),
    )?;
    let upstreams = if f.no_forward || recursion.is_some() {
        Vec::new()
    } else if !f.upstream.is_empty() {
        key(
            "upstream",
            f.upstream.iter().map(|u| parse_server(u)).collect(),
        )?
    } else {
        let path = f.resolv_conf.as_deref().unwrap_or(DEFAULT_RESOLV_CONF);
        key("resolv_conf", resolv_conf(path))?
    };
    // The upstreams as resolved here, so a replay does not read resolv.conf.
    let resolved = upstreams.iter().map(|u| toml::Value::from(u.to_string()));
    settings.insert("upstream".into(), toml::Value::Array(resolved.collect()));
    let no_forward = upstreams.is_empty() && recursion.is_none();
    settings.insert("no_forward".into(), toml::Value::from(no_forward));
    let defaults = Config::default();
    let ms = |v: Option<u64>, d: Duration| v.map(Duration::from_millis).unwrap_or(d);
    let config = Config {
        budget: ms(f.timeout, defaults.budget),
        try_timeout: ms(f.try_timeout, defaults.try_timeout),
        tcp_idle: ms(f.tcp_idle_ms, defaults.tcp_idle),
        max_tcp: f.max_tcp.unwrap_or(defaults.max_tcp),
        max_tcp_per_client: f
            .max_tcp_per_client
            .unwrap_or(defaults.max_tcp_per_client)
            .max(1),
        max_pipelined: f.max_pipelined.unwrap_or(defaults.max_pipelined).max(1),
        max_tcp_buffered: f.max_tcp_buffered.unwrap_or(defaults.max_tcp_buffered),
        max_exchanges: f.max_inflight.unwrap_or(defaults.max_exchanges),
        max_waiting: f.max_waiting.unwrap_or(defaults.max_waiting),
        max_lookups: defaults.max_lookups,
        edns_udp_size: defaults.edns_udp_size,
        log_queries: f.log_queries,
    };
    for (zero, name) in [
        (config.budget.is_zero(), "timeout"),
        (config.try_timeout.is_zero(), "try_timeout"),
    ] {
        if zero {
            let e = ConfigError::new("--timeout and --try-timeout must be at least 1 ms");
            return Err(Bad(Some(name), e));
        }
    }
    let allow_transfer = if f.allow_transfer.is_empty() {
        TransferRule::loopback()
    } else {
        key(
            "allow_transfer",
            f.allow_transfer
                .iter()
                .map(|c| TransferRule::parse(c))
                .collect(),
        )?
    };
    let notify: Vec<NotifyTarget> = key(
        "notify",
        f.notify.iter().map(|n| NotifyTarget::parse(n)).collect(),
    )?;
    let needed = allow_transfer.iter().map(|r| ("allow_transfer", &r.key));
    let needed = needed.chain(notify.iter().map(|t: &NotifyTarget| ("notify", &t.key)));
    for (flag, name) in needed {
        if let Some(name) = name.as_ref().filter(|n| tsig_keys.get(*n).is_none()) {
            let e = ConfigError::new(format!(
                "--{}: no --tsig-key named {name}",
                flag.replace('_', "-")
            ));
            return Err(Bad(Some(flag), e));
        }
    }
    let cache_defaults = CacheConfig::default();
    let cache = CacheConfig {
        size: f.cache_size.unwrap_or(cache_defaults.size),
        min_ttl: f.min_ttl.unwrap_or(cache_defaults.min_ttl),
        max_ttl: f.max_ttl.unwrap_or(cache_defaults.max_ttl),
        serve_stale: f.serve_stale,
        minimal_responses: f
            .minimal_responses
            .unwrap_or(cache_defaults.minimal_responses),
        prefetch: f.prefetch,
    };
    if cache.min_ttl > cache.max_ttl {
        return Err(Bad(
            None,
            ConfigError::new("--min-ttl must not be larger than --max-ttl"),
        ));
    }
    // One worker per CPU unless told otherwise.
    let workers = f
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(64)));
    if workers == 0 || workers > 256 {
        return Err(Bad(
            Some("workers"),
            ConfigError::new("--workers must be between 1 and 256"),
        ));
    }
    let metrics = f.metrics.as_deref().map(|m| {
        m.parse()
            .map_err(|_| ConfigError::new(format!("--metrics {m:?} is not an IP:PORT address")))
    });
    let metrics = key("metrics", metrics.transpose())?;
    let log_level = names_shell::logging::parse_level(f.log_level.as_deref().unwrap_or("info"))
        .map_err(ConfigError::new);
    let log_level = key("log_level", log_level)?;
    Ok(Plan {
        options: Options {
            listen,
            workers,
            config,
            metrics,
            cache_probe: None,
            record: None,
            notify: None,
            secondary_probe: None,
            tsig_keys,
            on_ready: None,
        },
        synth,
        upstreams,
        routes,
        recursion,
        cache,
        zones: f.zone,
        hosts: f.hosts,
        allow_transfer,
        ixfr_versions: f.ixfr_versions.unwrap_or(DEFAULT_IXFR_VERSIONS),
        notify,
        secondaries,
        record,
        settings: settings.to_string(),
        explicit_limits: (f.max_inflight.is_some(), f.max_tcp.is_some()),
        log_level,
    })
}

/// `--recursive` and the flags that go with it, checked: one clear line for a flag that
/// contradicts it or needs it.
fn recursion(f: &Serve, read: ReadFile<'_>) -> Result<Option<Recursion>, Bad> {
    if !f.recursive {
        for (given, flag, key) in [
            (f.root_hints.is_some(), "--root-hints", "root_hints"),
            (f.query_localhost, "--query-localhost", "query_localhost"),
        ] {
            if given {
                let e = ConfigError::new(format!("{flag} needs --recursive"));
                return Err(Bad(Some(key), e));
            }
        }
        return Ok(None);
    }
    for (given, flag, key) in [
        (!f.upstream.is_empty(), "--upstream", "upstream"),
        (f.resolv_conf.is_some(), "--resolv-conf", "resolv_conf"),
        (f.no_forward, "--no-forward", "no_forward"),
    ] {
        if given {
            let e = ConfigError::new(format!(
                "{flag} and --recursive exclude each other: a recursive server asks the root name servers (--forward ZONE=ADDR sends a zone's names elsewhere)"
            ));
            return Err(Bad(Some(key), e));
        }
    }
    let root_hints = match &f.root_hints {
        Some(path) => key("root_hints", read_root_hints(path, read))?,
        None => RootHints::iana(),
    };
    Ok(Some(Recursion {
        config: RecursorConfig {
            root_hints,
            query_localhost: f.query_localhost,
            ..RecursorConfig::default()
        },
        hints_file: f.root_hints.clone(),
    }))
}

/// Reads and parses a root hints file; an error names the file and its line
/// (`FILE:LINE: what`).
fn read_root_hints(path: &str, read: ReadFile<'_>) -> Result<RootHints, ConfigError> {
    let text = read(path).map_err(|e| ConfigError::new(format!("root hints: {e}")))?;
    RootHints::parse(&text).map_err(|e| {
        let message = e.to_string();
        let at_line = message.strip_prefix("root hints line ").and_then(|rest| {
            let (line, what) = rest.split_once(": ")?;
            Some(format!("{path}:{line}: {what}"))
        });
        let whole = message.strip_prefix("root hints: ").unwrap_or(&message);
        ConfigError::new(at_line.unwrap_or_else(|| format!("{path}: {whole}")))
    })
}
