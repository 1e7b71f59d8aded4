//! Reply parsing for asserts: [`Parsed`], a flat view of a message, and a few readers
//! for `domain`'s own [`Message`].

use std::net::Ipv4Addr;

use bytes::Bytes;
use domain::base::iana::Rtype;
use domain::base::name::FlattenInto;
use domain::base::{Message, ParsedName};
use domain::rdata::{AllRecordData, A};

// ---------------------------------------------------------------------------

/// A resource record in presentation-ish form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    /// Owner name as on the wire (case kept), no trailing dot.
    pub owner: String,
    pub rtype: u16,
    pub ttl: u32,
    /// For A records the bare address, otherwise domain's `Display`.
    pub rdata: String,
}

/// A parsed DNS message, flattened for easy assertions.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    /// Full (extended) rcode: header low bits plus OPT high bits.
    pub rcode: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
    /// The first question: name as on the wire (case kept, no trailing
    /// dot) and type.
    pub question: Option<(String, u16)>,
    pub answers: Vec<Rr>,
    pub authority: Vec<Rr>,
    /// Additional records except OPT.
    pub additional: Vec<Rr>,
    pub has_opt: bool,
    pub opt_version: Option<u8>,
    pub opt_udp_size: Option<u16>,
    /// Size of the message in bytes.
    pub len: usize,
}

impl Parsed {
    /// The A addresses in the answer section, in order.
    pub fn a_addrs(&self) -> Vec<Ipv4Addr> {
        self.answers
            .iter()
            .filter(|r| r.rtype == Rtype::A.to_int())
            .filter_map(|r| r.rdata.parse().ok())
            .collect()
    }
}

fn rr_of(rr: domain::base::ParsedRecord<'_, &[u8]>) -> Result<Rr, String> {
    let rec = rr
        .to_any_record::<AllRecordData<&[u8], ParsedName<&[u8]>>>()
        .map_err(|e| format!("bad record: {e}"))?;
    let rdata = match rec.data() {
        AllRecordData::A(a) => a.addr().to_string(),
        other => other.to_string(),
    };
    Ok(Rr {
        owner: rec.owner().to_string(),
        rtype: rec.rtype().to_int(),
        ttl: rec.ttl().as_secs(),
        rdata,
    })
}

/// Parse a message; `Err` describes why it is not a well-formed message.
pub fn try_parse(bytes: &[u8]) -> Result<Parsed, String> {
    let msg = Message::from_octets(bytes).map_err(|e| format!("short message: {e}"))?;
    let h = msg.header();
    let c = msg.header_counts();
    let mut p = Parsed {
        id: h.id(),
        qr: h.qr(),
        opcode: h.opcode().to_int(),
        aa: h.aa(),
        tc: h.tc(),
        rd: h.rd(),
        ra: h.ra(),
        rcode: h.rcode().to_int() as u16,
        qdcount: c.qdcount(),
        ancount: c.ancount(),
        nscount: c.nscount(),
        arcount: c.arcount(),
        question: None,
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        has_opt: false,
        opt_version: None,
        opt_udp_size: None,
        len: bytes.len(),
    };
    let mut questions = msg.question();
    for q in &mut questions {
        let q = q.map_err(|e| format!("bad question: {e}"))?;
        if p.question.is_none() {
            p.question = Some((q.qname().to_string(), q.qtype().to_int()));
        }
    }
    let mut section = questions
        .answer()
        .map_err(|e| format!("bad question: {e}"))?;
    for (i, what) in ["answer", "authority", "additional"]
        .into_iter()
        .enumerate()
    {
        for rr in &mut section {
            let rr = rr.map_err(|e| format!("bad {what}: {e}"))?;
            match i {
                0 => p.answers.push(rr_of(rr)?),
                1 => p.authority.push(rr_of(rr)?),
                _ if rr.rtype() == Rtype::OPT => p.has_opt = true,
                _ => p.additional.push(rr_of(rr)?),
            }
        }
        if i < 2 {
            let next = ["authority", "additional"][i];
            section = section
                .next_section()
                .map_err(|e| format!("bad {what}: {e}"))?
                .ok_or(format!("no {next} section"))?;
        }
    }
    if let Some(opt) = msg.opt() {
        p.has_opt = true;
        p.opt_version = Some(opt.version());
        p.opt_udp_size = Some(opt.udp_payload_size());
        p.rcode = msg.opt_rcode().to_int();
    }
    Ok(p)
}

/// Parse a message, panicking with a hex dump if it is malformed.
pub fn parse(bytes: &[u8]) -> Parsed {
    try_parse(bytes).unwrap_or_else(|e| panic!("cannot parse reply ({e}): {}", hex(bytes)))
}

/// Lowercase hex dump.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a message that must be well formed: a header and records that all read.
pub fn message(bytes: &[u8]) -> Message<Vec<u8>> {
    let msg = Message::from_octets(bytes.to_vec()).expect("at least a header");
    for item in msg.iter() {
        item.unwrap_or_else(|e| panic!("unreadable record {e:?} in {}", hex(bytes)));
    }
    msg
}

/// The bytes of the first question (name, type, class), read by hand so that case and
/// encoding are compared exactly; for a message too short for one, what there is.
pub fn question_bytes(msg: &[u8]) -> &[u8] {
    let Some(body) = msg.get(12..) else {
        return &[];
    };
    let mut i = 0;
    while let Some(&len) = body.get(i) {
        assert!(len < 64, "the question name must not be compressed");
        i += 1 + usize::from(len);
        if len == 0 {
            break;
        }
    }
    body.get(..i + 4).unwrap_or(body)
}

/// The A addresses of the answer section.
pub fn a_addrs(msg: &Message<Vec<u8>>) -> Vec<Ipv4Addr> {
    msg.answer()
        .unwrap()
        .limit_to::<A>()
        .map(|rr| rr.unwrap().data().addr())
        .collect()
}

/// The ID of a message (0 if too short).
pub fn msg_id(msg: &[u8]) -> u16 {
    if msg.len() < 2 {
        0
    } else {
        u16::from_be_bytes([msg[0], msg[1]])
    }
}

/// The answer section as owned records (what resolvers answer with).
pub fn answer_records(msg: &Message<Bytes>) -> Vec<names_core::Rr> {
    msg.answer()
        .expect("an answer section")
        .map(|rr| {
            let rec = rr
                .expect("a readable record")
                .to_any_record::<AllRecordData<Bytes, ParsedName<Bytes>>>()
                .expect("readable record data");
            rec.flatten_into()
        })
        .collect()
}
