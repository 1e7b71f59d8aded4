//! `Forwarder`: the seed's `client.Resolver`. Queries go to the upstreams, or, for names
//! under a routed zone (conditional forwarding), to that zone's servers; the exchange engine
//! (`upstream.rs`) does IDs, ports, retries, TCP fallback and the budget. Every reply is
//! scrubbed (`scrub.rs`) before anything, the cache included, sees it.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use domain::base::iana::{Rcode, Rtype};
use domain::base::{Name, ToName};

use super::{Answer, Context, Exchange, Exchanged, Query, Resolution, Resolver};
use crate::parse::{parse_server, ConfigError};
use crate::record::Rr;
use crate::scrub::scrub;

/// Forwards queries to upstream servers, but zone transfers (AXFR, IXFR): REFUSED.
///
/// A name at or under the zone of a [`ForwardRoute`] goes to that route's servers (the
/// longest matching zone wins, compared label by label, case-insensitively); every other
/// name to the default servers, or, when there are routes but no default servers, to the
/// next resolver (a recursor: [`Resolution::Pass`]). A forwarder with no server at all
/// answers SERVFAIL.
///
/// Replies are scrubbed after Unbound's iter_scrub.c: only the question's chain, the NS
/// and SOA of its zone and the addresses they point to are kept; a reply that cannot be
/// used at all (another question, unreadable records) or a routed zone's referral up
/// (the NS set of a zone above it, without answer or SOA: a lame upstream) is a SERVFAIL.
/// The upstream's AA bit
/// reaches the cache ([`Answer::upstream_authoritative`]), never the client.
///
/// ```
/// use names_core::{ForwardRoute, Forwarder};
///
/// let route = ForwardRoute::parse("corp.example=192.0.2.1,192.0.2.2:5353").unwrap();
/// assert_eq!(route.servers().len(), 2);
/// let forwarder = Forwarder::new(Vec::new()).with_routes(vec![route]);
/// assert!(forwarder.servers().is_empty()); // the rest passes to the next resolver
/// assert!(ForwardRoute::parse("corp.example").is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Forwarder {
    servers: Arc<[SocketAddr]>,
    /// Most labels first, so the first zone that contains a name is its longest match.
    routes: Arc<[ForwardRoute]>,
}

/// Conditional forwarding: names at or under `zone` go to these servers
/// (`--forward ZONE=ADDR[,ADDR...]`, Unbound's forward-zone, dnsmasq's `server=/zone/addr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardRoute {
    zone: Name<Bytes>,
    servers: Arc<[SocketAddr]>,
}

impl ForwardRoute {
    /// A route for `zone` to `servers` (tried in order, as a [`Forwarder`]'s are).
    pub fn new(zone: Name<Bytes>, servers: impl Into<Arc<[SocketAddr]>>) -> ForwardRoute {
        ForwardRoute {
            zone,
            servers: servers.into(),
        }
    }

    /// Parses `ZONE=ADDR[,ADDR...]`, each address `IP` or `IP:PORT` (port 53 by default).
    pub fn parse(text: &str) -> Result<ForwardRoute, ConfigError> {
        let bad = |why: &str| ConfigError::new(format!("--forward {text:?}: {why}"));
        let Some((zone, servers)) = text.split_once('=') else {
            return Err(bad("expected ZONE=ADDR[,ADDR...]"));
        };
        let zone = zone.trim();
        if zone.is_empty() {
            return Err(bad("the zone is empty (write . for the root)"));
        }
        let zone: Name<Bytes> = zone
            .parse()
            .map_err(|_| bad(&format!("{zone:?} is not a domain name")))?;
        let servers = servers
            .split(',')
            .map(|s| parse_server(s).map_err(|e| bad(&e.message)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ForwardRoute::new(zone, servers))
    }

    /// The zone whose names this route forwards.
    pub fn zone(&self) -> &Name<Bytes> {
        &self.zone
    }

    /// The servers the zone's names go to, in the order they are tried.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }
}

impl Forwarder {
    /// A forwarder to `servers`, tried in order (the next one after a per-try timeout
    /// or a SERVFAIL, REFUSED or NOTIMP reply). None, with routes: only routed names are
    /// forwarded.
    pub fn new(servers: impl Into<Arc<[SocketAddr]>>) -> Forwarder {
        Forwarder {
            servers: servers.into(),
            routes: Arc::new([]),
        }
    }

    /// Forwards the names of these zones to their own servers instead. Of two routes
    /// for the same zone the first one given wins.
    pub fn with_routes(mut self, mut routes: Vec<ForwardRoute>) -> Forwarder {
        // Stable: equal zones keep the order given.
        routes.sort_by_key(|r| std::cmp::Reverse(r.zone.label_count()));
        self.routes = routes.into();
        self
    }

    /// The default upstream servers, in the order they are tried.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// The longest routed zone holding `qname`, if any.
    fn route_for(&self, qname: &Name<Bytes>) -> Option<&ForwardRoute> {
        self.routes
            .iter()
            .find(|route| qname.ends_with(&route.zone))
    }

    /// The servers for `qname`: its longest routed zone's, else the default ones.
    fn servers_for(&self, qname: &Name<Bytes>) -> &Arc<[SocketAddr]> {
        self.route_for(qname)
            .map_or(&self.servers, |route| &route.servers)
    }
}

impl Resolver for Forwarder {
    fn name(&self) -> &str {
        "forward"
    }

    fn resolve(&mut self, q: &Query<'_>, _: &mut Context) -> Resolution {
        let servers = self.servers_for(q.qname());
        if servers.is_empty() && !self.routes.is_empty() {
            return Resolution::Pass;
        }
        // Zone transfers are answered by the zones we serve (resolvers before this one),
        // under their ACL; relaying them would bypass it, and an upstream's multi-message
        // AXFR cannot be relayed anyway.
        if matches!(q.qtype(), Rtype::AXFR | Rtype::IXFR) {
            return Resolution::Answer(Answer::refused());
        }
        Resolution::Exchange(Exchange::forward(q, servers.clone()))
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
        // A referral up, above the zone routed to it (no answer, an NS set of an
        // ancestor of that zone, no SOA): a lame upstream, as Unbound judges it. A
        // referral down is passed on, as Unbound passes it.
        if let Some(route) = self.route_for(q.qname()) {
            let above = |rr: &Rr| {
                rr.rtype() == Rtype::NS
                    && route.zone.ends_with(rr.owner())
                    && !route.zone.name_eq(rr.owner())
            };
            let soa = kept.authority.iter().any(|rr| rr.rtype() == Rtype::SOA);
            if kept.rcode == Rcode::NOERROR.into()
                && kept.answer.is_empty()
                && !soa
                && kept.authority.iter().any(above)
            {
                return Resolution::Answer(Answer::servfail());
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> Name<Bytes> {
        text.parse().unwrap()
    }

    #[test]
    fn longest_zone_wins_label_wise_and_case_insensitively() {
        let route = |text: &str| ForwardRoute::parse(text).unwrap();
        let default: SocketAddr = "192.0.2.53:53".parse().unwrap();
        let forwarder = Forwarder::new(vec![default]).with_routes(vec![
            route("example=192.0.2.1"),
            route("Corp.Example.=192.0.2.2,192.0.2.3:5353"),
            route("corp.example=192.0.2.9"),
        ]);
        let servers = |q: &str| forwarder.servers_for(&name(q)).to_vec();
        let corp: Vec<SocketAddr> = vec![
            "192.0.2.2:53".parse().unwrap(),
            "192.0.2.3:5353".parse().unwrap(),
        ];
        assert_eq!(servers("www.CORP.example"), corp);
        assert_eq!(servers("corp.example"), corp);
        assert_eq!(servers("xcorp.example"), ["192.0.2.1:53".parse().unwrap()]);
        assert_eq!(servers("example"), ["192.0.2.1:53".parse().unwrap()]);
        assert_eq!(servers("example.org"), [default]);
        assert_eq!(servers("."), [default]);
        let root = Forwarder::new(Vec::new()).with_routes(vec![route(".=192.0.2.7")]);
        assert_eq!(
            root.servers_for(&name("any.where")).to_vec(),
            ["192.0.2.7:53".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn bad_routes_are_one_line_naming_the_flag() {
        for text in [
            "",
            "example",
            "=192.0.2.1",
            "example=",
            "example=192.0.2.1,",
            "example=host.example",
            "exa mple..=192.0.2.1",
            "example=192.0.2.1:99999",
        ] {
            let e = ForwardRoute::parse(text).unwrap_err().message;
            assert!(e.starts_with("--forward "), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
