//! The one way the built-in resolvers are put together: zones, then hosts, then synth,
//! then your own resolvers, then the cache, then the forwarder or the recursor; each left
//! out when it has nothing to do.
//!
//! A [`Setup`] is built once and shared by the workers; each worker calls
//! [`Setup::build`] for its own [`Chain`]. What is shared stays shared: the zone and hosts
//! [`Snapshot`]s (a reload is seen by every worker), and one cache [`Store`] (an answer
//! cached by one worker is a hit on all).
//!
//! ```
//! use names_core::cache::CacheConfig;
//! use names_core::setup::Setup;
//! use names_core::SynthRule;
//!
//! let setup = Setup::new()
//!     .synth(vec![SynthRule::parse("workstation=172.0.2").unwrap()])
//!     .forward_to(vec!["192.0.2.53:53".parse().unwrap()])
//!     .cache(CacheConfig::default(), 2);
//! assert_eq!(setup.build().names(), ["synth", "cache", "forward"]);
//! // A cache only makes sense in front of a forwarder, and no upstream means no forwarder.
//! let local = Setup::new().cache(CacheConfig::default(), 2);
//! assert!(local.build().is_empty());
//! assert!(local.cache_stats().is_none());
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use crate::cache::{Cache, CacheConfig, CacheStats, Store};
use crate::hosts::{Hosts, HostsResolver};
use crate::parse::ConfigError;
use crate::recursor::{Recursor, RecursorConfig, RecursorStats, Shared};
use crate::resolver::{Chain, ForwardRoute, Forwarder, Resolver, Synth, SynthRule};
use crate::secondary::Unavailable;
use crate::zone::{Snapshot, TransferRule, ZoneResolver, ZoneSet};
use bytes::Bytes;
use domain::base::Name;

/// Makes one of the caller's resolvers for a worker's chain.
type MakeResolver = Box<dyn Fn() -> Box<dyn Resolver> + Send + Sync>;

/// What goes into every worker's chain, and what the workers share.
#[derive(Default)]
pub struct Setup {
    zones: Option<Snapshot<ZoneSet>>,
    unavailable: Option<Snapshot<Vec<Name<Bytes>>>>,
    allow_transfer: Option<Vec<TransferRule>>,
    hosts: Option<Snapshot<Hosts>>,
    synth: Vec<SynthRule>,
    custom: Vec<MakeResolver>,
    cache: Option<(CacheConfig, usize)>,
    store: OnceLock<Option<Arc<Store>>>,
    upstreams: Option<Arc<[SocketAddr]>>,
    routes: Vec<ForwardRoute>,
    recursor: Option<Shared>,
}

impl fmt::Debug for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setup")
            .field("zones", &self.zones.is_some())
            .field("hosts", &self.hosts.is_some())
            .field("synth", &self.synth.len())
            .field("custom", &self.custom.len())
            .field("cache", &self.cache)
            .field("upstreams", &self.upstreams)
            .field("routes", &self.routes)
            .field("recursor", &self.recursor.is_some())
            .finish()
    }
}

impl Setup {
    /// Nothing yet: its chain is empty, so every query is answered REFUSED.
    pub fn new() -> Setup {
        Setup::default()
    }

    /// Serves these zones authoritatively (first in the chain).
    pub fn zones(mut self, zones: Snapshot<ZoneSet>) -> Setup {
        self.zones = Some(zones);
        self
    }

    /// Answers SERVFAIL for names in these secondary zones while they are not served
    /// (first in the chain, with the zones: see [`Unavailable`]).
    pub fn unavailable(mut self, origins: Snapshot<Vec<Name<Bytes>>>) -> Setup {
        self.unavailable = Some(origins);
        self
    }

    /// Lets these clients transfer the zones (AXFR, IXFR); loopback only unless set.
    pub fn allow_transfer(
        mut self,
        allow: impl IntoIterator<Item = impl Into<TransferRule>>,
    ) -> Setup {
        self.allow_transfer = Some(allow.into_iter().map(Into::into).collect());
        self
    }

    /// Answers from this hosts file (after the zones).
    pub fn hosts(mut self, hosts: Snapshot<Hosts>) -> Setup {
        self.hosts = Some(hosts);
        self
    }

    /// Synthesises answers by these rules (after hosts); none leaves [`Synth`] out.
    pub fn synth(mut self, rules: Vec<SynthRule>) -> Setup {
        self.synth = rules;
        self
    }

    /// Adds a resolver of the caller's, made afresh for every worker, after the local
    /// sources and before the cache and the forwarder (in the order added).
    pub fn resolver<R: Resolver + 'static>(
        mut self,
        make: impl Fn() -> R + Send + Sync + 'static,
    ) -> Setup {
        self.custom.push(Box::new(move || Box::new(make())));
        self
    }

    /// Caches upstream answers in one store shared by `workers` workers (sharded for
    /// them). Left out when `config.size` is 0 or nothing is forwarded.
    pub fn cache(mut self, config: CacheConfig, workers: usize) -> Setup {
        self.cache = Some((config, workers.max(1)));
        self.store = OnceLock::new();
        self
    }

    /// Forwards what nobody answered to these servers (last in the chain); none leaves
    /// the forwarder (and the cache) out.
    pub fn forward_to(mut self, upstreams: impl Into<Arc<[SocketAddr]>>) -> Setup {
        let upstreams: Arc<[SocketAddr]> = upstreams.into();
        self.upstreams = (!upstreams.is_empty()).then_some(upstreams);
        self.store = OnceLock::new();
        self
    }

    /// Forwards the names of these zones to their own servers (conditional forwarding,
    /// see [`Forwarder::with_routes`]); the rest goes where it would without them (to the
    /// upstreams, or to the recursor).
    pub fn forward_zones(mut self, routes: Vec<ForwardRoute>) -> Setup {
        self.routes = routes;
        self.store = OnceLock::new();
        self
    }

    /// Resolves what nobody answered from the root (last in the chain, in the forwarder's
    /// place), with one shared state for every worker's recursor. Together with
    /// [`forward_to`](Setup::forward_to) it is an error ([`Setup::validate`]); the
    /// recursor wins in [`build`](Setup::build).
    pub fn recurse(mut self, config: RecursorConfig) -> Setup {
        self.recursor = Some(Shared::new(&config));
        self.store = OnceLock::new();
        self
    }

    /// Whether the settings fit together: forwarding to upstreams and recursing do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.recursor.is_some() && self.upstreams.is_some() {
            return Err(ConfigError::new(
                "upstream servers and recursion exclude each other: give one of them",
            ));
        }
        Ok(())
    }

    /// The shared recursor's counters, if there is a recursor.
    pub fn recursor_stats(&self) -> Option<RecursorStats> {
        self.recursor.as_ref().map(Shared::stats)
    }

    /// Whether anything is asked of other servers: upstreams, routed zones' servers or,
    /// recursing, authoritative servers. Only then is there anything to cache.
    fn asks_out(&self) -> bool {
        self.upstreams.is_some() || !self.routes.is_empty() || self.recursor.is_some()
    }

    /// The shared cache store, made on first use, if there is a cache.
    fn store(&self) -> Option<&Arc<Store>> {
        self.store
            .get_or_init(|| match self.cache {
                Some((config, workers)) if config.size > 0 && self.asks_out() => {
                    Some(Arc::new(Store::new(config.size, workers)))
                }
                _ => None,
            })
            .as_ref()
    }

    /// The shared cache's counters, if there is a cache.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.store().map(|store| store.stats())
    }

    /// A worker's chain: zones, hosts, synth, the caller's resolvers, cache, and the
    /// recursor or else the forwarder, each present only when it has something to do.
    pub fn build(&self) -> Chain {
        let mut chain = Chain::new();
        if let (Some(origins), Some(zones)) = (&self.unavailable, &self.zones) {
            chain = chain.with(Unavailable::new(origins.clone(), zones.clone()));
        }
        if let Some(zones) = &self.zones {
            let mut resolver = ZoneResolver::new(zones.clone());
            if let Some(allow) = &self.allow_transfer {
                resolver = resolver.allow_transfer(allow.clone());
            }
            chain = chain.with(resolver);
        }
        if let Some(hosts) = &self.hosts {
            chain = chain.with(HostsResolver::new(hosts.clone()));
        }
        if !self.synth.is_empty() {
            chain = chain.with(Synth::new(self.synth.clone()));
        }
        for make in &self.custom {
            chain.push(make());
        }
        if let (Some(store), Some((config, _))) = (self.store(), self.cache) {
            chain = chain.with(Cache::new(store.clone(), config));
        }
        // The forwarder takes the routed zones and, without a recursor, the rest; with one,
        // it passes the rest on to it.
        let upstreams = match (&self.recursor, &self.upstreams) {
            (None, Some(upstreams)) => upstreams.clone(),
            _ => Arc::new([]),
        };
        if !upstreams.is_empty() || !self.routes.is_empty() {
            chain = chain.with(Forwarder::new(upstreams).with_routes(self.routes.clone()));
        }
        if let Some(shared) = &self.recursor {
            chain = chain.with(Recursor::new(shared.clone()));
        }
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::Hosts;

    #[test]
    fn order_and_what_is_left_out() {
        let hosts = Snapshot::new(Hosts::parse("hosts", "192.0.2.1 printer\n").unwrap());
        let upstream: SocketAddr = "192.0.2.53:53".parse().unwrap();
        let full = Setup::new()
            .forward_to(vec![upstream])
            .cache(CacheConfig::default(), 1)
            .resolver(|| Synth::new(Vec::new()))
            .synth(vec![SynthRule::parse("ws=10.0.0").unwrap()])
            .hosts(hosts);
        assert_eq!(
            full.build().names(),
            ["hosts", "synth", "synth", "cache", "forward"]
        );
        assert!(full.build().recursion_available());
        assert_eq!(full.cache_stats(), Some(CacheStats::default()));
        let no_cache = Setup::new().forward_to(vec![upstream]).cache(
            CacheConfig {
                size: 0,
                ..CacheConfig::default()
            },
            1,
        );
        assert_eq!(no_cache.build().names(), ["forward"]);
        assert_eq!(no_cache.cache_stats(), None);
        assert!(Setup::new().forward_to(Vec::new()).build().is_empty());
        let routed = Setup::new()
            .forward_zones(vec![ForwardRoute::parse("corp.example=192.0.2.1").unwrap()])
            .cache(CacheConfig::default(), 1);
        assert_eq!(routed.build().names(), ["cache", "forward"]);
    }

    #[test]
    fn recursion_replaces_the_forwarder_and_excludes_upstreams() {
        let setup = Setup::new()
            .cache(CacheConfig::default(), 1)
            .recurse(RecursorConfig::default());
        assert_eq!(setup.build().names(), ["cache", "recurse"]);
        assert!(setup.build().recursion_available());
        assert!(setup.validate().is_ok());
        assert_eq!(setup.recursor_stats(), Some(RecursorStats::default()));
        let both = setup.forward_to(vec!["192.0.2.53:53".parse().unwrap()]);
        let err = both.validate().unwrap_err().to_string();
        assert!(err.contains("recursion") && !err.contains('\n'), "{err}");
        assert_eq!(Setup::new().recursor_stats(), None);
        let route = ForwardRoute::parse("corp.example=192.0.2.1").unwrap();
        let routed = Setup::new()
            .cache(CacheConfig::default(), 1)
            .recurse(RecursorConfig::default())
            .forward_zones(vec![route]);
        assert_eq!(routed.build().names(), ["cache", "forward", "recurse"]);
    }
}
