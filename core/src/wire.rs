//! Answers whose records are already in wire format, and the reply spliced from them.
//!
//! The cache stores its entries this way, and `Synth` its answers. Records are stored
//! uncompressed except that an owner equal to the question name is a pointer to offset
//! 12 (where every reply's question name sits), so a reply is a copy of the header, the
//! question as asked, these bytes with their TTLs patched, and an OPT: nothing is
//! re-encoded and nothing allocated.

use std::time::Instant;

use bytes::Bytes;
use domain::base::iana::OptRcode;
use domain::base::rdata::ComposeRecordData;
use domain::base::{Name, RecordData, ToName};

use crate::record::Rr;
use crate::request::Request;

const HEADER_LEN: usize = 12;
const OPT_LEN: usize = 11;

/// The encoded records of one answer. Shared (`Arc`) between their owner (a cache entry,
/// a synthesised name) and replies being built.
#[derive(Debug)]
pub struct WireRecords {
    /// Answer then authority records, wire format.
    pub(crate) wire: Box<[u8]>,
    /// Offsets of every record's TTL field in `wire`, and that record's stored TTL.
    pub(crate) ttls: Box<[(u16, u32)]>,
    pub(crate) answer_count: u16,
    pub(crate) authority_count: u16,
    pub(crate) rcode: OptRcode,
    pub(crate) authenticated: bool,
    pub(crate) authoritative: bool,
    pub(crate) stored: Instant,
    /// Seconds the entry is fresh for: the smallest stored TTL.
    pub(crate) ttl: u32,
}

impl WireRecords {
    /// Encodes the records of an answer to `qname`. `None` if a record cannot be encoded
    /// or they would not fit a message.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        qname: &Name<Bytes>,
        answer: &[&Rr],
        authority: &[&Rr],
        rcode: OptRcode,
        authenticated: bool,
        authoritative: bool,
        now: Instant,
        clamp: impl Fn(u32) -> u32,
    ) -> Option<WireRecords> {
        let mut wire = Vec::with_capacity(64);
        let mut ttls = Vec::with_capacity(answer.len() + authority.len());
        let mut min_ttl = u32::MAX;
        for rr in answer.iter().chain(authority) {
            if rr.owner().name_eq(qname) {
                wire.extend_from_slice(&[0xc0, 0x0c]);
            } else {
                wire.extend_from_slice(rr.owner().as_slice());
            }
            rr.data().rtype().compose(&mut wire).ok()?;
            rr.class().compose(&mut wire).ok()?;
            let ttl = clamp(rr.ttl().as_secs());
            ttls.push((u16::try_from(wire.len()).ok()?, ttl));
            wire.extend_from_slice(&ttl.to_be_bytes());
            rr.data().compose_len_rdata(&mut wire).ok()?;
            min_ttl = min_ttl.min(ttl);
        }
        if wire.len() > 65535 - 512 {
            return None;
        }
        Some(WireRecords {
            wire: wire.into_boxed_slice(),
            ttls: ttls.into_boxed_slice(),
            answer_count: u16::try_from(answer.len()).ok()?,
            authority_count: u16::try_from(authority.len()).ok()?,
            rcode,
            authenticated,
            authoritative,
            stored: now,
            ttl: if min_ttl == u32::MAX { 0 } else { min_ttl },
        })
    }

    #[cfg(test)]
    pub(crate) fn test_entry(stored: Instant) -> WireRecords {
        WireRecords {
            wire: Box::new([]),
            ttls: Box::new([]),
            answer_count: 0,
            authority_count: 0,
            rcode: OptRcode::NOERROR,
            authenticated: false,
            authoritative: false,
            stored,
            ttl: 60,
        }
    }

    /// Whole seconds since the entry was stored.
    pub(crate) fn age(&self, now: Instant) -> u32 {
        u32::try_from(now.saturating_duration_since(self.stored).as_secs()).unwrap_or(u32::MAX)
    }

    /// Heap bytes held by the entry (for the memory figure).
    pub fn heap_size(&self) -> usize {
        self.wire.len() + self.ttls.len() * std::mem::size_of::<(u16, u32)>()
    }
}

/// How the TTLs of wire records are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ttls {
    /// The stored TTLs minus `age` seconds (a cache hit).
    CountDown { age: u32 },
    /// Every TTL set to this (serve-stale, synthesised answers).
    Fixed(u32),
}

/// A reply made of prebuilt wire records, for [`Resolution::Wire`](crate::Resolution::Wire).
#[derive(Clone, Debug)]
pub struct WireAnswer {
    pub(crate) records: std::sync::Arc<WireRecords>,
    pub(crate) ttls: Ttls,
}

impl WireAnswer {
    /// The response code of the answer.
    pub fn rcode(&self) -> OptRcode {
        self.records.rcode
    }
}

/// Encodes the reply to `req` from `answer` into `out` (cleared first). Returns whether
/// it was truncated (the records did not fit the client's limit: TC=1, no records).
pub(crate) fn encode_wire_reply(
    req: &Request,
    answer: &WireAnswer,
    recursion_available: bool,
    edns_size: u16,
    out: &mut Vec<u8>,
) -> bool {
    let entry = &*answer.records;
    let served = answer.ttls;
    encode(req, entry, served, recursion_available, edns_size, out)
}

fn encode(
    req: &Request,
    entry: &WireRecords,
    served: Ttls,
    recursion_available: bool,
    edns_size: u16,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    let limit = req.reply_limit(edns_size);
    let qname = req.qname.as_slice();
    let opt_len = if req.edns.is_some() { OPT_LEN } else { 0 };
    let base = HEADER_LEN + qname.len() + 4;
    let truncated = base + entry.wire.len() + opt_len > limit;
    let rcode = entry.rcode;
    // Header: ID, QR, opcode QUERY, AA, TC, RD echoed; RA, AD, CD; rcode.
    out.extend_from_slice(&req.id.to_be_bytes());
    let mut flags: u16 = 0x8000;
    if entry.authoritative {
        flags |= 0x0400;
    }
    if truncated {
        flags |= 0x0200;
    }
    if req.rd {
        flags |= 0x0100;
    }
    if recursion_available {
        flags |= 0x0080;
    }
    if entry.authenticated && req.edns.is_some_and(|e| e.dnssec_ok) {
        flags |= 0x0020;
    }
    if req.cd {
        flags |= 0x0010;
    }
    flags |= rcode.rcode().to_int() as u16 & 0x0f;
    out.extend_from_slice(&flags.to_be_bytes());
    let (an, ns) = if truncated {
        (0, 0)
    } else {
        (entry.answer_count, entry.authority_count)
    };
    for count in [1, an, ns, u16::from(req.edns.is_some())] {
        out.extend_from_slice(&count.to_be_bytes());
    }
    out.extend_from_slice(qname);
    out.extend_from_slice(&req.qtype.to_int().to_be_bytes());
    out.extend_from_slice(&req.qclass.to_int().to_be_bytes());
    if !truncated {
        let start = out.len();
        out.extend_from_slice(&entry.wire);
        for &(offset, stored) in entry.ttls.iter() {
            let ttl = match served {
                Ttls::CountDown { age } => stored.saturating_sub(age),
                Ttls::Fixed(ttl) => ttl,
            };
            let at = start + usize::from(offset);
            out[at..at + 4].copy_from_slice(&ttl.to_be_bytes());
        }
    }
    if let Some(edns) = req.edns {
        // Root owner, type OPT, class = UDP size, TTL = extended rcode, version 0, DO.
        out.push(0);
        out.extend_from_slice(&41u16.to_be_bytes());
        out.extend_from_slice(&edns_size.to_be_bytes());
        out.push(rcode.ext());
        out.push(0);
        out.extend_from_slice(&(if edns.dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
    }
    truncated
}
