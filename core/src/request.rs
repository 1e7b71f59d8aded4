//! Admission of a client message: drop, an immediate error reply, or a [`Request`].
//!
//! Rules (RFC 1035, 6891): shorter than a header or QR=1 -> dropped; opcode other
//! than QUERY -> NOTIMP; QDCOUNT != 1 -> FORMERR; unreadable body, bytes after the last
//! record, more than one OPT, an OPT outside the additional section or not owned by the
//! root -> FORMERR; EDNS version > 0 -> BADVERS; a meta type asked (OPT, TSIG, TKEY,
//! MAILA, MAILB, 128-248) -> FORMERR, as Unbound answers. An error reply to a query with
//! a readable OPT carries an OPT (RFC 6891 6.1.1).

use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use domain::base::iana::{Class, Opcode, OptRcode, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, Name, StaticCompressor, ToName};

use crate::action::Origin;

/// The client's EDNS(0) parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientEdns {
    /// Advertised UDP payload size.
    pub udp_size: u16,
    /// The DO bit.
    pub dnssec_ok: bool,
}

/// A well-formed client query, owned, so it can wait for upstream answers.
#[derive(Clone, Debug)]
pub struct Request {
    /// The query's message ID, echoed in the reply.
    pub id: u16,
    /// Where it came from, and so where the reply goes.
    pub origin: Origin,
    /// The client's address (UDP source, or TCP peer).
    pub client: SocketAddr,
    /// The question name exactly as asked (case preserved, RFC 1035 7.3 / 0x20).
    pub qname: Name<Bytes>,
    /// The question type.
    pub qtype: Rtype,
    /// The question class.
    pub qclass: Class,
    /// The recursion-desired bit, echoed in the reply.
    pub rd: bool,
    /// The checking-disabled bit.
    pub cd: bool,
    /// The query's EDNS(0) OPT record, if it had one.
    pub edns: Option<ClientEdns>,
    /// When the query arrived: its budget runs from here.
    pub received: Instant,
    /// A background refresh (prefetch): no client waits for its reply.
    pub background: bool,
    /// The resolver's state for this query (`Context::state`).
    pub(crate) state: crate::resolver::StateSlot,
    /// The message carries a TSIG record (the server verifies it before the chain sees it).
    pub signed: bool,
    /// A verified TSIG signature: every reply message is signed with its key.
    pub tsig: Option<crate::tsig::ServerSigner>,
    /// The serial of the SOA in the authority section of an IXFR query (RFC 1995 3).
    pub ixfr_serial: Option<u32>,
}

impl Request {
    /// The largest reply this client accepts on its transport.
    pub fn reply_limit(&self, max_udp: u16) -> usize {
        match self.origin {
            Origin::Tcp(_) => 65535,
            Origin::Udp { .. } => {
                let limit = match self.edns {
                    None => 512,
                    Some(e) => usize::from(e.udp_size.clamp(512, max_udp.max(512))),
                };
                // Room for the signature added after the reply is encoded.
                limit.saturating_sub(self.tsig.as_ref().map_or(0, |t| t.room()))
            }
        }
    }
}

/// What to do with a client message.
#[derive(Debug)]
pub enum Admission {
    /// Nothing is sent (too short to carry an ID, or a response).
    Drop,
    /// An immediate error reply: FORMERR, NOTIMP or BADVERS.
    Reject(Vec<u8>),
    /// A query for the resolver chain.
    Query(Request),
}

/// Checks a client message and turns it into a request or a reaction.
#[cfg(test)]
pub fn admit(
    bytes: &[u8],
    origin: Origin,
    client: SocketAddr,
    now: Instant,
    edns_size: u16,
) -> Admission {
    admit_with(&mut BytesMut::new(), bytes, origin, client, now, edns_size)
}

/// Like [`admit`], copying the question name into `arena` rather than a fresh allocation:
/// a server keeps one arena, and once earlier requests are gone it reuses the same memory.
pub fn admit_with(
    arena: &mut BytesMut,
    bytes: &[u8],
    origin: Origin,
    client: SocketAddr,
    now: Instant,
    edns_size: u16,
) -> Admission {
    let Ok(msg) = Message::from_octets(bytes) else {
        return Admission::Drop;
    };
    let header = msg.header();
    if header.qr() {
        return Admission::Drop;
    }
    if header.opcode() != Opcode::QUERY {
        return Admission::Reject(error_reply(&msg, None, Rcode::NOTIMP, edns_size));
    }
    if msg.header_counts().qdcount() != 1 {
        return Admission::Reject(error_reply(&msg, None, Rcode::FORMERR, edns_size));
    }
    let parsed = match parse_plain(arena, bytes, origin, client, now) {
        Some(plain) => Ok(plain),
        None => parse(arena, &msg, origin, client, now),
    };
    let Ok((request, edns_version)) = parsed else {
        return Admission::Reject(error_reply(&msg, None, Rcode::FORMERR, edns_size));
    };
    if edns_version.is_some_and(|v| v > 0) {
        return Admission::Reject(badvers(&request, edns_size));
    }
    if is_meta_type(request.qtype) {
        let reply = error_reply(&msg, Some(&request), Rcode::FORMERR, edns_size);
        return Admission::Reject(reply);
    }
    Admission::Query(request)
}

/// Types that name no data a query could ask for (RFC 6895 3.1: OPT, the transaction
/// types TKEY and TSIG, the obsolete MAILA/MAILB, and the meta range 128-248 save those).
/// AXFR, IXFR and ANY are meta types with a meaning of their own, left to the resolvers.
fn is_meta_type(qtype: Rtype) -> bool {
    matches!(qtype.to_int(), 41 | 128..=250 | 253 | 254)
}

/// Room reserved in the name arena: the longest name.
const ARENA_CHUNK: usize = 16 * 1024;

struct Malformed;

/// The fast path for the common shape of a query: one uncompressed question, no answer or
/// authority records, at most an OPT, nothing after it. Anything else (`None`) takes the
/// general walk in [`parse`], which decides the same way for these messages.
fn parse_plain(
    arena: &mut BytesMut,
    bytes: &[u8],
    origin: Origin,
    client: SocketAddr,
    now: Instant,
) -> Option<(Request, Option<u8>)> {
    let be16 = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
    };
    if be16(4)? != 1 || be16(6)? != 0 || be16(8)? != 0 || be16(10)? > 1 {
        return None;
    }
    // The question name: plain labels only, at most 255 bytes.
    let mut at = 12;
    loop {
        let len = usize::from(*bytes.get(at)?);
        if len & 0xc0 != 0 {
            return None;
        }
        at += 1 + len;
        if at - 12 > 255 {
            return None;
        }
        if len == 0 {
            break;
        }
    }
    let name = bytes.get(12..at)?;
    let qtype = be16(at)?;
    let qclass = be16(at + 2)?;
    at += 4;
    let (mut edns, mut version) = (None, None);
    if be16(10)? == 1 {
        // OPT: root owner, type 41, class = UDP size, TTL = ext-rcode/version/flags, rdata.
        if *bytes.get(at)? != 0 || be16(at + 1)? != Rtype::OPT.to_int() {
            return None;
        }
        let udp_size = be16(at + 3)?;
        let ttl = u32::from(be16(at + 5)?) << 16 | u32::from(be16(at + 7)?);
        let rdlen = usize::from(be16(at + 9)?);
        at += 11 + rdlen;
        version = Some((ttl >> 16) as u8);
        edns = Some(ClientEdns {
            udp_size,
            dnssec_ok: ttl & 0x8000 != 0,
        });
    }
    if at != bytes.len() {
        return None;
    }
    if arena.capacity() - arena.len() < 256 {
        arena.reserve(ARENA_CHUNK);
    }
    arena.extend_from_slice(name);
    let qname = Name::from_octets(arena.split().freeze()).ok()?;
    let flags = be16(2)?;
    let request = Request {
        id: be16(0)?,
        origin,
        client,
        qname,
        qtype: Rtype::from_int(qtype),
        qclass: Class::from_int(qclass),
        rd: flags & 0x0100 != 0,
        cd: flags & 0x0010 != 0,
        edns,
        received: now,
        background: false,
        state: Default::default(),
        signed: false,
        tsig: None,
        ixfr_serial: None,
    };
    Some((request, version))
}

/// Walks the whole message once: the question, every record, at most one OPT.
/// Returns the request and the EDNS version, if any.
fn parse(
    arena: &mut BytesMut,
    msg: &Message<&[u8]>,
    origin: Origin,
    client: SocketAddr,
    now: Instant,
) -> Result<(Request, Option<u8>), Malformed> {
    let header = msg.header();
    let mut questions = msg.question();
    let question = questions.next().ok_or(Malformed)?.map_err(|_| Malformed)?;
    let mut section = questions.answer().map_err(|_| Malformed)?;
    let mut edns = None;
    let mut version = None;
    let (mut signed, mut ixfr_serial) = (false, None);
    // 0 answer, 1 authority, 2 additional.
    let mut index = 0;
    loop {
        for rr in &mut section {
            let rr = rr.map_err(|_| Malformed)?;
            signed |= rr.rtype() == Rtype::TSIG;
            if index == 1 && question.qtype() == Rtype::IXFR && rr.rtype() == Rtype::SOA {
                // The client's version (RFC 1995 3); an unreadable one is no version.
                ixfr_serial = rr
                    .to_record::<domain::rdata::Soa<_>>()
                    .ok()
                    .flatten()
                    .map(|soa| soa.data().serial().into_int());
            }
            if rr.rtype() == Rtype::OPT {
                // RFC 6891 6.1.1: at most one OPT, in the additional section, owned by the root.
                if edns.is_some() || index != 2 || !rr.owner().is_root() {
                    return Err(Malformed);
                }
                // OPT's class is the UDP size; its TTL is ext-rcode, version, DO + flags.
                let ttl = rr.ttl().as_secs();
                version = Some((ttl >> 16) as u8);
                edns = Some(ClientEdns {
                    udp_size: rr.class().to_int(),
                    dnssec_ok: ttl & 0x8000 != 0,
                });
            }
        }
        match section.next_section().map_err(|_| Malformed)? {
            Some(next) => section = next,
            None => break,
        }
        index += 1;
    }
    if wire_len(msg.as_slice()) != Some(msg.as_slice().len()) {
        return Err(Malformed); // bytes after the last record
    }
    if arena.capacity() - arena.len() < 256 {
        arena.reserve(ARENA_CHUNK);
    }
    question.qname().compose(arena).map_err(|_| Malformed)?;
    let qname = Name::from_octets(arena.split().freeze()).map_err(|_| Malformed)?;
    let request = Request {
        id: header.id(),
        origin,
        client,
        qname,
        qtype: question.qtype(),
        qclass: question.qclass(),
        rd: header.rd(),
        cd: header.cd(),
        edns,
        received: now,
        background: false,
        state: Default::default(),
        signed,
        tsig: None,
        ixfr_serial,
    };
    Ok((request, version))
}

/// Where a message ends by its own counts: the header, the questions, then every
/// record (owner, fixed fields and RDATA). `None` if the bytes run out first.
pub(crate) fn wire_len(bytes: &[u8]) -> Option<usize> {
    let count = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([
            *bytes.get(at)?,
            *bytes.get(at + 1)?,
        ])))
    };
    let skip_name = |mut at: usize| -> Option<usize> {
        loop {
            let len = *bytes.get(at)?;
            match len & 0xc0 {
                0xc0 => return Some(at + 2), // a compression pointer ends the name
                0 if len == 0 => return Some(at + 1),
                0 => at += 1 + usize::from(len),
                _ => return None,
            }
        }
    };
    let mut at = 12;
    for _ in 0..count(4)? {
        at = skip_name(at)? + 4;
    }
    let records = count(6)? + count(8)? + count(10)?;
    for _ in 0..records {
        at = skip_name(at)? + 10;
        at += count(at - 2)?;
    }
    (at <= bytes.len()).then_some(at)
}

/// The client's OPT, if the message carries exactly one readable OPT owned by the root in
/// its additional section.
fn readable_opt(msg: &Message<&[u8]>) -> Option<ClientEdns> {
    let mut found = None;
    for rr in msg.additional().ok()? {
        let rr = rr.ok()?;
        if rr.rtype() == Rtype::OPT {
            if found.is_some() || !rr.owner().is_root() {
                return None;
            }
            found = Some(ClientEdns {
                udp_size: rr.class().to_int(),
                dnssec_ok: rr.ttl().as_secs() & 0x8000 != 0,
            });
        }
    }
    found
}

/// An error reply: ID, opcode and RD echoed, QR set; the question when there is a
/// request; an OPT when the query carried a readable one (RFC 6891 6.1.1), DO echoed.
fn error_reply(
    query: &Message<&[u8]>,
    request: Option<&Request>,
    rcode: Rcode,
    edns_size: u16,
) -> Vec<u8> {
    let header = query.header();
    let edns = match request {
        Some(r) => r.edns,
        None => readable_opt(query),
    };
    let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::with_capacity(64)))
        .expect("empty vec has room for a header");
    let h = b.header_mut();
    h.set_id(header.id());
    h.set_opcode(header.opcode());
    h.set_rd(header.rd());
    h.set_cd(header.cd());
    h.set_qr(true);
    h.set_rcode(rcode);
    let mut q = b.question();
    if let Some(r) = request {
        // A question that came in fits back out.
        let _ = q.push((&r.qname, r.qtype, r.qclass));
    }
    let mut add = q.additional();
    if let Some(edns) = edns {
        let _ = add.opt(|o| {
            o.set_udp_payload_size(edns_size);
            o.set_dnssec_ok(edns.dnssec_ok);
            Ok(())
        });
    }
    add.finish().into_target()
}

/// BADVERS (RFC 6891 6.1.3): the question echoed and an OPT of version 0.
fn badvers(req: &Request, edns_size: u16) -> Vec<u8> {
    let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::with_capacity(64)))
        .expect("empty vec has room for a header");
    let h = b.header_mut();
    h.set_id(req.id);
    h.set_qr(true);
    h.set_rd(req.rd);
    let mut q = b.question();
    // A question that came in fits back out.
    let _ = q.push((&req.qname, req.qtype, req.qclass));
    let mut add = q.additional();
    let _ = add.opt(|o| {
        o.set_udp_payload_size(edns_size);
        o.set_version(0);
        o.set_rcode(OptRcode::BADVERS);
        Ok(())
    });
    add.finish().into_target()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a fixed epoch for the test
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Parsed = (Request, Option<u8>);

    fn both(bytes: &[u8]) -> (Option<Parsed>, Result<Parsed, Malformed>) {
        let (origin, client) = (
            Origin::Udp {
                listener: 0,
                peer: "127.0.0.1:5353".parse().unwrap(),
            },
            "127.0.0.1:5353".parse().unwrap(),
        );
        let now = Instant::now();
        let fast = parse_plain(&mut BytesMut::new(), bytes, origin, client, now);
        let slow = Message::from_octets(bytes)
            .map_err(|_| Malformed)
            .and_then(|m| parse(&mut BytesMut::new(), &m, origin, client, now));
        (fast, slow)
    }

    fn same(a: &Parsed, b: &Parsed) -> bool {
        let (x, y) = (&a.0, &b.0);
        x.id == y.id
            && x.qname.as_slice() == y.qname.as_slice()
            && (x.qtype, x.qclass, x.rd, x.cd, x.edns) == (y.qtype, y.qclass, y.rd, y.cd, y.edns)
            && a.1 == b.1
    }

    proptest! {
        /// Whenever the fast path takes a message, the general walk reads it the same way,
        /// including for corrupted variants of real queries.
        #[test]
        fn fast_path_agrees_with_the_general_walk(
            id: u16,
            labels in prop::collection::vec("[a-zA-Z0-9-]{1,12}", 1..5),
            qtype: u16,
            edns in prop::option::of((any::<u16>(), any::<bool>(), any::<u8>())),
            flip in prop::option::of((0usize..80, any::<u8>())),
        ) {
            let name: Name<Bytes> = labels.join(".").parse().unwrap();
            let mut bytes = crate::message::encode_query(&crate::message::QuerySpec {
                id,
                qname: &name,
                qtype: Rtype::from_int(qtype),
                qclass: Class::IN,
                rd: true,
                cd: id % 2 == 0,
                edns: edns.map(|(size, dnssec_ok, _)| (size, dnssec_ok)),
            });
            if let Some((_, _, version)) = edns {
                let at = bytes.len() - 11 + 6; // the OPT TTL's version byte
                bytes[at] = version;
            }
            if let Some((at, byte)) = flip {
                if at < bytes.len() {
                    bytes[at] = byte;
                }
            }
            let (fast, slow) = both(&bytes);
            if let Some(fast) = fast {
                let slow = slow.ok();
                prop_assert!(slow.as_ref().is_some_and(|s| same(&fast, s)));
            }
        }
    }

    #[test]
    fn fast_path_takes_plain_queries() {
        let name: Name<Bytes> = "www.example.com".parse().unwrap();
        for edns in [None, Some((1232, true))] {
            let bytes = crate::message::encode_query(&crate::message::QuerySpec {
                id: 7,
                qname: &name,
                qtype: Rtype::A,
                qclass: Class::IN,
                rd: true,
                cd: false,
                edns,
            });
            let (fast, slow) = both(&bytes);
            assert!(same(
                &fast.expect("taken by the fast path"),
                &slow.ok().unwrap()
            ));
        }
    }
}
