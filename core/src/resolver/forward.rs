//! `Forwarder`: the seed's `client.Resolver`. Every query goes to the upstreams; the
//! exchange engine (`upstream.rs`) does IDs, ports, retries, TCP fallback and the budget.
//! Every reply is scrubbed (`scrub.rs`) before anything, the cache included, sees it.

use std::net::SocketAddr;
use std::sync::Arc;

use domain::base::iana::Rtype;
use domain::base::Name;

use super::{Answer, Context, Exchange, Exchanged, Query, Resolution, Resolver};
use crate::scrub::scrub;

/// Forwards every query to its upstream servers, but zone transfers (AXFR, IXFR): REFUSED.
///
/// Replies are scrubbed after Unbound's iter_scrub.c: only the question's chain, the NS
/// and SOA of its zone and the addresses they point to are kept; a reply that cannot be
/// used at all (another question, unreadable records) is a SERVFAIL. The upstream's AA bit
/// reaches the cache ([`Answer::upstream_authoritative`]), never the client.
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

    fn on_exchange(&mut self, q: &Query<'_>, done: Exchanged, _: &mut Context) -> Resolution {
        let Exchanged::Reply(reply) = done else {
            return Resolution::Answer(Answer::servfail());
        };
        // An upstream resolver answers for every zone: its bailiwick is the root.
        let root = Name::root_bytes();
        let Some(kept) = scrub(q.qname(), q.qtype(), q.qclass(), &reply, &root) else {
            return Resolution::Answer(Answer::servfail());
        };
        Resolution::Answer(Answer {
            rcode: kept.rcode,
            answer: kept.answer,
            authority: kept.authority,
            additional: kept.additional,
            authoritative: false,
            upstream_authoritative: kept.aa,
            authenticated: kept.ad,
        })
    }

    fn recursion_available(&self) -> bool {
        true
    }
}
