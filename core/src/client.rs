//! A sans-IO DNS client: build a query, match its reply, fall back to TCP, frame and
//! unframe TCP, and present the reply as text.
//!
//! It asks one question of one server. The caller owns the sockets, the clock and the
//! randomness: it gives the message ID (drawn from its RNG), sends
//! [`Lookup::message`], and feeds every datagram or TCP chunk it reads to
//! [`Lookup::handle`], which says what to do next. A reply is accepted only from the
//! server asked, with the query's ID and question (the same check the forwarder makes of
//! its upstreams), or, from that server with that ID, an error reply without a question
//! (FORMERR, SERVFAIL, NOTIMP or REFUSED, no answer or authority records): its rcode is
//! the outcome at once. Anything else over UDP is ignored while the real reply is awaited.
//!
//! ```
//! use names_core::client::{Lookup, Question, Step};
//! use names_core::domain::base::iana::{Rcode, Rtype};
//! use names_core::domain::base::{Message, MessageBuilder};
//! use names_core::domain::rdata::A;
//!
//! let server = "192.0.2.53:53".parse().unwrap();
//! let question = Question::parse("example.com", "a").unwrap();
//! let mut lookup = Lookup::new(question, server, 0x1234); // the ID comes from the caller's RNG
//! let query = lookup.message(); // send this over UDP to `server`
//!
//! // Play the server: a truncated answer first.
//! let asked = Message::from_octets(query.clone()).unwrap();
//! let mut tc = MessageBuilder::new_vec().start_answer(&asked, Rcode::NOERROR).unwrap();
//! tc.header_mut().set_tc(true);
//! let tc = tc.finish();
//! assert_eq!(lookup.handle("198.51.100.1:53".parse().unwrap(), &tc), Step::Wait); // a stranger
//! assert_eq!(lookup.handle(server, &tc), Step::RetryOverTcp);
//!
//! // Now over TCP: the message is framed, and the reply comes back in chunks.
//! let framed = lookup.message();
//! assert_eq!(&framed[2..], &query[..]);
//! let mut full = MessageBuilder::new_vec().start_answer(&asked, Rcode::NOERROR).unwrap();
//! full.push((asked.sole_question().unwrap().qname(), 60, A::from_octets(192, 0, 2, 1))).unwrap();
//! let reply = names_core::client::frame(&full.finish()).unwrap();
//! assert_eq!(lookup.handle(server, &reply[..5]), Step::Wait);
//! let Step::Done(reply) = lookup.handle(server, &reply[5..]) else { panic!("a reply") };
//! assert_eq!(reply.summary(), ";; status: NOERROR, id: 4660, flags: rd");
//! assert_eq!(reply.records(), ["example.com. 60 IN A 192.0.2.1"]);
//! ```

use std::net::SocketAddr;
use std::str::FromStr;

use bytes::Bytes;
use domain::base::iana::{Class, OptRcode, Rcode, Rtype};
use domain::base::{Message, Name};

use crate::action::Transport;
use crate::message::{encode_query, QuerySpec};
use crate::parse::ConfigError;
use crate::record::{read_sections, Rr};
use crate::tcp::{frame_into, Framer};

/// EDNS(0) on a query: the UDP payload size offered and the DNSSEC OK bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    /// The largest UDP reply the client takes.
    pub udp_size: u16,
    /// Whether DNSSEC records are wanted (DO).
    pub dnssec_ok: bool,
}

/// One question and the flags to ask it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The name asked about.
    pub qname: Name<Bytes>,
    /// The record type.
    pub qtype: Rtype,
    /// The class (IN unless set).
    pub qclass: Class,
    /// Recursion desired (set unless cleared).
    pub rd: bool,
    /// Checking disabled (clear unless set).
    pub cd: bool,
    /// EDNS(0), or none (default: 1232 bytes, DO clear).
    pub edns: Option<Edns>,
}

impl Question {
    /// `qname qtype IN` with RD set and EDNS(0) offering 1232 bytes.
    pub fn new(qname: Name<Bytes>, qtype: Rtype) -> Question {
        Question {
            qname,
            qtype,
            qclass: Class::IN,
            rd: true,
            cd: false,
            edns: Some(Edns {
                udp_size: 1232,
                dnssec_ok: false,
            }),
        }
    }

    /// A question from text: a domain name and a type mnemonic (any case) or `TYPEn`.
    pub fn parse(name: &str, rtype: &str) -> Result<Question, ConfigError> {
        let qname = Name::from_str(name)
            .map_err(|e| ConfigError::new(format!("{name:?} is not a domain name: {e}")))?;
        let qtype = Rtype::from_str(&rtype.to_ascii_uppercase())
            .map_err(|_| ConfigError::new(format!("{rtype:?} is not a record type")))?;
        Ok(Question::new(qname, qtype))
    }

    /// The query message with this ID (not framed).
    pub fn encode(&self, id: u16) -> Vec<u8> {
        encode_query(&QuerySpec {
            id,
            qname: &self.qname,
            qtype: self.qtype,
            qclass: self.qclass,
            rd: self.rd,
            cd: self.cd,
            edns: self.edns.map(|e| (e.udp_size, e.dnssec_ok)),
        })
    }
}

/// What a reply must carry to answer a query: its server, ID and question. The one check
/// both this client and the forwarder's upstream engine make.
pub(crate) struct Expected<'a> {
    pub server: SocketAddr,
    pub id: u16,
    pub qname: &'a Name<Bytes>,
    pub qtype: Rtype,
    pub qclass: Class,
}

impl Expected<'_> {
    /// Whether bytes from `from` may be the reply (over TCP the stream says so).
    pub fn sent_by(&self, from: SocketAddr) -> bool {
        from == self.server
    }

    /// The message, if it is a response with the query's ID and exactly its question, or
    /// an error reply with the query's ID and no question at all (see [`is_bare_error`]).
    pub fn reply(&self, bytes: Bytes) -> Option<Message<Bytes>> {
        let msg = Message::from_octets(bytes).ok()?;
        let h = msg.header();
        if !h.qr() || h.id() != self.id {
            return None;
        }
        if msg.header_counts().qdcount() == 0 {
            return is_bare_error(&msg).then_some(msg);
        }
        let q = msg.sole_question().ok()?;
        let same = q.qname() == self.qname && q.qtype() == self.qtype && q.qclass() == self.qclass;
        same.then_some(msg)
    }
}

/// Whether a reply without a question is an error that ends a try at once: rcode FORMERR,
/// SERVFAIL, NOTIMP or REFUSED (as a server sends when it cannot read or will not take the
/// question, NSD for class HS) and no answer or authority records, so it carries no data
/// (additional records, an OPT perhaps, are never used). Any other reply without a
/// question (NOERROR, NXDOMAIN, or one with records) stays ignored as not the reply.
pub(crate) fn is_bare_error(msg: &Message<Bytes>) -> bool {
    let counts = msg.header_counts();
    counts.qdcount() == 0
        && counts.ancount() == 0
        && counts.nscount() == 0
        && matches!(
            msg.header().rcode(),
            Rcode::FORMERR | Rcode::SERVFAIL | Rcode::NOTIMP | Rcode::REFUSED
        )
}

/// What to do after [`Lookup::handle`].
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Nothing usable yet (a foreign datagram, or part of a TCP frame): keep reading.
    Wait,
    /// The UDP reply was truncated: connect over TCP and send [`Lookup::message`] again.
    RetryOverTcp,
    /// The TCP stream carried something that is not the reply: give up on it.
    Broken,
    /// The reply.
    Done(Reply),
}

/// One question put to one server, over UDP (falling back to TCP) or TCP.
#[derive(Debug)]
pub struct Lookup {
    question: Question,
    server: SocketAddr,
    id: u16,
    /// The TCP stream's reassembly, once over TCP.
    framer: Option<Framer>,
}

impl Lookup {
    /// Asks `question` of `server` over UDP, with the message ID `id` (draw it from an
    /// unpredictable RNG: the ID is what keeps spoofed replies out).
    pub fn new(question: Question, server: SocketAddr, id: u16) -> Lookup {
        Lookup {
            question,
            server,
            id,
            framer: None,
        }
    }

    /// Asks over TCP from the start.
    pub fn over_tcp(question: Question, server: SocketAddr, id: u16) -> Lookup {
        Lookup {
            framer: Some(Framer::default()),
            ..Lookup::new(question, server, id)
        }
    }

    /// The transport the next [`message`](Lookup::message) goes over.
    pub fn transport(&self) -> Transport {
        match self.framer {
            Some(_) => Transport::Tcp,
            None => Transport::Udp,
        }
    }

    /// The server asked.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The query's message ID.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The question asked.
    pub fn question(&self) -> &Question {
        &self.question
    }

    /// The bytes to send: a datagram, or over TCP the message with its length prefix.
    pub fn message(&self) -> Vec<u8> {
        let query = self.question.encode(self.id);
        match self.framer {
            Some(_) => frame(&query).unwrap_or_default(),
            None => query,
        }
    }

    fn expected(&self) -> Expected<'_> {
        Expected {
            server: self.server,
            id: self.id,
            qname: &self.question.qname,
            qtype: self.question.qtype,
            qclass: self.question.qclass,
        }
    }

    /// Bytes read from `from`: a whole datagram over UDP, any chunk of the stream over TCP.
    pub fn handle(&mut self, from: SocketAddr, bytes: &[u8]) -> Step {
        if !self.expected().sent_by(from) {
            return Step::Wait;
        }
        let Some(framer) = self.framer.as_mut() else {
            return match self.expected().reply(Bytes::copy_from_slice(bytes)) {
                Some(msg) if msg.header().tc() && !is_bare_error(&msg) => {
                    self.framer = Some(Framer::default());
                    Step::RetryOverTcp
                }
                Some(msg) => Step::Done(Reply { message: msg }),
                None => Step::Wait,
            };
        };
        framer.push(bytes);
        let message = match framer.next_frame() {
            Ok(Some(m)) => Bytes::copy_from_slice(m),
            Ok(None) => return Step::Wait,
            Err(_) => return Step::Broken,
        };
        match self.expected().reply(message) {
            Some(msg) => Step::Done(Reply { message: msg }),
            None => Step::Broken,
        }
    }
}

/// A message with its 2-byte TCP length prefix, or `None` when it is longer than a
/// prefix can say (65,535 bytes).
pub fn frame(message: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(message.len() + 2);
    frame_into(&mut out, message).ok()?;
    Some(out)
}

/// The reply to a [`Lookup`].
#[derive(Clone, Debug)]
pub struct Reply {
    message: Message<Bytes>,
}

impl PartialEq for Reply {
    /// The same bytes.
    fn eq(&self, other: &Reply) -> bool {
        self.message.as_slice() == other.message.as_slice()
    }
}

impl Reply {
    /// A reply read from wire-format bytes (a client's or a journal's), `None` when the
    /// bytes are not a DNS message.
    pub fn decode(bytes: Bytes) -> Option<Reply> {
        Message::from_octets(bytes)
            .ok()
            .map(|message| Reply { message })
    }

    /// The whole message.
    pub fn message(&self) -> &Message<Bytes> {
        &self.message
    }

    /// The full response code (the OPT's extended bits included).
    pub fn rcode(&self) -> OptRcode {
        self.message.opt_rcode()
    }

    /// Whether the rcode is NOERROR.
    pub fn is_noerror(&self) -> bool {
        self.rcode() == OptRcode::NOERROR
    }

    /// `;; status: RCODE, id: ID, flags: aa tc rd ra ad` (the flags that are set).
    pub fn summary(&self) -> String {
        let h = self.message.header();
        let flags: Vec<&str> = [
            (h.aa(), "aa"),
            (h.tc(), "tc"),
            (h.rd(), "rd"),
            (h.ra(), "ra"),
            (h.ad(), "ad"),
        ]
        .into_iter()
        .filter_map(|(on, f)| on.then_some(f))
        .collect();
        format!(
            ";; status: {}, id: {}, flags: {}",
            self.rcode(),
            h.id(),
            flags.join(" ")
        )
    }

    /// The answer, authority and additional records (OPT left out), one line each in
    /// master-file format: `owner TTL class type data`.
    pub fn records(&self) -> Vec<String> {
        match read_sections(&self.message) {
            Ok(s) => s
                .answer
                .iter()
                .chain(&s.authority)
                .chain(&s.additional)
                .map(record_line)
                .collect(),
            Err(_) => vec![";; unreadable records".to_string()],
        }
    }
}

/// One record in master-file format.
pub(crate) fn record_line(rr: &Rr) -> String {
    format!(
        "{} {} {} {} {}",
        rr.owner().fmt_with_dot(),
        rr.ttl().as_secs(),
        rr.class(),
        rr.rtype(),
        rr.data()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::base::iana::Rcode;
    use domain::base::MessageBuilder;

    fn answer(query: &[u8], f: impl FnOnce(&mut domain::base::Header)) -> Vec<u8> {
        let asked = Message::from_octets(query).unwrap();
        let mut b = MessageBuilder::new_vec()
            .start_answer(&asked, Rcode::NOERROR)
            .unwrap();
        f(b.header_mut());
        b.finish()
    }

    #[test]
    fn only_the_reply_from_the_server_with_the_id_and_question_counts() {
        let server: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let q = Question::parse("Example.COM", "aaaa").unwrap();
        let mut lookup = Lookup::new(q.clone(), server, 7);
        let query = lookup.message();
        let good = answer(&query, |_| {});
        let other_id = answer(&q.encode(8), |_| {});
        let other_q = answer(
            &Question::parse("example.org", "AAAA").unwrap().encode(7),
            |_| {},
        );
        assert_eq!(lookup.handle(server, &other_id), Step::Wait);
        assert_eq!(lookup.handle(server, &other_q), Step::Wait);
        assert_eq!(lookup.handle(server, &query), Step::Wait, "QR clear");
        assert_eq!(lookup.handle(server, b"\x00\x07junk"), Step::Wait);
        let stranger = "192.0.2.2:53".parse().unwrap();
        assert_eq!(lookup.handle(stranger, &good), Step::Wait);
        let Step::Done(reply) = lookup.handle(server, &good) else {
            panic!("the reply")
        };
        assert!(reply.is_noerror());
        assert_eq!(reply.message().header().id(), 7);
        assert!(reply.records().is_empty());
    }

    #[test]
    fn tcp_stream_with_a_foreign_message_is_broken() {
        let server: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let q = Question::parse("example.com", "A").unwrap();
        let mut lookup = Lookup::over_tcp(q.clone(), server, 7);
        assert_eq!(lookup.transport(), Transport::Tcp);
        let wrong = frame(&answer(&q.encode(9), |_| {})).unwrap();
        assert_eq!(lookup.handle(server, &wrong), Step::Broken);
        let mut lookup = Lookup::over_tcp(q, server, 7);
        assert_eq!(lookup.handle(server, &[0, 0]), Step::Broken, "empty frame");
    }

    #[test]
    fn bad_text_is_one_readable_error() {
        let e = Question::parse("a..b", "A").unwrap_err();
        assert!(
            e.to_string().starts_with("\"a..b\" is not a domain name"),
            "{e}"
        );
        let e = Question::parse("a.b", "NOPE").unwrap_err();
        assert_eq!(e.to_string(), "\"NOPE\" is not a record type");
        assert_eq!(
            Question::parse("a.b", "type65280").unwrap().qtype.to_int(),
            65280
        );
    }

    #[test]
    fn frame_refuses_what_a_prefix_cannot_say() {
        assert_eq!(frame(b"ab"), Some(vec![0, 2, b'a', b'b']));
        assert_eq!(frame(&vec![0; 65536]), None);
    }
}
