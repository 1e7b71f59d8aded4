//! Encoding messages: client replies (echoed question, flags, OPT, truncation to the
//! client's limit) and outgoing queries.

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, OptRcode, Rcode, Rtype};
use domain::base::message_builder::PushError;
use domain::base::message_builder::TreeCompressor;
use domain::base::{MessageBuilder, Name, StaticCompressor, ToName};
use domain::rdata::AllRecordData;

use crate::request::Request;
use crate::resolver::Answer;

/// Size of an OPT record with no options: root name, type, class, TTL, rdlength.
const OPT_LEN: usize = 11;

/// An encoded reply, and whether it had to be truncated.
pub struct Encoded {
    /// The wire-format reply (not length-prefixed).
    pub bytes: Vec<u8>,
    /// Whether TC was set because the answer did not fit.
    pub truncated: bool,
}

/// Encodes `answer` as the reply to `req`, within the client's size limit.
///
/// If the answer or authority section does not fit, the reply carries only the
/// question (and OPT) with TC=1, so the client retries over TCP. Additional records
/// that do not fit are left out without TC (RFC 2181 9).
pub fn encode_reply(
    req: &Request,
    answer: &Answer,
    recursion_available: bool,
    edns_size: u16,
    buf: Vec<u8>,
) -> Encoded {
    let limit = req.reply_limit(edns_size);
    match build(
        req,
        answer,
        recursion_available,
        edns_size,
        limit,
        buf,
        true,
    ) {
        Ok(bytes) => Encoded {
            bytes,
            truncated: false,
        },
        Err(buf) => Encoded {
            bytes: build(
                req,
                answer,
                recursion_available,
                edns_size,
                limit,
                buf,
                false,
            )
            .unwrap_or_else(|buf| buf),
            truncated: true,
        },
    }
}

/// Builds the reply. With `full` false, only the header, question and OPT, TC set.
/// `Err` hands the buffer back when the answer or authority section overflowed.
fn build(
    req: &Request,
    answer: &Answer,
    ra: bool,
    edns_size: u16,
    limit: usize,
    mut buf: Vec<u8>,
    full: bool,
) -> Result<Vec<u8>, Vec<u8>> {
    buf.clear();
    let opt_room = if req.edns.is_some() { OPT_LEN } else { 0 };
    // The tree compressor remembers every name (the static one only 24), so a referral
    // with many glue records compresses them all.
    let mut b = match MessageBuilder::from_target(TreeCompressor::new(buf)) {
        Ok(b) => b,
        Err(_) => return Err(Vec::new()),
    };
    b.set_push_limit(limit + 1 - opt_room);
    let rcode = if req.edns.is_none() && answer.rcode.is_ext() {
        Rcode::SERVFAIL
    } else {
        answer.rcode.rcode()
    };
    let h = b.header_mut();
    h.set_id(req.id);
    h.set_qr(true);
    h.set_opcode(Opcode::QUERY);
    h.set_rd(req.rd);
    // RFC 4035 3.1.6: an authoritative answer does not echo CD (as NSD and Knot).
    h.set_cd(req.cd && !answer.authoritative);
    h.set_ra(ra);
    h.set_aa(answer.authoritative);
    h.set_ad(answer.authenticated && req.edns.is_some_and(|e| e.dnssec_ok));
    h.set_tc(!full);
    h.set_rcode(rcode);
    let mut q = b.question();
    // The question came in within the client's limit, so it fits back out.
    let _ = q.push((&req.qname, req.qtype, req.qclass));
    let mut add = if full {
        let mut ans = q.answer();
        if push_all(&answer.answer, |rr| ans.push(rr)).is_err() {
            return Err(ans.finish().into_target());
        }
        let mut auth = ans.authority();
        if push_all(&answer.authority, |rr| auth.push(rr)).is_err() {
            return Err(auth.finish().into_target());
        }
        let mut add = auth.additional();
        // Required glue first: if it does not fit, TC (RFC 9471 3.1); the rest of the
        // additional data is left out without TC when it does not fit (RFC 2181 9).
        // Only the first MAX_GLUE_CHECK records are checked for being glue (a bound on
        // the work a hostile upstream's referral can cause).
        let required =
            |i: usize, rr: &crate::record::Rr| i < MAX_GLUE_CHECK && is_required_glue(answer, rr);
        for (i, rr) in answer.additional.iter().enumerate() {
            if required(i, rr) && add.push(rr).is_err() {
                return Err(add.finish().into_target());
            }
        }
        for (i, rr) in answer.additional.iter().enumerate() {
            if !required(i, rr) && add.push(rr).is_err() {
                break;
            }
        }
        add
    } else {
        q.additional()
    };
    if let Some(edns) = req.edns {
        add.clear_push_limit();
        let _ = add.opt(|o| {
            o.set_udp_payload_size(edns_size);
            o.set_version(0);
            o.set_dnssec_ok(edns.dnssec_ok);
            o.set_rcode(answer.rcode);
            Ok(())
        });
    }
    Ok(add.finish().into_target())
}

/// How many additional and authority records are looked at to find required glue.
const MAX_GLUE_CHECK: usize = 256;

/// Whether `rr` is in-domain glue of a referral's delegation (RFC 9471 2.1): an address
/// record of a name server named in the authority section's NS records, at or below
/// their owner, in a reply with no answer records.
fn is_required_glue(answer: &Answer, rr: &crate::record::Rr) -> bool {
    if !answer.answer.is_empty() || !matches!(rr.rtype(), Rtype::A | Rtype::AAAA) {
        return false;
    }
    answer
        .authority
        .iter()
        .take(MAX_GLUE_CHECK)
        .any(|ns| match ns.data() {
            AllRecordData::Ns(ns_data) => {
                ns_data.nsdname().name_eq(rr.owner()) && rr.owner().ends_with(ns.owner())
            }
            _ => false,
        })
}

fn push_all<T>(
    records: &[T],
    push: impl FnMut(&T) -> Result<(), PushError>,
) -> Result<(), PushError> {
    records.iter().try_for_each(push)
}

/// Target size of one zone transfer message: compression pointers reach only the
/// first 16 KiB of a message, so larger messages compress worse (NSD uses this too).
pub const TRANSFER_MESSAGE_LEN: usize = 16384;

/// A zone transfer holds a record that fits no message of 65,535 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransferTooBig;

/// Encodes an AXFR (RFC 5936) or IXFR (RFC 1995) answer as several messages of at most
/// [`TRANSFER_MESSAGE_LEN`] bytes each (a record that alone is larger gets a message of
/// its own, up to 65,535 bytes: every message can be framed), records in order, the
/// question in the first message only. `None` unless this is a successful AXFR or IXFR over
/// TCP: every other answer is one message. `Some(Err)` when a record fits no message.
pub fn encode_transfer(
    req: &Request,
    answer: &Answer,
) -> Option<Result<Vec<Vec<u8>>, TransferTooBig>> {
    if !matches!(req.qtype, Rtype::AXFR | Rtype::IXFR)
        || !matches!(req.origin, crate::action::Origin::Tcp(_))
        || answer.rcode != OptRcode::from(Rcode::NOERROR)
        || answer.answer.is_empty()
    {
        return None;
    }
    Some(encode_transfer_parts(req, answer))
}

fn encode_transfer_parts(req: &Request, answer: &Answer) -> Result<Vec<Vec<u8>>, TransferTooBig> {
    let mut out = Vec::new();
    let mut next = 0;
    while next < answer.answer.len() {
        let mut b = MessageBuilder::from_target(TreeCompressor::new(Vec::new()))
            .map_err(|_| TransferTooBig)?;
        b.set_push_limit(TRANSFER_MESSAGE_LEN + 1);
        let h = b.header_mut();
        h.set_id(req.id);
        h.set_qr(true);
        h.set_opcode(Opcode::QUERY);
        h.set_rd(req.rd);
        h.set_aa(answer.authoritative);
        let mut q = b.question();
        if out.is_empty() {
            q.push((&req.qname, req.qtype, req.qclass))
                .map_err(|_| TransferTooBig)?;
        }
        let mut ans = q.answer();
        let mut pushed = 0;
        while let Some(rr) = answer.answer.get(next) {
            if ans.push(rr).is_ok() {
                pushed += 1;
                next += 1;
                continue;
            }
            if pushed == 0 {
                // Alone in its message, up to what a 2-byte frame length can carry.
                ans.set_push_limit(crate::tcp::MAX_MESSAGE + 1);
                if ans.push(rr).is_err() {
                    return Err(TransferTooBig);
                }
                next += 1;
            }
            break;
        }
        let message = ans.finish().into_target();
        if message.len() > crate::tcp::MAX_MESSAGE {
            return Err(TransferTooBig);
        }
        out.push(message);
    }
    Ok(out)
}

/// The question and flags of an outgoing query.
#[derive(Clone, Debug)]
pub struct QuerySpec<'a> {
    /// The message ID (fresh and random for every upstream try).
    pub id: u16,
    /// The question name.
    pub qname: &'a Name<Bytes>,
    /// The question type.
    pub qtype: Rtype,
    /// The question class.
    pub qclass: Class,
    /// The recursion-desired bit.
    pub rd: bool,
    /// The checking-disabled bit.
    pub cd: bool,
    /// EDNS(0) UDP size and DO bit, or no OPT at all.
    pub edns: Option<(u16, bool)>,
}

/// Encodes a query.
pub fn encode_query(spec: &QuerySpec<'_>) -> Vec<u8> {
    let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::with_capacity(64)))
        .expect("an empty Vec has room for a header");
    let h = b.header_mut();
    h.set_id(spec.id);
    h.set_rd(spec.rd);
    h.set_cd(spec.cd);
    let mut q = b.question();
    q.push((spec.qname, spec.qtype, spec.qclass))
        .expect("one question always fits in 64 KiB");
    let mut add = q.additional();
    if let Some((size, dnssec_ok)) = spec.edns {
        add.opt(|o| {
            o.set_udp_payload_size(size);
            o.set_dnssec_ok(dnssec_ok);
            Ok(())
        })
        .expect("an OPT always fits after one question");
    }
    add.finish().into_target()
}

/// Whether an rcode is one the forwarder treats as "this upstream failed".
pub(crate) fn is_upstream_failure(rcode: OptRcode) -> bool {
    matches!(
        rcode.rcode(),
        Rcode::SERVFAIL | Rcode::REFUSED | Rcode::NOTIMP
    ) && !rcode.is_ext()
}

#[cfg(test)]
mod tests {
    /// Building a query, admitting it as a server does, and encoding a reply to it.
    #[test]
    fn a_query_admitted_and_answered() {
        use crate::domain::base::iana::{Class, Rcode, Rtype};
        use crate::domain::base::{Message, Record, Ttl};
        use crate::domain::rdata::{AllRecordData, A};
        use crate::message::{encode_query, encode_reply, QuerySpec};
        use crate::request::{admit, Admission};
        use crate::{Answer, Origin, Transport};
        use std::net::Ipv4Addr;
        use std::time::Instant;

        // A query, as a client would send it.
        let qname = "WWW.Example.com".parse().unwrap();
        let query = encode_query(&QuerySpec {
            id: 99,
            qname: &qname,
            qtype: Rtype::A,
            qclass: Class::IN,
            rd: true,
            cd: false,
            edns: Some((4096, false)),
        });

        // The server's side: admit it, then encode an answer as the reply.
        let peer = "127.0.0.1:40000".parse().unwrap();
        let origin = Origin::Udp { listener: 0, peer };
        #[allow(clippy::disallowed_methods)] // a test's one clock read
        let now = Instant::now();
        let Admission::Query(request) = admit(&query, origin, peer, now, 1232) else {
            panic!("a well-formed query")
        };
        assert_eq!(
            (request.qtype, request.origin.transport()),
            (Rtype::A, Transport::Udp)
        );
        let mut answer = Answer::new(Rcode::NOERROR.into());
        answer.authoritative = true;
        answer.answer.push(Record::new(
            request.qname.clone(),
            Class::IN,
            Ttl::from_secs(300),
            AllRecordData::A(A::new(Ipv4Addr::new(192, 0, 2, 80))),
        ));
        let encoded = encode_reply(&request, &answer, false, 1232, Vec::new());
        assert!(!encoded.truncated);

        // The client's side: the question is echoed as asked, with the answer and an OPT.
        let reply = Message::from_octets(encoded.bytes).unwrap();
        assert_eq!(reply.header().id(), 99);
        assert!(reply.header().qr() && reply.header().aa());
        assert_eq!(
            reply.sole_question().unwrap().qname().to_string(),
            "WWW.Example.com"
        );
        assert_eq!(reply.header_counts().ancount(), 1);
        assert!(reply.opt().is_some());
    }
}
