//! Reading journal entries back: every field bounds-checked, every entry's checksum
//! verified, one error line with the entry's offset otherwise.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::encode::*;
use super::{Entry, Header, Input, JournalError, Record, RecordedJob, MAGIC, MAX_ENTRY, VERSION};
use crate::action::{Action, ConnId, Origin, Token, UpstreamError, Via};
use crate::config::Config;
use crate::lookup::{LookupId, Payload};

/// Reads fields from one entry body; every read is bounds-checked.
struct Fields<'a> {
    bytes: &'a [u8],
}

type Parse<T> = Result<T, String>;

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Parse<&'a [u8]> {
        if self.bytes.len() < n {
            return Err("entry ends inside a field".into());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Parse<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Parse<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Parse<u32> {
        let mut a = [0; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Parse<u64> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn usize(&mut self) -> Parse<usize> {
        usize::try_from(self.u64()?).map_err(|_| "a count out of range".to_string())
    }
    fn blob(&mut self) -> Parse<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Parse<&'a str> {
        std::str::from_utf8(self.blob()?).map_err(|_| "a text is not UTF-8".to_string())
    }
    fn addr(&mut self) -> Parse<SocketAddr> {
        let ip = match self.u8()? {
            4 => {
                let b = self.take(4)?;
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
            6 => {
                let mut a = [0; 16];
                a.copy_from_slice(self.take(16)?);
                IpAddr::V6(Ipv6Addr::from(a))
            }
            f => return Err(format!("unknown address family {f}")),
        };
        Ok(SocketAddr::new(ip, self.u16()?))
    }
    fn origin(&mut self) -> Parse<Origin> {
        match self.u8()? {
            0 => Ok(Origin::Udp {
                listener: self.u32()? as usize,
                peer: self.addr()?,
            }),
            1 => Ok(Origin::Tcp(ConnId(self.u64()?))),
            t => Err(format!("unknown origin {t}")),
        }
    }
    fn end(&self) -> Parse<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err("entry has bytes after its fields".into())
        }
    }
}

fn parse_header(body: &[u8]) -> Parse<Header> {
    let mut f = Fields { bytes: body };
    if f.u8()? != K_HEADER {
        return Err("the first entry is not a header".into());
    }
    let names_version = f.str()?.to_string();
    let workers = f.u16()?;
    if workers == 0 {
        return Err("the header records no worker".into());
    }
    let mut config = Config::default();
    for _ in 0..f.u16()? {
        let key = f.str()?;
        let v = f.u64()?;
        set_config(&mut config, key, v)?;
    }
    let settings = f.blob()?.to_vec();
    let mut files = Vec::new();
    for _ in 0..f.u16()? {
        let path = f.str()?.to_string();
        let text = f.str()?.to_string();
        files.push((path, text));
    }
    f.end()?;
    Ok(Header {
        names_version,
        workers,
        config,
        settings,
        files,
    })
}

fn parse_entry(body: &[u8]) -> Parse<Entry<'_>> {
    let mut f = Fields { bytes: body };
    let kind = f.u8()?;
    let worker = f.u16()?;
    let at = Duration::from_nanos(f.u64()?);
    let input = |i| Record::Input(i);
    let action = |a| Record::Action(a);
    let record = match kind {
        K_START => {
            let mut seed = [0; 32];
            seed.copy_from_slice(f.take(32)?);
            input(Input::Start { seed })
        }
        K_CLIENT => input(Input::Client {
            from: f.origin()?,
            bytes: f.blob()?,
        }),
        K_TCP_OPEN => input(Input::TcpOpen {
            conn: ConnId(f.u64()?),
            peer: f.addr()?,
        }),
        K_TCP_WRITTEN => input(Input::TcpWritten {
            conn: ConnId(f.u64()?),
            bytes: f.usize()?,
        }),
        K_TCP_EOF => input(Input::TcpEof {
            conn: ConnId(f.u64()?),
        }),
        K_TCP_CLOSED => input(Input::TcpClosed {
            conn: ConnId(f.u64()?),
        }),
        K_UPSTREAM => input(Input::Upstream {
            token: Token(f.u64()?),
            from: f.addr()?,
            bytes: f.blob()?,
        }),
        K_UPSTREAM_ERROR => input(Input::UpstreamError {
            token: Token(f.u64()?),
            err: match f.u8()? {
                0 => UpstreamError::Bind,
                1 => UpstreamError::Io,
                e => return Err(format!("unknown upstream error {e}")),
            },
        }),
        K_TIMEOUT => input(Input::Timeout),
        K_LOOKUP => {
            let id = f.u64()?;
            let outcome = match f.u8()? {
                0 => None,
                1 => Some(f.blob()?),
                e => return Err(format!("unknown lookup outcome flag {e}")),
            };
            input(Input::Lookup { id, outcome })
        }
        K_STOPPED => Record::Stopped(f.str()?),
        K_REPLY => action(Action::Reply {
            to: f.origin()?,
            bytes: f.blob()?.to_vec(),
        }),
        K_SEND_UPSTREAM => {
            let token = Token(f.u64()?);
            let to = f.addr()?;
            let via = match (f.u8()?, f.u16()?) {
                (0, local_port) => Via::Udp { local_port },
                (1, _) => Via::Tcp,
                (v, _) => return Err(format!("unknown upstream transport {v}")),
            };
            action(Action::SendUpstream {
                token,
                to,
                via,
                bytes: f.blob()?.to_vec(),
            })
        }
        K_CLOSE_UPSTREAM => action(Action::CloseUpstream {
            token: Token(f.u64()?),
        }),
        K_CLOSE_CLIENT => action(Action::CloseClient {
            conn: ConnId(f.u64()?),
        }),
        K_PAUSE_READ => action(Action::PauseRead {
            conn: ConnId(f.u64()?),
        }),
        K_RESUME_READ => action(Action::ResumeRead {
            conn: ConnId(f.u64()?),
        }),
        K_LOOKUP_JOB => action(Action::Lookup {
            id: LookupId(f.u64()?),
            job: Payload::new(RecordedJob),
        }),
        K_CANCEL_LOOKUP => action(Action::CancelLookup {
            id: LookupId(f.u64()?),
        }),
        k => return Err(format!("unknown entry kind {k}")),
    };
    f.end()?;
    Ok(Entry { worker, at, record })
}

/// Reads a journal: the header first ([`Reader::new`]), then one entry at a time.
pub struct Reader<R> {
    input: R,
    body: Vec<u8>,
    offset: u64,
    header: Header,
}

impl<R: Read> Reader<R> {
    /// Reads the magic, the version and the header. A wrong magic or version, a damaged
    /// or cut header is an error.
    pub fn new(mut input: R) -> Result<Reader<R>, JournalError> {
        let mut start = [0u8; 10];
        let err = |offset, message: String| JournalError { offset, message };
        read_exact(&mut input, &mut start)
            .map_err(|e| err(0, format!("not a names journal: {e}")))?;
        if &start[..8] != MAGIC {
            return Err(err(0, "not a names journal (wrong magic)".into()));
        }
        let version = u16::from_le_bytes([start[8], start[9]]);
        if version != VERSION {
            return Err(err(
                8,
                format!("journal format version {version}, this program reads {VERSION}"),
            ));
        }
        let mut reader = Reader {
            input,
            body: Vec::new(),
            offset: 10,
            header: Header {
                names_version: String::new(),
                workers: 0,
                config: Config::default(),
                settings: Vec::new(),
                files: Vec::new(),
            },
        };
        let at = reader.offset;
        if !reader.read_body()? {
            return Err(err(at, "the journal ends before its header".into()));
        }
        reader.header = parse_header(&reader.body).map_err(|m| err(at, m))?;
        Ok(reader)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next entry, `None` at the clean end of the journal. A damaged entry or one cut
    /// short is an error (so a recording stopped between entries reads to its end).
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, JournalError> {
        let at = self.offset;
        if !self.read_body()? {
            return Ok(None);
        }
        parse_entry(&self.body)
            .map(Some)
            .map_err(|message| JournalError {
                offset: at,
                message,
            })
    }

    /// Reads one framed body into `self.body`; `false` at a clean end.
    fn read_body(&mut self) -> Result<bool, JournalError> {
        let at = self.offset;
        let err = |message: String| JournalError {
            offset: at,
            message,
        };
        let mut len = [0u8; 4];
        match read_exact(&mut self.input, &mut len) {
            Ok(0) => return Ok(false),
            Ok(4) => {}
            Ok(_) => return Err(err("the journal is cut short (inside an entry)".into())),
            Err(e) => return Err(err(format!("cannot read: {e}"))),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_ENTRY {
            return Err(err(format!(
                "entry of {len} bytes is over the {MAX_ENTRY} limit (damaged)"
            )));
        }
        self.body.clear();
        self.body.resize(len + 4, 0);
        match read_exact(&mut self.input, &mut self.body) {
            Ok(n) if n == len + 4 => {}
            Ok(_) => return Err(err("the journal is cut short (inside an entry)".into())),
            Err(e) => return Err(err(format!("cannot read: {e}"))),
        }
        let mut check = [0u8; 4];
        check.copy_from_slice(&self.body[len..]);
        self.body.truncate(len);
        if fnv1a(&self.body) != u32::from_le_bytes(check) {
            return Err(err("entry damaged (checksum mismatch)".into()));
        }
        self.offset += 8 + len as u64;
        Ok(true)
    }
}

/// Reads until `buf` is full or the input ends; the bytes read.
fn read_exact(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
