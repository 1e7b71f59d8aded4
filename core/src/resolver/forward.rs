//! `Forwarder`: the seed's `client.Resolver`. Every query goes to the upstreams; the
//! exchange engine (`upstream.rs`) does IDs, ports, retries, TCP fallback and the budget.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{Context, Exchange, Query, Resolution, Resolver};

/// Forwards every query to its upstream servers.
#[derive(Clone, Debug)]
pub struct Forwarder {
    servers: Arc<[SocketAddr]>,
}

impl Forwarder {
    /// A forwarder to `servers`, tried in order (the next one after a per-try timeout
    /// or a SERVFAIL, REFUSED or NOTIMP reply).
    pub fn new(servers: impl Into<Arc<[SocketAddr]>>) -> Forwarder {
        Forwarder {
            servers: servers.into(),
        }
    }

    /// The upstream servers, in the order they are tried.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }
}

impl Resolver for Forwarder {
    fn name(&self) -> &str {
        "forward"
    }

    fn resolve(&mut self, q: &Query<'_>, _: &mut Context) -> Resolution {
        Resolution::Exchange(Exchange::forward(q, self.servers.clone()))
    }

    fn recursion_available(&self) -> bool {
        true
    }
}
