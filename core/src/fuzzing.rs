//! Bodies of the fuzz targets in `fuzz/`, kept in the core so that a plain `cargo test`
//! replays the committed seed corpora (`core/tests/fuzz_corpus.rs`) on stable Rust.
//!
//! Each function takes the fuzzer's bytes, drives a [`Server`] through a scenario, and
//! panics when an invariant breaks:
//!
//! * [`client_datagram`]: the bytes as one UDP datagram. Exactly one reply when the
//!   message is admissible, none when it is dropped; reply ID = query ID; the reply
//!   parses back; it fits the client's UDP limit; no state is left behind.
//! * [`tcp_stream`]: the bytes as a client TCP stream cut into arbitrary chunks, through
//!   the core's 2-byte framing, from a client that may stall (its replies are reported
//!   written only later), half-close after the stream, and face a small buffering limit.
//!   Every reply is a correct frame with the ID of a query frame; one reply per
//!   admissible frame unless the connection was closed; unwritten reply bytes and unread
//!   input stay within their bounds; a half-closed connection is closed by the server
//!   once answered, else the idle timeout closes it in the end.
//! * [`upstream_reply`]: the bytes as the upstream's reply to a pending forwarded query
//!   (raw, with the right ID spliced in, or as records after the right header and
//!   question; from the right or a wrong address; over UDP or TCP). Over TCP (after a
//!   TC=1 answer, the first try lost or not, one upstream or two) also several frames in
//!   one read or split across reads, with a SERVFAIL/REFUSED/NOTIMP/FORMERR/NOERROR frame
//!   first, raw bytes after them, a zero-length frame then endless garbage, or the same
//!   frame over and over. The client gets exactly one well-formed reply, a reply from a
//!   wrong address is never used.
//! * [`structured`]: an [`Arbitrary`] [`Scenario`]: valid queries over UDP and TCP, and an
//!   upstream that answers, drops, delays, duplicates, truncates, fails, spoofs and sends
//!   garbage, and over TCP writes several frames per read (failure rcodes among them),
//!   frames split across reads, zero-length frames, garbage and endless streams; floods
//!   of identical queries; small limits on exchanges and waiting queries. Every query gets exactly one reply, with its ID and question, that parses
//!   back, fits the client's UDP limit, arrives within the budget and never carries
//!   spoofed data; nothing is pending at the end. `core/tests/fault_sim.rs` runs it over
//!   thousands of seeds.
//!
//! After every input to the server, in every target: waiting queries never above
//! `max_waiting`, open exchanges never above `max_exchanges`, and no upstream TCP try
//! holding more than one frame of the largest size (65537 bytes).
//!
//! Not a stable API: it exists for the fuzzers and the tests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

pub use arbitrary;
use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, Name, ParsedName, StaticCompressor, ToName};
use domain::rdata::{AllRecordData, A};

use crate::action::{Action, ConnId, Origin, Token, UpstreamError, Via};
use crate::config::Config;
use crate::message::{encode_query, QuerySpec};
use crate::request::{admit, Admission};
use crate::resolver::{Chain, Forwarder, Synth, SynthRule};
use crate::server::Server;
use crate::tcp::{frame, Framer};

const UP1: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 53);
const UP2: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)), 5353);
const SPOOFER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 66)), 53);
/// The address spoofed answers carry; it must never reach a client.
const SPOOFED_IP: Ipv4Addr = Ipv4Addr::new(6, 6, 6, 6);
/// The most an upstream TCP try may hold: one frame of the largest size and its prefix.
const MAX_TCP_HELD: usize = 65535 + 2;
/// Bound on timer rounds when running a scenario to its end.
const MAX_ROUNDS: usize = 10_000;

fn udp_origin(port: u16) -> Origin {
    Origin::Udp {
        listener: 0,
        peer: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)), port),
    }
}

/// The chain every target uses: synthesised `host<N>` names, then two upstreams.
fn chain() -> Chain {
    Chain::new()
        .with(Synth::new(vec![
            SynthRule::parse("host=10.1.2").expect("a valid synth rule")
        ]))
        .with(Forwarder::new(vec![UP1, UP2]))
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

/// An upstream query the server asked for.
#[derive(Clone, Debug)]
struct Sent {
    token: Token,
    to: SocketAddr,
    via: Via,
    /// The query without TCP framing.
    query: Vec<u8>,
}

/// A server plus the bookkeeping that checks its actions.
struct Harness {
    server: Server,
    config: Config,
    now: Instant,
    start: Instant,
    replies: Vec<(Origin, Vec<u8>, Instant)>,
    sent: Vec<Sent>,
    open_tokens: HashSet<Token>,
    closed_clients: HashSet<ConnId>,
    /// TCP reply bytes the runtime holds back (the client does not read); when false,
    /// every TCP reply is reported written as soon as it is taken.
    hold_writes: bool,
    held: BTreeMap<ConnId, usize>,
    /// The largest framed TCP reply seen.
    largest_tcp_reply: usize,
}

impl Harness {
    fn new(config: Config) -> Harness {
        Harness::with_chain(config, chain())
    }

    fn with_chain(config: Config, chain: Chain) -> Harness {
        // The harness, not the server, picks its base time once; all later times are
        // offsets from it, so every run is deterministic.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        Harness {
            server: Server::new(config.clone(), chain, [7; 32]),
            config,
            now,
            start: now,
            replies: Vec::new(),
            sent: Vec::new(),
            open_tokens: HashSet::new(),
            closed_clients: HashSet::new(),
            hold_writes: false,
            held: BTreeMap::new(),
            largest_tcp_reply: 0,
        }
    }

    /// Bytes from an upstream, then the memory bounds checked.
    fn upstream(&mut self, token: Token, from: SocketAddr, bytes: &[u8]) {
        self.server.handle_upstream(self.now, token, from, bytes);
        self.check_bounds();
    }

    /// What must hold at any moment: waiting queries, open exchanges and what an
    /// upstream TCP try holds are all bounded.
    fn check_bounds(&self) {
        assert!(
            self.server.pending_queries() <= self.config.max_waiting,
            "{} queries waiting, over the bound of {}",
            self.server.pending_queries(),
            self.config.max_waiting
        );
        assert!(
            self.server.open_exchanges() <= self.config.max_exchanges,
            "{} exchanges open, over the bound of {}",
            self.server.open_exchanges(),
            self.config.max_exchanges
        );
        assert!(
            self.server.upstream_buffered_bytes() <= MAX_TCP_HELD,
            "an upstream TCP try holds {} bytes",
            self.server.upstream_buffered_bytes()
        );
    }

    /// Takes every action, checking the ones with rules of their own.
    fn drain(&mut self) {
        self.check_bounds();
        while let Some(action) = self.server.poll_action() {
            match action {
                Action::Reply { to, bytes } => {
                    let bytes = match to {
                        Origin::Udp { .. } => bytes,
                        Origin::Tcp(conn) => {
                            assert!(bytes.len() >= 2, "TCP reply without its length prefix");
                            let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
                            assert_eq!(len + 2, bytes.len(), "TCP reply prefix disagrees");
                            self.largest_tcp_reply = self.largest_tcp_reply.max(bytes.len());
                            if self.hold_writes {
                                *self.held.entry(conn).or_default() += bytes.len();
                            } else {
                                self.server.handle_tcp_written(self.now, conn, bytes.len());
                            }
                            bytes[2..].to_vec()
                        }
                    };
                    self.replies.push((to, bytes, self.now));
                }
                Action::SendUpstream {
                    token,
                    to,
                    via,
                    bytes,
                } => {
                    assert!(self.open_tokens.insert(token), "token {token:?} reused");
                    let query = match via {
                        Via::Udp { .. } => bytes,
                        Via::Tcp => {
                            let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
                            assert_eq!(len + 2, bytes.len(), "upstream TCP frame");
                            bytes[2..].to_vec()
                        }
                    };
                    self.sent.push(Sent {
                        token,
                        to,
                        via,
                        query,
                    });
                }
                Action::CloseUpstream { token } => {
                    assert!(
                        self.open_tokens.remove(&token),
                        "CloseUpstream for {token:?}, not open"
                    );
                }
                Action::CloseClient { conn } => {
                    self.closed_clients.insert(conn);
                }
                Action::PauseRead { .. } | Action::ResumeRead { .. } | Action::Log(_) => {}
            }
        }
    }

    /// The client reads: every held reply is written.
    fn release_writes(&mut self) {
        self.hold_writes = false;
        let held = std::mem::take(&mut self.held);
        for (conn, n) in held {
            self.server.handle_tcp_written(self.now, conn, n);
            self.drain();
        }
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.server.handle_timeout(self.now);
        self.drain();
    }

    /// Runs every timer until none is left, then checks that nothing is pending.
    fn finish(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let Some(at) = self.server.poll_timeout() else {
                break;
            };
            self.now = self.now.max(at);
            self.server.handle_timeout(self.now);
            self.drain();
        }
        assert_eq!(self.server.poll_timeout(), None, "timers never ran out");
        assert_eq!(self.server.pending_queries(), 0, "queries left pending");
        assert_eq!(self.server.open_exchanges(), 0, "exchanges left open");
        assert_eq!(self.server.open_upstream_tokens(), 0, "tokens left open");
        assert!(self.open_tokens.is_empty(), "tokens never closed");
        assert_eq!(self.server.open_connections(), 0, "TCP connections left");
    }

    fn replies_to(&self, origin: Origin) -> Vec<&[u8]> {
        self.replies
            .iter()
            .filter(|(to, _, _)| *to == origin)
            .map(|(_, b, _)| b.as_slice())
            .collect()
    }
}

/// Parses a reply completely: header, every question and every record's data.
fn parse_back(reply: &[u8]) -> Message<&[u8]> {
    let msg = Message::from_octets(reply).expect("a reply has a header");
    assert!(msg.header().qr(), "a reply has QR set");
    for q in msg.question() {
        q.expect("the reply's question parses");
    }
    for item in msg.iter() {
        let (rr, _) = item.expect("the reply's records parse");
        rr.to_any_record::<AllRecordData<&[u8], ParsedName<&[u8]>>>()
            .expect("the reply's record data parses");
    }
    msg
}

/// Checks a reply against the admission of the query it answers.
fn check_reply(query: &[u8], admission: &Admission, reply: &[u8], max_udp: u16) {
    assert_eq!(reply.get(..2), query.get(..2), "reply ID = query ID");
    let msg = parse_back(reply);
    if let Admission::Query(req) = admission {
        let q = msg.sole_question().expect("one question echoed");
        assert_eq!(
            q.qname().to_name::<Bytes>().as_slice(),
            req.qname.as_slice(),
            "the question is echoed as asked"
        );
        assert_eq!((q.qtype(), q.qclass()), (req.qtype, req.qclass));
        assert!(
            reply.len() <= req.reply_limit(max_udp),
            "reply of {} bytes over the client's limit of {}",
            reply.len(),
            req.reply_limit(max_udp)
        );
    }
}

/// An upstream answer to `query` with `records` A records (10.0.x.y), `rcode` and flags.
fn upstream_answer(
    query: &[u8],
    records: u16,
    rcode: Rcode,
    tc: bool,
    ip: Option<Ipv4Addr>,
) -> Vec<u8> {
    let Ok(msg) = Message::from_octets(query) else {
        return Vec::new();
    };
    let Ok(q) = msg.sole_question() else {
        return Vec::new();
    };
    let qname = q.qname().to_name::<Bytes>();
    let b = MessageBuilder::from_target(StaticCompressor::new(Vec::new()))
        .unwrap_or_else(|e| match e {});
    let Ok(mut ans) = b.start_answer(&msg, rcode) else {
        return Vec::new();
    };
    ans.header_mut().set_tc(tc);
    ans.header_mut().set_ra(true);
    for i in 0..records {
        let [hi, lo] = i.to_be_bytes();
        let addr = ip.unwrap_or(Ipv4Addr::new(10, 0, hi, lo));
        if ans.push((&qname, 300, A::new(addr))).is_err() {
            break;
        }
    }
    let mut add = ans.additional();
    if msg.opt().is_some() {
        let _ = add.opt(|o| {
            o.set_udp_payload_size(1232);
            Ok(())
        });
    }
    add.finish().into_target()
}

/// Whether a reply carries an A record with the spoofed address.
fn carries_spoofed(reply: &[u8]) -> bool {
    let Ok(msg) = Message::from_octets(reply) else {
        return false;
    };
    msg.iter()
        .flatten()
        .any(|(rr, _)| matches!(rr.to_record::<A>(), Ok(Some(r)) if r.data().addr() == SPOOFED_IP))
}

/// Fuzz target 1: one client datagram. Upstream queries it causes are answered with
/// `data.len() % 64` records, so big answers get truncated.
pub fn client_datagram(data: &[u8]) {
    let mut h = Harness::new(small_config());
    let origin = udp_origin(40000);
    let admission = admit(
        data,
        origin,
        SocketAddr::from(([127, 0, 0, 9], 40000)),
        h.now,
        1232,
    );
    h.server.handle_client(h.now, origin, data);
    h.drain();
    let records = (data.len() % 64) as u16;
    for s in h.sent.clone() {
        let reply = upstream_answer(&s.query, records, Rcode::NOERROR, false, None);
        h.server.handle_upstream(h.now, s.token, s.to, &reply);
        h.drain();
    }
    h.finish();
    let replies = h.replies_to(origin);
    match admission {
        Admission::Drop => assert!(replies.is_empty(), "a dropped message got a reply"),
        _ => {
            assert_eq!(
                replies.len(),
                1,
                "exactly one reply per admissible datagram"
            );
            check_reply(data, &admission, replies[0], 1232);
        }
    }
}

/// A tiny deterministic generator for chunk sizes and delays.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
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
    let mut h = Harness::new(config);
    h.hold_writes = stall;
    let conn = ConnId(1);
    let peer = SocketAddr::from(([127, 0, 0, 9], 40001));
    h.server.handle_tcp_open(h.now, conn, peer);
    h.drain();
    if flood {
        let same = SocketAddr::new(peer.ip(), 40002);
        h.server.handle_tcp_open(h.now, ConnId(2), same);
        h.server.handle_tcp_open(h.now, ConnId(3), same);
        h.drain();
        assert!(!h.closed_clients.contains(&ConnId(2)), "under the cap");
        assert!(
            h.closed_clients.contains(&ConnId(3)),
            "over the cap: closed at once"
        );
        assert_eq!(h.server.connections_from(peer.ip()), 2);
        assert_eq!(h.server.stats().tcp_per_client_refused, 1);
    }

    // What the connection should answer: every frame until the first empty one.
    let mut framer = Framer::default();
    framer.push(stream);
    let mut frames = Vec::new();
    let mut garbage = false;
    loop {
        match framer.next_frame() {
            Ok(Some(f)) => frames.push(f.to_vec()),
            Ok(None) => break,
            Err(_) => {
                garbage = true;
                break;
            }
        }
    }

    let mut rest = stream;
    let mut answered = 0;
    while !rest.is_empty() {
        let n = (1 + rng.below(64) as usize).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        if stall && rest.len() < stream.len() / 2 {
            h.release_writes();
        }
        h.server.handle_client(h.now, Origin::Tcp(conn), chunk);
        h.drain();
        // The bounds: unwritten replies within the limit plus those of the queries that
        // may be in flight; unread input within the limit plus one largest frame.
        let c = &h.config;
        assert!(
            h.server.tcp_unwritten(conn)
                <= c.max_tcp_buffered + c.max_pipelined * h.largest_tcp_reply,
            "{} unwritten bytes",
            h.server.tcp_unwritten(conn)
        );
        assert!(h.server.tcp_unread(conn) <= c.max_tcp_buffered + 65_537);
        if answer_upstream {
            let batch = h.sent[answered..].to_vec();
            for s in batch {
                let reply =
                    upstream_answer(&s.query, (rng.below(4)) as u16, Rcode::NOERROR, false, None);
                let reply = match s.via {
                    Via::Udp { .. } => reply,
                    Via::Tcp => frame(&reply),
                };
                h.server.handle_upstream(h.now, s.token, s.to, &reply);
                h.drain();
            }
            answered = h.sent.len();
        }
        // Mostly short pauses; now and then one past the idle timeout.
        let pause = match rng.below(16) {
            0 => h.config.tcp_idle + Duration::from_millis(1),
            k => Duration::from_millis(k * 50),
        };
        h.advance(pause);
    }
    let closed_early = h.closed_clients.contains(&conn);
    if half_close {
        h.server.handle_tcp_eof(h.now, conn);
        h.drain();
    }
    h.release_writes();
    if flood {
        // The flood's connection goes away, so an idle close counted below is this one's.
        h.server.handle_tcp_closed(h.now, ConnId(2));
        h.drain();
    }
    let idle_closed = h.server.stats().tcp_idle_closed;
    h.finish();
    assert!(
        h.closed_clients.contains(&conn),
        "the idle timeout closes the connection"
    );
    if half_close && !closed_early {
        assert_eq!(
            h.server.stats().tcp_idle_closed,
            idle_closed,
            "a half-closed connection is closed once answered, not by the idle timeout"
        );
    }

    let replies = h.replies_to(Origin::Tcp(conn));
    let admissions: Vec<Admission> = frames
        .iter()
        .map(|f| admit(f, Origin::Tcp(conn), peer, h.start, 1232))
        .collect();
    let expected = admissions
        .iter()
        .filter(|a| !matches!(a, Admission::Drop))
        .count();
    assert!(replies.len() <= expected, "more replies than queries");
    if !closed_early && !garbage {
        assert_eq!(replies.len(), expected, "one reply per admissible frame");
    }
    // Frames may share an ID: each reply is matched to an unanswered frame by ID and question.
    let mut answered = vec![false; frames.len()];
    for reply in replies {
        let question = Message::from_octets(reply)
            .ok()
            .and_then(|m| m.sole_question().ok())
            .map(|q| (q.qname().to_name::<Bytes>(), q.qtype(), q.qclass()));
        let i = (0..frames.len())
            .find(|&i| {
                !answered[i]
                    && frames[i].get(..2) == reply.get(..2)
                    && match &admissions[i] {
                        Admission::Drop => false,
                        // The server may add RA (byte 3, bit 7) to the rejection.
                        Admission::Reject(r) => {
                            r.len() == reply.len()
                                && r.iter().zip(reply.iter()).enumerate().all(|(i, (a, b))| {
                                    if i == 3 {
                                        a & 0x7f == b & 0x7f
                                    } else {
                                        a == b
                                    }
                                })
                        }
                        Admission::Query(req) => question.as_ref().is_some_and(|(n, t, c)| {
                            n.as_slice() == req.qname.as_slice()
                                && (*t, *c) == (req.qtype, req.qclass)
                        }),
                    }
            })
            .expect("a reply answers one of the frames");
        answered[i] = true;
        check_reply(&frames[i], &admissions[i], reply, 1232);
    }
}

/// Fuzz target 3: the bytes as the upstream's reply to a forwarded query.
///
/// `data[0]`: bits 0-1 the shape (0 raw, 1 right ID spliced in, 2 right header and
/// question then the bytes as records, 3 like 2 but from a wrong address), bit 2 the
/// client's transport (UDP or TCP), bit 3 whether the client uses EDNS, bit 4 one
/// upstream instead of two, bit 5 the first try is lost (its retry goes out after the
/// try timeout), bits 6-7 how a TCP try is answered: 0 the reply's frame in two reads;
/// 1 a frame with a chosen rcode (SERVFAIL, REFUSED, NOTIMP, FORMERR, NOERROR by
/// `body[0] % 5`), the reply's frame, then the body raw, in one read; 2 the same in small
/// reads; 3 a zero-length frame then 256 KiB of garbage (`body[0]` even) or the reply's
/// frame repeated over 256 KiB. With 1-3, every UDP try is answered TC=1, so a TCP try
/// follows.
pub fn upstream_reply(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let shape = mode & 3;
    let tcp_client = mode & 4 != 0;
    let edns = mode & 8 != 0;
    let one_upstream = mode & 16 != 0;
    let lose_first = mode & 32 != 0;
    let style = TcpStyle::from_bits(mode >> 6);
    let chain = if one_upstream {
        Chain::new().with(Forwarder::new(vec![UP1]))
    } else {
        chain()
    };
    let mut h = Harness::with_chain(small_config(), chain);
    let qname: Name<Bytes> = "wWw.Example.COM".parse().expect("a valid name");
    let query = encode_query(&QuerySpec {
        id: 0x4242,
        qname: &qname,
        qtype: Rtype::A,
        qclass: Class::IN,
        rd: true,
        cd: false,
        edns: edns.then_some((1232, false)),
    });
    let origin = if tcp_client {
        h.server
            .handle_tcp_open(h.now, ConnId(1), SocketAddr::from(([127, 0, 0, 9], 40002)));
        Origin::Tcp(ConnId(1))
    } else {
        udp_origin(40002)
    };
    let admission = admit(
        &query,
        origin,
        SocketAddr::from(([127, 0, 0, 9], 40002)),
        h.now,
        1232,
    );
    let wire = if tcp_client {
        frame(&query)
    } else {
        query.clone()
    };
    h.server.handle_client(h.now, origin, &wire);
    h.drain();

    // Answer up to six tries (a TC reply moves the exchange to TCP, FORMERR retries
    // without EDNS, a failure moves on to the next server).
    let mut hostile_sent = false;
    for answered in 0..6 {
        if answered == 0 && lose_first {
            h.advance(h.config.try_timeout);
        }
        let skip = usize::from(lose_first);
        let Some(s) = h.sent.get(answered + skip).cloned() else {
            break;
        };
        let reply = shaped_reply(shape, body, &s.query);
        let from = if shape == 3 { SPOOFER } else { s.to };
        match s.via {
            Via::Udp { .. } if style != TcpStyle::Plain => {
                let tc = upstream_answer(&s.query, 0, Rcode::NOERROR, true, None);
                h.upstream(s.token, s.to, &tc);
            }
            Via::Udp { .. } => h.upstream(s.token, from, &reply),
            Via::Tcp if style == TcpStyle::Plain || hostile_sent => {
                let framed = frame(&reply);
                let (a, b) = framed.split_at(framed.len() / 2);
                h.upstream(s.token, from, a);
                h.upstream(s.token, from, b);
            }
            Via::Tcp => {
                hostile_sent = true;
                let stream = hostile_stream(style, body, &s.query, &reply);
                for chunk in style.chunks(&stream, body) {
                    h.upstream(s.token, from, chunk);
                }
            }
        }
        h.drain();
    }
    // A TCP client stays connected; the idle timeout closes it after its reply.
    h.finish();
    let replies = h.replies_to(origin);
    assert_eq!(replies.len(), 1, "exactly one reply to the forwarded query");
    check_reply(&query, &admission, replies[0], 1232);
    if shape == 3 {
        let msg = Message::from_octets(replies[0]).expect("parsed above");
        assert_eq!(
            msg.header().rcode(),
            Rcode::SERVFAIL,
            "a reply from a wrong address is never used"
        );
    }
}

/// How the fuzzed upstream writes on its TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TcpStyle {
    /// The reply in one frame, in two reads.
    Plain,
    /// A frame with a chosen rcode (SERVFAIL, REFUSED, NOTIMP, FORMERR, NOERROR), the
    /// reply's frame, then the raw bytes: all in one read.
    Several,
    /// Like `Several`, in small reads (frames split across them).
    Split,
    /// A zero-length frame then garbage, or the reply's frame over and over: far more
    /// than one frame, in 16 KiB reads.
    Endless,
}

impl TcpStyle {
    fn from_bits(bits: u8) -> TcpStyle {
        match bits & 3 {
            0 => TcpStyle::Plain,
            1 => TcpStyle::Several,
            2 => TcpStyle::Split,
            _ => TcpStyle::Endless,
        }
    }

    /// The reads `stream` arrives in.
    fn chunks<'a>(self, stream: &'a [u8], body: &[u8]) -> Vec<&'a [u8]> {
        let size = match self {
            TcpStyle::Plain | TcpStyle::Several => stream.len().max(1),
            TcpStyle::Split => 1 + usize::from(body.last().copied().unwrap_or(0) % 13),
            TcpStyle::Endless => 16 * 1024,
        };
        stream.chunks(size).collect()
    }
}

/// Bytes of an [`TcpStyle::Endless`] stream.
const ENDLESS_BYTES: usize = 256 * 1024;

fn hostile_stream(style: TcpStyle, body: &[u8], query: &[u8], reply: &[u8]) -> Vec<u8> {
    const RCODES: [Rcode; 5] = [
        Rcode::SERVFAIL,
        Rcode::REFUSED,
        Rcode::NOTIMP,
        Rcode::FORMERR,
        Rcode::NOERROR,
    ];
    let pick = usize::from(body.first().copied().unwrap_or(0));
    match style {
        TcpStyle::Endless if pick % 2 == 0 => {
            let mut out = vec![0, 0];
            let fill = if body.is_empty() { &[0xab][..] } else { body };
            out.extend(fill.iter().cycle().take(ENDLESS_BYTES));
            out
        }
        TcpStyle::Endless => frame(reply)
            .into_iter()
            .cycle()
            .take(ENDLESS_BYTES)
            .collect(),
        _ => {
            let rcode = RCODES[pick % RCODES.len()];
            let mut out = frame(&upstream_answer(query, 1, rcode, false, None));
            out.extend(frame(reply));
            out.extend_from_slice(body);
            out
        }
    }
}

/// The fuzzed reply to `query` in the given shape (see [`upstream_reply`]).
fn shaped_reply(shape: u8, body: &[u8], query: &[u8]) -> Vec<u8> {
    let id = query.get(..2).unwrap_or(&[0, 0]);
    match shape {
        0 => body.to_vec(),
        1 => {
            let mut r = body.to_vec();
            r.iter_mut().zip(id).for_each(|(b, i)| *b = *i);
            r
        }
        _ => {
            // Header with the right ID and QR, one question copied from the query,
            // counts and flags from the fuzz bytes, then the rest as records.
            let (head, records) = body.split_at(body.len().min(5));
            let byte = |i: usize| head.get(i).copied().unwrap_or(0);
            let question = question_bytes(query);
            let mut r = Vec::with_capacity(12 + question.len() + records.len());
            r.extend_from_slice(id);
            r.push(byte(0) | 0x80);
            r.push(byte(1));
            r.extend_from_slice(&[0, 1, 0, byte(2), 0, byte(3), 0, byte(4)]);
            r.extend_from_slice(question);
            r.extend_from_slice(records);
            r
        }
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
    let Ok(zone) = crate::zone::load_zone("fuzz.zone", &text, &mut include) else {
        return;
    };
    let origin = zone.origin().clone();
    let Ok(zones) = crate::zone::ZoneSet::new(vec![zone]) else {
        return;
    };
    let resolver = crate::zone::ZoneResolver::new(crate::zone::Snapshot::new(zones));
    let mut h = Harness::with_chain(Config::default(), Chain::new().with(resolver));
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
        let query = encode_query(&QuerySpec {
            id: i as u16,
            qname,
            qtype: *qtype,
            qclass: Class::IN,
            rd: false,
            cd: false,
            edns: (i % 2 == 0).then_some((1232, false)),
        });
        let origin = if *tcp {
            let conn = ConnId(i as u64);
            h.server.handle_tcp_open(h.now, conn, peer);
            h.server
                .handle_client(h.now, Origin::Tcp(conn), &frame(&query));
            Origin::Tcp(conn)
        } else {
            let o = udp_origin(30_000 + i as u16);
            h.server.handle_client(h.now, o, &query);
            o
        };
        h.drain();
        let replies = h.replies_to(origin);
        assert!(!replies.is_empty(), "query {i} for the zone answered");
        let admission = admit(&query, origin, peer, h.now, 1232);
        for reply in &replies {
            check_reply(&query, &admission, reply, 1232);
        }
        if !tcp {
            assert_eq!(replies.len(), 1, "one UDP reply per query");
        }
    }
    h.finish();
}

/// The question section of a query with one question (header stripped).
fn question_bytes(query: &[u8]) -> &[u8] {
    let Some(body) = query.get(12..) else {
        return &[];
    };
    let mut i = 0;
    while let Some(&len) = body.get(i) {
        i += 1 + usize::from(len);
        if len == 0 {
            break;
        }
    }
    body.get(..i + 4).unwrap_or(body)
}

/// One client query of a [`Scenario`].
#[derive(Clone, Debug)]
pub struct ClientQuery {
    pub id: u16,
    /// Wire-format name (labels then the root).
    pub qname: Vec<u8>,
    pub qtype: Rtype,
    pub qclass: Class,
    pub rd: bool,
    pub cd: bool,
    /// EDNS UDP size and DO bit.
    pub edns: Option<(u16, bool)>,
    pub tcp: bool,
    /// Arrival, in ms after the start.
    pub at_ms: u16,
    /// Identical queries (other IDs, other UDP clients) arriving at the same time: a
    /// flood joining one exchange.
    pub copies: u8,
}

/// What the fake upstream does with one query it receives, in turn.
#[derive(Clone, Debug)]
pub enum UpstreamAct {
    /// Answer after `delay_ms` with `records` A records, `rcode` and TC; twice when `duplicate`.
    Answer {
        records: u16,
        rcode: Rcode,
        tc: bool,
        delay_ms: u16,
        duplicate: bool,
    },
    /// Lose the query.
    Drop,
    /// Reply with these bytes.
    Garbage(Vec<u8>),
    /// A correct-looking answer with the wrong ID (carrying the spoofed address).
    WrongId,
    /// A correct answer from a wrong address (carrying the spoofed address).
    WrongAddress,
    /// The runtime could not send: the upstream is down.
    Unreachable,
    /// Over UDP: an empty TC=1 answer (so a TCP try follows). Over TCP: these frames
    /// written back to back, read in pieces of `chunk` bytes (0: all in one read).
    TcpFrames { frames: Vec<FrameAct>, chunk: u8 },
    /// Over UDP: an empty TC=1 answer. Over TCP: 64 reads of 4 KiB, 100 ms apart, of a
    /// zero-length frame then garbage, or of frames with a wrong ID.
    Endless { zero_length: bool },
}

/// One frame of [`UpstreamAct::TcpFrames`].
#[derive(Clone, Debug)]
pub enum FrameAct {
    /// A reply to the query with this rcode and `records` A records.
    Reply { rcode: Rcode, records: u16 },
    /// A frame of length zero.
    Empty,
    /// Raw bytes, without a length prefix.
    Garbage(Vec<u8>),
    /// A correct-looking reply with the wrong ID (carrying the spoofed address).
    WrongId,
}

/// An arbitrary but valid run: queries, the upstream's behaviour, the exchange limit.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub queries: Vec<ClientQuery>,
    pub upstream: Vec<UpstreamAct>,
    /// Upstream exchanges in flight (small values exercise the SERVFAIL-when-overloaded path).
    pub max_exchanges: usize,
    /// Client queries waiting on exchanges (small values exercise its SERVFAIL path).
    pub max_waiting: usize,
    /// Forward to one upstream instead of two (so every server fails sooner).
    pub one_upstream: bool,
}

const LABELS: &[&str] = &[
    "host7",
    "HoSt255",
    "host256",
    "host",
    "www",
    "Example",
    "com",
    "a",
    "xn--bcher-kva",
    "_srv",
];
const QTYPES: &[Rtype] = &[
    Rtype::A,
    Rtype::AAAA,
    Rtype::TXT,
    Rtype::MX,
    Rtype::NS,
    Rtype::SOA,
    Rtype::ANY,
    Rtype::PTR,
    Rtype::SRV,
    Rtype::CNAME,
];

impl<'a> Arbitrary<'a> for ClientQuery {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut qname = Vec::new();
        for _ in 0..u.int_in_range(0..=4)? {
            let label: Vec<u8> = if u.ratio(1, 5)? {
                let n = u.int_in_range(1..=40)?;
                u.bytes(n.min(u.len()))?.to_vec()
            } else {
                u.choose(LABELS)?.as_bytes().to_vec()
            };
            if label.is_empty() {
                continue;
            }
            qname.push(label.len() as u8);
            qname.extend_from_slice(&label);
        }
        qname.push(0);
        let qtype = if u.ratio(1, 8)? {
            Rtype::from_int(u.arbitrary()?)
        } else {
            *u.choose(QTYPES)?
        };
        let qclass = if u.ratio(1, 10)? {
            Class::from_int(u.arbitrary()?)
        } else {
            Class::IN
        };
        Ok(ClientQuery {
            id: u.arbitrary()?,
            qname,
            qtype,
            qclass,
            rd: u.arbitrary()?,
            cd: u.arbitrary()?,
            edns: if u.arbitrary()? {
                Some((u.arbitrary()?, u.arbitrary()?))
            } else {
                None
            },
            tcp: u.ratio(1, 4)?,
            at_ms: u.int_in_range(0..=8000)?,
            copies: if u.ratio(1, 8)? {
                u.int_in_range(1..=100)?
            } else {
                0
            },
        })
    }
}

impl<'a> Arbitrary<'a> for UpstreamAct {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0..=11)? {
            0..=3 => UpstreamAct::Answer {
                records: if u.ratio(1, 4)? {
                    u.int_in_range(0..=300)?
                } else {
                    u.int_in_range(0..=3)?
                },
                rcode: *u.choose(&[
                    Rcode::NOERROR,
                    Rcode::NOERROR,
                    Rcode::NXDOMAIN,
                    Rcode::SERVFAIL,
                    Rcode::REFUSED,
                    Rcode::NOTIMP,
                    Rcode::FORMERR,
                ])?,
                tc: u.ratio(1, 6)?,
                delay_ms: u.int_in_range(0..=6000)?,
                duplicate: u.ratio(1, 5)?,
            },
            4 | 5 => UpstreamAct::Drop,
            6 => {
                let n = u.int_in_range(0..=64)?;
                UpstreamAct::Garbage(u.bytes(n.min(u.len()))?.to_vec())
            }
            7 => UpstreamAct::WrongId,
            8 => UpstreamAct::WrongAddress,
            9 => UpstreamAct::Unreachable,
            10 => UpstreamAct::TcpFrames {
                frames: (0..u.int_in_range(1..=4)?)
                    .map(|_| u.arbitrary())
                    .collect::<arbitrary::Result<_>>()?,
                chunk: if u.arbitrary()? { 0 } else { u.arbitrary()? },
            },
            _ => UpstreamAct::Endless {
                zero_length: u.arbitrary()?,
            },
        })
    }
}

impl<'a> Arbitrary<'a> for FrameAct {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0..=5)? {
            0..=2 => FrameAct::Reply {
                rcode: *u.choose(&[
                    Rcode::NOERROR,
                    Rcode::NXDOMAIN,
                    Rcode::SERVFAIL,
                    Rcode::REFUSED,
                    Rcode::NOTIMP,
                    Rcode::FORMERR,
                ])?,
                records: u.int_in_range(0..=3)?,
            },
            3 => FrameAct::Empty,
            4 => {
                let n = u.int_in_range(0..=16)?;
                FrameAct::Garbage(u.bytes(n.min(u.len()))?.to_vec())
            }
            _ => FrameAct::WrongId,
        })
    }
}

impl<'a> Arbitrary<'a> for Scenario {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let queries = (0..u.int_in_range(1..=12)?)
            .map(|_| u.arbitrary())
            .collect::<arbitrary::Result<_>>()?;
        let upstream = (0..u.int_in_range(1..=12)?)
            .map(|_| u.arbitrary())
            .collect::<arbitrary::Result<_>>()?;
        let max_exchanges = if u.ratio(1, 4)? {
            u.int_in_range(1..=4)?
        } else {
            Config::default().max_exchanges
        };
        let max_waiting = if u.ratio(1, 4)? {
            u.int_in_range(1..=20)?
        } else {
            Config::default().max_waiting
        };
        Ok(Scenario {
            queries,
            upstream,
            max_exchanges,
            max_waiting,
            one_upstream: u.ratio(1, 3)?,
        })
    }
}

/// Something scheduled in a [`Scenario`] run.
#[derive(Clone, Debug)]
enum Event {
    Query(usize),
    Upstream {
        token: Token,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    Failed(Token),
}

/// The bytes a TCP upstream writes for `frames`, in answer to `query`.
fn tcp_frames(frames: &[FrameAct], query: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        match f {
            FrameAct::Reply { rcode, records } => {
                out.extend(frame(&upstream_answer(
                    query, *records, *rcode, false, None,
                )));
            }
            FrameAct::Empty => out.extend([0, 0]),
            FrameAct::Garbage(bytes) => out.extend_from_slice(bytes),
            FrameAct::WrongId => {
                let mut r = upstream_answer(query, 1, Rcode::NOERROR, false, Some(SPOOFED_IP));
                if r.len() >= 2 {
                    r[1] ^= 1;
                }
                out.extend(frame(&r));
            }
        }
    }
    out
}

/// Fuzz target 5: an [`Arbitrary`] [`Scenario`] decoded from the bytes, then [`run_scenario`].
pub fn structured(data: &[u8]) {
    if let Ok(scenario) = Scenario::arbitrary_take_rest(Unstructured::new(data)) {
        run_scenario(&scenario);
    }
}

/// Runs a scenario in simulated time and checks every invariant (panics on a violation).
pub fn run_scenario(scenario: &Scenario) {
    let config = Config {
        max_exchanges: scenario.max_exchanges,
        max_waiting: scenario.max_waiting,
        ..Config::default()
    };
    let mut h = if scenario.one_upstream {
        Harness::with_chain(config, Chain::new().with(Forwarder::new(vec![UP1])))
    } else {
        Harness::new(config)
    };
    let mut events: BTreeMap<(Instant, u64), Event> = BTreeMap::new();
    let mut seq = 0u64;
    let mut schedule = |events: &mut BTreeMap<(Instant, u64), Event>, at: Instant, ev: Event| {
        seq += 1;
        events.insert((at, seq), ev);
    };
    // Client queries: wire bytes and origin, one origin each.
    let mut wires = Vec::new();
    let mut copy_port = 20_000u16;
    for (i, q) in scenario.queries.iter().enumerate() {
        let qname = Name::from_octets(Bytes::from(q.qname.clone())).expect("labels form a name");
        let wire = encode_query(&QuerySpec {
            id: q.id,
            qname: &qname,
            qtype: q.qtype,
            qclass: q.qclass,
            rd: q.rd,
            cd: q.cd,
            edns: q.edns,
        });
        let origin = if q.tcp {
            Origin::Tcp(ConnId(i as u64))
        } else {
            udp_origin(10_000 + i as u16)
        };
        let arrival = h.start + Duration::from_millis(u64::from(q.at_ms));
        for k in 0..=u16::from(q.copies) {
            let (wire, origin) = if k == 0 {
                (wire.clone(), origin)
            } else {
                copy_port += 1;
                let mut copy = wire.clone();
                copy[..2].copy_from_slice(&q.id.wrapping_add(k).to_be_bytes());
                (copy, udp_origin(copy_port))
            };
            schedule(&mut events, arrival, Event::Query(wires.len()));
            wires.push((wire, origin));
        }
    }
    let mut acts = scenario.upstream.iter().cycle();
    let mut handled_sent = 0;
    let mut arrived: HashMap<usize, Instant> = HashMap::new();
    for _ in 0..MAX_ROUNDS {
        // New upstream queries meet the upstream's next behaviour.
        let batch = h.sent[handled_sent..].to_vec();
        for s in batch {
            let act = acts.next().expect("at least one upstream behaviour");
            let wrap = |bytes: Vec<u8>| match s.via {
                Via::Udp { .. } => bytes,
                Via::Tcp => frame(&bytes),
            };
            match act {
                UpstreamAct::Answer {
                    records,
                    rcode,
                    tc,
                    delay_ms,
                    duplicate,
                } => {
                    let reply = wrap(upstream_answer(&s.query, *records, *rcode, *tc, None));
                    let at = h.now + Duration::from_millis(u64::from(*delay_ms));
                    for k in 0..(1 + u64::from(*duplicate)) {
                        let ev = Event::Upstream {
                            token: s.token,
                            from: s.to,
                            bytes: reply.clone(),
                        };
                        schedule(&mut events, at + Duration::from_millis(k * 7), ev);
                    }
                }
                UpstreamAct::Drop => {}
                UpstreamAct::Garbage(bytes) => {
                    let ev = Event::Upstream {
                        token: s.token,
                        from: s.to,
                        bytes: bytes.clone(),
                    };
                    schedule(&mut events, h.now + Duration::from_millis(1), ev);
                }
                UpstreamAct::WrongId | UpstreamAct::WrongAddress => {
                    let mut reply =
                        upstream_answer(&s.query, 1, Rcode::NOERROR, false, Some(SPOOFED_IP));
                    let from = if matches!(act, UpstreamAct::WrongId) {
                        if reply.len() >= 2 {
                            reply[1] ^= 1;
                        }
                        s.to
                    } else {
                        SPOOFER
                    };
                    let ev = Event::Upstream {
                        token: s.token,
                        from,
                        bytes: wrap(reply),
                    };
                    schedule(&mut events, h.now, ev);
                }
                UpstreamAct::Unreachable => {
                    schedule(&mut events, h.now, Event::Failed(s.token));
                }
                UpstreamAct::TcpFrames { .. } | UpstreamAct::Endless { .. }
                    if matches!(s.via, Via::Udp { .. }) =>
                {
                    let ev = Event::Upstream {
                        token: s.token,
                        from: s.to,
                        bytes: upstream_answer(&s.query, 0, Rcode::NOERROR, true, None),
                    };
                    schedule(&mut events, h.now + Duration::from_millis(1), ev);
                }
                UpstreamAct::TcpFrames { frames, chunk } => {
                    let stream = tcp_frames(frames, &s.query);
                    let size = match usize::from(*chunk) {
                        0 => stream.len().max(1),
                        n => n,
                    };
                    for piece in stream.chunks(size) {
                        let ev = Event::Upstream {
                            token: s.token,
                            from: s.to,
                            bytes: piece.to_vec(),
                        };
                        schedule(&mut events, h.now + Duration::from_millis(1), ev);
                    }
                }
                UpstreamAct::Endless { zero_length } => {
                    let stream: Vec<u8> = if *zero_length {
                        let mut z = vec![0xab; 64 * 4096];
                        z[..2].copy_from_slice(&[0, 0]);
                        z
                    } else {
                        let unit = tcp_frames(&[FrameAct::WrongId], &s.query);
                        unit.iter().copied().cycle().take(64 * 4096).collect()
                    };
                    for (k, piece) in stream.chunks(4096).enumerate() {
                        let ev = Event::Upstream {
                            token: s.token,
                            from: s.to,
                            bytes: piece.to_vec(),
                        };
                        let at = h.now + Duration::from_millis(1 + k as u64 * 100);
                        schedule(&mut events, at, ev);
                    }
                }
            }
        }
        handled_sent = h.sent.len();

        let next_event = events.keys().next().map(|k| k.0);
        let next_timer = h.server.poll_timeout();
        let at = match (next_event, next_timer) {
            (None, None) => break,
            (Some(e), Some(t)) if t < e => {
                h.now = h.now.max(t);
                h.server.handle_timeout(h.now);
                h.drain();
                continue;
            }
            (None, Some(t)) => {
                h.now = h.now.max(t);
                h.server.handle_timeout(h.now);
                h.drain();
                continue;
            }
            (Some(e), _) => e,
        };
        let (_, ev) = events.pop_first().expect("an event is due");
        h.now = h.now.max(at);
        match ev {
            Event::Query(i) => {
                let (wire, origin) = &wires[i];
                arrived.insert(i, h.now);
                match origin {
                    Origin::Tcp(conn) => {
                        h.server.handle_tcp_open(
                            h.now,
                            *conn,
                            SocketAddr::from(([127, 0, 0, 9], 20_000)),
                        );
                        h.server.handle_client(h.now, *origin, &frame(wire));
                    }
                    Origin::Udp { .. } => h.server.handle_client(h.now, *origin, wire),
                }
            }
            Event::Upstream { token, from, bytes } => h.upstream(token, from, &bytes),
            Event::Failed(token) => h
                .server
                .handle_upstream_error(h.now, token, UpstreamError::Io),
        }
        h.drain();
    }
    assert!(
        events.is_empty(),
        "the simulation did not run out of events"
    );
    h.finish();

    let budget = h.config.budget;
    for (i, (wire, origin)) in wires.iter().enumerate() {
        let replies: Vec<_> = h.replies.iter().filter(|(to, _, _)| to == origin).collect();
        assert_eq!(replies.len(), 1, "query {i} got {} replies", replies.len());
        let (_, reply, at) = replies[0];
        let admission = admit(
            wire,
            *origin,
            SocketAddr::from(([127, 0, 0, 9], 1)),
            h.start,
            1232,
        );
        assert!(
            !matches!(admission, Admission::Drop),
            "a valid query is never dropped"
        );
        check_reply(wire, &admission, reply, 1232);
        let came = arrived[&i];
        assert!(
            at.saturating_duration_since(came) <= budget,
            "query {i} answered after {:?}, over the budget",
            at.saturating_duration_since(came)
        );
        assert!(!carries_spoofed(reply), "query {i} got spoofed data");
    }
}
