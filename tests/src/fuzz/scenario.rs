//! Fuzz target 5: an `Arbitrary` [`Scenario`] (valid queries over UDP and TCP, an
//! upstream that answers, drops, delays, duplicates, truncates, fails, spoofs and sends
//! garbage, and over TCP writes several frames per read (failure rcodes among them),
//! frames split across reads, zero-length frames, garbage and endless streams; floods of
//! identical queries; small limits on exchanges and waiting queries), run in the
//! simulated [`World`] with the upstream's behaviours as its model ([`Acts`]). Every
//! query gets exactly one reply, with its ID and question, that parses back, fits the
//! client's UDP limit, arrives within the budget and never carries spoofed data nor the
//! records for an unrelated zone every answer carries (`poisoned`); nothing
//! is pending at the end. With an `Asker` in front, lookups completed late, never, twice,
//! with foreign results or for unknown ids, under a small `max_lookups` too; the world
//! checks their bound at every step. `tests/tests/core/fault_sim.rs` runs it over thousands of seeds.

use std::net::SocketAddr;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::Name;
use domain::rdata::A;
use names_core::{
    Chain, Config, ConnId, Forwarder, Origin, Synth, SynthRule, Token, UpstreamError, Via,
};

use super::oracle::{check_reply, expect, Expect};
use super::{carries_poison, contains_label, poisoned};
use super::{udp_origin, upstream_answer, SPOOFED_IP, SPOOFER, UP1, UP2};
use crate::build::{frame, query_wire, Flags};
use crate::drive::wrap;
use crate::sim::lookup::{Asker, LookupFaults, OnTimeout};
use crate::sim::{Conn, Event, Upstreams, World};

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
    /// Answer after `delay_ms` with `records` A records (and the `poisoned` records for an
    /// unrelated zone), `rcode` and TC; twice when `duplicate`.
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
    /// A reply to the query with this rcode and `records` A records (and the `poisoned` ones).
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
    /// An [`Asker`] in front (it looks up questions for `lk*` names), what the runtime
    /// does with its lookups, and `max_lookups`.
    pub lookups: Option<(LookupFaults, OnTimeout, usize)>,
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
    "lk1",
    "LKweb",
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

/// The rcodes an upstream answers with (NOERROR twice as likely; a frame of
/// [`FrameAct::Reply`] picks from all but the first).
const ANSWER_RCODES: [Rcode; 7] = [
    Rcode::NOERROR,
    Rcode::NOERROR,
    Rcode::NXDOMAIN,
    Rcode::SERVFAIL,
    Rcode::REFUSED,
    Rcode::NOTIMP,
    Rcode::FORMERR,
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
                rcode: *u.choose(&ANSWER_RCODES)?,
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
                rcode: *u.choose(&ANSWER_RCODES[1..])?,
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
        let lookups = if u.ratio(1, 2)? {
            let chance = |u: &mut Unstructured<'a>| -> arbitrary::Result<f64> {
                Ok(f64::from(u.int_in_range(0u8..=4)?) / 4.0)
            };
            let faults = LookupFaults {
                never: chance(u)?,
                twice: chance(u)?,
                unknown_id: chance(u)?,
                foreign: chance(u)?,
                pass: chance(u)?,
                again: chance(u)?,
                max_delay_ms: u.int_in_range(0..=8000)?,
            };
            let on_timeout = *u.choose(&[
                OnTimeout::Default,
                OnTimeout::Answer,
                OnTimeout::Again,
                OnTimeout::Pass,
            ])?;
            let max_lookups = if u.ratio(1, 3)? {
                u.int_in_range(1..=4)?
            } else {
                Config::default().max_lookups
            };
            Some((faults, on_timeout, max_lookups))
        } else {
            None
        };

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
            lookups,
        })
    }
}

/// The bytes a TCP upstream writes for `frames`, in answer to `query`.
fn tcp_frames(frames: &[FrameAct], query: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        match f {
            FrameAct::Reply { rcode, records } => {
                out.extend(frame(&poisoned(&upstream_answer(
                    query, *records, *rcode, false, None,
                ))));
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

/// The upstream of a [`Scenario`]: each query the server sends meets the next behaviour,
/// in turn.
pub struct Acts {
    acts: Vec<UpstreamAct>,
    next: usize,
}

impl Upstreams for Acts {
    fn on_send(&mut self, w: &mut World, token: Token) -> Option<usize> {
        let act = &self.acts[self.next % self.acts.len()];
        self.next += 1;
        let s = w.tokens[&token].clone();
        let now = w.now;
        let upstream = |w: &mut World, at: Duration, from: SocketAddr, bytes: Vec<u8>| {
            w.schedule(at, Event::Upstream(token, from, bytes));
        };
        let soon = now + Duration::from_millis(1);
        match act {
            UpstreamAct::Answer {
                records,
                rcode,
                tc,
                delay_ms,
                duplicate,
            } => {
                let reply = wrap(
                    s.via,
                    &poisoned(&upstream_answer(&s.message, *records, *rcode, *tc, None)),
                );
                let at = now + Duration::from_millis(u64::from(*delay_ms));
                for k in 0..(1 + u64::from(*duplicate)) {
                    upstream(w, at + Duration::from_millis(k * 7), s.to, reply.clone());
                }
            }
            UpstreamAct::Drop => {}
            UpstreamAct::Garbage(bytes) => upstream(w, soon, s.to, bytes.clone()),
            UpstreamAct::WrongId | UpstreamAct::WrongAddress => {
                let mut reply =
                    upstream_answer(&s.message, 1, Rcode::NOERROR, false, Some(SPOOFED_IP));
                let from = if matches!(act, UpstreamAct::WrongId) {
                    if reply.len() >= 2 {
                        reply[1] ^= 1;
                    }
                    s.to
                } else {
                    SPOOFER
                };
                upstream(w, now, from, wrap(s.via, &reply));
            }
            UpstreamAct::Unreachable => {
                w.schedule(now, Event::UpstreamError(token, UpstreamError::Io));
            }
            UpstreamAct::TcpFrames { .. } | UpstreamAct::Endless { .. }
                if matches!(s.via, Via::Udp { .. }) =>
            {
                let tc = upstream_answer(&s.message, 0, Rcode::NOERROR, true, None);
                upstream(w, soon, s.to, tc);
            }
            UpstreamAct::TcpFrames { frames, chunk } => {
                let stream = tcp_frames(frames, &s.message);
                let size = match usize::from(*chunk) {
                    0 => stream.len().max(1),
                    n => n,
                };
                for piece in stream.chunks(size) {
                    upstream(w, soon, s.to, piece.to_vec());
                }
            }
            UpstreamAct::Endless { zero_length } => {
                let stream: Vec<u8> = if *zero_length {
                    let mut z = vec![0xab; 64 * 4096];
                    z[..2].copy_from_slice(&[0, 0]);
                    z
                } else {
                    let unit = tcp_frames(&[FrameAct::WrongId], &s.message);
                    unit.iter().copied().cycle().take(64 * 4096).collect()
                };
                for (k, piece) in stream.chunks(4096).enumerate() {
                    let at = now + Duration::from_millis(1 + k as u64 * 100);
                    upstream(w, at, s.to, piece.to_vec());
                }
            }
        }
        None
    }
}

/// Fuzz target 5: an [`Arbitrary`] [`Scenario`] decoded from the bytes, then [`run_scenario`].
pub fn structured(data: &[u8]) {
    if let Ok(scenario) = Scenario::arbitrary_take_rest(Unstructured::new(data)) {
        run_scenario(&scenario);
    }
}

/// Runs a scenario in the simulated world and checks every invariant (panics on a
/// violation). Returns the lookups the server asked for.
pub fn run_scenario(scenario: &Scenario) -> usize {
    let config = Config {
        max_exchanges: scenario.max_exchanges,
        max_waiting: scenario.max_waiting,
        max_lookups: scenario
            .lookups
            .map_or(Config::default().max_lookups, |l| l.2),
        ..Config::default()
    };
    let mut chain = Chain::new();
    if let Some((_, on_timeout, _)) = scenario.lookups {
        chain = chain.with(Asker {
            on_timeout,
            any_type: true,
        });
    }
    let chain = if scenario.one_upstream {
        chain.with(Forwarder::new(vec![UP1]))
    } else {
        let rule = SynthRule::parse("host=10.1.2").expect("a valid rule");
        chain
            .with(Synth::new(vec![rule]))
            .with(Forwarder::new(vec![UP1, UP2]))
    };
    let model = Acts {
        acts: scenario.upstream.clone(),
        next: 0,
    };
    let mut w = World::new(config, chain, 0, Box::new(model));
    if let Some((faults, _, _)) = scenario.lookups {
        w.lookup_faults = faults;
    }
    // Client queries, one origin each; copies from other UDP clients with other IDs.
    let mut copy_port = 20_000u16;
    for (i, q) in scenario.queries.iter().enumerate() {
        let qname = Name::from_octets(Bytes::from(q.qname.clone())).expect("labels form a name");
        let flags = Flags {
            rd: q.rd,
            cd: q.cd,
            opcode: Opcode::QUERY,
        };
        let edns = q.edns.map(|(size, dnssec_ok)| (size, 0, dnssec_ok));
        let wire = query_wire(&qname, q.qtype, q.qclass, q.id, flags, edns);
        let arrival = Duration::from_millis(u64::from(q.at_ms));
        if q.tcp {
            let conn = ConnId(i as u64);
            let peer = SocketAddr::from(([127, 0, 0, 9], 20_000));
            let t = w.track(Origin::Tcp(conn), wire.clone());
            let mut c = Conn::new(peer, arrival);
            c.queries = vec![t];
            w.conns.insert(conn, c);
            w.schedule(arrival, Event::TcpOpen(conn));
            w.schedule(arrival, Event::TcpChunk(conn, frame(&wire), vec![t]));
        } else {
            let t = w.track(udp_origin(10_000 + i as u16), wire.clone());
            w.schedule(arrival, Event::ClientUdp(t));
        }
        for k in 1..=u16::from(q.copies) {
            copy_port += 1;
            let mut copy = wire.clone();
            copy[..2].copy_from_slice(&q.id.wrapping_add(k).to_be_bytes());
            let t = w.track(udp_origin(copy_port), copy);
            w.schedule(arrival, Event::ClientUdp(t));
        }
    }
    w.finish();

    // The poison's label in a name asked for, or in garbage (which might be a reply
    // leading to it), makes its records related.
    let related_poison = scenario.queries.iter().any(|q| contains_label(&q.qname))
        || scenario.upstream.iter().any(|act| match act {
            UpstreamAct::Garbage(bytes) => contains_label(bytes),
            UpstreamAct::TcpFrames { frames, .. } => frames
                .iter()
                .any(|f| matches!(f, FrameAct::Garbage(bytes) if contains_label(bytes))),
            _ => false,
        });
    let budget = w.config.budget;
    for (i, q) in w.queries.iter().enumerate() {
        assert_eq!(
            q.replies.len(),
            1,
            "query {i} got {} replies",
            q.replies.len()
        );
        let (at, reply) = &q.replies[0];
        let expected = expect(&q.message);
        assert!(expected != Expect::Drop, "a valid query is never dropped");
        let udp = matches!(q.origin, Origin::Udp { .. });
        check_reply(&q.message, &expected, reply, udp, w.config.edns_udp_size);
        let came = q.sent.expect("every query is sent");
        assert!(
            at.saturating_sub(came) <= budget,
            "query {i} answered after {:?}, over the budget",
            at.saturating_sub(came)
        );
        assert!(!carries_spoofed(reply), "query {i} got spoofed data");
        assert!(
            related_poison || !carries_poison(reply),
            "query {i} got records for an unrelated zone"
        );
    }
    w.report.lookups
}

/// Whether a reply carries an A record with the spoofed address.
fn carries_spoofed(reply: &[u8]) -> bool {
    let Ok(msg) = domain::base::Message::from_octets(reply) else {
        return false;
    };
    msg.iter()
        .flatten()
        .any(|(rr, _)| matches!(rr.to_record::<A>(), Ok(Some(r)) if r.data().addr() == SPOOFED_IP))
}
