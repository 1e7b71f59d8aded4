//! Reading RFC 1035 master files with `domain`'s zone file scanner.
//!
//! The core reads no files: the caller passes the text, and a callback that returns
//! the text of each `$INCLUDE`d file. Every error names the file and the line.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};
use domain::base::name::FlattenInto;
use domain::base::rdata::{ComposeRecordData, ParseRecordData};
use domain::base::{Name, ParsedName, Record, RecordData};
use domain::dep::octseq::Parser;
use domain::rdata::{AllRecordData, ZoneRecordData};
use domain::zonefile::inplace::{Entry, Zonefile};

use super::entries::entries;
use super::index::Zone;
use super::presentation::{self, Reader, Token};
use crate::record::Rr;

/// How deep `$INCLUDE`s may nest.
const MAX_INCLUDE_DEPTH: usize = 8;

/// A zone file that could not be loaded: `file:line: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The file, as named to the loader (an `$INCLUDE`d file names itself).
    pub file: String,
    /// 1-based; `None` when the problem is not on one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl LoadError {
    fn new(file: &str, line: Option<usize>, message: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// Returns the text of an included file: called with the path as written in the
/// `$INCLUDE` line and the name of the including file; returns the included file's
/// name (for messages and nested includes) and its text, or why it cannot be read.
pub type Include<'a> = dyn FnMut(&str, &str) -> Result<(String, String), String> + 'a;

/// A record and where it was written.
struct Placed {
    rr: Rr,
    file: usize,
    line: Option<usize>,
}

/// Loads a zone from the text of `file`. Its origin is the owner of its one SOA record.
///
/// Relative names need an origin: `$ORIGIN`, or an SOA with an absolute owner as the
/// first record (its owner then becomes the origin).
pub fn load_zone(file: &str, text: &str, include: &mut Include<'_>) -> Result<Zone, LoadError> {
    let mut files = vec![file.to_string()];
    let mut placed = Vec::new();
    read_file(0, text, None, 0, include, &mut files, &mut placed)?;
    let at =
        |p: &Placed, files: &[String], msg: String| LoadError::new(&files[p.file], p.line, msg);
    let mut soas = placed.iter().filter(|p| p.rr.rtype() == Rtype::SOA);
    let Some(soa) = soas.next() else {
        return Err(LoadError::new(
            file,
            None,
            "no SOA record: a zone needs exactly one, at its apex",
        ));
    };
    if let Some(second) = soas.next() {
        return Err(at(
            second,
            &files,
            format!(
                "a second SOA record (the first, for {}, is at {}:{}): a zone has exactly one",
                soa.rr.owner().fmt_with_dot(),
                files[soa.file],
                soa.line.unwrap_or(0)
            ),
        ));
    }
    let origin = soa.rr.owner().clone();
    let mut records = Vec::with_capacity(placed.len());
    for p in &placed {
        if !p.rr.owner().ends_with(&origin) {
            return Err(at(
                p,
                &files,
                format!(
                    "{} is outside the zone {} (the SOA owner)",
                    p.rr.owner().fmt_with_dot(),
                    origin.fmt_with_dot()
                ),
            ));
        }
        if p.rr.class() != Class::IN {
            return Err(at(
                p,
                &files,
                format!("class {} is not served: only IN", p.rr.class()),
            ));
        }
        if p.rr.rtype() != Rtype::SOA {
            records.push(p.rr.clone());
        }
    }
    check_cname_alone(&placed, &files)?;
    Ok(Zone::build(soa.rr.clone(), records, file.to_string()))
}

/// RFC 1034 3.6.2: a CNAME owner has no other data.
fn check_cname_alone(placed: &[Placed], files: &[String]) -> Result<(), LoadError> {
    use std::collections::HashMap;
    // Per lowercase owner: (has CNAME, has other data, index of the record that decided it).
    let mut seen: HashMap<Vec<u8>, (bool, bool)> = HashMap::new();
    for p in placed {
        let key = super::index::Key::new(p.rr.owner()).full().to_vec();
        let entry = seen.entry(key).or_default();
        let cname = p.rr.rtype() == Rtype::CNAME;
        let conflict = if cname { entry.0 || entry.1 } else { entry.0 };
        if conflict {
            return Err(LoadError::new(
                &files[p.file],
                p.line,
                format!(
                    "{} has a CNAME and other data (RFC 1034 3.6.2 allows only one CNAME, alone)",
                    p.rr.owner().fmt_with_dot()
                ),
            ));
        }
        if cname {
            entry.0 = true;
        } else {
            entry.1 = true;
        }
    }
    Ok(())
}

fn read_file(
    file: usize,
    text: &str,
    origin: Option<Name<Bytes>>,
    depth: usize,
    include: &mut Include<'_>,
    files: &mut Vec<String>,
    out: &mut Vec<Placed>,
) -> Result<(), LoadError> {
    // Where each entry that the scanner hands out starts: its line, and the offset of its
    // owner (the text's end for a blank owner).
    let lines: Vec<(usize, usize)> = entries(text)
        .filter(|e| !e.is_silent_directive())
        .map(|e| {
            (
                e.line,
                if e.has_owner {
                    e.tokens[0].1.start
                } else {
                    text.len()
                },
            )
        })
        .collect();
    // Without an origin, the first record's owner, if absolute, is the origin
    // (so `example.org. SOA ns1 host ...` may use relative names from its rdata on).
    let origin = origin.or_else(|| first_owner(text, &lines));
    let text = generic_forms(text, origin.clone())
        .map_err(|(line, msg)| LoadError::new(&files[file], Some(line), msg))?;
    let mut zf = Zonefile::from(text.as_ref());
    if !text.ends_with('\n') {
        zf.extend_from_slice(b"\n");
    }
    zf.set_default_class(Class::IN);
    if let Some(origin) = origin {
        zf.set_origin(origin);
    }
    let mut index = 0;
    loop {
        let entry = match next_entry(&mut zf) {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(()),
            Err(e) => return Err(scanner_error(&files[file], &e)),
        };
        let line = lines.get(index).map(|&(line, _)| line);
        index += 1;
        match entry {
            Entry::Record(record) => {
                let record: Record<Name<Bytes>, ZoneRecordData<Bytes, Name<Bytes>>> =
                    record.flatten_into();
                let rr = to_rr(&record).map_err(|msg| LoadError::new(&files[file], line, msg))?;
                out.push(Placed { rr, file, line });
            }
            Entry::Include { path, origin } => {
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(LoadError::new(
                        &files[file],
                        line,
                        format!("$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep"),
                    ));
                }
                let path = String::from_utf8_lossy(path.as_slice()).into_owned();
                let (name, inner) = include(&path, &files[file])
                    .map_err(|msg| LoadError::new(&files[file], line, msg))?;
                let origin = origin.or_else(|| zf.origin().ok());
                files.push(name);
                let inner_file = files.len() - 1;
                read_file(inner_file, &inner, origin, depth + 1, include, files, out)?;
            }
        }
    }
}

/// The owner of the first entry, when it is an absolute name.
fn first_owner(text: &str, lines: &[(usize, usize)]) -> Option<Name<Bytes>> {
    let &(_, offset) = lines.first()?;
    let token = text[offset..].split_ascii_whitespace().next()?;
    if !token.ends_with('.') || token.starts_with('$') {
        return None;
    }
    Name::bytes_from_str(token).ok()
}

/// `domain` errors read `LINE:COL: message`; ours read `FILE:LINE: message`.
/// The scanner's next entry. domain 0.12.3's scanner can panic on some malformed input
/// (an index out of bounds in `convert_charstr`, found by fuzzing); such input is a bad
/// file like any other, so the panic is caught, kept off stderr, and reported as an error.
fn next_entry(zf: &mut Zonefile) -> Result<Option<Entry>, String> {
    quiet_scanner_panics();
    SCANNING.with(|s| s.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| zf.next_entry()));
    SCANNING.with(|s| s.set(false));
    match result {
        Ok(Ok(entry)) => Ok(entry),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("malformed record (the zone file scanner gave up)".to_string()),
    }
}

thread_local! {
    /// Set while this thread is inside the zone file scanner.
    static SCANNING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once per process, a panic hook that says nothing for a panic inside the
/// scanner on the thread that is scanning, and hands every other panic to the hook that
/// was there before. Swapping the process-wide hook around each call instead would also
/// silence a panic on any other thread (a worker) while a reload scans.
fn quiet_scanner_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !SCANNING.with(|s| s.get()) {
                previous(info);
            }
        }));
    });
}

fn scanner_error(file: &str, text: &str) -> LoadError {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(line), Some(col), Some(msg)) if line.parse::<usize>().is_ok() => {
            let mut line: usize = line.parse().unwrap_or(0);
            // A token that ends its line is reported at column 1 of the next one.
            if col.trim() == "1" && line > 1 {
                line -= 1;
            }
            LoadError::new(file, Some(line), msg.trim())
        }
        _ => LoadError::new(file, None, text),
    }
}

/// A zone file record as the owned record type answers use (through the wire form,
/// which `domain` offers between its two record data enums).
fn to_rr(record: &Record<Name<Bytes>, ZoneRecordData<Bytes, Name<Bytes>>>) -> Result<Rr, String> {
    let data = record.data();
    if let Some(why) = presentation::refused(data.rtype()) {
        return Err(format!("type {} cannot be in a zone: {why}", data.rtype()));
    }
    let mut wire = Vec::new();
    data.compose_rdata(&mut wire)
        .map_err(|_| "record data too long".to_string())?;
    let wire = Bytes::from(wire);
    let mut parser = Parser::from_ref(&wire);
    let parsed = AllRecordData::<Bytes, ParsedName<Bytes>>::parse_rdata(data.rtype(), &mut parser)
        .map_err(|e| format!("unreadable {} record data: {e}", data.rtype()))?
        .ok_or_else(|| format!("unsupported record type {}", data.rtype()))?;
    // A known type in the generic form must be exactly its data (RFC 3597 5).
    if parser.remaining() != 0 {
        return Err(format!(
            "{} record data has {} octets too many",
            data.rtype(),
            parser.remaining()
        ));
    }
    let data: AllRecordData<Bytes, Name<Bytes>> = parsed.flatten_into();
    Ok(Record::new(
        record.owner().clone(),
        record.class(),
        record.ttl(),
        data,
    ))
}

/// `text` with every record whose type `domain`'s scanner cannot read in presentation form
/// rewritten into the RFC 3597 generic form, which it reads for any type (line breaks kept,
/// so lines stay where they were); refuses meta types and types no reader knows.
fn generic_forms<'t>(
    text: &'t str,
    mut origin: Option<Name<Bytes>>,
) -> Result<Cow<'t, str>, (usize, String)> {
    let mut out = String::new();
    let mut copied = 0;
    for entry in entries(text) {
        let tokens = &entry.tokens;
        if entry.has_owner && tokens[0].0.text.eq_ignore_ascii_case("$ORIGIN") {
            if let Some((name, _)) = tokens.get(1) {
                origin = presentation::absolute(name.text, origin.as_ref());
            }
            continue;
        }
        if entry.has_owner && tokens[0].0.text.starts_with('$') {
            continue;
        }
        // [owner] [TTL] [class] type, TTL and class in either order.
        let mut at = usize::from(entry.has_owner);
        while at < tokens.len()
            && at < usize::from(entry.has_owner) + 2
            && (tokens[at].0.text.bytes().all(|b| b.is_ascii_digit())
                || Class::from_str(tokens[at].0.text).is_ok())
        {
            at += 1;
        }
        let Some((type_token, type_span)) = tokens.get(at) else {
            continue;
        };
        let Ok(rtype) = Rtype::from_str(type_token.text) else {
            continue; // The scanner says what is wrong.
        };
        if let Some(why) = presentation::refused(rtype) {
            return Err((
                entry.line,
                format!("type {rtype} cannot be in a zone: {why}"),
            ));
        }
        let data = &tokens[at + 1..];
        if data
            .first()
            .is_some_and(|(t, _)| !t.quoted && t.text == "\\#")
        {
            continue;
        }
        match presentation::reader(rtype) {
            Reader::Scanner => continue,
            Reader::GenericOnly => {
                return Err((
                    entry.line,
                    format!(
                        "type {rtype} is not supported in presentation form; \
                         write it as RFC 3597 generic data (\\# len hex)"
                    ),
                ))
            }
            Reader::Here => {}
        }
        if data.iter().any(|(_, span)| span.is_empty()) {
            return Err((
                entry.line,
                format!("{rtype}: a quoted string is not closed"),
            ));
        }
        let values: Vec<Token<'_>> = data.iter().map(|(t, _)| *t).collect();
        let origin = origin.clone().unwrap_or_else(Name::root_bytes);
        let rdata = presentation::rdata(rtype, &values, &origin)
            .map_err(|msg| (entry.line, format!("{rtype}: {msg}")))?;
        // Only the tokens change: parentheses, comments and line breaks stay where they are.
        out.push_str(&text[copied..type_span.start]);
        out.push_str(&format!(
            "TYPE{} {}",
            rtype.to_int(),
            presentation::generic(&rdata)
        ));
        copied = type_span.end;
        for (_, span) in data {
            out.push_str(&text[copied..span.start]);
            copied = span.end;
        }
    }
    if out.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    out.push_str(&text[copied..]);
    Ok(Cow::Owned(out))
}
