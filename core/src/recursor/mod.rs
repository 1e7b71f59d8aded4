//! The recursor: resolution from the root, without an upstream resolver.
//!
//! [`Recursor`] is the chain's last resolver instead of a [`Forwarder`](crate::Forwarder)
//! ([`Setup::recurse`](crate::setup::Setup::recurse)); the cache before it answers what it
//! already knows and keeps what it finds. For a query it does not know, it starts at the
//! closest zone it knows to enclose the name (at first the root: it *primes*, asking a
//! root server of the [`RootHints`] for the root's NS set) and follows referrals down,
//! one authoritative server at a time (RD=0), as Unbound's iterator does:
//!
//! - each query to an authoritative server is an [`Exchange`](crate::Exchange) of the
//!   core's engine (fresh ID and port, TCP after TC, EDNS dropped after FORMERR and from
//!   then on for that server), to one server chosen by smoothed RTT: any server whose
//!   timeout is within 400 ms of the best is equally likely, so slower ones are still
//!   explored; a try waits that server's timeout (376 ms for a server never heard from,
//!   doubled after each timeout);
//! - every reply is scrubbed to the zone asked (its *bailiwick*): records outside it,
//!   glue for names outside it included, are never used nor kept;
//! - referrals are followed with the glue they carry; a delegation without glue has its
//!   NS names' addresses looked up by sub-queries of the same client query; CNAME and
//!   DNAME chains are followed across zones (at most 8 steps) and the client gets the
//!   whole chain; NXDOMAIN and NODATA come with the zone's SOA;
//! - QNAME minimisation (RFC 9156, on by default): a server is asked `A` for the name one
//!   label below its zone, not the full name, until the zone cut above the name is found;
//!   relaxed, as Unbound's default: a server answering NXDOMAIN, REFUSED, SERVFAIL or
//!   FORMERR to a minimised name, or not answering it, is asked the full name instead,
//!   and after 10 minimised questions the full name is asked;
//! - a server answering REFUSED, SERVFAIL, NOTIMP or FORMERR, or referring up or
//!   sideways (to its own zone or above, without AA) is *lame*: skipped for this query and
//!   for that zone for `infra_ttl` (900 s); one that times out has its timeout doubled and
//!   is asked again, up to three times for one question, then skipped for this query; one answering as a recursive server does (RA without AA) is
//!   asked last, its reply used only when no other server is left (Unbound's rec-lame).
//!   As in Unbound, an answer without AA from a server that does not recurse is used;
//! - skipped for this query only, not remembered: a server whose reply is still
//!   truncated over TCP, or is YXDOMAIN without a DNAME; an empty AA reply (no records,
//!   no SOA) is kept and used only when no other server is left, unless it referred
//!   upward with AA (an NS set above its zone): never used. YXDOMAIN with a DNAME
//!   (a substitution too long for a name, RFC 6672) goes to the client;
//! - when every server of a delegation failed, the last resort (Unbound's parent-side
//!   one): the NS names only the child's authoritative answers gave, and every address
//!   known for the NS names (the parent's glue and the child's own records alike);
//! - an NS name whose only addresses are IPv6 ones, all failed, has its A record looked
//!   up; a DS question answered by a zone above the name's parent (a server that serves
//!   both) looks for the parent's zone cut first, as a minimised question would;
//! - servers at 127.0.0.0/8, ::1 (and 0.0.0.0, ::) are never asked unless
//!   [`RecursorConfig::query_localhost`]; with nothing else left, the answer is SERVFAIL.
//!
//! It keeps, shared by every worker ([`Shared`]): an infrastructure cache (per server
//! address and zone: smoothed RTT and timeout, EDNS support, lameness; bounded, expiring)
//! and the delegations learnt (NS sets, and the addresses of NS names from glue and
//! sub-queries; bounded, expiring by TTL capped at [`RecursorConfig::max_ttl`]).
//!
//! Every client query is bounded: at most [`RecursorConfig::max_sends`] exchanges (each at
//! most a handful of packets: a retry without EDNS, one over TCP), referrals, sub-queries,
//! their nesting and the glueless NS names resolved per delegation are limited too (the
//! NXNSAttack, CVE-2020-12662). Beyond a limit the answer is SERVFAIL.
//!
//! A client query with RD=0 is never resolved: the cache answers what it holds, and on a
//! miss the recursor answers, as Unbound does, a referral to the closest delegation it
//! knows (NOERROR, no AA, the NS set in authority, their known addresses in additional),
//! which sends nothing anywhere and tells the client where to ask.
//!
//! DNSSEC: DO is sent when the client set it, and RRSIG, NSEC, NSEC3 and DS records are
//! kept and given to clients that set DO; nothing is validated yet (AD is never set).

mod delegation;
mod hints;
mod infra;
mod iterate;
mod judge;
mod select;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::base::iana::{Class, Rtype};

pub use hints::{HintServer, RootHints};
pub use select::RTT_BAND_MS;

use crate::resolver::{Answer, Context, Exchanged, Query, Resolution, Resolver};
use delegation::{Delegations, Point};
use infra::Infra;

/// The recursor's settings; `RecursorConfig::default()` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecursorConfig {
    /// Where resolution starts (`--root-hints`; the IANA hints built in).
    pub root_hints: RootHints,
    /// Whether servers at loopback addresses may be asked (`--query-localhost`, off).
    pub query_localhost: bool,
    /// QNAME minimisation, RFC 9156, relaxed (on).
    pub qname_minimisation: bool,
    /// The port every authoritative server is asked on (53).
    pub port: u16,
    /// Exchanges one client query may cause, sub-queries included (32, Unbound's
    /// `max-sent-count`).
    pub max_sends: u32,
    /// Referrals followed per name resolved (16).
    pub max_referrals: u32,
    /// Sub-queries (addresses of glueless NS names, priming) per client query (16).
    pub max_subqueries: u32,
    /// Sub-queries waiting on sub-queries: the nesting depth (4).
    pub max_depth: u32,
    /// Glueless NS names whose addresses are looked up per delegation (3; Unbound's
    /// `target-fetch-policy` at depth 0).
    pub max_targets_per_delegation: u32,
    /// NS names of a delegation considered, in the order received (16).
    pub max_ns_per_delegation: usize,
    /// Minimised questions per name before the full name is asked (10, Unbound's
    /// `MAX_MINIMISE_COUNT`).
    pub max_minimise: u32,
    /// Entries of the infrastructure cache (10,000).
    pub infra_entries: usize,
    /// How long the infrastructure cache remembers a server (900 s, Unbound's
    /// `infra-host-ttl`): its RTT, EDNS support and lameness.
    pub infra_ttl: Duration,
    /// NS sets and NS addresses kept (10,000 entries).
    pub delegation_entries: usize,
    /// The longest a delegation is kept, whatever its TTL (86,400 s, the cache's default).
    pub max_ttl: Duration,
}

impl Default for RecursorConfig {
    fn default() -> RecursorConfig {
        RecursorConfig {
            root_hints: RootHints::iana(),
            query_localhost: false,
            qname_minimisation: true,
            port: 53,
            max_sends: 32,
            max_referrals: 16,
            max_subqueries: 16,
            max_depth: 4,
            max_targets_per_delegation: 3,
            max_ns_per_delegation: 16,
            max_minimise: 10,
            infra_entries: 10_000,
            infra_ttl: Duration::from_secs(900),
            delegation_entries: 10_000,
            max_ttl: Duration::from_secs(86_400),
        }
    }
}

/// Upper bounds of the [`RecursorStats::sends`] buckets (exchanges per client query).
pub const SENDS_BOUNDS: [u64; 7] = [0, 1, 2, 4, 8, 16, 32];

/// A snapshot of the recursor's counters, shared by every worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecursorStats {
    /// Client queries resolved (answered or failed).
    pub resolutions: u64,
    /// Client queries per number of exchanges they caused: bucket `i` counts those with at
    /// most [`SENDS_BOUNDS`]`[i]` (not cumulative), the last those with more.
    pub sends: [u64; SENDS_BOUNDS.len() + 1],
    /// Sum of the exchanges of every resolution.
    pub sends_sum: u64,
    /// Client queries per deepest sub-query nesting they reached (0 ..= 4, the last bucket
    /// counting deeper ones).
    pub depth: [u64; 6],
    /// The deepest nesting reached.
    pub max_depth: u64,
    /// Resolutions ended by a limit (SERVFAIL).
    pub limited: u64,
    /// Servers found lame (counter).
    pub lame_marked: u64,
    /// Lame entries in the infrastructure cache now.
    pub lame_servers: u64,
    /// Entries in the infrastructure cache now.
    pub infra_entries: u64,
    /// NS sets and NS address entries kept now.
    pub delegation_entries: u64,
}

/// What every worker's recursor shares: the settings, the infrastructure cache and the
/// delegations learnt. Make one per process and give a clone to each worker's
/// [`Recursor::new`].
#[derive(Clone)]
pub struct Shared(Arc<Inner>);

struct Inner {
    config: RecursorConfig,
    infra: Infra,
    delegations: Delegations,
    counters: Mutex<RecursorStats>,
    limited: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The shared state of recursors with these settings.
    pub fn new(config: &RecursorConfig) -> Shared {
        Shared(Arc::new(Inner {
            infra: Infra::new(config.infra_entries, config.infra_ttl),
            delegations: Delegations::new(
                config.delegation_entries,
                config.max_ttl,
                config.max_ns_per_delegation,
            ),
            config: config.clone(),
            counters: Mutex::new(RecursorStats::default()),
            limited: AtomicU64::new(0),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &RecursorConfig {
        &self.0.config
    }

    /// The counters now.
    pub fn stats(&self) -> RecursorStats {
        let mut stats = *self.0.counters.lock().unwrap_or_else(|p| p.into_inner());
        let (entries, lame) = self.0.infra.counts();
        stats.limited = self.0.limited.load(Ordering::Relaxed);
        stats.lame_marked = self.0.infra.lame_marked.load(Ordering::Relaxed);
        stats.lame_servers = lame as u64;
        stats.infra_entries = entries as u64;
        stats.delegation_entries = self.0.delegations.len() as u64;
        stats
    }

    /// Counts one finished resolution.
    fn record(&self, sends: u32, depth: u32) {
        let mut c = self.0.counters.lock().unwrap_or_else(|p| p.into_inner());
        let sends = u64::from(sends);
        let i = SENDS_BOUNDS
            .iter()
            .position(|&b| sends <= b)
            .unwrap_or(SENDS_BOUNDS.len());
        c.sends[i] += 1;
        c.sends_sum += sends;
        c.resolutions += 1;
        let depth = u64::from(depth);
        let last = c.depth.len() - 1;
        c.depth[(depth as usize).min(last)] += 1;
        c.max_depth = c.max_depth.max(depth);
    }
}

/// Resolves from the root: see the [module](self) documentation.
#[derive(Clone, Debug)]
pub struct Recursor {
    shared: Shared,
}

impl Recursor {
    /// A worker's recursor over the process's shared state.
    pub fn new(shared: Shared) -> Recursor {
        Recursor { shared }
    }
}

impl Resolver for Recursor {
    fn name(&self) -> &str {
        "recurse"
    }

    fn resolve(&mut self, q: &Query<'_>, cx: &mut Context) -> Resolution {
        if matches!(q.qtype(), Rtype::AXFR | Rtype::IXFR) || q.qclass() != Class::IN {
            return Resolution::Answer(Answer::refused());
        }
        if !q.recursion_desired() {
            // Never resolved: the closest delegation known (the root from the hints
            // when nothing is) as a referral.
            let point = (self.shared.0.delegations.closest(cx.now(), q.qname()))
                .unwrap_or_else(|| Point::hints(&self.shared.config().root_hints));
            return Resolution::Answer(point.referral());
        }
        iterate::start(&self.shared, q, cx)
    }

    fn on_exchange(&mut self, q: &Query<'_>, done: Exchanged, cx: &mut Context) -> Resolution {
        iterate::resume(&self.shared, q, done, cx)
    }

    fn recursion_available(&self) -> bool {
        true
    }
}
