//! Bodies of the fuzz targets in `fuzz/` (each target is one line calling one of these),
//! here so that a plain `cargo test` replays the committed seeds and corpora
//! (`tests/tests/core/fuzz_corpus.rs`) on stable Rust.
//!
//! Each function takes the fuzzer's bytes, drives the simulated [`World`] through a
//! scenario, and panics when an invariant breaks. What a client message must get is
//! decided from the message alone ([`oracle`]).
//!
//! * [`client_datagram`]: the bytes as one UDP datagram. Exactly one reply when the
//!   message is admissible, none when it is dropped; reply ID = query ID; the reply
//!   parses back; it fits the client's UDP limit; no state is left behind.
//! * [`tcp_stream`]: the bytes as a client TCP stream cut into arbitrary chunks, from a
//!   client that may stall (its replies are reported written only later), half-close
//!   after the stream, and face a small buffering limit. Every reply is a correct frame
//!   with the ID of a query frame; one reply per admissible frame unless the connection
//!   was closed; unwritten reply bytes and unread input stay within their bounds; a
//!   half-closed connection is closed by the server once answered, else the idle timeout
//!   closes it in the end.
//! * [`upstream_reply`]: the bytes as the upstream's reply to a pending forwarded query
//!   (raw, with the right ID spliced in, or as records after the right header and
//!   question; from the right or a wrong address; over UDP or TCP). Over TCP (after a
//!   TC=1 answer, the first try lost or not, one upstream or two) also several frames in
//!   one read or split across reads, with a SERVFAIL/REFUSED/NOTIMP/FORMERR/NOERROR frame
//!   first, raw bytes after them, a zero-length frame then endless garbage, or the same
//!   frame over and over. The client gets exactly one well-formed reply, a reply from a
//!   wrong address is never used, and records for an unrelated zone added to the reply
//!   never reach the client.
//! * [`zonefile`]: the bytes as a zone file; a zone that loads is served.
//! * [`structured`]: an `Arbitrary` [`Scenario`] run in the world ([`scenario`]).
//!
//! After every input to the server, in every target, the world checks its bounds:
//! waiting queries, open exchanges, bytes an upstream TCP try holds, and per TCP
//! connection unwritten and unread bytes.

pub mod oracle;
mod reply;
pub mod scenario;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::{Name, ToName};
use names_core::zone::{load_zone, Snapshot, ZoneResolver, ZoneSet};
use names_core::{Chain, Config, ConnId, Origin, Token};

pub use reply::upstream_reply;
use reply::{carries_poison, contains_label, poisoned};
pub use scenario::{run_scenario, structured, Scenario};

use crate::build::{frame, query_wire, split_frames, try_answer, Flags};
use crate::drive::{synth_chain, udp_from, wrap};
use crate::parse::message;
use crate::sim::{Conn, Event, TokenInfo, World};
use oracle::{check_reply, expect, Expect};

const UP1: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 53);
const UP2: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), 5353);
const SPOOFER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 66)), 53);
/// The address spoofed answers carry; it must never reach a client.
const SPOOFED_IP: Ipv4Addr = Ipv4Addr::new(6, 6, 6, 6);

fn udp_origin(port: u16) -> Origin {
    udp_from(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)),
        port,
    ))
}

/// The chain every target uses: synthesised `host<N>` names, then two upstreams.
fn chain() -> Chain {
    synth_chain("host=10.1.2", &[UP1, UP2])
}

/// Small limits, so the fuzzers reach them.
fn small_config() -> Config {
    Config {
        max_tcp: 4,
        max_pipelined: 4,
        max_exchanges: 8,
        max_waiting: 16,
        ..Config::default()
    }
}

/// An upstream answer to `query` with `records` A records (10.0.x.y, or all `ip`),
/// `rcode` and TC; empty when `query` is not a query with one question.
fn upstream_answer(
    query: &[u8],
    records: u16,
    rcode: Rcode,
    tc: bool,
    ip: Option<Ipv4Addr>,
) -> Vec<u8> {
    let ips: Vec<Ipv4Addr> = (0..records)
        .map(|i| {
            let [hi, lo] = i.to_be_bytes();
            ip.unwrap_or(Ipv4Addr::new(10, 0, hi, lo))
        })
        .collect();
    let mut reply = try_answer(query, rcode, &ips, 300).unwrap_or_default();
    if tc && reply.len() > 2 {
        reply[2] |= 0x02;
    }
    reply
}

/// A query built from its parts; `edns` is (UDP size, DO bit).
fn client_query(
    id: u16,
    qname: &Name<Bytes>,
    qtype: Rtype,
    rd: bool,
    edns: Option<(u16, bool)>,
) -> Vec<u8> {
    let flags = Flags {
        rd,
        cd: false,
        opcode: Opcode::QUERY,
    };
    let edns = edns.map(|(size, dnssec_ok)| (size, 0, dnssec_ok));
    query_wire(qname, qtype, Class::IN, id, flags, edns)
}

/// The upstream queries the server sent, from the `from`-th on.
fn sent_since(w: &World, from: usize) -> Vec<(Token, TokenInfo)> {
    w.sent[from.min(w.sent.len())..]
        .iter()
        .map(|t| (*t, w.tokens[t].clone()))
        .collect()
}

/// Fuzz target 1: one client datagram. Upstream queries it causes are answered with
/// `data.len() % 64` records, so big answers get truncated.
pub fn client_datagram(data: &[u8]) {
    let mut w = World::manual(small_config(), chain());
    let origin = udp_origin(40000);
    let expected = expect(data);
    w.push(Event::Client(origin, data.to_vec()));
    let records = (data.len() % 64) as u16;
    for (token, s) in sent_since(&w, 0) {
        let reply = upstream_answer(&s.message, records, Rcode::NOERROR, false, None);
        w.push(Event::Upstream(token, s.to, reply));
    }
    w.finish();
    let replies = w.replies_to(origin);
    if expected == Expect::Drop {
        assert!(replies.is_empty(), "a dropped message got a reply");
    } else {
        assert_eq!(
            replies.len(),
            1,
            "exactly one reply per admissible datagram"
        );
        check_reply(data, &expected, replies[0], true, w.config.edns_udp_size);
    }
}

/// SplitMix64: a tiny deterministic generator (chunk sizes, delays, seeds' bytes).
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Fuzz target 2: a client TCP stream. `data[0..2]` seed the chunking and the delays;
/// bits of `data[0]`: 0 upstream queries are answered, 1 the client does not read until
/// half the stream is sent, 2 it half-closes after the stream, 3 a 200-byte buffering
/// limit, 4 its address floods: it holds 2 connections (the cap) and a third is refused.
/// The rest is the stream.
pub fn tcp_stream(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let mut rng = SplitMix(u64::from(u16::from_be_bytes([data[0], data[1]])));
    let stream = &data[2..];
    let answer_upstream = data[0] & 1 == 1;
    let stall = data[0] & 2 != 0;
    let half_close = data[0] & 4 != 0;
    let mut config = small_config();
    if data[0] & 8 != 0 {
        config.max_tcp_buffered = 200;
    }
    let flood = data[0] & 16 != 0;
    config.max_tcp_per_client = 2;
    let mut w = World::manual(config, chain());
    let conn = ConnId(1);
    let peer = SocketAddr::from(([127, 0, 0, 9], 40001));
    let mut c = Conn::new(peer, w.now);
    c.stalled = stall;
    w.conns.insert(conn, c);
    w.push(Event::TcpOpen(conn));
    if flood {
        let same = SocketAddr::new(peer.ip(), 40002);
        for id in [ConnId(2), ConnId(3)] {
            w.conns.insert(id, Conn::new(same, w.now));
            w.push(Event::TcpOpen(id));
        }
        assert!(!w.conns[&ConnId(2)].closed, "under the cap");
        assert!(
            w.conns[&ConnId(3)].closed_by_server.is_some(),
            "over the cap: closed at once"
        );
        assert_eq!(w.report.flood_refused, 1);
        assert_eq!(w.server.connections_from(peer.ip()), 2);
    }

    // What the connection should answer: every frame until the first empty one.
    let (frames, garbage) = split_frames(stream);
    let mut rest = stream;
    let mut answered = 0;
    while !rest.is_empty() {
        let n = (1 + rng.below(64) as usize).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        if stall && rest.len() < stream.len() / 2 {
            w.push(Event::ClientReads(conn));
        }
        w.push(Event::Client(Origin::Tcp(conn), chunk.to_vec()));
        if answer_upstream {
            for (token, s) in sent_since(&w, answered) {
                let reply =
                    upstream_answer(&s.message, rng.below(4) as u16, Rcode::NOERROR, false, None);
                w.push(Event::Upstream(token, s.to, wrap(s.via, &reply)));
            }
            answered = w.sent.len();
        }
        // Mostly short pauses; now and then one past the idle timeout.
        let pause = match rng.below(16) {
            0 => w.config.tcp_idle + Duration::from_millis(1),
            k => Duration::from_millis(k * 50),
        };
        w.advance(pause);
    }
    let closed_early = w.conns[&conn].closed;
    if half_close {
        w.push(Event::TcpEof(conn));
    }
    w.push(Event::ClientReads(conn));
    let released = w.now;
    if flood {
        // The flood's connection goes away.
        w.push(Event::TcpClose(ConnId(2)));
    }
    w.finish();
    let c = &w.conns[&conn];
    assert!(c.closed, "the idle timeout closes the connection");
    if half_close && !closed_early {
        let closed = c.closed_by_server.expect("closed by the server");
        assert!(
            closed <= released.max(c.last_reply),
            "a half-closed connection is closed once answered, not by the idle timeout"
        );
    }

    let replies = w.replies_to(Origin::Tcp(conn));
    let expects: Vec<Expect> = frames.iter().map(|f| expect(f)).collect();
    let admissible = expects.iter().filter(|e| **e != Expect::Drop).count();
    assert!(replies.len() <= admissible, "more replies than queries");
    if !closed_early && !garbage {
        assert_eq!(replies.len(), admissible, "one reply per admissible frame");
    }
    // Frames may share an ID: each reply is matched to an unanswered frame by ID and by
    // question or response code.
    let mut done = vec![false; frames.len()];
    for reply in replies {
        let msg = message(reply);
        let i = (0..frames.len())
            .find(|&i| {
                !done[i]
                    && frames[i].get(..2) == reply.get(..2)
                    && match &expects[i] {
                        Expect::Drop => false,
                        Expect::Reject(rcode) => msg.opt_rcode() == *rcode,
                        Expect::Query {
                            qname,
                            qtype,
                            qclass,
                        } => msg.sole_question().is_ok_and(|q| {
                            q.qname().to_name::<Bytes>().as_slice() == qname.as_slice()
                                && (q.qtype(), q.qclass()) == (*qtype, *qclass)
                        }),
                    }
            })
            .expect("a reply answers one of the frames");
        done[i] = true;
        check_reply(
            &frames[i],
            &expects[i],
            reply,
            false,
            w.config.edns_udp_size,
        );
    }
}

/// Fuzz target 4: the bytes as a zone file (lossy UTF-8; every `$INCLUDE` gives one
/// small fixed file). A zone that loads is served: its apex SOA, NS and ANY, a name
/// under it, and an AXFR over TCP each get exactly one reply that parses back.
pub fn zonefile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut include = |_: &str, _: &str| -> Result<(String, String), String> {
        Ok(("inc.zone".into(), "www 60 IN A 192.0.2.1\n".into()))
    };
    let Ok(zone) = load_zone("fuzz.zone", &text, &mut include) else {
        return;
    };
    let origin = zone.origin().clone();
    let Ok(zones) = ZoneSet::new(vec![zone]) else {
        return;
    };
    let resolver = ZoneResolver::new(Snapshot::new(zones));
    let mut w = World::manual(Config::default(), Chain::new().with(resolver));
    // The zone is served as written, even if it is the planted zone of the other targets.
    w.planted_check = false;
    let www = Name::from_octets(Bytes::from([b"\x03www", origin.as_slice()].concat())).ok();
    let mut asks = vec![
        (origin.clone(), Rtype::SOA, false),
        (origin.clone(), Rtype::NS, false),
        (origin.clone(), Rtype::ANY, false),
        (origin.clone(), Rtype::AXFR, true),
    ];
    if let Some(www) = www {
        asks.push((www.clone(), Rtype::A, false));
        asks.push((www, Rtype::MX, false));
    }
    let peer = SocketAddr::from(([127, 0, 0, 1], 40003));
    for (i, (qname, qtype, tcp)) in asks.iter().enumerate() {
        let edns = (i % 2 == 0).then_some((1232, false));
        let query = client_query(i as u16, qname, *qtype, false, edns);
        let origin = if *tcp {
            let conn = ConnId(i as u64);
            w.conns.insert(conn, Conn::new(peer, w.now));
            w.push(Event::TcpOpen(conn));
            w.push(Event::Client(Origin::Tcp(conn), frame(&query)));
            Origin::Tcp(conn)
        } else {
            let o = udp_origin(30_000 + i as u16);
            w.push(Event::Client(o, query.clone()));
            o
        };
        let replies = w.replies_to(origin);
        assert!(!replies.is_empty(), "query {i} for the zone answered");
        let expected = expect(&query);
        for reply in &replies {
            check_reply(&query, &expected, reply, !tcp, w.config.edns_udp_size);
        }
        if !tcp {
            assert_eq!(replies.len(), 1, "one UDP reply per query");
        }
    }
    w.finish();
}
