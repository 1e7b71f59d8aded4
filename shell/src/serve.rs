//! `names serve`: flags -> core configuration and chain, then the runtime.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use names_core::cache::{Cache, CacheConfig, Store};
use names_core::config::MAX_OPEN_TRIES;
use names_core::hosts::HostsResolver;
use names_core::zone::{Cidr, ZoneResolver};
use names_core::{parse_server, Chain, Config, Forwarder, Synth, SynthRule};
use names_shell::{parse_listen, resolv_conf, Options};

use argh::FromArgs;

use crate::cli::Serve;
use crate::config_file::{self, FileArgs};
use crate::reload;

const DEFAULT_LISTEN: &str = "127.0.0.1:10053";
const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

/// What the flags say, checked.
struct Plan {
    options: Options,
    synth: Vec<SynthRule>,
    upstreams: Vec<SocketAddr>,
    cache: CacheConfig,
    log_level: log::LevelFilter,
    zones: Vec<String>,
    hosts: Option<String>,
    allow_transfer: Vec<Cidr>,
    /// Whether `--max-inflight` / `--max-tcp` were given (else they may be lowered to fit
    /// the file descriptor limit).
    explicit_limits: (bool, bool),
}

/// How `names serve` is named to the flag parser.
const SERVE: &[&str] = &["names", "serve"];

/// The flags after `names serve` on this process's command line.
fn command_line() -> Vec<String> {
    std::env::args().skip(2).collect()
}

/// The flags with `--config FILE` applied: the file's keys, replaced by the flags given on
/// the command line (`cli`, the raw arguments after `serve`).
fn merged(flags: Serve, cli: &[String]) -> Result<(Serve, Option<FileArgs>), String> {
    let Some(path) = flags.config.as_deref() else {
        return Ok((flags, None));
    };
    let file = config_file::load::<Serve>(path, SERVE)?;
    let args = file.merge(cli);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let flags = Serve::from_args(SERVE, &args)
        .map_err(|e| format!("config file {path}: {}", e.output.trim()))?;
    Ok((flags, Some(file)))
}

/// Checks the flags; a value that fails and came from the config file is named with the
/// file and its key.
fn checked_plan(flags: Serve, file: Option<&FileArgs>, cli: &[String]) -> Result<Plan, String> {
    plan(flags).map_err(|e| match file {
        Some(file) => blame(file, cli).unwrap_or_else(|| e.to_string()),
        None => e.to_string(),
    })
}

/// The first file key (not replaced on the command line) whose value fails on its own.
fn blame(file: &FileArgs, cli: &[String]) -> Option<String> {
    for (key, args) in &file.keys {
        let flag = format!("--{}", key.replace('_', "-"));
        if cli.contains(&flag) {
            continue;
        }
        let mut alone = args.clone();
        if !matches!(key.as_str(), "upstream" | "resolv_conf" | "no_forward") {
            alone.push("--no-forward".into()); // so no resolv.conf is read for it
        }
        let alone: Vec<&str> = alone.iter().map(String::as_str).collect();
        if let Ok(flags) = Serve::from_args(SERVE, &alone) {
            if let Err(e) = plan(flags) {
                return Some(format!("config file {}: key {key:?}: {e}", file.path));
            }
        }
    }
    None
}

/// `names check-config FILE`: loads and checks the file as `names serve --config FILE`
/// would, without binding anything.
pub fn check_config(path: &str) -> Result<ExitCode, String> {
    let cli = vec!["--config".to_string(), path.to_string()];
    let flags = Serve {
        config: Some(path.to_string()),
        ..Serve::default()
    };
    let (flags, file) = merged(flags, &cli)?;
    let plan = checked_plan(flags, file.as_ref(), &cli)?;
    // The zone and hosts files it names must load too, as `serve` would load them.
    reload::Data::load(plan.zones, plan.hosts)?;
    println!("names: {path}: ok");
    Ok(ExitCode::SUCCESS)
}

pub fn run(flags: Serve) -> Result<ExitCode, String> {
    let cli = command_line();
    let (flags, file) = merged(flags, &cli)?;
    let plan = checked_plan(flags, file.as_ref(), &cli)?;
    names_shell::logging::init(plan.log_level);
    let Plan {
        mut options,
        synth,
        upstreams,
        cache,
        log_level: _,
        zones,
        hosts,
        allow_transfer,
        explicit_limits,
    } = plan;
    fit_descriptor_limit(&mut options, explicit_limits);
    // Local data is loaded before any socket is bound; SIGHUP re-reads it. The handler is
    // installed even with nothing to reload: SIGHUP's default action ends the process.
    let data = Arc::new(reload::Data::load(zones, hosts)?);
    data.clone()
        .reload_on_sighup()
        .map_err(|e| format!("cannot watch SIGHUP: {e}"))?;
    let (zones, hosts) = (data.zones.clone(), data.hosts.clone());
    let upstreams: Arc<[SocketAddr]> = upstreams.into();
    // One store shared by every worker: an answer cached by one is a hit on all.
    let store = (cache.size > 0 && !upstreams.is_empty())
        .then(|| Arc::new(Store::new(cache.size, options.workers)));
    options.cache_probe = store.clone().map(|store| {
        names_shell::CacheProbe::new(move || {
            let s = store.stats();
            names_shell::CacheCounts {
                hits: s.hits,
                misses: s.misses,
                evictions: s.evictions,
                inserts: s.inserts,
                stale_served: s.stale_served,
                entries: s.entries,
            }
        })
    });
    let make_chain = move || {
        let mut chain = Chain::new();
        if let Some(zones) = &zones {
            chain =
                chain.with(ZoneResolver::new(zones.clone()).allow_transfer(allow_transfer.clone()));
        }
        if let Some(hosts) = &hosts {
            chain = chain.with(HostsResolver::new(hosts.clone()));
        }
        if !synth.is_empty() {
            chain = chain.with(Synth::new(synth.clone()));
        }
        if let Some(store) = &store {
            chain = chain.with(Cache::new(store.clone(), cache));
        }
        if !upstreams.is_empty() {
            chain = chain.with(Forwarder::new(upstreams.clone()));
        }
        chain
    };
    names_shell::serve(options, make_chain).map_err(|e| format!("cannot serve: {e}"))?;
    Ok(ExitCode::SUCCESS)
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

fn plan(f: Serve) -> Result<Plan, names_core::ConfigError> {
    let listen = if f.listen.is_empty() {
        vec![DEFAULT_LISTEN.to_string()]
    } else {
        f.listen
    };
    let listen = listen
        .iter()
        .map(|l| parse_listen(l))
        .collect::<Result<Vec<_>, _>>()?;
    let synth = f
        .synth
        .iter()
        .map(|s| SynthRule::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let upstreams = if f.no_forward {
        Vec::new()
    } else if !f.upstream.is_empty() {
        f.upstream
            .iter()
            .map(|u| parse_server(u))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        resolv_conf(f.resolv_conf.as_deref().unwrap_or(DEFAULT_RESOLV_CONF))?
    };
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
        edns_udp_size: defaults.edns_udp_size,
        log_queries: f.log_queries,
    };
    if config.budget.is_zero() || config.try_timeout.is_zero() {
        return Err(names_core::ConfigError::new(
            "--timeout and --try-timeout must be at least 1 ms",
        ));
    }
    let allow_transfer = if f.allow_transfer.is_empty() {
        Cidr::loopback()
    } else {
        f.allow_transfer
            .iter()
            .map(|c| Cidr::parse(c))
            .collect::<Result<Vec<_>, _>>()?
    };
    let cache_defaults = CacheConfig::default();
    let cache = CacheConfig {
        size: f.cache_size.unwrap_or(cache_defaults.size),
        min_ttl: f.min_ttl.unwrap_or(cache_defaults.min_ttl),
        max_ttl: f.max_ttl.unwrap_or(cache_defaults.max_ttl),
        serve_stale: f.serve_stale,
    };
    if cache.min_ttl > cache.max_ttl {
        return Err(names_core::ConfigError::new(
            "--min-ttl must not be larger than --max-ttl",
        ));
    }
    // One worker per CPU unless told otherwise.
    let workers = f
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(64)));
    if workers == 0 || workers > 256 {
        return Err(names_core::ConfigError::new(
            "--workers must be between 1 and 256",
        ));
    }
    Ok(Plan {
        options: Options {
            listen,
            workers,
            config,
            metrics: f
                .metrics
                .as_deref()
                .map(|m| {
                    m.parse().map_err(|_| {
                        names_core::ConfigError::new(format!(
                            "--metrics {m:?} is not an IP:PORT address"
                        ))
                    })
                })
                .transpose()?,
            cache_probe: None,
        },
        synth,
        upstreams,
        cache,
        zones: f.zone,
        hosts: f.hosts,
        allow_transfer,
        explicit_limits: (f.max_inflight.is_some(), f.max_tcp.is_some()),
        log_level: names_shell::logging::parse_level(f.log_level.as_deref().unwrap_or("info"))
            .map_err(names_core::ConfigError::new)?,
    })
}
