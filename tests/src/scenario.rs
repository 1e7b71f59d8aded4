//! Unbound-style scenarios (its `testdata/*.rpl`) written as data: upstream replies with
//! their sections as zone-file lines, looked up by question; client queries; expected
//! client replies compared section by section, TTLs optionally.
//!
//! Records are written as in a master file, one a line, absolute names; a line without a
//! TTL gets 3600, as in Unbound's test files. [`Upstream`] serves the canned replies
//! through a [`FakeUpstream`] and can change them between steps; [`expect`] compares a
//! reply with what the scenario's `CHECK_ANSWER` step wants.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::name::FlattenInto;
use domain::base::{Message, MessageBuilder, Name, Record};
use domain::rdata::ZoneRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};

use crate::parse::{parse, Parsed, Rr};
use crate::upstream::{FakeUpstream, Reply};

/// A record as read from a scenario's text.
pub type TextRecord = Record<Name<Bytes>, ZoneRecordData<Bytes, Name<Bytes>>>;

/// The TTL of a record written without one (ldns's default, which Unbound's tests use).
pub const DEFAULT_TTL: u32 = 3600;

/// Reads zone-file lines (absolute names; blank lines and `;` comments skipped) into
/// records. Panics on a line that does not parse: scenarios are test data.
pub fn records(text: &str) -> Vec<TextRecord> {
    let mut body = String::new();
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut tokens = line.split_whitespace();
        let owner = tokens.next().unwrap_or_default();
        let rest: Vec<&str> = tokens.collect();
        let has_ttl = rest.first().is_some_and(|t| t.parse::<u32>().is_ok());
        body.push_str(owner);
        if !has_ttl {
            body.push_str(&format!(" {DEFAULT_TTL}"));
        }
        for t in rest {
            body.push(' ');
            body.push_str(t);
        }
        body.push('\n');
    }
    let mut zf = Zonefile::from(body.as_str());
    zf.set_default_class(Class::IN);
    let mut out = Vec::new();
    for _ in 0..10_000 {
        match zf.next_entry() {
            Ok(Some(Entry::Record(r))) => out.push(r.flatten_into()),
            Ok(Some(other)) => panic!("not a record in a scenario: {other:?}"),
            Ok(None) => return out,
            Err(e) => panic!("bad scenario records {body:?}: {e}"),
        }
    }
    panic!("too many records in a scenario")
}

/// An upstream reply: header bits and the three sections as zone-file text.
#[derive(Clone, Debug)]
pub struct Canned {
    /// The AA bit (the rpl's `REPLY QR AA ...`).
    pub aa: bool,
    pub rcode: Rcode,
    pub answer: String,
    pub authority: String,
    pub additional: String,
    /// The RA bit: an upstream resolver's replies have it, an authoritative server's do not.
    pub ra: bool,
}

impl Canned {
    /// A NOERROR reply without AA.
    pub fn new(answer: &str, authority: &str, additional: &str) -> Canned {
        Canned {
            aa: false,
            rcode: Rcode::NOERROR,
            answer: answer.to_string(),
            authority: authority.to_string(),
            additional: additional.to_string(),
            ra: true,
        }
    }

    /// The same as an authoritative server sends it: RA clear (the rpl's `REPLY QR ...`
    /// of an iterator scenario).
    pub fn from_authority(mut self) -> Canned {
        self.ra = false;
        self
    }

    /// The same with the AA bit set (an authoritative answer).
    pub fn aa(mut self) -> Canned {
        self.aa = true;
        self
    }

    /// The same with another rcode.
    pub fn rcode(mut self, rcode: Rcode) -> Canned {
        self.rcode = rcode;
        self
    }

    /// This reply to `query` (its ID, RD bit and question copied: Unbound's `copy_id`).
    pub fn reply_to(&self, query: &[u8]) -> Option<Vec<u8>> {
        let q = Message::from_octets(query).ok()?;
        let question = q.first_question()?;
        let mut b = MessageBuilder::new_vec();
        let h = b.header_mut();
        h.set_id(q.header().id());
        h.set_qr(true);
        h.set_opcode(q.header().opcode());
        h.set_rd(q.header().rd());
        h.set_ra(self.ra);
        h.set_aa(self.aa);
        h.set_rcode(self.rcode);
        let mut b = b.question();
        b.push(question).ok()?;
        let mut b = b.answer();
        for r in records(&self.answer) {
            b.push(r).ok()?;
        }
        let mut b = b.authority();
        for r in records(&self.authority) {
            b.push(r).ok()?;
        }
        let mut b = b.additional();
        for r in records(&self.additional) {
            b.push(r).ok()?;
        }
        Some(b.finish())
    }
}

/// The lowercase key of a question written as `"www.example.com. A"`.
fn key(question: &str) -> (String, Rtype) {
    let mut it = question.split_whitespace();
    let name = it.next().expect("a question names a name");
    let rtype: Rtype = it
        .next()
        .expect("a question names a type")
        .parse()
        .expect("a known type");
    (name.trim_end_matches('.').to_ascii_lowercase(), rtype)
}

/// A fake upstream answering from a table of canned replies by question (name and type,
/// case-insensitive); a question not in the table gets SERVFAIL and is counted.
pub struct Upstream {
    pub fake: FakeUpstream,
    table: Arc<Mutex<HashMap<(String, Rtype), Canned>>>,
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

impl Upstream {
    /// An upstream with an empty table.
    pub fn new() -> Upstream {
        let table: Arc<Mutex<HashMap<(String, Rtype), Canned>>> = Arc::default();
        let t = table.clone();
        let fake = FakeUpstream::start(move |r| {
            let Ok(msg) = Message::from_octets(r.bytes.as_slice()) else {
                return vec![Reply::Nothing];
            };
            let Some(q) = msg.first_question() else {
                return vec![Reply::Nothing];
            };
            let k = (q.qname().to_string().to_ascii_lowercase(), q.qtype());
            let canned = t.lock().unwrap().get(&k).cloned();
            let canned = canned.unwrap_or_else(|| Canned::new("", "", "").rcode(Rcode::SERVFAIL));
            match canned.reply_to(&r.bytes) {
                Some(bytes) => vec![Reply::Send(bytes)],
                None => vec![Reply::Nothing],
            }
        });
        Upstream { fake, table }
    }

    /// Answer `question` (`"www.example.com. A"`) with `canned` from now on.
    pub fn set(&self, question: &str, canned: Canned) -> &Upstream {
        self.table.lock().unwrap().insert(key(question), canned);
        self
    }

    /// How many queries for `question` the upstream has received.
    pub fn asked(&self, question: &str) -> usize {
        let (name, rtype) = key(question);
        self.fake
            .received()
            .iter()
            .filter(|r| {
                r.parsed()
                    .question
                    .is_some_and(|(n, t)| n.to_ascii_lowercase() == name && t == rtype.to_int())
            })
            .count()
    }

    /// `--upstream` argument.
    pub fn arg(&self) -> String {
        self.fake.arg()
    }
}

/// What a `CHECK_ANSWER` step wants: rcode and the three sections (zone-file text);
/// `ttl` compares TTLs too (the rpl's `MATCH ttl`).
#[derive(Clone, Debug)]
pub struct Expected<'a> {
    pub rcode: Rcode,
    pub answer: &'a str,
    pub authority: &'a str,
    pub additional: &'a str,
    pub ttl: bool,
}

impl<'a> Expected<'a> {
    /// A NOERROR reply with these sections, TTLs not compared.
    pub fn new(answer: &'a str, authority: &'a str, additional: &'a str) -> Expected<'a> {
        Expected {
            rcode: Rcode::NOERROR,
            answer,
            authority,
            additional,
            ttl: false,
        }
    }

    /// Compare TTLs too.
    pub fn ttl(mut self) -> Expected<'a> {
        self.ttl = true;
        self
    }

    /// Another rcode.
    pub fn rcode(mut self, rcode: Rcode) -> Expected<'a> {
        self.rcode = rcode;
        self
    }
}

/// Records of a section as the reply parser shows them (so expected and actual records
/// print alike): composed into a message and parsed back.
pub fn parsed_records(text: &str) -> Vec<Rr> {
    let mut b = MessageBuilder::new_vec().answer();
    for r in records(text) {
        b.push(r).expect("scenario records fit a message");
    }
    parse(&b.finish()).answers
}

fn sorted(mut rrs: Vec<Rr>) -> Vec<(String, u16, String, u32)> {
    let mut out: Vec<_> = rrs
        .drain(..)
        .map(|r| (r.owner.to_ascii_lowercase(), r.rtype, r.rdata, r.ttl))
        .collect();
    out.sort();
    out
}

/// Asserts that `got` is the reply `want` describes, as Unbound's `MATCH all` does: QR, RD
/// and RA set, AA clear (a cache's reply is never authoritative), the rcode, and each
/// section's records (in any order). With `want.ttl`, each TTL is the expected one or at
/// most `slack` seconds less (real time passes between steps through the real binary).
pub fn expect(got: &Parsed, want: &Expected<'_>, slack: u32, what: &str) {
    assert!(got.qr && got.rd && got.ra, "{what}: QR RD RA: {got:?}");
    assert!(
        !got.aa,
        "{what}: AA is never set on a forwarder's reply: {got:?}"
    );
    assert_eq!(
        got.rcode,
        want.rcode.to_int() as u16,
        "{what}: rcode: {got:?}"
    );
    let sections = [
        ("answer", &got.answers, want.answer),
        ("authority", &got.authority, want.authority),
        ("additional", &got.additional, want.additional),
    ];
    for (name, have, text) in sections {
        let have = sorted(have.clone());
        let need = sorted(parsed_records(text));
        let strip = |v: &[(String, u16, String, u32)]| {
            v.iter()
                .map(|(o, t, d, _)| (o.clone(), *t, d.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            strip(&have),
            strip(&need),
            "{what}: {name} section differs; whole reply: {got:?}"
        );
        if want.ttl {
            for (h, n) in have.iter().zip(&need) {
                assert!(
                    h.3 <= n.3 && h.3 + slack >= n.3,
                    "{what}: {name} TTL of {} {} is {}, want {} (slack {slack}): {got:?}",
                    h.0,
                    h.2,
                    h.3,
                    n.3
                );
            }
        }
    }
}

/// Every record of a reply, all sections, as `owner type rdata` text (lowercase), for
/// asserting that some planted name or address appears nowhere.
pub fn all_text(p: &Parsed) -> String {
    let mut s = String::new();
    for r in p.answers.iter().chain(&p.authority).chain(&p.additional) {
        s.push_str(&format!("{} {} {}\n", r.owner, r.rtype, r.rdata).to_ascii_lowercase());
    }
    s
}
