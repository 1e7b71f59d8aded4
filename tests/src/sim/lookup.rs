//! [`Asker`]: a test resolver that asks its runtime for lookups, and the job and result
//! types the harness's runtimes (the world, hand-driven tests, the fuzzer) carry for it.

use std::net::Ipv4Addr;

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

/// Asks a lookup for every name whose first label starts with `lk` (any case), and
/// passes the rest. Results of another type than [`LookupResult`] get SERVFAIL.
pub struct Asker {
    pub on_timeout: OnTimeout,
}

impl Asker {
    pub fn new(on_timeout: OnTimeout) -> Asker {
        Asker { on_timeout }
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
        if query.first_label().to_ascii_lowercase().starts_with(b"lk") {
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
