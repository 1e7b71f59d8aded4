//! The owned record type that resolvers answer with, and reading records out of messages.

use bytes::Bytes;
use domain::base::iana::Rtype;
use domain::base::name::FlattenInto;
use domain::base::{Message, Name, ParsedName, Record};
use domain::rdata::AllRecordData;

/// An owned resource record of any type. Cloning is cheap (`Bytes` are shared).
pub type Rr = Record<Name<Bytes>, AllRecordData<Bytes, Name<Bytes>>>;

/// The three record sections of a message, OPT left out, and the full rcode.
#[derive(Clone, Debug, PartialEq)]
pub struct Sections {
    /// The header's rcode with the OPT's extended bits.
    pub rcode: domain::base::iana::OptRcode,
    /// The answer section.
    pub answer: Vec<Rr>,
    /// The authority section.
    pub authority: Vec<Rr>,
    /// The additional section, without the OPT record.
    pub additional: Vec<Rr>,
}

/// A record section that could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRecords;

/// Reads every record of a message into owned records (OPT dropped: it is per hop).
pub fn read_sections(msg: &Message<Bytes>) -> Result<Sections, BadRecords> {
    read(msg, false)
}

/// [`read_sections`] for the scrubber: an A or AAAA record whose RDATA has the wrong
/// length is dropped, not a reason to refuse the whole message (Unbound's scrubber drops
/// such a record too); anything else unreadable still is.
pub(crate) fn read_sections_dropping_bad_lengths(
    msg: &Message<Bytes>,
) -> Result<Sections, BadRecords> {
    read(msg, true)
}

fn read(msg: &Message<Bytes>, drop_bad_lengths: bool) -> Result<Sections, BadRecords> {
    let mut out = Sections {
        rcode: domain::base::iana::OptRcode::NOERROR,
        answer: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
    };
    let mut section = msg.answer().map_err(|_| BadRecords)?;
    let mut index = 0;
    let mut ext = 0;
    loop {
        for rr in &mut section {
            let rr = rr.map_err(|_| BadRecords)?;
            if rr.rtype() == Rtype::OPT {
                ext = (rr.ttl().as_secs() >> 24) as u8;
                continue;
            }
            let fixed = match rr.rtype() {
                Rtype::A => Some(4),
                Rtype::AAAA => Some(16),
                _ => None,
            };
            if drop_bad_lengths && fixed.is_some_and(|len| rr.rdlen() != len) {
                continue;
            }
            let rec = rr
                .to_any_record::<AllRecordData<Bytes, ParsedName<Bytes>>>()
                .map_err(|_| BadRecords)?;
            let rec: Rr = rec.flatten_into();
            match index {
                0 => out.answer.push(rec),
                1 => out.authority.push(rec),
                _ => out.additional.push(rec),
            }
        }
        index += 1;
        match section.next_section().map_err(|_| BadRecords)? {
            Some(next) => section = next,
            None => break,
        }
    }
    out.rcode = domain::base::iana::OptRcode::from_parts(msg.header().rcode(), ext);
    Ok(out)
}
