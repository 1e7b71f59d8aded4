//! Lookups through the public API: a resolver asks its runtime for a job
//! (`Resolution::Lookup`), the test plays the runtime (`Action::Lookup`,
//! `Server::handle_lookup`), and the budget, the bound and late or unknown results.

use std::net::Ipv4Addr;

use names_core::{Action, Chain, Config, Forwarder, LookupId, Payload, Server};
use names_tests::drive::{at, drain, replies, sends, udp, upstream_addr, SEED};
use names_tests::sim::lookup::{Asker, LookupJob, LookupResult, OnTimeout};
use names_tests::{parse, query, Rcode, Rtype};

const SERVFAIL: u16 = Rcode::SERVFAIL.to_int() as u16;

fn asker_server(config: Config, on_timeout: OnTimeout) -> Server {
    let chain = Chain::new()
        .with(Asker::new(on_timeout))
        .with(Forwarder::new(vec![upstream_addr(1)]));
    Server::new(config, chain, SEED)
}

/// Sends `name` from client port `port` at `ms`, returns the lookup asked for.
fn ask(server: &mut Server, ms: u64, port: u16, name: &str) -> (LookupId, LookupJob) {
    server.handle_client(at(ms), udp(port), &query(name, Rtype::A, port, true, None));
    let mut actions = drain(server);
    assert_eq!(actions.len(), 1, "{actions:?}");
    match actions.pop() {
        Some(Action::Lookup { id, job }) => (id, job.downcast::<LookupJob>().expect("a job")),
        other => panic!("a lookup, not {other:?}"),
    }
}

fn one_reply(actions: &[Action]) -> names_tests::Parsed {
    let r = replies(actions);
    assert_eq!(r.len(), 1, "{actions:?}");
    parse(&r[0].1)
}

#[test]
fn a_lookup_answers_and_frees_its_state() {
    let mut server = asker_server(Config::default(), OnTimeout::Default);
    let (id, job) = ask(&mut server, 0, 1000, "LkWeb.svc.test");
    assert_eq!(
        job,
        LookupJob {
            key: "lkweb".into(),
            round: 0
        }
    );
    assert_eq!(server.open_lookups(), 1);
    assert!(server.poll_timeout().is_some(), "the budget is armed");

    let addr = Ipv4Addr::new(192, 0, 2, 7);
    server.handle_lookup(at(30), id, Payload::new(LookupResult::Addr(addr)));
    let reply = one_reply(&drain(&mut server));
    assert_eq!((reply.id, reply.rcode, reply.aa), (1000, 0, true));
    assert_eq!(reply.a_addrs(), [addr]);
    assert_eq!(reply.answers[0].owner, "LkWeb.svc.test");
    assert_eq!(server.open_lookups(), 0);
    assert_eq!(server.poll_timeout(), None, "the budget timer is gone");
    let s = server.stats();
    assert_eq!((s.lookups_started, s.lookups_completed), (1, 1));
    assert_eq!((s.lookups_timed_out, s.lookups_late), (0, 0));

    // The same id again is a late completion: ignored, counted.
    server.handle_lookup(at(40), id, Payload::new(LookupResult::Addr(addr)));
    assert!(drain(&mut server).is_empty());
    assert_eq!(server.stats().lookups_late, 1);
}

#[test]
fn a_pass_goes_to_the_next_resolver() {
    let mut server = asker_server(Config::default(), OnTimeout::Default);
    let (id, _) = ask(&mut server, 0, 1000, "lk1.svc.test");
    server.handle_lookup(at(5), id, Payload::new(LookupResult::Pass));
    let actions = drain(&mut server);
    let sent = sends(&actions);
    assert_eq!(sent.len(), 1, "forwarded: {actions:?}");
    assert_eq!(sent[0].to, upstream_addr(1));
    assert_eq!(server.open_lookups(), 0);
    assert_eq!(server.pending_queries(), 1);
}

#[test]
fn other_names_pass_at_once() {
    let mut server = asker_server(Config::default(), OnTimeout::Default);
    server.handle_client(
        at(0),
        udp(1000),
        &query("www.example", Rtype::A, 1, true, None),
    );
    let actions = drain(&mut server);
    assert_eq!(sends(&actions).len(), 1, "{actions:?}");
    assert_eq!(server.stats().lookups_started, 0);
}

#[test]
fn the_budget_cancels_the_job_and_the_default_is_servfail() {
    let config = Config::default();
    let budget = config.budget.as_millis() as u64;
    let mut server = asker_server(config, OnTimeout::Default);
    let (id, _) = ask(&mut server, 0, 1000, "lkslow.svc.test");
    assert_eq!(server.poll_timeout(), Some(at(budget)));
    server.handle_timeout(at(budget - 1));
    assert!(drain(&mut server).is_empty(), "not yet");
    server.handle_timeout(at(budget));
    let actions = drain(&mut server);
    assert_eq!(actions[0], Action::CancelLookup { id });
    assert_eq!(one_reply(&actions).rcode, SERVFAIL);
    assert_eq!(server.open_lookups(), 0);
    assert_eq!(server.stats().lookups_timed_out, 1);

    // The job finishes later: ignored.
    let addr = Ipv4Addr::new(192, 0, 2, 7);
    server.handle_lookup(at(budget + 10), id, Payload::new(LookupResult::Addr(addr)));
    assert!(drain(&mut server).is_empty());
    assert_eq!(server.stats().lookups_late, 1);
    assert_eq!(server.stats().replies, 1);
}

#[test]
fn after_the_budget_the_resolvers_answer_is_used_and_asking_again_is_servfail() {
    let budget = Config::default().budget.as_millis() as u64;
    for (on_timeout, rcode, addrs) in [
        (OnTimeout::Answer, 0, vec![Ipv4Addr::new(192, 0, 2, 99)]),
        (OnTimeout::Again, SERVFAIL, vec![]),
        (OnTimeout::Pass, SERVFAIL, vec![]),
    ] {
        let mut server = asker_server(Config::default(), on_timeout);
        let (id, _) = ask(&mut server, 0, 1000, "lkslow.svc.test");
        server.handle_timeout(at(budget));
        let actions = drain(&mut server);
        assert_eq!(actions[0], Action::CancelLookup { id }, "{on_timeout:?}");
        assert_eq!(
            actions.len(),
            2,
            "no new lookup, no upstream query: {actions:?}"
        );
        let reply = one_reply(&actions);
        assert_eq!(
            (reply.rcode, reply.a_addrs()),
            (rcode, addrs),
            "{on_timeout:?}"
        );
        assert_eq!(server.open_lookups(), 0);
        assert_eq!(server.pending_queries(), 0);
        assert_eq!(server.poll_timeout(), None);
    }
}

#[test]
fn a_resolver_may_ask_again_within_the_budget() {
    let mut server = asker_server(Config::default(), OnTimeout::Default);
    let (id, _) = ask(&mut server, 0, 1000, "lkx.svc.test");
    server.handle_lookup(at(10), id, Payload::new(LookupResult::Again));
    let mut actions = drain(&mut server);
    let Some(Action::Lookup { id: again, job }) = actions.pop() else {
        panic!("another lookup: {actions:?}")
    };
    assert_ne!(again, id, "ids are never reused");
    assert_eq!(job.downcast::<LookupJob>().unwrap().round, 1);
    let addr = Ipv4Addr::new(192, 0, 2, 8);
    server.handle_lookup(at(20), again, Payload::new(LookupResult::Addr(addr)));
    assert_eq!(one_reply(&drain(&mut server)).a_addrs(), [addr]);
    assert_eq!(server.stats().lookups_completed, 2);
    assert_eq!(server.open_lookups(), 0);
}

#[test]
fn results_out_of_order_reach_their_own_queries() {
    let mut server = asker_server(Config::default(), OnTimeout::Default);
    let asked: Vec<_> = (0..5u16)
        .map(|i| ask(&mut server, 0, 1000 + i, &format!("lk{i}.svc.test")).0)
        .collect();
    assert_eq!(server.open_lookups(), 5);
    for (i, id) in asked.iter().enumerate().rev() {
        let addr = Ipv4Addr::new(10, 0, 0, i as u8);
        server.handle_lookup(at(10), *id, Payload::new(LookupResult::Addr(addr)));
        let actions = drain(&mut server);
        let r = replies(&actions);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, udp(1000 + i as u16));
        assert_eq!(parse(&r[0].1).a_addrs(), [addr]);
    }
    assert_eq!(server.open_lookups(), 0);
}

#[test]
fn unknown_ids_and_foreign_results_never_hang_or_panic() {
    let mut server = asker_server(Config::default(), OnTimeout::Default);
    server.handle_lookup(at(0), LookupId(0), Payload::new(()));
    server.handle_lookup(at(0), LookupId(u64::MAX), Payload::new("x"));
    assert!(drain(&mut server).is_empty());
    assert_eq!(server.stats().lookups_late, 2);

    // A runtime that cannot run the job completes it with something else: SERVFAIL.
    let (id, _) = ask(&mut server, 0, 1000, "lk.svc.test");
    server.handle_lookup(at(1), id, Payload::new(String::from("cannot run that")));
    assert_eq!(one_reply(&drain(&mut server)).rcode, SERVFAIL);
    assert_eq!(server.open_lookups(), 0);
}

#[test]
fn max_lookups_bounds_the_lookups_in_flight() {
    let config = Config {
        max_lookups: 3,
        ..Config::default()
    };
    let mut server = asker_server(config, OnTimeout::Default);
    let asked: Vec<_> = (0..3u16)
        .map(|i| ask(&mut server, 0, 1000 + i, &format!("lk{i}.svc.test")).0)
        .collect();
    server.handle_client(
        at(1),
        udp(2000),
        &query("lkmore.svc.test", Rtype::A, 9, true, None),
    );
    let actions = drain(&mut server);
    assert_eq!(one_reply(&actions).rcode, SERVFAIL);
    assert_eq!(actions.len(), 1, "no lookup: {actions:?}");
    assert_eq!(server.stats().overloaded, 1);
    assert_eq!(server.open_lookups(), 3);

    // One completes: room for one more.
    let addr = Ipv4Addr::new(10, 0, 0, 1);
    server.handle_lookup(at(2), asked[0], Payload::new(LookupResult::Addr(addr)));
    drain(&mut server);
    ask(&mut server, 3, 2001, "lkmore.svc.test");
    assert_eq!(server.open_lookups(), 3);
}

#[test]
fn a_flood_of_lookups_is_bounded_and_all_answered() {
    let config = Config {
        max_lookups: 100,
        ..Config::default()
    };
    let budget = config.budget.as_millis() as u64;
    let mut server = asker_server(config, OnTimeout::Default);
    let mut lookups = Vec::new();
    let mut servfail = 0;
    for i in 0..1000u16 {
        let q = query(&format!("lk{i}.svc.test"), Rtype::A, i, true, None);
        server.handle_client(at(u64::from(i)), udp(10_000 + i), &q);
        for action in drain(&mut server) {
            match action {
                Action::Lookup { id, .. } => lookups.push(id),
                Action::Reply { .. } => servfail += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(server.open_lookups() <= 100);
    }
    assert_eq!((lookups.len(), servfail), (100, 900));
    // Nobody runs the jobs: the budget answers every one, and nothing is left.
    server.handle_timeout(at(1000 + budget));
    let actions = drain(&mut server);
    assert_eq!(replies(&actions).len(), 100);
    assert_eq!(server.open_lookups(), 0);
    assert_eq!(server.poll_timeout(), None);
    assert_eq!(server.stats().lookups_timed_out, 100);
}

#[test]
fn the_traits_default_on_lookup_is_servfail() {
    use names_core::{Context, Query, Resolution, Resolver};
    struct AsksOnly;
    impl Resolver for AsksOnly {
        fn name(&self) -> &str {
            "asks-only"
        }
        fn resolve(&mut self, _: &Query<'_>, _: &mut Context) -> Resolution {
            Resolution::Lookup(Payload::new(1u8))
        }
    }
    let mut server = Server::new(Config::default(), Chain::new().with(AsksOnly), SEED);
    server.handle_client(at(0), udp(1000), &query("a.test", Rtype::A, 1, true, None));
    let Some(Action::Lookup { id, job }) = server.poll_action() else {
        panic!("a lookup")
    };
    assert_eq!(job.downcast_ref::<u8>(), Some(&1));
    server.handle_lookup(at(1), id, job);
    assert_eq!(one_reply(&drain(&mut server)).rcode, SERVFAIL);
}

#[test]
fn lookups_are_exported_as_metrics() {
    let mut server = asker_server(Config::default(), OnTimeout::Default);
    let (id, _) = ask(&mut server, 0, 1000, "lk.svc.test");
    let mut stats = names_core::Stats::default();
    stats.read(&server);
    let metrics = stats.metrics();
    let value = |name: &str| {
        let m = metrics
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        m.samples[0].value.clone()
    };
    use names_core::stats::Value::Count;
    assert_eq!(value("lookups_started"), Count(1));
    assert_eq!(value("lookups_in_flight"), Count(1));
    for name in ["lookups_completed", "lookups_timed_out", "lookups_late"] {
        assert_eq!(value(name), Count(0), "{name}");
    }
    server.handle_lookup(at(1), id, Payload::new(LookupResult::Pass));
}

/// A query delayed by its lookup may join an identical exchange that a later query
/// started: it is still answered by its own budget (the exchange ends by the earliest
/// deadline of its waiters), never after it. Found by the `structured` fuzzer (seed
/// `crash-late-reply-over-budget`).
#[test]
fn a_delayed_query_joining_a_later_exchange_keeps_its_own_budget() {
    let mut server = asker_server(Config::default(), OnTimeout::Default);
    let (early, _) = ask(&mut server, 0, 1000, "lk1.svc.test");
    let (late, _) = ask(&mut server, 1_000, 1001, "lk1.svc.test");
    // The later query's lookup passes first: its exchange is due at 6 s.
    server.handle_lookup(at(1_100), late, Payload::new(LookupResult::Pass));
    assert_eq!(sends(&drain(&mut server)).len(), 1);
    // The earlier one passes next and joins it, with a budget ending at 5 s.
    server.handle_lookup(at(1_200), early, Payload::new(LookupResult::Pass));
    assert!(
        sends(&drain(&mut server)).is_empty(),
        "joined, not sent again"
    );
    assert!(server.poll_timeout().is_some_and(|t| t <= at(5_000)));
    server.handle_timeout(at(5_000));
    let actions = drain(&mut server);
    let got = replies(&actions);
    assert_eq!(
        got.len(),
        2,
        "both answered at the earlier budget: {actions:?}"
    );
    for (_, bytes) in got {
        assert_eq!(parse(&bytes).rcode, SERVFAIL);
    }
    assert_eq!(server.pending_queries(), 0);
}
