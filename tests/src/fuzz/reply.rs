//! Fuzz target 3: the bytes as the upstream's reply to a forwarded query; the poisoning
//! records every fuzzed upstream reply carries, and the check that none reaches a client.

use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{Message, Name, ParsedName};
use domain::rdata::AllRecordData;
use names_core::{Chain, ConnId, Forwarder, Origin, Via};

use super::oracle::{check_reply, expect};
use super::{chain, client_query, sent_since, small_config, udp_origin, upstream_answer};
use super::{SPOOFER, UP1};
use crate::build::frame;
use crate::parse::{message, question_bytes};
use crate::sim::{Conn, Event, World};

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
///
/// Shapes 1-3 carry `poisoned` records after the fuzzed ones; unless the fuzzed records
/// themselves lead to the poison's names (`mentions_poison`), the client's reply must
/// carry none of them.
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
    let mut w = World::manual(small_config(), chain);
    let qname: Name<Bytes> = "wWw.Example.COM".parse().expect("a valid name");
    let query = client_query(
        0x4242,
        &qname,
        Rtype::A,
        true,
        edns.then_some((1232, false)),
    );
    let peer = SocketAddr::from(([127, 0, 0, 9], 40002));
    let (origin, wire) = if tcp_client {
        w.conns.insert(ConnId(1), Conn::new(peer, w.now));
        w.push(Event::TcpOpen(ConnId(1)));
        (Origin::Tcp(ConnId(1)), frame(&query))
    } else {
        (udp_origin(40002), query.clone())
    };
    w.push(Event::Client(origin, wire));

    // Answer up to six tries (a TC reply moves the exchange to TCP, FORMERR retries
    // without EDNS, a failure moves on to the next server).
    let mut hostile_sent = false;
    // Whether the upstream's own records lead to the poison (then it may be used).
    let mut mentioned = contains_label(body);
    for answered in 0..6 {
        if answered == 0 && lose_first {
            w.advance(w.config.try_timeout);
        }
        let skip = usize::from(lose_first);
        let Some((token, s)) = sent_since(&w, answered + skip).into_iter().next() else {
            break;
        };
        let mut reply = shaped_reply(shape, body, &s.message);
        if shape != 0 {
            reply = poisoned(&reply);
        }
        mentioned |= mentions_poison(&reply);
        let from = if shape == 3 { SPOOFER } else { s.to };
        match s.via {
            Via::Udp { .. } if style != TcpStyle::Plain => {
                let tc = upstream_answer(&s.message, 0, Rcode::NOERROR, true, None);
                w.push(Event::Upstream(token, s.to, tc));
            }
            Via::Udp { .. } => w.push(Event::Upstream(token, from, reply)),
            Via::Tcp if style == TcpStyle::Plain || hostile_sent => {
                let framed = frame(&reply);
                let (a, b) = framed.split_at(framed.len() / 2);
                w.push(Event::Upstream(token, from, a.to_vec()));
                w.push(Event::Upstream(token, from, b.to_vec()));
            }
            Via::Tcp => {
                hostile_sent = true;
                let stream = hostile_stream(style, body, &s.message, &reply);
                for chunk in style.chunks(&stream, body) {
                    w.push(Event::Upstream(token, from, chunk.to_vec()));
                }
            }
        }
    }
    // A TCP client stays connected; the idle timeout closes it after its reply.
    w.finish();
    let replies = w.replies_to(origin);
    assert_eq!(replies.len(), 1, "exactly one reply to the forwarded query");
    let expected = expect(&query);
    check_reply(
        &query,
        &expected,
        replies[0],
        !tcp_client,
        w.config.edns_udp_size,
    );
    assert!(
        mentioned || !carries_poison(replies[0]),
        "records for an unrelated zone reached the client"
    );
    if shape == 3 {
        assert_eq!(
            message(replies[0]).header().rcode(),
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

/// The label in the name of every poisoning record.
const POISON_LABEL: &[u8] = b"x-poison-66";
/// The address poisoning A records carry.
const POISON_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);

/// `reply` with three records for an unrelated zone appended (so in its additional
/// section when the counts match the records): an NS for `x-poison-66.example`, the
/// address of that NS and of `www.x-poison-66.example` (192.0.2.66). Unchanged when it
/// has no header or would grow over 65535 bytes.
pub(super) fn poisoned(reply: &[u8]) -> Vec<u8> {
    let zone: Name<Vec<u8>> = "x-poison-66.example".parse().expect("a valid name");
    let ns: Name<Vec<u8>> = "ns.x-poison-66.example".parse().expect("a valid name");
    let www: Name<Vec<u8>> = "www.x-poison-66.example".parse().expect("a valid name");
    let mut records = Vec::new();
    let mut push = |owner: &Name<Vec<u8>>, rtype: Rtype, rdata: &[u8]| {
        records.extend_from_slice(owner.as_slice());
        records.extend_from_slice(&rtype.to_int().to_be_bytes());
        records.extend_from_slice(&Class::IN.to_int().to_be_bytes());
        records.extend_from_slice(&300u32.to_be_bytes());
        records.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        records.extend_from_slice(rdata);
    };
    push(&zone, Rtype::NS, ns.as_slice());
    push(&ns, Rtype::A, &POISON_IP.octets());
    push(&www, Rtype::A, &POISON_IP.octets());
    let arcount = reply
        .get(10..12)
        .and_then(|c| u16::from_be_bytes([c[0], c[1]]).checked_add(3));
    match arcount {
        Some(count) if reply.len() + records.len() <= usize::from(u16::MAX) => {
            let mut out = reply.to_vec();
            out[10..12].copy_from_slice(&count.to_be_bytes());
            out.extend(records);
            out
        }
        _ => reply.to_vec(),
    }
}

/// Whether `bytes` hold the poison's label (in any case).
pub(super) fn contains_label(bytes: &[u8]) -> bool {
    bytes
        .windows(POISON_LABEL.len())
        .any(|w| w.eq_ignore_ascii_case(POISON_LABEL))
}

/// The record texts (owner and data, lowercase) of a message, as far as it parses, and
/// whether all of it did.
fn record_texts(bytes: &[u8]) -> (Vec<(String, String)>, bool) {
    let Ok(msg) = Message::from_octets(Bytes::copy_from_slice(bytes)) else {
        return (Vec::new(), false);
    };
    let mut out = Vec::new();
    for item in msg.iter() {
        let Ok((rr, _)) = item else {
            return (out, false);
        };
        if rr.rtype() == Rtype::OPT {
            continue;
        }
        match rr.to_any_record::<AllRecordData<Bytes, ParsedName<Bytes>>>() {
            Ok(rec) => out.push((
                rec.owner().to_string().to_ascii_lowercase(),
                rec.data().to_string().to_ascii_lowercase(),
            )),
            Err(_) => return (out, false),
        }
    }
    (out, true)
}

/// Whether an upstream reply's records other than the poison name the poison in their
/// data (a CNAME or NS target, say): then the poison is on a chain or is glue and may
/// be used. (A reply that does not parse to its end is not used at all.)
pub(super) fn mentions_poison(reply: &[u8]) -> bool {
    let label = std::str::from_utf8(POISON_LABEL).expect("ASCII");
    record_texts(reply)
        .0
        .iter()
        .any(|(owner, data)| !owner.contains(label) && data.contains(label))
}

/// Whether a client reply carries a record naming the poison.
pub(super) fn carries_poison(reply: &[u8]) -> bool {
    let label = std::str::from_utf8(POISON_LABEL).expect("ASCII");
    record_texts(reply)
        .0
        .iter()
        .any(|(owner, data)| owner.contains(label) || data.contains(label))
}
