//! The checks of a finished run on its replies: every tracked query answered once, in
//! time, matching, complete and within the client's UDP limit.

use std::time::Duration;

use domain::base::iana::Rtype;
use domain::base::{Message, ParsedName};
use domain::rdata::AllRecordData;
use names_core::Origin;

use super::World;
use crate::parse::{message, question_bytes};

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
