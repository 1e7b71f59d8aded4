//! Admission of a client message: drop, an immediate error reply, or a [`Request`].
//!
//! Rules (RFC 1035, 6891): shorter than a header or QR=1 -> dropped; opcode other
//! than QUERY -> NOTIMP; QDCOUNT != 1 -> FORMERR; unreadable body -> FORMERR;
//! EDNS version > 0 -> BADVERS; more than one OPT -> FORMERR.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, OptRcode, Rcode, Rtype};
use domain::base::{
    Header, HeaderSection, Message, MessageBuilder, Name, StaticCompressor, ToName,
};

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
    pub id: u16,
    pub origin: Origin,
    /// The client's address (UDP source, or TCP peer).
    pub client: SocketAddr,
    /// The question name exactly as asked (case preserved, RFC 1035 7.3 / 0x20).
    pub qname: Name<Bytes>,
    pub qtype: Rtype,
    pub qclass: Class,
    pub rd: bool,
    pub cd: bool,
    pub edns: Option<ClientEdns>,
    pub received: Instant,
}

impl Request {
    /// The largest reply this client accepts on its transport.
    pub fn reply_limit(&self, max_udp: u16) -> usize {
        match self.origin {
            Origin::Tcp(_) => 65535,
            Origin::Udp { .. } => match self.edns {
                None => 512,
                Some(e) => usize::from(e.udp_size.clamp(512, max_udp.max(512))),
            },
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
pub fn admit(
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
        return Admission::Reject(header_only(header, Rcode::NOTIMP));
    }
    if msg.header_counts().qdcount() != 1 {
        return Admission::Reject(header_only(header, Rcode::FORMERR));
    }
    let Ok(request) = parse(&msg, origin, client, now) else {
        return Admission::Reject(header_only(header, Rcode::FORMERR));
    };
    if let Some(version) = edns_version(&msg) {
        if version > 0 {
            return Admission::Reject(badvers(&request, edns_size));
        }
    }
    Admission::Query(request)
}

struct Malformed;

/// Walks the whole message once: the question, every record, at most one OPT.
fn parse(
    msg: &Message<&[u8]>,
    origin: Origin,
    client: SocketAddr,
    now: Instant,
) -> Result<Request, Malformed> {
    let header = msg.header();
    let mut questions = msg.question();
    let question = questions.next().ok_or(Malformed)?.map_err(|_| Malformed)?;
    let mut section = questions.answer().map_err(|_| Malformed)?;
    let mut edns = None;
    let mut opts = 0;
    loop {
        for rr in &mut section {
            let rr = rr.map_err(|_| Malformed)?;
            if rr.rtype() == Rtype::OPT {
                opts += 1;
            }
        }
        match section.next_section().map_err(|_| Malformed)? {
            Some(next) => section = next,
            None => break,
        }
    }
    if opts > 1 {
        return Err(Malformed);
    }
    if opts == 1 {
        let opt = msg.opt().ok_or(Malformed)?;
        edns = Some(ClientEdns {
            udp_size: opt.udp_payload_size(),
            dnssec_ok: opt.dnssec_ok(),
        });
    }
    Ok(Request {
        id: header.id(),
        origin,
        client,
        qname: question.qname().to_name::<Bytes>(),
        qtype: question.qtype(),
        qclass: question.qclass(),
        rd: header.rd(),
        cd: header.cd(),
        edns,
        received: now,
    })
}

fn edns_version(msg: &Message<&[u8]>) -> Option<u8> {
    msg.opt().map(|o| o.version())
}

/// A reply of just a header: ID, opcode and RD echoed, QR set, all counts zero.
fn header_only(query: Header, rcode: Rcode) -> Vec<u8> {
    let mut header = HeaderSection::new();
    let h = header.header_mut();
    h.set_id(query.id());
    h.set_opcode(query.opcode());
    h.set_rd(query.rd());
    h.set_qr(true);
    h.set_rcode(rcode);
    header.as_slice().to_vec()
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
