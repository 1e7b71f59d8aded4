//! [`Asker`]: a test resolver that asks its runtime for lookups, and the job and result
//! types the harness's runtimes (the world, hand-driven tests, the fuzzer) carry for it.

use std::net::Ipv4Addr;

use domain::base::iana::Rtype;
use domain::rdata::A;
use names_core::{Answer, Context, LookupOutcome, Payload, Query, Resolution, Resolver};

/// The job an [`Asker`] hands to the runtime: the first label, lowercased, and whether it
/// is a repeated lookup (1) or the first (0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupJob {
    pub key: String,
    pub round: u8,
}

/// What a runtime answers an [`Asker`]'s job with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LookupResult {
    /// Answer this address (A, TTL 30, AA).
    Addr(Ipv4Addr),
    /// Not known: pass to the next resolver.
    Pass,
    /// Ask another lookup (the query's budget bounds how often).
    Again,
}

/// What an [`Asker`] does when its lookup timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnTimeout {
    /// The default of the trait: SERVFAIL.
    Default,
    /// Answers NOERROR with 192.0.2.99: the resolver's own answer is used.
    Answer,
    /// Asks another lookup (too late: SERVFAIL).
    Again,
    /// Passes to the next resolver (a forwarder there is too late too: SERVFAIL).
    Pass,
}

/// Asks a lookup for every A question whose first label starts with `lk` (any case), and
/// passes the rest. Results of another type than [`LookupResult`] get SERVFAIL.
pub struct Asker {
    pub on_timeout: OnTimeout,
    /// Looks up questions of every type (the fuzzer's), not only A.
    pub any_type: bool,
}

impl Asker {
    pub fn new(on_timeout: OnTimeout) -> Asker {
        Asker {
            on_timeout,
            any_type: false,
        }
    }

    fn job(query: &Query<'_>, round: u8) -> Resolution {
        let key = String::from_utf8_lossy(query.first_label()).to_ascii_lowercase();
        Resolution::Lookup(Payload::new(LookupJob { key, round }))
    }
}

impl Resolver for Asker {
    fn name(&self) -> &str {
        "asker"
    }

    fn resolve(&mut self, query: &Query<'_>, _cx: &mut Context) -> Resolution {
        if (self.any_type || query.qtype() == Rtype::A)
            && query.first_label().to_ascii_lowercase().starts_with(b"lk")
        {
            Asker::job(query, 0)
        } else {
            Resolution::Pass
        }
    }

    fn on_lookup(
        &mut self,
        query: &Query<'_>,
        outcome: LookupOutcome,
        cx: &mut Context,
    ) -> Resolution {
        match outcome {
            LookupOutcome::Done(result) => match result.downcast::<LookupResult>() {
                Ok(LookupResult::Addr(addr)) => {
                    Resolution::answer([query.record(30, A::new(addr))])
                }
                Ok(LookupResult::Pass) => Resolution::Pass,
                Ok(LookupResult::Again) => Asker::job(query, 1),
                Err(_) => Resolution::Answer(Answer::servfail()),
            },
            LookupOutcome::TimedOut => match self.on_timeout {
                OnTimeout::Default => {
                    let mut default = Default;
                    default.on_lookup(query, LookupOutcome::TimedOut, cx)
                }
                OnTimeout::Answer => {
                    Resolution::answer([query.record(30, A::new(Ipv4Addr::new(192, 0, 2, 99)))])
                }
                OnTimeout::Again => Asker::job(query, 1),
                OnTimeout::Pass => Resolution::Pass,
            },
        }
    }
}

/// A resolver with the trait's defaults only (for its `on_lookup`).
struct Default;

impl Resolver for Default {
    fn name(&self) -> &str {
        "default"
    }

    fn resolve(&mut self, _: &Query<'_>, _: &mut Context) -> Resolution {
        Resolution::Pass
    }
}

/// What the world's runtime does with the lookups the server asks for (chances, each
/// drawn per lookup): their results come after a random delay up to `max_delay_ms` (so
/// out of order, and after the budget when it is longer), or never, or twice; a result
/// may go to an id never given out, be of a type the resolver does not know, pass, or ask
/// for another lookup.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LookupFaults {
    pub never: f64,
    pub twice: f64,
    pub unknown_id: f64,
    pub foreign: f64,
    pub pass: f64,
    pub again: f64,
    pub max_delay_ms: u64,
}

impl LookupFaults {
    /// Every result at once, an address.
    pub const NONE: LookupFaults = LookupFaults {
        never: 0.0,
        twice: 0.0,
        unknown_id: 0.0,
        foreign: 0.0,
        pass: 0.0,
        again: 0.0,
        max_delay_ms: 0,
    };
}

/// What a runtime sends back for a lookup (the world's events are `Clone`, payloads not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimResult {
    Result(LookupResult),
    /// A value of a type the resolver does not know.
    Foreign,
}

impl SimResult {
    pub fn payload(self) -> Payload {
        match self {
            SimResult::Result(r) => Payload::new(r),
            SimResult::Foreign => Payload::new("foreign"),
        }
    }
}

/// The address the world's runtime gives for a key: 10.77.x.y from the key's bytes.
pub fn lookup_addr(key: &str) -> Ipv4Addr {
    let h = key
        .bytes()
        .fold(0u16, |h, b| h.wrapping_mul(31).wrapping_add(u16::from(b)));
    let [a, b] = h.to_be_bytes();
    Ipv4Addr::new(10, 77, a, b)
}

/// What the world saw of one lookup.
#[derive(Clone, Copy, Debug, Default)]
pub struct LookupState {
    /// The server took its result.
    pub completed: bool,
    /// The server told the runtime to drop it.
    pub cancelled: bool,
}

/// Lookups in a seeded simulation: the share of queries for `lk` names (asked by an
/// [`Asker`] in front of the forwarder), what the runtime does with them, what the
/// resolver does after a timeout, and the bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LookupScenario {
    pub share: f64,
    pub faults: LookupFaults,
    pub on_timeout: OnTimeout,
    pub max_lookups: usize,
}
