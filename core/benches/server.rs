//! Time per query through the `Server` state machine, with no I/O at all: bytes in,
//! actions out, everything in memory. Run with
//!
//! ```sh
//! cargo bench -p names-core --bench server            # all
//! cargo bench -p names-core --bench server -- synth   # one group
//! ```
//!
//! Each iteration is one whole query: the client datagram goes in, and every action it
//! causes is polled out (and, for the forward, the upstream reply goes back in), so the
//! time includes admission, the chain, encoding and the action queue.
//!
//! The chain is the one `names serve --synth workstation=172.0.2 --upstream ...` builds
//! (synth, cache, forward), or `names serve --zone tests/bench/bench.test.zone --no-forward`
//! for the zone bench. Groups: `synth`, `cache` (a hit), `zone` (an authoritative answer),
//! `forward` (a miss through the cache, and a forward with no cache), `reject` (FORMERR).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use names_core::cache::{Cache, CacheConfig};
use names_core::domain::base::iana::{Class, Rtype};
use names_core::domain::base::{MessageBuilder, Name};
use names_core::zone::{load_zone, Snapshot, ZoneResolver, ZoneSet};
use names_core::{Action, Chain, Config, Forwarder, Origin, Server, Synth, SynthRule};

const UPSTREAM: &str = "127.0.0.1:15353";

fn client() -> Origin {
    Origin::Udp {
        listener: 0,
        peer: "127.0.0.1:40000".parse().unwrap(),
    }
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let qname: Name<bytes::Bytes> = name.parse().unwrap();
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(id);
    b.header_mut().set_rd(true);
    let mut q = b.question();
    q.push((&qname, Rtype::A, Class::IN)).unwrap();
    q.finish()
}

/// The bench's one clock read; every `now` given to the core derives from it.
#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

fn synth_rule() -> SynthRule {
    SynthRule::parse("workstation=172.0.2").unwrap()
}

/// The chain `names serve --synth workstation=172.0.2 --upstream UPSTREAM` builds:
/// synth, then the cache (default size) when `cache`, then the forwarder.
fn server(cache: bool) -> Server {
    let upstream: SocketAddr = UPSTREAM.parse().unwrap();
    let mut chain = Chain::new().with(Synth::new(vec![synth_rule()]));
    if cache {
        chain = chain.with(Cache::with_config(CacheConfig::default()));
    }
    let chain = chain.with(Forwarder::new(vec![upstream]));
    Server::new(Config::default(), chain, [7; 32])
}

/// `names serve --zone bench.test.zone --no-forward`, on the benchmark script's zone.
fn zone_server() -> Server {
    let text = include_str!("../../tests/bench/bench.test.zone");
    let zone = load_zone("bench.test.zone", text, &mut |_, _| {
        Err("no includes".into())
    })
    .expect("tests/bench/bench.test.zone loads");
    let zones = Snapshot::new(ZoneSet::new(vec![zone]).unwrap());
    let chain = Chain::new().with(ZoneResolver::new(zones));
    Server::new(Config::default(), chain, [7; 32])
}

/// An upstream's answer to `query`: its header and question, QR/RA set, one A record
/// (a pointer to the question name), no OPT.
fn upstream_reply(query: &[u8]) -> Vec<u8> {
    let mut i = 12;
    while query[i] != 0 {
        i += 1 + usize::from(query[i]);
    }
    let end = i + 5;
    let mut reply = query[..end].to_vec();
    reply[2] |= 0x80;
    reply[3] = 0x80;
    reply[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
    reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1]);
    reply
}

/// Drains the actions; returns how many replies there were.
fn drain(server: &mut Server) -> usize {
    let mut replies = 0;
    while let Some(action) = server.poll_action() {
        if let Action::Reply { bytes, .. } = &action {
            black_box(bytes);
            replies += 1;
        }
    }
    replies
}

fn synth(c: &mut Criterion) {
    let mut server = server(true);
    let now = start();
    let q = query(42, "workstation7.example.com");
    server.handle_client(now, client(), &q);
    assert_eq!(drain(&mut server), 1, "synth must answer at once");

    let mut group = c.benchmark_group("synth");
    group.throughput(Throughput::Elements(1));
    group.bench_function("answer", |b| {
        b.iter(|| {
            server.handle_client(now, client(), black_box(&q));
            drain(&mut server)
        })
    });
    group.finish();
}

/// One forwarded query: the client query in, `SendUpstream` out, the upstream reply in,
/// the client `Reply` (and `CloseUpstream`) out.
fn forward_once(server: &mut Server, now: Instant, q: &[u8], upstream: SocketAddr) -> usize {
    server.handle_client(now, client(), q);
    let mut sent = None;
    while let Some(action) = server.poll_action() {
        if let Action::SendUpstream { token, bytes, .. } = action {
            sent = Some((token, bytes));
        }
    }
    let Some((token, bytes)) = sent else {
        return 0;
    };
    let reply = upstream_reply(&bytes);
    server.handle_upstream(now, token, upstream, &reply);
    drain(server)
}

/// A forward per iteration: names never asked before go through the cache (a miss, then
/// an insert), as in the FORWARD-MISS row of compare.sh; and, for comparison, the same
/// forward with no cache in the chain.
fn forward(c: &mut Criterion) {
    let upstream: SocketAddr = UPSTREAM.parse().unwrap();
    let now = start();
    // 50k names cycled through a 10k-entry LRU cache: every one is gone before it is asked again.
    let names: Vec<Vec<u8>> = (0..50_000)
        .map(|i| query(42, &format!("m{i}.bench.test")))
        .collect();

    let mut group = c.benchmark_group("forward");
    group.throughput(Throughput::Elements(1));

    let mut cached = server(true);
    assert_eq!(forward_once(&mut cached, now, &names[0], upstream), 1);
    let mut i = 0;
    group.bench_function("miss_through_cache", |b| {
        b.iter(|| {
            i = (i + 1) % names.len();
            forward_once(&mut cached, now, black_box(&names[i]), upstream)
        })
    });
    assert_eq!(cached.open_exchanges(), 0, "every exchange must be over");
    assert_eq!(
        cached.open_upstream_tokens(),
        0,
        "every socket must be closed"
    );

    let mut plain = server(false);
    let q = query(42, "host1.bench.test");
    assert_eq!(forward_once(&mut plain, now, &q, upstream), 1);
    group.bench_function("no_cache", |b| {
        b.iter(|| forward_once(&mut plain, now, black_box(&q), upstream))
    });
    group.finish();
    assert_eq!(plain.pending_queries(), 0);
    assert_eq!(plain.open_upstream_tokens(), 0);
}

/// A cache hit: the name was forwarded once, every later query is answered from memory.
fn cache(c: &mut Criterion) {
    let mut server = server(true);
    let upstream: SocketAddr = UPSTREAM.parse().unwrap();
    let now = start();
    let q = query(42, "c1.bench.test");
    assert_eq!(forward_once(&mut server, now, &q, upstream), 1);
    server.handle_client(now, client(), &q);
    let actions: Vec<Action> = std::iter::from_fn(|| server.poll_action()).collect();
    assert!(
        matches!(actions.as_slice(), [Action::Reply { .. }]),
        "the second query must be a cache hit, got {actions:?}"
    );

    let mut group = c.benchmark_group("cache");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hit", |b| {
        b.iter(|| {
            server.handle_client(now, client(), black_box(&q));
            drain(&mut server)
        })
    });
    group.finish();
}

/// An authoritative A answer from a loaded zone (an explicit record, not the wildcard).
fn zone(c: &mut Criterion) {
    let mut server = zone_server();
    let now = start();
    let q = query(42, "host1.bench.test");
    server.handle_client(now, client(), &q);
    let Some(Action::Reply { bytes, .. }) = server.poll_action() else {
        panic!("the zone must answer at once");
    };
    assert_eq!(bytes[2] & 0x04, 0x04, "AA must be set");
    assert_eq!(bytes[3] & 0x0f, 0, "NOERROR expected");
    assert_eq!(&bytes[6..8], &[0, 1], "one answer record");

    let mut group = c.benchmark_group("zone");
    group.throughput(Throughput::Elements(1));
    group.bench_function("answer", |b| {
        b.iter(|| {
            server.handle_client(now, client(), black_box(&q));
            drain(&mut server)
        })
    });
    group.finish();
}

/// What one rejected message costs (a query with QDCOUNT 0 gets FORMERR): the floor of the
/// admission path.
fn reject(c: &mut Criterion) {
    let mut server = server(true);
    let now = start();
    let mut q = query(42, "host1.bench.test");
    q[4..6].copy_from_slice(&[0, 0]);
    q.truncate(12);
    server.handle_client(now, client(), &q);
    assert_eq!(drain(&mut server), 1, "FORMERR expected");

    let mut group = c.benchmark_group("reject");
    group.throughput(Throughput::Elements(1));
    group.bench_function("formerr", |b| {
        b.iter(|| {
            server.handle_client(now, client(), black_box(&q));
            drain(&mut server)
        })
    });
    group.finish();
}

criterion_group!(benches, synth, cache, zone, forward, reject);
criterion_main!(benches);
