//! Fuzz target 3: the bytes as the upstream's reply to a forwarded query.

use std::net::SocketAddr;

use bytes::Bytes;
use domain::base::iana::{Rcode, Rtype};
use domain::base::Name;
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
    for answered in 0..6 {
        if answered == 0 && lose_first {
            w.advance(w.config.try_timeout);
        }
        let skip = usize::from(lose_first);
        let Some((token, s)) = sent_since(&w, answered + skip).into_iter().next() else {
            break;
        };
        let reply = shaped_reply(shape, body, &s.message);
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
