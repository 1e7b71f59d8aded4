//! Reading RFC 1035 master files with `domain`'s zone file scanner.
//!
//! The core reads no files: the caller passes the text, and a callback that returns
//! the text of each `$INCLUDE`d file. Every error names the file and the line.

use std::fmt;

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};
use domain::base::name::FlattenInto;
use domain::base::rdata::{ComposeRecordData, ParseRecordData};
use domain::base::{Name, ParsedName, Record, RecordData};
use domain::dep::octseq::Parser;
use domain::rdata::{AllRecordData, ZoneRecordData};
use domain::zonefile::inplace::{Entry, Zonefile};

use super::index::Zone;
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
    let lines = entry_lines(text);
    let mut zf = Zonefile::from(text);
    if !text.ends_with('\n') {
        zf.extend_from_slice(b"\n");
    }
    zf.set_default_class(Class::IN);
    // Without an origin, the first record's owner, if absolute, is the origin
    // (so `example.org. SOA ns1 host ...` may use relative names from its rdata on).
    let origin = origin.or_else(|| first_owner(text, &lines));
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
    let mut wire = Vec::new();
    data.compose_rdata(&mut wire)
        .map_err(|_| "record data too long".to_string())?;
    let wire = Bytes::from(wire);
    let mut parser = Parser::from_ref(&wire);
    let parsed = AllRecordData::<Bytes, ParsedName<Bytes>>::parse_rdata(data.rtype(), &mut parser)
        .map_err(|e| format!("unreadable {} record data: {e}", data.rtype()))?
        .ok_or_else(|| format!("unsupported record type {}", data.rtype()))?;
    let data: AllRecordData<Bytes, Name<Bytes>> = parsed.flatten_into();
    Ok(Record::new(
        record.owner().clone(),
        record.class(),
        record.ttl(),
        data,
    ))
}

/// The line on which each entry that the scanner hands out (records and `$INCLUDE`s,
/// not `$ORIGIN`/`$TTL`, blank lines or comments) starts, and the byte offset of its
/// first token (when the entry does not start with a blank owner), in order.
fn entry_lines(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut line = 1;
    let mut depth = 0usize;
    let (mut in_quote, mut in_comment, mut escaped) = (false, false, false);
    // The current entry: its first line and whether it is a directive other than $INCLUDE.
    let mut entry: Option<(usize, usize, bool)> = None;
    let mut line_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            in_comment = false;
            escaped = false;
            line += 1;
            line_start = i + 1;
            if depth == 0 && !in_quote {
                if let Some((start, offset, skip)) = entry.take() {
                    if !skip {
                        out.push((start, offset));
                    }
                }
            }
            continue;
        }
        if in_comment {
            continue;
        }
        if escaped {
            escaped = false;
            continue;
        }
        if in_quote {
            match b {
                b'\\' => escaped = true,
                b'"' => in_quote = false,
                _ => {}
            }
            continue;
        }
        match b {
            b';' => in_comment = true,
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b' ' | b'\t' | b'\r' => {}
            _ => {
                if b == b'"' {
                    in_quote = true;
                } else if b == b'\\' {
                    escaped = true;
                }
                if entry.is_none() {
                    let directive = b == b'$'
                        && !bytes[i..]
                            .get(..8)
                            .is_some_and(|d| d.eq_ignore_ascii_case(b"$INCLUDE"));
                    // A blank owner (the entry starts indented) has no owner token.
                    let offset = if i == line_start { i } else { text.len() };
                    entry = Some((line, offset, directive));
                }
            }
        }
    }
    if let Some((start, offset, false)) = entry {
        out.push((start, offset));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::entry_lines;

    #[test]
    fn entry_lines_skip_directives_comments_and_continuations() {
        let text = "$ORIGIN a.\n; c\n@ SOA ns h ( 1 ; x\n 2 3 4 5 )\n\nwww A 1.2.3.4\n$INCLUDE f\n t TXT \"a;(\" \n";
        let lines: Vec<usize> = entry_lines(text).iter().map(|e| e.0).collect();
        assert_eq!(lines, vec![3, 6, 7, 8]);
        assert_eq!(entry_lines(text)[1].1, text.find("www").unwrap());
    }
}
