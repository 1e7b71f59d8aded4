//! What a client message must get, decided from the message alone (the fuzz bodies'
//! oracle), and the check of a reply against it.
//!
//! The rules are those of RFC 1035 and RFC 6891 as the server applies them: nothing for
//! a message too short to carry an ID or for a response; NOTIMP for another opcode;
//! FORMERR for a question count other than one, for a message that does not parse to
//! its end (records, at most one OPT, in the additional section, owned by the root,
//! nothing after the last record) and for a meta type; BADVERS for an EDNS version
//! above 0; else the query goes to the resolvers and its reply echoes the question.

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, OptRcode, Rtype};
use domain::base::{Message, Name, ToName};

use crate::sim::{parse_back, udp_limit};

/// What a client message must get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// No reply.
    Drop,
    /// An immediate error reply with this response code.
    Reject(OptRcode),
    /// A query for the resolvers: the reply echoes this question.
    Query {
        qname: Name<Bytes>,
        qtype: Rtype,
        qclass: Class,
    },
}

/// What `bytes` must get (see the module docs).
pub fn expect(bytes: &[u8]) -> Expect {
    let Ok(msg) = Message::from_octets(bytes) else {
        return Expect::Drop;
    };
    let header = msg.header();
    if header.qr() {
        return Expect::Drop;
    }
    if header.opcode() != Opcode::QUERY {
        return Expect::Reject(OptRcode::NOTIMP);
    }
    if msg.header_counts().qdcount() != 1 {
        return Expect::Reject(OptRcode::FORMERR);
    }
    let Some((qname, qtype, qclass, version)) = walk(&msg) else {
        return Expect::Reject(OptRcode::FORMERR);
    };
    if version.is_some_and(|v| v > 0) {
        return Expect::Reject(OptRcode::BADVERS);
    }
    // RFC 6895 3.1: OPT, TKEY, TSIG, MAILA, MAILB and the meta range, save AXFR, IXFR
    // and ANY (meta types with a meaning of their own).
    if matches!(qtype.to_int(), 41 | 128..=250 | 253 | 254) {
        return Expect::Reject(OptRcode::FORMERR);
    }
    Expect::Query {
        qname,
        qtype,
        qclass,
    }
}

/// The question and EDNS version of a message that parses to its end, else `None`.
#[allow(clippy::type_complexity)]
fn walk(msg: &Message<&[u8]>) -> Option<(Name<Bytes>, Rtype, Class, Option<u8>)> {
    let question = msg.sole_question().ok()?;
    let mut version = None;
    for item in msg.iter() {
        let (rr, section) = item.ok()?;
        if rr.rtype() == Rtype::OPT {
            let additional = matches!(section, domain::base::message::Section::Additional);
            if version.is_some() || !additional || !rr.owner().is_root() {
                return None;
            }
            version = Some((rr.ttl().as_secs() >> 16) as u8);
        }
    }
    if wire_len(msg.as_slice())? != msg.as_slice().len() {
        return None; // bytes after the last record
    }
    let qname = question.qname().to_name::<Bytes>();
    Some((qname, question.qtype(), question.qclass(), version))
}

/// Where a message ends by its own counts, or `None` if the bytes run out first.
fn wire_len(bytes: &[u8]) -> Option<usize> {
    let be16 = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *bytes.get(at)?,
            *bytes.get(at + 1)?,
        ])))
    };
    let name_end = |mut at: usize| -> Option<usize> {
        loop {
            let len = *bytes.get(at)?;
            match len {
                0 => return Some(at + 1),
                1..=63 => at += 1 + usize::from(len),
                0xc0.. => return Some(at + 2),
                _ => return None,
            }
        }
    };
    let mut at = 12;
    for _ in 0..be16(4)? {
        at = name_end(at)? + 4;
    }
    let records = be16(6)? + be16(8)? + be16(10)?;
    for _ in 0..records {
        at = name_end(at)? + 10;
        at += be16(at - 2)?;
    }
    (at <= bytes.len()).then_some(at)
}

/// Checks `reply` to `query`, which must get `expect`: same ID, parses back completely,
/// and for a rejection its response code; for a query the question echoed as asked and,
/// over UDP, no larger than the client accepts (`max_udp` being the server's limit).
pub fn check_reply(query: &[u8], expect: &Expect, reply: &[u8], udp: bool, max_udp: u16) {
    assert_eq!(reply.get(..2), query.get(..2), "reply ID = query ID");
    let msg = parse_back(reply);
    assert!(msg.header().qr(), "a reply has QR set");
    match expect {
        Expect::Drop => panic!("a dropped message got a reply"),
        Expect::Reject(rcode) => assert_eq!(msg.opt_rcode(), *rcode, "the rejection's rcode"),
        Expect::Query {
            qname,
            qtype,
            qclass,
        } => {
            let q = msg.sole_question().expect("one question echoed");
            assert_eq!(
                q.qname().to_name::<Bytes>().as_slice(),
                qname.as_slice(),
                "the question is echoed as asked"
            );
            assert_eq!((q.qtype(), q.qclass()), (*qtype, *qclass));
        }
    }
    if udp {
        let limit = udp_limit(query, max_udp);
        assert!(
            reply.len() <= limit,
            "reply of {} bytes over the client's limit of {limit}",
            reply.len()
        );
    }
}
