//! An [`Answer`] as bytes, for the outcomes of lookups: most hold one, and the core knows
//! how to write it down (a runtime's [`LookupCodec`](super::LookupCodec) uses these).
//!
//! The bytes: `[rcode: u16][aa: u8][ad: u8]`, then a DNS message without a question whose
//! answer, authority and additional sections are the answer's.

use bytes::Bytes;
use domain::base::iana::OptRcode;
use domain::base::{Message, MessageBuilder};

use crate::record::read_sections;
use crate::resolver::Answer;

/// `answer` as bytes; `None` when its records do not fit in one DNS message.
pub fn encode_answer(answer: &Answer) -> Option<Vec<u8>> {
    let mut section = MessageBuilder::new_vec().answer();
    for rr in &answer.answer {
        section.push(rr).ok()?;
    }
    let mut section = section.authority();
    for rr in &answer.authority {
        section.push(rr).ok()?;
    }
    let mut section = section.additional();
    for rr in &answer.additional {
        section.push(rr).ok()?;
    }
    let mut out = answer.rcode.to_int().to_le_bytes().to_vec();
    out.push(u8::from(answer.authoritative));
    out.push(u8::from(answer.authenticated));
    out.extend_from_slice(&section.finish());
    Some(out)
}

/// The answer [`encode_answer`] wrote; `None` when the bytes are not one.
pub fn decode_answer(bytes: &[u8]) -> Option<Answer> {
    let (head, message) = bytes.split_at_checked(4)?;
    // 12 bits. (domain 0.12's `OptRcode::checked_from_int` refuses exactly the valid
    // values, so the range is checked here.)
    let rcode = u16::from_le_bytes([head[0], head[1]]);
    let rcode = (rcode <= 0x0FFF).then(|| OptRcode::masked_from_int(rcode))?;
    let flag = |b: u8| match b {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    };
    let (authoritative, authenticated) = (flag(head[2])?, flag(head[3])?);
    let message = Message::from_octets(Bytes::copy_from_slice(message)).ok()?;
    let sections = read_sections(&message).ok()?;
    Some(Answer {
        rcode,
        answer: sections.answer,
        authority: sections.authority,
        additional: sections.additional,
        authoritative,
        upstream_authoritative: false,
        authenticated,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use domain::base::iana::{Class, Rcode};
    use domain::base::{Name, Record, Ttl};
    use domain::rdata::{AllRecordData, A};

    use super::*;

    #[test]
    fn an_answer_round_trips_and_garbage_is_refused() {
        let name: Name<Bytes> = "ws7.example".parse().unwrap();
        let mut answer = Answer::new(Rcode::NXDOMAIN.into());
        answer.authoritative = true;
        for section in [&mut answer.answer, &mut answer.additional] {
            section.push(Record::new(
                name.clone(),
                Class::IN,
                Ttl::from_secs(30),
                AllRecordData::A(A::new(Ipv4Addr::new(10, 0, 0, 7))),
            ));
        }
        let bytes = encode_answer(&answer).unwrap();
        assert_eq!(decode_answer(&bytes), Some(answer));
        assert_eq!(decode_answer(&bytes[..3]), None);
        let mut bad = bytes.clone();
        bad[2] = 7;
        assert_eq!(decode_answer(&bad), None);
        let mut bad = bytes.clone();
        bad[1] = 0x10;
        assert_eq!(decode_answer(&bad), None);
        assert_eq!(decode_answer(&[0, 0, 0, 0, 1, 2, 3]), None);
    }
}
