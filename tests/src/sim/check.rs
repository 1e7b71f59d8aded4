//! The checks of a finished run on its replies: every tracked query answered once, in
//! time, matching, complete and within the client's UDP limit; and the records an
//! upstream plants for a scrubber to drop ([`planted_reply`]), which no reply may carry.

use std::net::Ipv4Addr;
use std::time::Duration;

use bytes::Bytes;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, Name, ParsedName, ToName};
use domain::rdata::{AllRecordData, Ns, Txt, A};
use names_core::Origin;

use super::World;
use crate::parse::{message, question_bytes, try_parse};

/// The address of every record an upstream plants (TEST-NET-2).
pub const PLANTED_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 66);
/// The zone every planted name is in.
pub const PLANTED_ZONE: &str = "planted.invalid";

impl World {
    /// Per tracked query: sent, taken no earlier (a datagram at once), exactly one reply
    /// that parses back completely, with its ID, QR and question, within the client's
    /// UDP limit, and no later than `budget + slack` after it was taken.
    pub fn check_replies(&self, slack: Duration) {
        let budget = self.config.budget;
        for (i, q) in self.queries.iter().enumerate() {
            let what = format!("query {i} ({:?})", q.origin);
            let sent = q.sent.unwrap_or_else(|| panic!("{what} never sent"));
            let taken_by = q.taken.unwrap_or(sent);
            assert!(taken_by >= sent, "{what}: taken before it was sent");
            if matches!(q.origin, Origin::Udp { .. }) {
                assert_eq!(taken_by, sent, "{what}: a datagram is taken at once");
            }
            assert_eq!(q.replies.len(), 1, "{what}: exactly one reply");
            let (at, bytes) = &q.replies[0];
            let reply = parse_back(bytes);
            assert_eq!(reply.header().id(), q.id, "{what}: ID");
            assert!(reply.header().qr(), "{what}: QR");
            assert_eq!(
                question_bytes(bytes),
                question_bytes(&q.message),
                "{what}: question"
            );
            if matches!(q.origin, Origin::Udp { .. }) {
                let limit = udp_limit(&q.message, self.config.edns_udp_size);
                assert!(
                    bytes.len() <= limit,
                    "{what}: reply of {} bytes over the client's limit of {limit}",
                    bytes.len()
                );
            }
            assert!(*at >= sent);
            assert!(
                *at <= taken_by + budget + slack,
                "{what}: replied at {at:?}, sent {sent:?}, taken by {taken_by:?}, budget {budget:?}"
            );
        }
    }
}

/// Parses a reply completely: header, every question and every record's data.
pub fn parse_back(reply: &[u8]) -> Message<Vec<u8>> {
    let msg = message(reply);
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

/// The largest UDP reply the client of `query` accepts: 512 without EDNS, else its
/// advertised size (the OPT record's class, whatever its options hold) between 512 and
/// the server's `max_udp`.
pub fn udp_limit(query: &[u8], max_udp: u16) -> usize {
    let size = Message::from_octets(query).ok().and_then(|m| {
        m.iter()
            .flatten()
            .find(|(rr, _)| rr.rtype() == Rtype::OPT)
            .map(|(rr, _)| rr.class().to_int())
    });
    match size {
        None => 512,
        Some(s) => usize::from(s.clamp(512, max_udp.max(512))),
    }
}

/// An upstream's answer to `query` (same ID and question, AA and RA, TTL 300, one A per
/// address for the question's name, OPT if the query had one) with records planted that
/// a scrubbed reply never keeps: in the answer an A for an unrelated name and a TXT at
/// the question's name (not the question's type), in authority the NS of an unrelated
/// zone, in additional the address of that zone's server and a second, different,
/// address for the question's name (pointed to by no kept record). Every planted record
/// names [`PLANTED_ZONE`] or [`PLANTED_ADDR`]. `None` for a message without one question.
pub fn planted_reply(query: &[u8], addrs: &[Ipv4Addr]) -> Option<Vec<u8>> {
    let msg = Message::from_octets(query).ok()?;
    let question = msg.sole_question().ok()?;
    let owner: Name<Bytes> = question.qname().to_name();
    let zone: Name<Bytes> = PLANTED_ZONE.parse().ok()?;
    let www: Name<Bytes> = format!("www.{PLANTED_ZONE}").parse().ok()?;
    let ns: Name<Bytes> = format!("ns.{PLANTED_ZONE}").parse().ok()?;
    let mut ans = MessageBuilder::new_vec()
        .start_answer(&msg, Rcode::NOERROR)
        .ok()?;
    ans.header_mut().set_aa(true);
    ans.header_mut().set_ra(true);
    for ip in addrs {
        ans.push((&owner, Class::IN, 300, A::new(*ip))).ok()?;
    }
    ans.push((&www, Class::IN, 300, A::new(PLANTED_ADDR)))
        .ok()?;
    if question.qtype() != Rtype::TXT {
        let txt = Txt::<Vec<u8>>::build_from_slice(PLANTED_ZONE.as_bytes()).ok()?;
        ans.push((&owner, Class::IN, 300, txt)).ok()?;
    }
    let mut auth = ans.authority();
    auth.push((&zone, Class::IN, 300, Ns::new(ns.clone())))
        .ok()?;
    let mut add = auth.additional();
    add.push((&ns, Class::IN, 300, A::new(PLANTED_ADDR))).ok()?;
    add.push((&owner, Class::IN, 300, A::new(PLANTED_ADDR)))
        .ok()?;
    if msg.opt().is_some() {
        add.opt(|o| {
            o.set_udp_payload_size(4096);
            Ok(())
        })
        .ok()?;
    }
    Some(add.finish())
}

/// The first record of `reply` that names [`PLANTED_ZONE`] or [`PLANTED_ADDR`], as text
/// (`None` for a clean reply, or one that does not parse: other checks see to that).
pub fn planted_in(reply: &[u8]) -> Option<String> {
    let p = try_parse(reply).ok()?;
    let addr = PLANTED_ADDR.to_string();
    p.answers
        .iter()
        .chain(&p.authority)
        .chain(&p.additional)
        .map(|r| format!("{} {} {}", r.owner, r.rtype, r.rdata))
        .find(|text| {
            let lower = text.to_ascii_lowercase();
            lower.contains(PLANTED_ZONE) || lower.split_whitespace().any(|t| t == addr)
        })
}
