//! `names serve`: flags -> core configuration and chain, then the runtime.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use names_core::cache::{Cache, CacheConfig, Store};
use names_core::parse::parse_server;
use names_core::{Chain, Config, Forwarder, Synth, SynthRule};
use names_shell::{parse_listen, resolv_conf, Options};

use crate::cli::Serve;

const DEFAULT_LISTEN: &str = "127.0.0.1:10053";
const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";

/// What the flags say, checked.
struct Plan {
    options: Options,
    synth: Vec<SynthRule>,
    upstreams: Vec<SocketAddr>,
    cache: CacheConfig,
}

pub fn run(flags: Serve) -> Result<ExitCode, String> {
    let plan = plan(flags).map_err(|e| e.to_string())?;
    let Plan {
        options,
        synth,
        upstreams,
        cache,
    } = plan;
    let upstreams: Arc<[SocketAddr]> = upstreams.into();
    // One store shared by every worker: an answer cached by one is a hit on all.
    let store = (cache.size > 0 && !upstreams.is_empty())
        .then(|| Arc::new(Store::new(cache.size, options.workers)));
    let make_chain = move || {
        let mut chain = Chain::new();
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
        max_pipelined: f.max_pipelined.unwrap_or(defaults.max_pipelined).max(1),
        max_exchanges: f.max_inflight.unwrap_or(defaults.max_exchanges),
        edns_udp_size: defaults.edns_udp_size,
        log_queries: false,
    };
    if config.budget.is_zero() || config.try_timeout.is_zero() {
        return Err(names_core::ConfigError::new(
            "--timeout and --try-timeout must be at least 1 ms",
        ));
    }
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
    let workers = f.workers.unwrap_or(1);
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
        },
        synth,
        upstreams,
        cache,
    })
}
