//! `Context::state`: a resolver's per-query state waits with its query between the
//! resolver's calls, one per query, and is gone with the query.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use names_core::domain::base::iana::Rtype;
use names_core::{
    Action, Answer, Chain, Config, Context, Exchange, Exchanged, Query, Resolution, Resolver,
    Server,
};
use names_tests::build::query;
use names_tests::drive::{at, udp, upstream_addr, SEED};
use names_tests::parse::parse;

/// Asks its one upstream, each try 100 ms, at most `limit` times per query.
struct Persistent {
    upstream: Arc<[SocketAddr]>,
    limit: u8,
}

#[derive(Default)]
struct Tries(u8);

impl Persistent {
    fn ask(&self, q: &Query<'_>, cx: &mut Context) -> Resolution {
        cx.state::<Tries>().0 += 1;
        let mut exchange = Exchange::forward(q, self.upstream.clone());
        exchange.iterative = true;
        exchange.try_timeout = Some(Duration::from_millis(100));
        Resolution::Exchange(exchange)
    }
}

impl Resolver for Persistent {
    fn name(&self) -> &str {
        "persistent"
    }

    fn resolve(&mut self, q: &Query<'_>, cx: &mut Context) -> Resolution {
        self.ask(q, cx)
    }

    fn on_exchange(&mut self, q: &Query<'_>, done: Exchanged, cx: &mut Context) -> Resolution {
        match done {
            Exchanged::Failed(_) if cx.state::<Tries>().0 < self.limit => self.ask(q, cx),
            _ => Resolution::Answer(Answer::servfail()),
        }
    }
}

#[test]
fn each_query_keeps_its_own_state_between_exchanges() {
    let resolver = Persistent {
        upstream: Arc::from([upstream_addr(1)]),
        limit: 3,
    };
    let mut server = Server::new(Config::default(), Chain::new().with(resolver), SEED);
    server.handle_client(
        at(0),
        udp(1000),
        &query("a.example", Rtype::A, 1, true, None),
    );
    server.handle_client(
        at(0),
        udp(1001),
        &query("b.example", Rtype::A, 2, true, None),
    );
    let (mut sent, mut replies) = (0, Vec::new());
    for step in 0..100 {
        while let Some(action) = server.poll_action() {
            match action {
                Action::SendUpstream { .. } => sent += 1,
                Action::Reply { bytes, .. } => replies.push(parse(&bytes)),
                _ => {}
            }
        }
        if replies.len() == 2 {
            break;
        }
        let next = server.poll_timeout().expect("a timer while queries wait");
        assert!(step < 99 && next <= at(5000), "stuck");
        server.handle_timeout(next);
    }
    // Three tries each: the count went on per query, neither shared nor lost.
    assert_eq!(sent, 6);
    assert!(replies.iter().all(|r| r.rcode == 2));
    assert_eq!(server.pending_queries(), 0);
}
