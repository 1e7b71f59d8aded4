//! `Forwarder`: the seed's `client.Resolver`. Every query goes to the upstreams; the
//! exchange engine (`upstream.rs`) does IDs, ports, retries, TCP fallback and the budget.

use std::net::SocketAddr;
use std::sync::Arc;

use domain::base::iana::Rtype;

use super::{Answer, Context, Exchange, Query, Resolution, Resolver};

/// Forwards every query to its upstream servers, but zone transfers (AXFR, IXFR): REFUSED.
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
        // Zone transfers are answered by the zones we serve (resolvers before this one),
        // under their ACL; relaying them would bypass it, and an upstream's multi-message
        // AXFR cannot be relayed anyway.
        if matches!(q.qtype(), Rtype::AXFR | Rtype::IXFR) {
            return Resolution::Answer(Answer::refused());
        }
        Resolution::Exchange(Exchange::forward(q, self.servers.clone()))
    }

    fn recursion_available(&self) -> bool {
        true
    }
}
