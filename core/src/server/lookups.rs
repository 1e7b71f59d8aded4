//! Lookups in flight: a resolver's job carried to the runtime ([`Action::Lookup`]), the
//! query parked until [`Server::handle_lookup`] or its budget, then the resolver resumed
//! through `on_lookup`. Bounded by `Config::max_lookups`; a lookup's state is freed when it
//! completes or times out, and with the server.

use std::time::Instant;

use super::Server;
use crate::action::Action;
use crate::lookup::{LookupId, LookupOutcome, Payload};
use crate::request::Request;
use crate::resolver::{Answer, Context, Query};
use crate::timers::{TimerKey, Wake};

/// A query parked on a lookup.
pub(super) struct Parked {
    request: Request,
    /// Index in the chain of the resolver that asked for the lookup.
    resolver: usize,
    /// The budget timer, cancelled on completion.
    timer: TimerKey,
}

impl Server {
    /// The result of the job of [`Action::Lookup`] `id`: the resolver that asked for it is
    /// resumed with [`LookupOutcome::Done`]. A result for a lookup that timed out, or for an
    /// id never given out, is ignored (counted in `lookups_late`).
    pub fn handle_lookup(&mut self, now: Instant, id: LookupId, result: Payload) {
        let now = self.tick(now);
        match self.lookups.remove(&id.0) {
            Some(parked) => {
                self.timers.cancel(parked.timer);
                self.stats.lookups_completed += 1;
                let outcome = LookupOutcome::Done(result);
                self.resume_lookup(now, parked.request, parked.resolver, outcome);
            }
            None => self.stats.lookups_late += 1,
        }
        self.pump_drained(now);
    }

    /// Lookups in flight: asked for, neither completed nor timed out.
    pub fn open_lookups(&self) -> usize {
        self.lookups.len()
    }

    /// The resolver at `resolver` asked for a lookup: park the query on it, or answer
    /// SERVFAIL when the budget is over or `max_lookups` are in flight.
    pub(super) fn lookup(&mut self, now: Instant, request: Request, resolver: usize, job: Payload) {
        let deadline = request.received + self.config.budget;
        if now >= deadline {
            return self.answer(now, &request, Answer::servfail(), resolver);
        }
        if self.lookups.len() >= self.config.max_lookups {
            self.stats.overloaded += 1;
            return self.answer(now, &request, Answer::servfail(), resolver);
        }
        self.next_lookup += 1;
        let id = self.next_lookup;
        let timer = self.timers.arm(deadline, Wake::Lookup(id));
        self.lookups.insert(
            id,
            Parked {
                request,
                resolver,
                timer,
            },
        );
        self.stats.lookups_started += 1;
        self.actions.push_back(Action::Lookup {
            id: LookupId(id),
            job,
        });
    }

    /// The budget of lookup `id` ended: the runtime drops the job, the resolver hears so.
    pub(super) fn lookup_timed_out(&mut self, now: Instant, id: u64) {
        let Some(parked) = self.lookups.remove(&id) else {
            return;
        };
        self.stats.lookups_timed_out += 1;
        self.actions
            .push_back(Action::CancelLookup { id: LookupId(id) });
        let outcome = LookupOutcome::TimedOut;
        self.resume_lookup(now, parked.request, parked.resolver, outcome);
    }

    fn resume_lookup(
        &mut self,
        now: Instant,
        mut request: Request,
        resolver: usize,
        outcome: LookupOutcome,
    ) {
        let random = self.resolver_rng.next_u64();
        let Some(r) = self.chain.get_mut(resolver) else {
            return;
        };
        let mut cx = Context::of(now, &mut request, random);
        let resolution = r.on_lookup(&Query::new(&request), outcome, &mut cx);
        cx.give_back(&mut request);
        self.follow(now, request, resolver, resolution, 0);
    }
}
