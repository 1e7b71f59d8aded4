//! Replies compared field by field: rcode, flags, question, the three sections as multisets
//! of (lower-cased owner, type, class, TTL, rdata), and the OPT record; and the allowed
//! differences of `tests/conformance/allowed.toml` they are checked against.

use std::fmt;

use domain::base::iana::{Class, Rcode};
use domain::base::{Message, ParsedName};
use domain::rdata::AllRecordData;
use names_tests::*;

use crate::queries::Query;

/// One record, as compared: the owner lower-cased (RFC 4343: case is not a difference).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    pub owner: String,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: String,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.owner,
            self.ttl,
            Class::from_int(self.class),
            Rtype::from_int(self.rtype),
            self.rdata
        )
    }
}

/// The OPT record of a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opt {
    pub udp_size: u16,
    pub dnssec_ok: bool,
    pub version: u8,
}

/// A reply, as compared.
#[derive(Clone, Debug)]
pub struct Reply {
    /// With the OPT's upper bits (extended rcode).
    pub rcode: u16,
    pub opcode: u8,
    pub flags: [(&'static str, bool); 7],
    pub question: Option<(String, u16, u16)>,
    pub sections: [Vec<Record>; 3],
    pub opt: Option<Opt>,
}

/// What a server did with a query.
pub type Outcome = Result<Reply, String>;

const SECTIONS: [&str; 3] = ["answer", "authority", "additional"];

/// Reads a reply; `Err` says why it is not one (`no reply` when there was none).
pub fn read(bytes: Option<&[u8]>) -> Outcome {
    let bytes = bytes.ok_or("no reply")?;
    let msg = Message::from_octets(bytes).map_err(|e| format!("garbled: {e}"))?;
    let h = msg.header();
    let question = msg.first_question().map(|q| {
        (
            q.qname().to_string().to_ascii_lowercase(),
            q.qtype().to_int(),
            q.qclass().to_int(),
        )
    });
    let mut sections: [Vec<Record>; 3] = Default::default();
    let mut section = msg.answer().map_err(|e| format!("garbled question: {e}"))?;
    for (i, records) in sections.iter_mut().enumerate() {
        for rr in &mut section {
            let rr = rr.map_err(|e| format!("garbled {}: {e}", SECTIONS[i]))?;
            if rr.rtype() == Rtype::OPT {
                continue;
            }
            let rec = rr
                .to_any_record::<AllRecordData<_, ParsedName<_>>>()
                .map_err(|e| format!("garbled record in {}: {e}", SECTIONS[i]))?;
            records.push(Record {
                owner: rec.owner().to_string().to_ascii_lowercase(),
                rtype: rec.rtype().to_int(),
                class: rec.class().to_int(),
                ttl: rec.ttl().as_secs(),
                rdata: canonical_rdata(rec.rtype(), rec.data().to_string()),
            });
        }
        if i < 2 {
            section = match section.next_section() {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(e) => return Err(format!("garbled {}: {e}", SECTIONS[i])),
            };
        }
    }
    let opt = msg.opt().map(|o| Opt {
        udp_size: o.udp_payload_size(),
        dnssec_ok: o.dnssec_ok(),
        version: o.version(),
    });
    Ok(Reply {
        rcode: msg.opt_rcode().to_int(),
        opcode: h.opcode().to_int(),
        flags: [
            ("qr", h.qr()),
            ("aa", h.aa()),
            ("tc", h.tc()),
            ("rd", h.rd()),
            ("ra", h.ra()),
            ("cd", h.cd()),
            ("ad", h.ad()),
        ],
        question,
        sections,
        opt,
    })
}

/// The rdata text with its domain names lower-cased (RFC 4343; a compressed name takes the
/// case of the name it points to, often the question's): the whole text of the types
/// whose rdata are names and numbers only.
fn canonical_rdata(rtype: Rtype, text: String) -> String {
    match rtype {
        Rtype::NS
        | Rtype::CNAME
        | Rtype::DNAME
        | Rtype::PTR
        | Rtype::MX
        | Rtype::SRV
        | Rtype::SOA => text.to_ascii_lowercase(),
        _ => text,
    }
}

/// One field in which two replies differ.
#[derive(Clone, Debug)]
pub struct Difference {
    /// `reply`, `rcode`, `opcode`, a flag (`aa`, `tc`, ...), `question`, a section, `opt`.
    pub field: &'static str,
    pub names: String,
    pub peer: String,
    /// For a section: the records only one side has.
    pub only_names: Vec<Record>,
    pub only_peer: Vec<Record>,
    /// The rcode names answered with, and whether it set TC (for entries about what
    /// follows from them).
    pub names_rcode: String,
    pub names_truncated: bool,
    /// Both replies had TC set (what a truncated reply holds is the server's choice).
    pub both_truncated: bool,
}

fn rcode_name(rcode: u16) -> String {
    let low = Rcode::masked_from_int((rcode & 0x0f) as u8);
    if rcode > 15 {
        format!("{low}+ext{}", rcode >> 4)
    } else {
        low.to_string()
    }
}

fn opt_text(opt: &Option<Opt>) -> String {
    match opt {
        None => "none".into(),
        Some(o) => format!(
            "size={} do={} version={}",
            o.udp_size, o.dnssec_ok, o.version
        ),
    }
}

/// How far the TTL of names' record may be from the peer's: names' TTL in
/// `peer - below ..= peer + above` (both 0: equal).
#[derive(Clone, Copy, Debug)]
pub struct TtlWindow {
    pub below: u32,
    pub above: u32,
}

impl TtlWindow {
    /// TTLs must be equal.
    pub const EXACT: TtlWindow = TtlWindow { below: 0, above: 0 };

    fn fits(self, names: u32, peer: u32) -> bool {
        names >= peer.saturating_sub(self.below) && names <= peer.saturating_add(self.above)
    }
}

/// The records of `a` with no partner in `b`: same owner, type, class and rdata, TTLs
/// within `ttl` (`fits(ttl of a, ttl of b)`).
fn unmatched(a: &[Record], b: &[Record], fits: impl Fn(u32, u32) -> bool) -> Vec<Record> {
    let mut taken = vec![false; b.len()];
    let mut out = Vec::new();
    for r in a {
        let partner = b.iter().enumerate().position(|(i, o)| {
            !taken[i]
                && (o.owner.as_str(), o.rtype, o.class, o.rdata.as_str())
                    == (r.owner.as_str(), r.rtype, r.class, r.rdata.as_str())
                && fits(r.ttl, o.ttl)
        });
        match partner {
            Some(i) => taken[i] = true,
            None => out.push(r.clone()),
        }
    }
    out.sort();
    out
}

/// Every field in which `names` and `peer` differ.
pub fn differences(names: &Outcome, peer: &Outcome, ttl: TtlWindow) -> Vec<Difference> {
    let simple = |field, a: String, b: String| Difference {
        field,
        names: a,
        peer: b,
        only_names: Vec::new(),
        only_peer: Vec::new(),
        both_truncated: false,
        names_rcode: String::new(),
        names_truncated: false,
    };
    let (a, b) = match (names, peer) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(a), Err(b)) if a == b => return Vec::new(),
        (a, b) => {
            let show = |o: &Outcome| match o {
                Ok(r) => format!("{} reply", rcode_name(r.rcode)),
                Err(e) => e.clone(),
            };
            return vec![simple("reply", show(a), show(b))];
        }
    };
    let mut out = Vec::new();
    if a.rcode != b.rcode {
        out.push(simple("rcode", rcode_name(a.rcode), rcode_name(b.rcode)));
    }
    if a.opcode != b.opcode {
        out.push(simple("opcode", a.opcode.to_string(), b.opcode.to_string()));
    }
    for ((field, x), (_, y)) in a.flags.iter().zip(&b.flags) {
        if x != y {
            out.push(simple(field, x.to_string(), y.to_string()));
        }
    }
    if a.question != b.question {
        out.push(simple(
            "question",
            format!("{:?}", a.question),
            format!("{:?}", b.question),
        ));
    }
    for (i, field) in SECTIONS.into_iter().enumerate() {
        let only_names = unmatched(&a.sections[i], &b.sections[i], |x, y| ttl.fits(x, y));
        let only_peer = unmatched(&b.sections[i], &a.sections[i], |x, y| ttl.fits(y, x));
        if !only_names.is_empty() || !only_peer.is_empty() {
            out.push(Difference {
                field,
                names: format!("{} records", a.sections[i].len()),
                peer: format!("{} records", b.sections[i].len()),
                only_names,
                only_peer,
                both_truncated: a.flags[2].1 && b.flags[2].1,
                names_rcode: String::new(),
                names_truncated: false,
            });
        }
    }
    if a.opt != b.opt {
        out.push(simple("opt", opt_text(&a.opt), opt_text(&b.opt)));
    }
    for d in &mut out {
        d.names_rcode = rcode_name(a.rcode);
        d.names_truncated = a.flags[2].1;
    }
    out
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: names {}, peer {}",
            self.field, self.names, self.peer
        )?;
        for r in &self.only_names {
            write!(f, "\n      only names: {r}")?;
        }
        for r in &self.only_peer {
            write!(f, "\n      only peer:  {r}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Allowed differences
// ---------------------------------------------------------------------------

/// One entry of `allowed.toml`: which difference, for which queries, and why.
#[derive(Debug)]
pub struct Allowed {
    pub id: String,
    tests: Vec<String>,
    fields: Vec<String>,
    qtypes: Vec<String>,
    classes: Vec<String>,
    opcodes: Vec<i64>,
    under: Vec<String>,
    edns: Option<bool>,
    tcp: Option<bool>,
    names_value: Option<String>,
    peer_value: Option<String>,
    only_peer_types: Option<Vec<String>>,
    only_names_types: Option<Vec<String>>,
    truncated: Option<bool>,
    names_rcode: Option<String>,
    owners: Vec<String>,
    names_truncated: Option<bool>,
}

fn strings(t: &toml::Table, key: &str) -> Option<Vec<String>> {
    t.get(key).map(|v| match v {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Array(a) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .unwrap_or_else(|| panic!("{key}: strings"))
                    .to_string()
            })
            .collect(),
        _ => panic!("{key}: a string or an array of strings"),
    })
}

/// Reads `allowed.toml`; every entry must say why.
pub fn load_allowed(text: &str) -> Vec<Allowed> {
    let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("allowed.toml: {e}"));
    let entries = table
        .get("allowed")
        .and_then(|a| a.as_array())
        .expect("allowed.toml: [[allowed]] entries");
    entries
        .iter()
        .map(|e| {
            let t = e.as_table().expect("allowed.toml: tables");
            let known = [
                "id",
                "reason",
                "rfc",
                "tests",
                "field",
                "qtype",
                "class",
                "opcode",
                "under",
                "edns",
                "tcp",
                "names",
                "peer",
                "only_peer_types",
                "only_names_types",
                "truncated",
                "names_rcode",
                "owners",
                "names_truncated",
            ];
            if let Some(k) = t.keys().find(|k| !known.contains(&k.as_str())) {
                panic!("allowed.toml: unknown key {k}");
            }
            let id = t["id"].as_str().expect("allowed.toml: id").to_string();
            let reason = t.get("reason").and_then(|r| r.as_str()).unwrap_or("");
            assert!(reason.len() > 20, "allowed.toml: {id} needs a reason");
            Allowed {
                tests: strings(t, "tests").unwrap_or_else(|| panic!("{id}: tests")),
                fields: strings(t, "field").unwrap_or_else(|| panic!("{id}: field")),
                qtypes: strings(t, "qtype").unwrap_or_default(),
                classes: strings(t, "class").unwrap_or_default(),
                opcodes: t
                    .get("opcode")
                    .and_then(|o| o.as_array())
                    .map(|a| a.iter().filter_map(|v| v.as_integer()).collect())
                    .unwrap_or_default(),
                under: strings(t, "under").unwrap_or_default(),
                edns: t.get("edns").and_then(|v| v.as_bool()),
                tcp: t.get("tcp").and_then(|v| v.as_bool()),
                names_value: t.get("names").and_then(|v| v.as_str()).map(String::from),
                peer_value: t.get("peer").and_then(|v| v.as_str()).map(String::from),
                only_peer_types: strings(t, "only_peer_types"),
                only_names_types: strings(t, "only_names_types"),
                truncated: t.get("truncated").and_then(|v| v.as_bool()),
                names_rcode: t
                    .get("names_rcode")
                    .and_then(|v| v.as_str())
                    .map(String::from),
                owners: strings(t, "owners").unwrap_or_default(),
                names_truncated: t.get("names_truncated").and_then(|v| v.as_bool()),
                id,
            }
        })
        .collect()
}

/// Whether every record is of one of `types`.
fn all_of(records: &[Record], types: &[String]) -> bool {
    records.iter().all(|r| {
        types
            .iter()
            .any(|t| *t == Rtype::from_int(r.rtype).to_string())
    })
}

impl Allowed {
    /// Whether the entry is about test `test`.
    pub fn applies_to(&self, test: &str) -> bool {
        self.tests.iter().any(|t| t == test)
    }

    /// Whether this entry covers `d`, seen by test `test` for query `q`.
    pub fn covers(&self, test: &str, q: &Query, d: &Difference) -> bool {
        let qname = q.name.to_ascii_lowercase();
        self.tests.iter().any(|t| t == test)
            && self.fields.iter().any(|f| f == d.field)
            && (self.qtypes.is_empty() || self.qtypes.contains(&q.qtype_name()))
            && (self.classes.is_empty()
                || self.classes.contains(&Class::from_int(q.class).to_string()))
            && (self.opcodes.is_empty() || self.opcodes.contains(&i64::from(q.opcode)))
            && (self.under.is_empty() || self.under.iter().any(|u| qname.ends_with(u.as_str())))
            && self.edns.is_none_or(|e| e == q.edns.is_some())
            && self.tcp.is_none_or(|t| t == q.tcp)
            && self.truncated.is_none_or(|t| t == d.both_truncated)
            && self
                .names_rcode
                .as_ref()
                .is_none_or(|r| *r == d.names_rcode)
            && self.names_truncated.is_none_or(|t| t == d.names_truncated)
            && self.names_value.as_ref().is_none_or(|v| *v == d.names)
            && self.peer_value.as_ref().is_none_or(|v| *v == d.peer)
            && self.records_covered(d)
            && (self.owners.is_empty()
                || d.only_names
                    .iter()
                    .chain(&d.only_peer)
                    .all(|r| self.owners.contains(&r.owner)))
    }

    /// Whether the records only one side has are of the types this entry names; a side
    /// whose types are not named must have none.
    fn records_covered(&self, d: &Difference) -> bool {
        let side = |types: &Option<Vec<String>>, records: &[Record]| match types {
            Some(types) => all_of(records, types),
            None => records.is_empty(),
        };
        if self.only_peer_types.is_none() && self.only_names_types.is_none() {
            return true;
        }
        side(&self.only_peer_types, &d.only_peer) && side(&self.only_names_types, &d.only_names)
    }
}
