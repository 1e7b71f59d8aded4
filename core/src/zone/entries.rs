//! A master file split into its entries (RFC 1035 5.1) and their tokens: where each
//! starts, for error lines and for the record data that `presentation` reads.

use std::ops::Range;

use super::presentation::Token;

/// One entry: a record or a `$` directive, possibly spanning lines in parentheses.
pub(super) struct EntryText<'a> {
    /// 1-based line of its first token.
    pub line: usize,
    /// Whether it starts in column 1 (has an owner, or is a directive).
    pub has_owner: bool,
    /// Its tokens, with the bytes of the text each covers (quotes included; none for a
    /// quoted string that is not closed).
    pub tokens: Vec<(Token<'a>, Range<usize>)>,
}

impl EntryText<'_> {
    /// A `$` directive other than `$INCLUDE` (the scanner hands out no entry for those).
    pub fn is_silent_directive(&self) -> bool {
        self.has_owner
            && self.tokens.first().is_some_and(|(t, _)| {
                t.text.starts_with('$') && !t.text.eq_ignore_ascii_case("$INCLUDE")
            })
    }
}

/// The entries of `text`, in order; blank and comment-only lines are none. An iterator,
/// so that a large zone's tokens are never all held at once.
pub(super) fn entries(text: &str) -> Entries<'_> {
    Entries {
        text,
        i: 0,
        line: 1,
        line_start: 0,
        depth: 0,
    }
}

/// The iterator [`entries`] returns.
pub(super) struct Entries<'a> {
    text: &'a str,
    i: usize,
    line: usize,
    line_start: usize,
    depth: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = EntryText<'a>;

    fn next(&mut self) -> Option<EntryText<'a>> {
        let (text, bytes) = (self.text, self.text.as_bytes());
        let mut current: Option<EntryText<'a>> = None;
        while self.i < bytes.len() {
            let b = bytes[self.i];
            match b {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                    self.line_start = self.i;
                    if self.depth == 0 && current.is_some() {
                        return current;
                    }
                }
                b';' => {
                    while self.i < bytes.len() && bytes[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                b'(' => {
                    self.depth += 1;
                    self.i += 1;
                }
                b')' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.i += 1;
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                _ => {
                    let start = self.i;
                    let entry = current.get_or_insert_with(|| EntryText {
                        line: self.line,
                        has_owner: start == self.line_start,
                        tokens: Vec::new(),
                    });
                    if b == b'"' {
                        let Some(end) = quoted_end(bytes, start + 1) else {
                            // Not closed: a token that covers no bytes, which readers refuse.
                            let token = Token {
                                text: &text[start + 1..],
                                quoted: true,
                            };
                            entry.tokens.push((token, start..start));
                            self.i = bytes.len();
                            break;
                        };
                        // A quoted string may span lines.
                        self.line += bytes[start..end].iter().filter(|&&c| c == b'\n').count();
                        let token = Token {
                            text: &text[start + 1..end - 1],
                            quoted: true,
                        };
                        entry.tokens.push((token, start..end));
                        self.i = end;
                    } else {
                        let end = plain_end(bytes, start);
                        let token = Token {
                            text: &text[start..end],
                            quoted: false,
                        };
                        entry.tokens.push((token, start..end));
                        self.i = end;
                    }
                }
            }
        }
        current
    }
}

/// Past the closing quote of a string whose text starts at `i`; `None` when it is not closed.
fn quoted_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The end of an unquoted token starting at `i`: a blank, a parenthesis, a comment or a
/// quote ends it; a backslash escapes the next character.
fn plain_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            // An escaped line break would hide the end of the entry: the backslash stays
            // alone, and reading it fails.
            b'\\' if bytes.get(i + 1) == Some(&b'\n') => return i + 1,
            b'\\' => i += 2,
            b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';' | b'"' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::entries;

    #[test]
    fn entries_skip_comments_and_join_continuations() {
        let text = "$ORIGIN a.\n; c\n@ SOA ns h ( 1 ; x\n 2 3 4 5 )\n\nwww A 1.2.3.4\n$INCLUDE f\n t TXT \"a;( b\" \n";
        let all: Vec<_> = entries(text).collect();
        let lines: Vec<usize> = all.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 3, 6, 7, 8]);
        assert!(all[0].is_silent_directive() && !all[3].is_silent_directive());
        assert_eq!(all[1].tokens.len(), 9);
        assert_eq!(all[2].tokens[0].1.start, text.find("www").unwrap());
        assert!(!all[4].has_owner);
        let last = &all[4].tokens[2].0;
        assert_eq!((last.text, last.quoted), ("a;( b", true));
    }
}
