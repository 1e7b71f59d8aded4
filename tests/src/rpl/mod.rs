//! Unbound's replay format (`.rpl`, read by its `testbound`): a scenario of canned
//! authoritative servers and client steps, parsed into [`Scenario`], and played against
//! the real binary by [`play`](mod@play). The grammar and its meaning follow Unbound's
//! `testcode/replay.h` and `testcode/testpkts.c`:
//!
//! * a config block (`server:`, `stub-zone:`, `forward-zone:` ... up to `CONFIG_END`),
//!   kept as `(key, value)` pairs, with the zones gathered into [`Config`];
//! * `RANGE_BEGIN start end` ... `RANGE_END`: while the current step is within
//!   `start..=end`, the servers at the range's `ADDRESS`es (all servers without one)
//!   answer with the first of its `ENTRY_BEGIN` ... `ENTRY_END` entries whose `MATCH`
//!   fits the query, the first range that has one winning;
//! * `STEP n KIND`: `QUERY` (a client query), `CHECK_ANSWER` (the reply it must get),
//!   `TIME_PASSES ELAPSE s`, and the outgoing-query scripting steps (`CHECK_OUT_QUERY`,
//!   `REPLY`, `TIMEOUT`, ...) kept by name.
//!
//! A parse error is one line: the file, the line number and what is wrong.

pub mod play;

use std::net::IpAddr;

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::{Name, Record};
use domain::rdata::ZoneRecordData;
use domain::zonefile::inplace::{Entry as ZoneEntry, Zonefile};

/// A record of an entry's section, as read from the scenario.
pub type ScenarioRecord = Record<Name<Bytes>, ZoneRecordData<Bytes, Name<Bytes>>>;

/// One parsed `.rpl` file.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The text after `SCENARIO_BEGIN`.
    pub title: String,
    /// The configuration block.
    pub config: Config,
    /// The canned servers' answers, in file order.
    pub ranges: Vec<Range>,
    /// The steps, in file order.
    pub steps: Vec<Step>,
}

/// The configuration block: every `key: value` line, and the zones it configures.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Every option, key without its colon, value without quotes, in file order.
    pub options: Vec<(String, String)>,
    /// `stub-zone:` blocks.
    pub stubs: Vec<Zone>,
    /// `forward-zone:` blocks.
    pub forwards: Vec<Zone>,
}

impl Config {
    /// The value of the last `key:` line, if any.
    pub fn get(&self, key: &str) -> Option<&str> {
        let mut found = self.options.iter().filter(|(k, _)| k == key);
        found.next_back().map(|(_, v)| v.as_str())
    }
}

/// A `stub-zone:` or `forward-zone:` block.
#[derive(Clone, Debug, Default)]
pub struct Zone {
    /// `name:`, as written.
    pub name: String,
    /// `stub-addr:` / `forward-addr:` addresses.
    pub addrs: Vec<IpAddr>,
    /// `stub-host:` / `forward-host:` names (the replay cannot map these).
    pub hosts: Vec<String>,
}

/// `RANGE_BEGIN start end`: answers given while the step is within `start..=end`.
#[derive(Clone, Debug)]
pub struct Range {
    pub start: u32,
    pub end: u32,
    /// The servers these answers are for; empty: every server.
    pub addresses: Vec<IpAddr>,
    pub entries: Vec<Entry>,
}

/// `ENTRY_BEGIN` ... `ENTRY_END`: a message with its matching rules.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Line of `ENTRY_BEGIN`.
    pub line: usize,
    /// `MATCH` keywords (`opcode`, `qtype`, `qname`, `subdomain`, `all`, `ttl`, `TCP`, ...),
    /// lower case.
    pub matches: Vec<String>,
    /// `ADJUST copy_id`: the reply takes the query's ID.
    pub copy_id: bool,
    /// `ADJUST copy_query`: the reply takes the query's question.
    pub copy_query: bool,
    /// `ADJUST sleep=MS`: the reply waits this long.
    pub sleep_ms: u64,
    /// `REPLY` header flags (`QR`, `AA`, `TC`, `RD`, `RA`, `AD`, `CD`), upper case.
    pub flags: Vec<String>,
    /// `REPLY DO`: an OPT record with the DO bit.
    pub dnssec_ok: bool,
    pub opcode: Opcode,
    pub rcode: Rcode,
    /// `SECTION QUESTION`: name, type, class.
    pub question: Vec<(Name<Bytes>, Rtype, Class)>,
    /// `SECTION ANSWER`, `AUTHORITY`, `ADDITIONAL`.
    pub sections: [Vec<ScenarioRecord>; 3],
}

impl Entry {
    fn new(line: usize) -> Entry {
        Entry {
            line,
            matches: Vec::new(),
            copy_id: false,
            copy_query: false,
            sleep_ms: 0,
            flags: Vec::new(),
            dnssec_ok: false,
            opcode: Opcode::QUERY,
            rcode: Rcode::NOERROR,
            question: Vec::new(),
            sections: Default::default(),
        }
    }

    /// Whether `MATCH` names `keyword` (lower case).
    pub fn matches(&self, keyword: &str) -> bool {
        self.matches.iter().any(|m| m == keyword)
    }

    /// Whether the `REPLY` line sets `flag` (upper case).
    pub fn flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// `STEP n KIND ...`.
#[derive(Clone, Debug)]
pub struct Step {
    pub number: u32,
    /// Line of the `STEP` line.
    pub line: usize,
    pub kind: StepKind,
}

/// What a step does.
#[derive(Clone, Debug)]
pub enum StepKind {
    /// A client query.
    Query(Entry),
    /// The reply a client query must get.
    CheckAnswer(Entry),
    /// `TIME_PASSES ELAPSE s`.
    TimePasses(f64),
    /// Any other step (`CHECK_OUT_QUERY`, `REPLY`, `TIMEOUT`, `TRAFFIC`, ...): its kind,
    /// and its entry when it has one.
    Other(String, Option<Entry>),
}

/// Parses a scenario; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, String> {
    Parser {
        file,
        lines: text.lines().enumerate().collect(),
        at: 0,
    }
    .scenario()
}

struct Parser<'a> {
    file: &'a str,
    lines: Vec<(usize, &'a str)>,
    at: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, msg: impl std::fmt::Display) -> String {
        format!("{}:{}: {msg}", self.file, line + 1)
    }

    /// The next line that is not blank or a comment: its number and its text without
    /// the comment.
    fn next(&mut self) -> Option<(usize, &'a str)> {
        while let Some(&(n, line)) = self.lines.get(self.at) {
            self.at += 1;
            let text = strip(line, ';').trim();
            if !text.is_empty() {
                return Some((n, text));
            }
        }
        None
    }

    fn scenario(mut self) -> Result<Scenario, String> {
        let config = self.config()?;
        let mut title = None;
        let mut ranges = Vec::new();
        let mut steps = Vec::new();
        while let Some((n, line)) = self.next() {
            let mut words = line.split_whitespace();
            match words.next().unwrap_or_default() {
                "SCENARIO_BEGIN" => title = Some(words.collect::<Vec<_>>().join(" ")),
                "SCENARIO_END" => {
                    let title =
                        title.ok_or_else(|| self.err(n, "SCENARIO_END without SCENARIO_BEGIN"))?;
                    return Ok(Scenario {
                        title,
                        config,
                        ranges,
                        steps,
                    });
                }
                "RANGE_BEGIN" => {
                    let start = self.number(n, words.next())?;
                    let end = self.number(n, words.next())?;
                    ranges.push(self.range(start, end)?);
                }
                "STEP" => {
                    let number = self.number(n, words.next())?;
                    let kind = words
                        .next()
                        .ok_or_else(|| self.err(n, "STEP without a kind"))?;
                    let kind = match kind {
                        "QUERY" => StepKind::Query(self.entry_after(n)?),
                        "CHECK_ANSWER" => StepKind::CheckAnswer(self.entry_after(n)?),
                        "TIME_PASSES" => {
                            let (Some("ELAPSE"), Some(s)) = (words.next(), words.next()) else {
                                return Err(self.err(n, "TIME_PASSES without ELAPSE seconds"));
                            };
                            let s = s
                                .parse()
                                .map_err(|_| self.err(n, format!("bad seconds {s:?}")))?;
                            StepKind::TimePasses(s)
                        }
                        "CHECK_OUT_QUERY" | "REPLY" => {
                            StepKind::Other(kind.to_string(), Some(self.entry_after(n)?))
                        }
                        other => StepKind::Other(other.to_string(), None),
                    };
                    steps.push(Step {
                        number,
                        line: n + 1,
                        kind,
                    });
                }
                other => return Err(self.err(n, format!("unexpected {other:?}"))),
            }
        }
        Err(self.err(self.lines.len().saturating_sub(1), "no SCENARIO_END"))
    }

    fn number(&self, line: usize, word: Option<&str>) -> Result<u32, String> {
        let word = word.ok_or_else(|| self.err(line, "a number is missing"))?;
        word.parse()
            .map_err(|_| self.err(line, format!("bad number {word:?}")))
    }

    fn config(&mut self) -> Result<Config, String> {
        let mut config = Config::default();
        // The zone block being read: true for a stub, false for a forward.
        let mut zone: Option<bool> = None;
        // Inside TEMPFILE_CONTENTS ... TEMPFILE_END (a file testbound writes): skipped.
        let mut tempfile = false;
        while let Some((n, line)) = self.next() {
            let line = strip(line, '#').trim();
            if line == "CONFIG_END" {
                return Ok(config);
            }
            let keyword = line.split_whitespace().next().unwrap_or_default();
            if keyword.starts_with("TEMPFILE_") {
                tempfile = keyword == "TEMPFILE_CONTENTS";
                config.options.push((
                    keyword.to_string(),
                    line[keyword.len()..].trim().to_string(),
                ));
                continue;
            }
            if line.is_empty() || tempfile {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(self.err(n, format!("not a config line: {line:?}")));
            };
            let key = key.trim().to_string();
            // `#` starts a comment in Unbound's configuration (outside quotes).
            let value = strip(value, '#').trim().trim_matches('"').to_string();
            match key.as_str() {
                "stub-zone" => {
                    config.stubs.push(Zone::default());
                    zone = Some(true);
                }
                "forward-zone" => {
                    config.forwards.push(Zone::default());
                    zone = Some(false);
                }
                "server" | "remote-control" | "auth-zone" | "python" | "dynlib" => zone = None,
                _ => {}
            }
            let current = match zone {
                Some(true) => config.stubs.last_mut(),
                Some(false) => config.forwards.last_mut(),
                None => None,
            };
            if let Some(current) = current {
                match key.as_str() {
                    "name" => current.name = value.clone(),
                    "stub-addr" | "forward-addr" => {
                        let addr = value.split(['@', '#']).next().unwrap_or_default().trim();
                        let ip = addr
                            .parse()
                            .map_err(|_| self.err(n, format!("bad address {value:?}")))?;
                        current.addrs.push(ip);
                    }
                    "stub-host" | "forward-host" => current.hosts.push(value.clone()),
                    _ => {}
                }
            }
            config.options.push((key, value));
        }
        Err(self.err(self.lines.len().saturating_sub(1), "no CONFIG_END"))
    }

    fn range(&mut self, start: u32, end: u32) -> Result<Range, String> {
        let mut range = Range {
            start,
            end,
            addresses: Vec::new(),
            entries: Vec::new(),
        };
        while let Some((n, line)) = self.next() {
            let mut words = line.split_whitespace();
            match words.next().unwrap_or_default() {
                "RANGE_END" => return Ok(range),
                "ADDRESS" => {
                    let addr = words.next().unwrap_or_default();
                    let addr = addr.split(['@', '#']).next().unwrap_or_default();
                    let ip = addr
                        .parse()
                        .map_err(|_| self.err(n, format!("bad address {addr:?}")))?;
                    range.addresses.push(ip);
                }
                "ENTRY_BEGIN" => range.entries.push(self.entry(n)?),
                other => return Err(self.err(n, format!("unexpected {other:?} in a range"))),
            }
        }
        Err(self.err(self.lines.len().saturating_sub(1), "no RANGE_END"))
    }

    /// The entry that must follow the step on line `step`.
    fn entry_after(&mut self, step: usize) -> Result<Entry, String> {
        match self.next() {
            Some((n, "ENTRY_BEGIN")) => self.entry(n),
            _ => Err(self.err(step, "the step needs an ENTRY_BEGIN after it")),
        }
    }

    fn entry(&mut self, begin: usize) -> Result<Entry, String> {
        let mut entry = Entry::new(begin + 1);
        // The section being read: 0 question, 1 answer, 2 authority, 3 additional.
        let mut section = None;
        let mut records: [String; 3] = Default::default();
        let mut record_lines: [Vec<usize>; 3] = Default::default();
        while let Some((n, line)) = self.next() {
            let mut words = line.split_whitespace();
            let first = words.next().unwrap_or_default();
            match first {
                "ENTRY_END" => {
                    for (i, text) in records.iter().enumerate() {
                        entry.sections[i] = records_of(text).map_err(|e| {
                            let line = record_lines[i].first().copied().unwrap_or(n);
                            self.err(line, e)
                        })?;
                    }
                    return Ok(entry);
                }
                "MATCH" => entry.matches.extend(words.map(str::to_ascii_lowercase)),
                "ADJUST" => {
                    for word in words {
                        match word {
                            "copy_id" => entry.copy_id = true,
                            "copy_query" => entry.copy_query = true,
                            _ if word.starts_with("sleep=") => {
                                let ms = word["sleep=".len()..].parse();
                                entry.sleep_ms =
                                    ms.map_err(|_| self.err(n, format!("bad {word:?}")))?;
                            }
                            _ => return Err(self.err(n, format!("ADJUST {word} is not supported"))),
                        }
                    }
                }
                "REPLY" => {
                    for word in words {
                        match word {
                            "QR" | "AA" | "TC" | "RD" | "RA" | "AD" | "CD" => {
                                entry.flags.push(word.into())
                            }
                            "DO" => entry.dnssec_ok = true,
                            _ => {
                                if let Ok(rcode) = word.parse::<Rcode>() {
                                    entry.rcode = rcode;
                                } else if let Ok(opcode) = word.parse::<Opcode>() {
                                    entry.opcode = opcode;
                                } else if word == "NOTIMPL" {
                                    entry.rcode = Rcode::NOTIMP;
                                } else {
                                    return Err(self.err(n, format!("unknown REPLY word {word:?}")));
                                }
                            }
                        }
                    }
                }
                "SECTION" => {
                    section = Some(match words.next() {
                        Some("QUESTION") => 0,
                        Some("ANSWER") => 1,
                        Some("AUTHORITY") => 2,
                        Some("ADDITIONAL") => 3,
                        other => return Err(self.err(n, format!("unknown section {other:?}"))),
                    })
                }
                _ if first.starts_with("HEX_")
                    || first == "EXTRA_PACKET"
                    || first.starts_with('$') =>
                {
                    return Err(self.err(n, format!("{first} is not supported")));
                }
                _ => match section {
                    None => return Err(self.err(n, format!("unexpected {first:?} in an entry"))),
                    Some(0) => entry
                        .question
                        .push(question(line).map_err(|e| self.err(n, e))?),
                    Some(i) => {
                        let words: Vec<&str> =
                            line.split_whitespace().map(algorithm_number).collect();
                        records[i - 1].push_str(&words.join(" "));
                        records[i - 1].push('\n');
                        record_lines[i - 1].push(n);
                    }
                },
            }
        }
        Err(self.err(begin, "no ENTRY_END"))
    }
}

/// DNSSEC algorithm mnemonics (which `domain`'s scanner does not read) as numbers;
/// any other word as it is.
fn algorithm_number(word: &str) -> &str {
    const ALGORITHMS: [(&str, &str); 10] = [
        ("RSAMD5", "1"),
        ("DSA", "3"),
        ("RSASHA1", "5"),
        ("DSA-NSEC3-SHA1", "6"),
        ("RSASHA1-NSEC3-SHA1", "7"),
        ("RSASHA256", "8"),
        ("RSASHA512", "10"),
        ("ECDSAP256SHA256", "13"),
        ("ECDSAP384SHA384", "14"),
        ("ED25519", "15"),
    ];
    ALGORITHMS
        .iter()
        .find(|(m, _)| *m == word)
        .map_or(word, |(_, n)| n)
}

/// `line` up to its comment, which starts with `mark` outside quotes (TXT data).
fn strip(line: &str, mark: char) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == mark && !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `name [class] type`.
fn question(line: &str) -> Result<(Name<Bytes>, Rtype, Class), String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (owner, class, rtype) = match words[..] {
        [owner, rtype] => (owner, "IN", rtype),
        [owner, class, rtype] => (owner, class, rtype),
        // A TTL is allowed, and ignored.
        [owner, ttl, class, rtype] if ttl.parse::<u32>().is_ok() => (owner, class, rtype),
        _ => return Err(format!("bad question {line:?}")),
    };
    let name = Name::bytes_from_str(owner).map_err(|e| format!("bad name {owner:?}: {e}"))?;
    let rtype = rtype.parse().map_err(|_| format!("bad type {rtype:?}"))?;
    let class = class.parse().map_err(|_| format!("bad class {class:?}"))?;
    Ok((name, rtype, class))
}

/// The records of one section, in master-file form (testpkts reads them with a default
/// TTL of 3600 and the root as origin).
fn records_of(text: &str) -> Result<Vec<ScenarioRecord>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut zone = Zonefile::from(format!("$TTL 3600\n$ORIGIN .\n{text}").as_str());
    zone.set_default_class(Class::IN);
    let mut out = Vec::new();
    while let Some(entry) = zone.next_entry().map_err(|e| format!("bad record: {e}"))? {
        match entry {
            ZoneEntry::Record(record) => {
                out.push(domain::base::name::FlattenInto::flatten_into(record))
            }
            ZoneEntry::Include { .. } => return Err("$INCLUDE in a scenario".into()),
        }
    }
    Ok(out)
}
