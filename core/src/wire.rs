//! Answers whose records are already in wire format, and the reply spliced from them.
//!
//! The cache stores its entries this way, and the zones and `Synth` their answers; any
//! resolver may, through [`Prebuilt`]. Records are stored
//! uncompressed except that an owner equal to the question name is a pointer to offset
//! 12 (where every reply's question name sits), so a reply is a copy of the header, the
//! question as asked, these bytes with their TTLs patched, and an OPT: nothing is
//! re-encoded and nothing allocated. Other owners are compressed as they are spliced:
//! each points at the longest suffix of it already in the reply (the question, earlier
//! owners, names in NS, CNAME, PTR, DNAME and MX rdata), as a compressing encoder would.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use domain::base::iana::OptRcode;
use domain::base::rdata::ComposeRecordData;
use domain::base::{Name, RecordData, ToName};

use crate::cache::rrset::{RRset, Sets};
use crate::record::Rr;
use crate::request::Request;
use crate::resolver::Answer;

const HEADER_LEN: usize = 12;
const OPT_LEN: usize = 11;

/// The encoded records of one answer. Shared (`Arc`) between their owner (a cache entry,
/// a synthesised name) and replies being built.
#[derive(Debug)]
pub struct WireRecords {
    /// The owner's lookup key (a cache key's name part, unless it is the first RRset's owner;
    /// empty for synthesised answers), then the answer and authority records in wire
    /// format. One allocation for both keeps entries small.
    data: Box<[u8]>,
    key_len: u16,
    /// The cache key's last bytes (type, class, flags).
    key_tail: [u8; 5],
    pub(crate) answer_count: u16,
    pub(crate) authority_count: u16,
    pub(crate) additional_count: u16,
    /// A cached message: the RRsets it is built from (those served first: `served` per
    /// section, then those only held for their trust rank); its records are theirs.
    pub(crate) rrsets: Sets,
    pub(crate) served: [u16; 3],
    /// Bytes of the served RRsets in a reply (a cached message).
    pub(crate) rrsets_len: u32,
    /// Whether a background refresh of this cached message was started.
    pub(crate) prefetching: AtomicBool,
    pub(crate) rcode: OptRcode,
    pub(crate) authenticated: bool,
    pub(crate) authoritative: bool,
    /// Seconds the entry is fresh for: the smallest stored TTL.
    pub(crate) ttl: u32,
}

impl WireRecords {
    /// Encodes the records of an answer to `qname`. `None` if a record cannot be encoded
    /// or they would not fit a message.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        key: &[u8],
        qname: &Name<Bytes>,
        answer: &[&Rr],
        authority: &[&Rr],
        rcode: OptRcode,
        authenticated: bool,
        authoritative: bool,
        clamp: impl Fn(u32) -> u32,
    ) -> Option<WireRecords> {
        let mut wire = Vec::with_capacity(key.len() + 64);
        wire.extend_from_slice(key);
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
            wire.extend_from_slice(&ttl.to_be_bytes());
            rr.data().compose_len_rdata(&mut wire).ok()?;
            min_ttl = min_ttl.min(ttl);
        }
        if wire.len() - key.len() > 65535 - 512 {
            return None;
        }
        Some(WireRecords {
            data: wire.into_boxed_slice(),
            key_len: u16::try_from(key.len()).ok()?,
            key_tail: [0; 5],
            answer_count: u16::try_from(answer.len()).ok()?,
            authority_count: u16::try_from(authority.len()).ok()?,
            additional_count: 0,
            rrsets: Sets::default(),
            served: [0; 3],
            rrsets_len: 0,
            prefetching: AtomicBool::new(false),
            rcode,
            authenticated,
            authoritative,
            ttl: if min_ttl == u32::MAX { 0 } else { min_ttl },
        })
    }

    #[cfg(test)]
    pub(crate) fn test_entry(key: &[u8]) -> WireRecords {
        let (name, tail) = key.split_at(key.len() - 5);
        WireRecords {
            data: name.into(),
            key_len: name.len() as u16,
            key_tail: tail.try_into().unwrap(),
            answer_count: 0,
            authority_count: 0,
            additional_count: 0,
            rrsets: Sets::default(),
            served: [0; 3],
            rrsets_len: 0,
            prefetching: AtomicBool::new(false),
            rcode: OptRcode::NOERROR,
            authenticated: false,
            authoritative: false,
            ttl: 60,
        }
    }

    /// A cached message built from `rrsets`, the first `served[i]` of them (after those of
    /// the sections before) served in section `i`; the rest only held. `key` is the cache
    /// key: the lower-cased question name then 5 bytes. `None` if it would not fit a message.
    pub(crate) fn from_rrsets(
        key: &[u8],
        rrsets: Vec<Arc<RRset>>,
        served: [u16; 3],
        rcode: OptRcode,
        authenticated: bool,
        now: u32,
    ) -> Option<WireRecords> {
        let (qname, tail) = key.split_at(key.len().checked_sub(5)?);
        let total: usize = served.iter().map(|&n| usize::from(n)).sum();
        let mut counts = [0u16; 3];
        let mut len = 0usize;
        let mut ttl = i64::MAX;
        let mut at = 0;
        for (section, &n) in served.iter().enumerate() {
            for set in rrsets.get(at..at + usize::from(n))? {
                counts[section] = counts[section].checked_add(set.count())?;
                len += set.wire_len(set.owner() == qname);
                ttl = ttl.min(set.remaining(now));
            }
            at += usize::from(n);
        }
        if len > 65535 - 512 || total > rrsets.len() {
            return None;
        }
        // The name is stored only when the first RRset's owner is not the question name.
        let name: &[u8] = match rrsets.first() {
            Some(first) if first.owner() == qname => &[],
            _ => qname,
        };
        Some(WireRecords {
            data: name.into(),
            key_len: u16::try_from(name.len()).ok()?,
            key_tail: tail.try_into().ok()?,
            answer_count: counts[0],
            authority_count: counts[1],
            additional_count: counts[2],
            rrsets: Sets::new(rrsets),
            served,
            rrsets_len: u32::try_from(len).ok()?,
            prefetching: AtomicBool::new(false),
            rcode,
            authenticated,
            authoritative: false,
            ttl: u32::try_from(ttl.max(0)).unwrap_or(u32::MAX),
        })
    }

    /// The RRsets served in replies (a cached message), in section order.
    pub(crate) fn served_rrsets(&self) -> impl Iterator<Item = &Arc<RRset>> {
        let n: usize = self.served.iter().map(|&n| usize::from(n)).sum();
        self.rrsets.iter().take(n)
    }

    /// Seconds until the first served RRset expires (negative: past it); the TTL of an
    /// entry of plain records, which does not age.
    pub(crate) fn remaining(&self, now: u32) -> i64 {
        if self.rrsets.is_empty() {
            return i64::from(self.ttl);
        }
        self.served_rrsets()
            .map(|set| set.remaining(now))
            .min()
            .unwrap_or(0)
    }

    /// The name part of the lookup key the records were stored under (lower-cased).
    pub(crate) fn key_name(&self) -> &[u8] {
        match (self.key_len, self.rrsets.first()) {
            (0, Some(first)) => first.owner(),
            _ => &self.data[..usize::from(self.key_len)],
        }
    }

    /// The last bytes of the lookup key (type, class, flags).
    pub(crate) fn key_tail(&self) -> &[u8] {
        &self.key_tail
    }

    /// Whether `key` is the lookup key the records were stored under.
    pub(crate) fn has_key(&self, key: &[u8]) -> bool {
        key.len() >= 5 && {
            let (name, tail) = key.split_at(key.len() - 5);
            self.key_name() == name && self.key_tail == tail
        }
    }

    /// Writes the lookup key into `buf` and returns it.
    pub(crate) fn write_key<'b>(&self, buf: &'b mut [u8; 260]) -> &'b [u8] {
        let name = self.key_name();
        let n = name.len().min(255);
        buf[..n].copy_from_slice(&name[..n]);
        buf[n..n + 5].copy_from_slice(&self.key_tail);
        &buf[..n + 5]
    }

    /// The records, wire format.
    pub(crate) fn records(&self) -> &[u8] {
        &self.data[usize::from(self.key_len)..]
    }
}

/// Appends `records` (as [`WireRecords::build`] wrote them: owners are plain names or a
/// 2-byte pointer, rdata behind its length) to `out`, TTLs as `served`, each plain owner
/// compressed against `names` (which learns the names written).
fn splice_records(out: &mut Vec<u8>, records: &[u8], served: Ttls, names: &mut Names) {
    // Copied whole while owners are pointers (the usual case: the name asked), rewritten
    // record by record from the first plain owner on.
    let copy = out.len();
    out.extend_from_slice(records);
    let mut at = 0;
    let mut rewriting = false;
    while at < records.len() {
        // The owner: a pointer, or labels up to the root.
        let start = at;
        loop {
            let Some(&len) = records.get(at) else {
                if !rewriting {
                    out.truncate(copy + start);
                }
                return;
            };
            if len & 0xc0 == 0xc0 {
                at += 2;
                break;
            }
            at += 1 + usize::from(len);
            if len == 0 {
                break;
            }
        }
        let (Some(name), Some(fixed)) = (records.get(start..at), records.get(at..at + 10)) else {
            if !rewriting {
                out.truncate(copy + start);
            }
            return;
        };
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let Some(rdata) = records.get(at + 10..at + 10 + rdlen) else {
            if !rewriting {
                out.truncate(copy + start);
            }
            return;
        };
        let stored = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let ttl = match served {
            Ttls::CountDown { age } => stored.saturating_sub(age),
            Ttls::Fixed(ttl) => ttl,
            Ttls::At(_) => stored,
        };
        let plain = name.last() == Some(&0);
        if plain && !rewriting {
            out.truncate(copy + start);
            rewriting = true;
        }
        if !rewriting {
            // In place: the record sits at `copy + start`.
            let ttl_at = copy + at + 4;
            out[ttl_at..ttl_at + 4].copy_from_slice(&ttl.to_be_bytes());
            names.add_rdata(out, copy + at + 10, [fixed[0], fixed[1]]);
            at += 10 + rdlen;
            continue;
        }
        if plain {
            let mut owner = [0u8; 257];
            let written = out.len();
            let n = names.compress(out, name, &mut owner);
            out.extend_from_slice(&owner[..n]);
            names.add(out, written);
        } else {
            out.extend_from_slice(name);
        }
        out.extend_from_slice(&fixed[..4]);
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&fixed[8..]);
        let rdata_at = out.len();
        out.extend_from_slice(rdata);
        names.add_rdata(out, rdata_at, [fixed[0], fixed[1]]);
        at += 10 + rdlen;
    }
}

/// Names written into a reply being spliced, for compressing later owners: positions in
/// the message of names written out in full (labels, perhaps ending in a pointer). A
/// fixed table, so splicing allocates nothing; names past it are written uncompressed.
struct Names {
    at: [u16; 32],
    len: usize,
    /// Label comparisons left for this reply: hostile names (many one-letter labels) cost
    /// no more than this; once spent, names are written uncompressed.
    budget: u32,
}

/// Label comparisons per spliced reply (a referral with 30 glue records takes ~4,000).
const COMPRESSION_BUDGET: u32 = 16384;

/// Compression pointers reach the first 16 KiB of a message.
const MAX_POINTER: usize = 0x3fff;

impl Names {
    fn new() -> Names {
        Names {
            at: [0; 32],
            len: 0,
            budget: COMPRESSION_BUDGET,
        }
    }

    /// Remembers the name at `at` in `msg`, unless it is a bare pointer or out of reach.
    fn add(&mut self, msg: &[u8], at: usize) {
        let starts_with_label = msg.get(at).is_some_and(|&b| b != 0 && b & 0xc0 == 0);
        if starts_with_label && at <= MAX_POINTER && self.len < self.at.len() {
            self.at[self.len] = at as u16;
            self.len += 1;
        }
    }

    /// Remembers the name in the rdata at `at` of a record of type `rtype` (big-endian),
    /// if it has one at a known place: NS, CNAME, PTR, DNAME (the rdata), MX (after the
    /// preference).
    fn add_rdata(&mut self, msg: &[u8], at: usize, rtype: [u8; 2]) {
        match u16::from_be_bytes(rtype) {
            2 | 5 | 12 | 39 => self.add(msg, at),
            15 => self.add(msg, at + 2),
            _ => {}
        }
    }

    /// Writes `name` (uncompressed wire format) into `buf` with its longest suffix that
    /// is already in `msg` replaced by a pointer; returns the length written.
    fn compress(&mut self, msg: &[u8], name: &[u8], buf: &mut [u8; 257]) -> usize {
        let mut start = 0;
        while let Some(&len) = name.get(start) {
            if len == 0 || len & 0xc0 != 0 {
                break;
            }
            let suffix = &name[start..];
            if let Some(target) = self.find(msg, suffix) {
                let head = &name[..start];
                buf[..head.len()].copy_from_slice(head);
                buf[head.len()..head.len() + 2]
                    .copy_from_slice(&(0xc000 | target as u16).to_be_bytes());
                return head.len() + 2;
            }
            start += 1 + usize::from(len);
        }
        let n = name.len().min(buf.len());
        buf[..n].copy_from_slice(&name[..n]);
        n
    }

    /// The position of a name equal to `suffix` (case aside) in `msg`: a remembered name or
    /// one of its suffixes before any pointer.
    fn find(&mut self, msg: &[u8], suffix: &[u8]) -> Option<usize> {
        // The latest names first: a chain's next owner is the last target written.
        for i in (0..self.len).rev() {
            let at = self.at[i];
            let mut at = usize::from(at);
            while let Some(&len) = msg.get(at) {
                if len == 0 || len & 0xc0 != 0 || at > MAX_POINTER {
                    break;
                }
                if self.budget == 0 {
                    return None;
                }
                if name_eq_at(msg, at, suffix, &mut self.budget) {
                    return Some(at);
                }
                at += 1 + usize::from(len);
            }
        }
        None
    }
}

/// Whether the name at `at` in `msg` (following at most 16 pointers) equals `name`
/// (uncompressed), ASCII case aside. Each label compared takes one from `budget`; none
/// left, the answer is no.
fn name_eq_at(msg: &[u8], mut at: usize, name: &[u8], budget: &mut u32) -> bool {
    let mut i = 0;
    let mut hops = 0;
    loop {
        let Some(left) = budget.checked_sub(1) else {
            return false;
        };
        *budget = left;
        let Some(&len) = msg.get(at) else {
            return false;
        };
        if len & 0xc0 == 0xc0 {
            let Some(&low) = msg.get(at + 1) else {
                return false;
            };
            hops += 1;
            if hops > 16 {
                return false;
            }
            at = usize::from(u16::from_be_bytes([len & 0x3f, low]));
            continue;
        }
        let n = 1 + usize::from(len);
        match (msg.get(at..at + n), name.get(i..i + n)) {
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => {}
            _ => return false,
        }
        if len == 0 {
            return i + n == name.len();
        }
        at += n;
        i += n;
    }
}

/// How the TTLs of wire records are served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ttls {
    /// The stored TTLs minus `age` seconds (a cache hit).
    CountDown { age: u32 },
    /// Every TTL set to this (serve-stale, synthesised answers).
    Fixed(u32),
    /// Each RRset's TTL left at this time on the cache's clock (a cached message built from RRsets).
    At(u32),
}

/// An answer encoded once and served many times, by any resolver.
///
/// Each reply copies its records as they are (TTLs patched in place) instead of encoding
/// them again. Return it as [`Resolution::Prebuilt`](crate::Resolution::Prebuilt); the
/// zones, the cache and [`Synth`](crate::Synth) answer this way. Cloning shares the records.
///
/// A resolver that answers one name from data it holds, encoded once:
///
/// ```
/// use std::net::Ipv4Addr;
/// use std::time::Instant;
/// use names_core::{Action, Answer, Chain, Config, Context, Origin, Prebuilt, Query, Resolution, Resolver, Server};
/// use names_core::domain::base::iana::{Rcode, Rtype};
/// use names_core::domain::base::{Message, MessageBuilder, Name};
/// use names_core::domain::rdata::A;
///
/// struct Printer(Option<Prebuilt>);
///
/// impl Resolver for Printer {
///     fn name(&self) -> &str {
///         "printer"
///     }
///
///     fn resolve(&mut self, query: &Query<'_>, _cx: &mut Context) -> Resolution {
///         if query.qtype() != Rtype::A || query.qname().to_string() != "printer.lan" {
///             return Resolution::Pass;
///         }
///         let answer = Answer {
///             answer: vec![query.record(300, A::new(Ipv4Addr::new(192, 168, 1, 9)))],
///             authoritative: true,
///             ..Answer::new(Rcode::NOERROR.into())
///         };
///         if self.0.is_none() {
///             self.0 = Prebuilt::new(query.qname(), &answer);
///         }
///         match &self.0 {
///             Some(prebuilt) => Resolution::Prebuilt(prebuilt.clone()),
///             None => Resolution::Answer(answer),
///         }
///     }
/// }
///
/// let mut server = Server::new(Config::default(), Chain::new().with(Printer(None)), [1; 32]);
/// let client = Origin::Udp { listener: 0, peer: "127.0.0.1:5000".parse().unwrap() };
/// for id in [1, 2] {
///     let mut query = MessageBuilder::new_vec();
///     query.header_mut().set_id(id);
///     let mut query = query.question();
///     query.push((Name::<Vec<u8>>::vec_from_str("printer.lan").unwrap(), Rtype::A)).unwrap();
///     server.handle_client(Instant::now(), client, &query.finish());
///     let Some(Action::Reply { bytes, .. }) = server.poll_action() else { panic!("a reply") };
///     let reply = Message::from_octets(bytes).unwrap();
///     assert!(reply.header().aa() && reply.header().id() == id);
///     let a = reply.answer().unwrap().limit_to::<A>().next().unwrap().unwrap();
///     assert_eq!((a.ttl().as_secs(), a.data().addr()), (300, Ipv4Addr::new(192, 168, 1, 9)));
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Prebuilt {
    pub(crate) records: Arc<WireRecords>,
    pub(crate) ttls: Ttls,
}

impl Prebuilt {
    /// Encodes `answer` (its rcode, answer and authority records, AA and AD bits) for
    /// questions named `qname`. A record owned by `qname` is written as "the name asked",
    /// so the encoding serves every question the resolver returns it for, with the name's
    /// case as the client sent it ([`Synth`](crate::Synth) keeps one per number: it
    /// answers `workstation7.a.example` and `WORKSTATION7.b.example` alike). The TTLs are
    /// served as given. A reply too big for the client carries no records (TC set).
    ///
    /// `None` if `answer` has additional records, or a record cannot be encoded, or they
    /// would not fit a message: reply with [`Resolution::Answer`](crate::Resolution::Answer) then.
    pub fn new(qname: &Name<Bytes>, answer: &Answer) -> Option<Prebuilt> {
        if !answer.additional.is_empty() {
            return None;
        }
        let answer_records: Vec<&Rr> = answer.answer.iter().collect();
        let authority: Vec<&Rr> = answer.authority.iter().collect();
        let records = WireRecords::build(
            &[],
            qname,
            &answer_records,
            &authority,
            answer.rcode,
            answer.authenticated,
            answer.authoritative,
            |ttl| ttl,
        )?;
        Some(Prebuilt::as_stored(Arc::new(records)))
    }

    /// Records served with the TTLs they were stored with.
    pub(crate) fn as_stored(records: Arc<WireRecords>) -> Prebuilt {
        Prebuilt {
            records,
            ttls: Ttls::CountDown { age: 0 },
        }
    }

    /// The response code of the answer.
    pub(crate) fn rcode(&self) -> OptRcode {
        self.records.rcode
    }
}

/// Encodes the reply to `req` from `answer` into `out` (cleared first). Returns whether
/// it was truncated (the records did not fit the client's limit: TC=1, no records).
pub(crate) fn encode_wire_reply(
    req: &Request,
    answer: &Prebuilt,
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
    let records = entry.records();
    // Compressed, the records may fit where their stored size does not: checked after
    // writing them, unless even that size fits.
    let mut truncated = false;
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
    // RFC 4035 3.1.6: an authoritative answer does not echo CD.
    if req.cd && !entry.authoritative {
        flags |= 0x0010;
    }
    flags |= rcode.rcode().to_int() as u16 & 0x0f;
    out.extend_from_slice(&flags.to_be_bytes());
    let (an, ns, ar) = if truncated {
        (0, 0, 0)
    } else {
        (
            entry.answer_count,
            entry.authority_count,
            entry.additional_count,
        )
    };
    for count in [1, an, ns, ar + u16::from(req.edns.is_some())] {
        out.extend_from_slice(&count.to_be_bytes());
    }
    out.extend_from_slice(qname);
    out.extend_from_slice(&req.qtype.to_int().to_be_bytes());
    out.extend_from_slice(&req.qclass.to_int().to_be_bytes());
    if !truncated {
        let qname_key = entry.key_name();
        let mut names = Names::new();
        names.add(out, HEADER_LEN);
        splice_records(out, records, served, &mut names);
        let mut owner_buf;
        for set in entry.served_rrsets() {
            let ttl = match served {
                Ttls::At(now) => set.remaining(now).max(0),
                Ttls::CountDown { age } => i64::from(set.ttl().saturating_sub(age)),
                Ttls::Fixed(ttl) => i64::from(ttl),
            };
            let owner = if set.owner() == qname_key {
                &[0xc0, 0x0c][..]
            } else {
                owner_buf = [0u8; 257];
                let n = names.compress(out, set.owner(), &mut owner_buf);
                &owner_buf[..n]
            };
            let at = out.len();
            set.write(
                out,
                owner,
                u32::try_from(ttl).unwrap_or(0),
                |out, at, rtype| names.add_rdata(out, at, rtype),
            );
            names.add(out, at);
        }
        let fit_uncompressed = base + records.len() + entry.rrsets_len as usize + opt_len <= limit;
        if !fit_uncompressed && out.len() + opt_len > limit {
            // Compressed, the records may still not fit: the question alone, TC set.
            out.truncate(base);
            out[2] |= 0x02;
            out[6..12].fill(0);
            if req.edns.is_some() {
                out[11] = 1;
            }
            truncated = true;
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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use bytes::Bytes;
    use domain::base::iana::{Class, Rcode};
    use domain::base::{Name, Record, Ttl};
    use domain::rdata::{AllRecordData, A};

    use super::Prebuilt;
    use crate::resolver::Answer;

    fn a(owner: &Name<Bytes>, last: u8) -> crate::Rr {
        let data = AllRecordData::A(A::new(Ipv4Addr::new(192, 0, 2, last)));
        Record::new(owner.clone(), Class::IN, Ttl::from_secs(60), data)
    }

    #[test]
    fn prebuilt_takes_answer_and_authority_but_not_additional_records() {
        let qname: Name<Bytes> = "www.example.com".parse().unwrap();
        let mut answer = Answer::new(Rcode::NOERROR.into());
        answer.answer.push(a(&qname, 1));
        answer.authority.push(a(&"example.com".parse().unwrap(), 2));
        let prebuilt = Prebuilt::new(&qname, &answer).expect("encodable");
        assert_eq!(
            (
                prebuilt.records.answer_count,
                prebuilt.records.authority_count
            ),
            (1, 1)
        );
        // The owner equal to the question name is "the name asked": a 2-byte pointer.
        assert_eq!(&prebuilt.records.records()[..2], &[0xc0, 0x0c]);
        answer
            .additional
            .push(a(&"ns.example.com".parse().unwrap(), 3));
        assert!(Prebuilt::new(&qname, &answer).is_none());
    }

    /// A spliced chain compresses its owners against the rdata names before them, and
    /// the reply parses to the same records.
    #[test]
    fn spliced_owners_are_compressed() {
        use crate::domain::base::Message;
        use crate::domain::rdata::Cname;
        use crate::message::{encode_query, encode_reply, QuerySpec};
        use crate::request::{admit, Admission};
        use crate::Origin;
        use domain::base::iana::Rtype;

        let qname: Name<Bytes> = "www.example.com".parse().unwrap();
        let target: Name<Bytes> = "host.example.net".parse().unwrap();
        let mut answer = Answer::new(Rcode::NOERROR.into());
        answer.authoritative = true;
        answer.answer.push(Record::new(
            qname.clone(),
            Class::IN,
            Ttl::from_secs(60),
            AllRecordData::Cname(Cname::new(target.clone())),
        ));
        for i in 1..=4 {
            answer.answer.push(a(&target, i));
        }
        let prebuilt = Prebuilt::new(&qname, &answer).unwrap();
        let query = encode_query(&QuerySpec {
            id: 7,
            qname: &"WWW.example.COM".parse().unwrap(),
            qtype: Rtype::A,
            qclass: Class::IN,
            rd: false,
            cd: true,
            edns: None,
        });
        let peer = "127.0.0.1:40000".parse().unwrap();
        #[allow(clippy::disallowed_methods)] // a test's one clock read
        let now = std::time::Instant::now();
        let Admission::Query(req) =
            admit(&query, Origin::Udp { listener: 0, peer }, peer, now, 1232)
        else {
            panic!("a query")
        };
        let mut out = Vec::new();
        assert!(!super::encode_wire_reply(
            &req, &prebuilt, false, 1232, &mut out
        ));
        let encoded = encode_reply(&req, &answer, false, 1232, Vec::new());
        // As small as the builder's own compressed encoding.
        assert!(
            out.len() <= encoded.bytes.len(),
            "{} > {}",
            out.len(),
            encoded.bytes.len()
        );
        let reply = Message::from_octets(out).unwrap();
        assert!(reply.header().aa() && !reply.header().cd());
        let got: Vec<(String, Rtype)> = reply
            .answer()
            .unwrap()
            .map(|rr| {
                let rr = rr.unwrap();
                (rr.owner().to_string(), rr.rtype())
            })
            .collect();
        assert_eq!(got.len(), 5);
        assert_eq!(got[0], ("WWW.example.COM".to_string(), Rtype::CNAME));
        assert_eq!(got[4], ("host.example.net".to_string(), Rtype::A));
        let a = reply
            .answer()
            .unwrap()
            .limit_to::<A>()
            .last()
            .unwrap()
            .unwrap();
        assert_eq!(a.data().addr(), Ipv4Addr::new(192, 0, 2, 4));
    }

    /// Hostile bytes: a pointer loop or a truncated name never matches and never hangs.
    #[test]
    fn name_comparison_is_bounded() {
        let msg = [0xc0u8, 0x00, 0xc0, 0x02, 3, b'w', b'w'];
        let name = [3, b'w', b'w', b'w', 0];
        for at in 0..msg.len() + 2 {
            assert!(!super::name_eq_at(&msg, at, &name, &mut 100));
        }
    }

    /// Hostile names (a hundred one-letter labels each) cost a bounded number of
    /// comparisons, and the reply is still right.
    #[test]
    fn deep_names_are_spliced_correctly() {
        use crate::domain::base::Message;
        use crate::message::{encode_query, QuerySpec};
        use crate::request::{admit, Admission};
        use crate::Origin;
        use domain::base::iana::Rtype;

        let qname: Name<Bytes> = "q.example".parse().unwrap();
        let deep = ".a".repeat(100);
        let owners: Vec<Name<Bytes>> = (0..40)
            .map(|i| format!("x{i}{deep}.example").parse().unwrap())
            .collect();
        let mut answer = Answer::new(Rcode::NOERROR.into());
        for (i, owner) in owners.iter().enumerate() {
            answer.answer.push(a(owner, i as u8));
        }
        let prebuilt = Prebuilt::new(&qname, &answer).unwrap();
        let query = encode_query(&QuerySpec {
            id: 9,
            qname: &qname,
            qtype: Rtype::A,
            qclass: Class::IN,
            rd: false,
            cd: false,
            edns: Some((65000, false)),
        });
        let peer = "127.0.0.1:40000".parse().unwrap();
        #[allow(clippy::disallowed_methods)] // a test's one clock read
        let now = std::time::Instant::now();
        let Admission::Query(req) =
            admit(&query, Origin::Udp { listener: 0, peer }, peer, now, 65000)
        else {
            panic!("a query")
        };
        let mut out = Vec::new();
        assert!(!super::encode_wire_reply(
            &req, &prebuilt, false, 65000, &mut out
        ));
        let uncompressed: usize = owners.iter().map(|o| o.as_slice().len() + 14).sum();
        assert!(out.len() < uncompressed / 2, "{} bytes", out.len());
        let reply = Message::from_octets(out).unwrap();
        let got: Vec<Name<Bytes>> = reply
            .answer()
            .unwrap()
            .map(|rr| domain::base::ToName::to_name(&rr.unwrap().owner()))
            .collect();
        assert_eq!(got, owners);
    }
}
