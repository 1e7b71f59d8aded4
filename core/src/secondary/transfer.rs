//! Receiving one zone transfer over TCP: AXFR (RFC 5936) or IXFR (RFC 1995).
//!
//! Every message is checked before its records count: a response, the query's ID, opcode
//! QUERY, the question (the first message must carry it; later ones may leave it out,
//! RFC 5936 2.2.1), no TC, NOERROR, and records of class IN at or below the zone's
//! origin. The bytes received are bounded, and so is what is kept: the records of a
//! transfer are held until its end is seen (the SOA that closes it), never applied before.

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::{Message, Name, ToName};
use domain::rdata::AllRecordData;

use crate::record::{read_sections, Rr};
use crate::tcp::Framer;

/// A check of each whole message before its records count (a TSIG verification), saying
/// why it fails.
pub(crate) type MessageCheck<'a> = dyn FnMut(&[u8]) -> Result<(), String> + 'a;

/// Which transfer was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Asked {
    /// The whole zone.
    Axfr,
    /// The differences from the version with this serial.
    Ixfr(u32),
}

/// What a finished transfer holds.
#[derive(Debug)]
pub(crate) enum Received {
    /// The primary has nothing newer (an IXFR answered with its SOA alone).
    UpToDate,
    /// A whole zone: the SOA, the other records, the SOA again.
    Full(Vec<Rr>),
    /// IXFR differences: the new SOA, then per step the old SOA, deletions, the step's new
    /// SOA and additions, then the new SOA again.
    Incremental(Vec<Rr>),
}

/// Why a transfer ended without a zone.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The primary answered the IXFR with an error that means "not offered" (NOTIMP,
    /// FORMERR, REFUSED... before any record): AXFR is worth a try.
    IxfrRefused(Rcode),
    /// Anything else, in words for the log.
    Broken(String),
}

/// What one chunk of the stream changed.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Keep reading.
    More,
    /// The closing SOA arrived (what follows is not read).
    Done(Received),
    /// Give up on this transfer.
    Failed(Failure),
}

/// Where the end-of-transfer search is in the stream of answer records.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Not one record yet.
    Start,
    /// After the opening SOA of this serial; the second record decides the shape.
    Opened(u32),
    /// A whole zone, closed by an SOA with the opening serial.
    Full(u32),
    /// IXFR: inside a step's deletions (`adding` false) or additions; `step_to` is the
    /// serial the current step leads to; `new` the opening serial.
    Diff {
        new: u32,
        adding: bool,
        step_to: u32,
    },
    /// The first record is not an SOA.
    Broken,
}

/// One transfer being read from its TCP stream.
#[derive(Debug)]
pub(crate) struct Incoming {
    origin: Name<Bytes>,
    asked: Asked,
    id: u16,
    framer: Framer,
    /// Bytes read so far, and the most allowed.
    bytes: usize,
    max_bytes: usize,
    messages: usize,
    records: Vec<Rr>,
    shape: Shape,
}

impl Incoming {
    pub(crate) fn new(origin: Name<Bytes>, asked: Asked, id: u16, max_bytes: usize) -> Incoming {
        Incoming {
            origin,
            asked,
            id,
            framer: Framer::default(),
            bytes: 0,
            max_bytes,
            messages: 0,
            records: Vec::new(),
            shape: Shape::Start,
        }
    }

    /// Messages completely read.
    pub(crate) fn messages(&self) -> usize {
        self.messages
    }

    /// Takes the next chunk of the stream. `check` sees every whole message before its
    /// records are taken (the TSIG check of a signed transfer) and says why it fails.
    pub(crate) fn push(&mut self, chunk: &[u8], check: &mut MessageCheck<'_>) -> Progress {
        self.bytes = self.bytes.saturating_add(chunk.len());
        if self.bytes > self.max_bytes {
            return broken(format!(
                "the transfer exceeds --max-transfer-bytes {} (after {} messages)",
                self.max_bytes, self.messages
            ));
        }
        self.framer.push(chunk);
        loop {
            let frame = match self.framer.next_frame() {
                Ok(Some(frame)) => Bytes::copy_from_slice(frame),
                Ok(None) => return Progress::More,
                Err(_) => return broken("an empty TCP frame".into()),
            };
            if let Err(why) = check(&frame) {
                return broken(why);
            }
            match self.message(frame) {
                Progress::More => self.messages += 1,
                done => {
                    self.messages += 1;
                    return done;
                }
            }
        }
    }

    /// One whole message.
    fn message(&mut self, bytes: Bytes) -> Progress {
        let Ok(msg) = Message::from_octets(bytes) else {
            return broken("a message that is not DNS".into());
        };
        let h = msg.header();
        if !h.qr() || h.id() != self.id || h.opcode() != Opcode::QUERY {
            return broken(format!(
                "message {} is not the reply (QR, ID or opcode differ)",
                self.messages + 1
            ));
        }
        if let Err(why) = self.question(&msg) {
            return broken(why);
        }
        if h.rcode() != Rcode::NOERROR {
            return match self.asked {
                Asked::Ixfr(_) if self.messages == 0 => {
                    Progress::Failed(Failure::IxfrRefused(h.rcode()))
                }
                _ => broken(format!("the primary answered {}", h.rcode())),
            };
        }
        if h.tc() {
            return broken("a transfer message with TC set".into());
        }
        let Ok(sections) = read_sections(&msg) else {
            return broken(format!(
                "message {} has unreadable records",
                self.messages + 1
            ));
        };
        let mut answer = sections.answer.into_iter();
        while let Some(rr) = answer.next() {
            if let Err(why) = self.in_zone(&rr) {
                return broken(why);
            }
            self.records.push(rr);
            let end = self.step();
            if let Shape::Broken = self.shape {
                return broken("the transfer does not start with the zone's SOA".into());
            }
            if let Some(received) = end {
                return match answer.next() {
                    Some(extra) => broken(format!(
                        "records after the closing SOA ({} {})",
                        extra.owner().fmt_with_dot(),
                        extra.rtype()
                    )),
                    None => Progress::Done(received),
                };
            }
        }
        // An IXFR answered with the SOA alone, in one message: nothing newer.
        if let (Asked::Ixfr(_), Shape::Opened(_), 0) = (self.asked, self.shape, self.messages) {
            return Progress::Done(Received::UpToDate);
        }
        if self.records.is_empty() {
            return broken("the first message has no records".into());
        }
        Progress::More
    }

    fn question(&self, msg: &Message<Bytes>) -> Result<(), String> {
        let qtype = match self.asked {
            Asked::Axfr => Rtype::AXFR,
            Asked::Ixfr(_) => Rtype::IXFR,
        };
        match msg.header_counts().qdcount() {
            0 if self.messages > 0 => return Ok(()),
            1 => {}
            _ => {
                return Err(format!(
                    "message {} does not carry the question",
                    self.messages + 1
                ))
            }
        }
        let q = msg
            .sole_question()
            .map_err(|_| "an unreadable question".to_string())?;
        if q.qname().name_eq(&self.origin) && q.qtype() == qtype && q.qclass() == Class::IN {
            Ok(())
        } else {
            Err(format!(
                "message {} asks another question",
                self.messages + 1
            ))
        }
    }

    fn in_zone(&self, rr: &Rr) -> Result<(), String> {
        if !rr.owner().ends_with(&self.origin) {
            return Err(format!(
                "{} is outside the zone {}",
                rr.owner().fmt_with_dot(),
                self.origin.fmt_with_dot()
            ));
        }
        if rr.class() != Class::IN {
            return Err(format!(
                "{} has class {}, not IN",
                rr.owner().fmt_with_dot(),
                rr.class()
            ));
        }
        if rr.rtype() == Rtype::SOA && !rr.owner().name_eq(&self.origin) {
            return Err(format!(
                "an SOA record below the apex, at {}",
                rr.owner().fmt_with_dot()
            ));
        }
        Ok(())
    }

    /// Moves the end-of-transfer search on by the last record; `Some` when it closed the
    /// transfer.
    fn step(&mut self) -> Option<Received> {
        let rr = self.records.last()?;
        let soa = soa_serial(rr);
        self.shape = match (self.shape, soa) {
            (Shape::Start, Some(serial)) => Shape::Opened(serial),
            // Not an SOA first: nothing can be built from it.
            (Shape::Start, None) => Shape::Broken,
            (Shape::Opened(new), Some(serial)) => match self.asked {
                Asked::Ixfr(ours) if serial == ours && ours == new => {
                    return Some(Received::UpToDate)
                }
                Asked::Ixfr(ours) if serial == ours => Shape::Diff {
                    new,
                    adding: false,
                    step_to: serial,
                },
                // Two SOAs alone: a zone with nothing but its SOA.
                _ => return Some(Received::Full(std::mem::take(&mut self.records))),
            },
            (Shape::Opened(new), None) => Shape::Full(new),
            (Shape::Full(_), Some(_)) => {
                return Some(Received::Full(std::mem::take(&mut self.records)))
            }
            (Shape::Full(new), None) => Shape::Full(new),
            (
                Shape::Diff {
                    new, adding: false, ..
                },
                Some(serial),
            ) => Shape::Diff {
                new,
                adding: true,
                step_to: serial,
            },
            (
                Shape::Diff {
                    new,
                    adding: true,
                    step_to,
                },
                Some(serial),
            ) => {
                if step_to == new {
                    return Some(Received::Incremental(std::mem::take(&mut self.records)));
                }
                Shape::Diff {
                    new,
                    adding: false,
                    step_to: serial,
                }
            }
            (shape @ Shape::Diff { .. }, None) => shape,
            (Shape::Broken, _) => Shape::Broken,
        };
        None
    }
}

fn broken(why: String) -> Progress {
    Progress::Failed(Failure::Broken(why))
}

/// The serial of an SOA record.
pub(crate) fn soa_serial(rr: &Rr) -> Option<u32> {
    match rr.data() {
        AllRecordData::Soa(soa) => Some(soa.serial().into_int()),
        _ => None,
    }
}
