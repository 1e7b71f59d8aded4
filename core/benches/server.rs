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
//! TODO(cache): a `cache_hit` bench (a query answered from `names_core::cache`, warmed by one
//! forward first) once the cache resolver exists in names-core.
//! TODO(zone): a `zone_answer` bench (an A query answered from a zone loaded with
//! `names_core::zone`) once the zone resolver exists in names-core.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use names_core::domain::base::iana::{Class, Rtype};
use names_core::domain::base::Name;
use names_core::message::{encode_query, QuerySpec};
use names_core::{Action, Chain, Config, Forwarder, Origin, Server, Synth, SynthRule};

const UPSTREAM: &str = "127.0.0.1:15353";

fn client() -> Origin {
    Origin::Udp {
        local: "127.0.0.1:53".parse().unwrap(),
        peer: "127.0.0.1:40000".parse().unwrap(),
    }
}

fn query(id: u16, name: &str) -> Vec<u8> {
    let qname: Name<bytes::Bytes> = name.parse().unwrap();
    encode_query(&QuerySpec {
        id,
        qname: &qname,
        qtype: Rtype::A,
        qclass: Class::IN,
        rd: true,
        cd: false,
        edns: None,
    })
}

/// The chain `names serve --synth workstation=172.0.2 --upstream UPSTREAM` builds.
fn server() -> Server {
    let upstream: SocketAddr = UPSTREAM.parse().unwrap();
    let chain = Chain::new()
        .with(Synth::new(vec![
            SynthRule::parse("workstation=172.0.2").unwrap()
        ]))
        .with(Forwarder::new(vec![upstream]));
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
    let mut server = server();
    let now = Instant::now();
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

fn forward(c: &mut Criterion) {
    let mut server = server();
    let upstream: SocketAddr = UPSTREAM.parse().unwrap();
    let now = Instant::now();
    let q = query(42, "host1.bench.test");
    assert_eq!(forward_once(&mut server, now, &q, upstream), 1);
    assert_eq!(server.open_exchanges(), 0, "the exchange must be over");
    assert_eq!(
        server.open_upstream_tokens(),
        0,
        "its socket must be closed"
    );

    let mut group = c.benchmark_group("forward");
    group.throughput(Throughput::Elements(1));
    group.bench_function("query_out_reply_in", |b| {
        b.iter(|| forward_once(&mut server, now, black_box(&q), upstream))
    });
    group.finish();
    assert_eq!(server.pending_queries(), 0);
}

/// What one rejected message costs (a query with QDCOUNT 0 gets FORMERR): the floor of the
/// admission path.
fn reject(c: &mut Criterion) {
    let mut server = server();
    let now = Instant::now();
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

criterion_group!(benches, synth, forward, reject);
criterion_main!(benches);
