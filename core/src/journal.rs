//! The journal: every input a [`Server`] received, in order, with the time it came, so a
//! run can be replayed exactly (the core is deterministic given its inputs, times, seed
//! and configuration).
//!
//! A runtime records with [`write_start`] once, then [`encode_input`] for each input it
//! feeds a server and, optionally, [`encode_action`] for each action it polls (so a
//! replay can check them). [`Reader`] reads a journal back; [`Replayer`] feeds its inputs
//! to fresh servers and collects their actions, so any runtime can replay.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use names_core::client::Question;
//! use names_core::journal::{self, Header, Input, Reader, Record, Replayer};
//! use names_core::{Chain, Config, Origin, Server, Synth, SynthRule};
//!
//! let chain = || Chain::new().with(Synth::new(vec![SynthRule::parse("ws=10.0.0").unwrap()]));
//! let header = Header {
//!     names_version: "0.1.0".into(),
//!     workers: 1,
//!     config: Config::default(),
//!     settings: Vec::new(),
//!     files: Vec::new(),
//! };
//!
//! // Record: the header, the worker's seed, each input before it is fed, each action.
//! let mut file = Vec::new();
//! journal::write_start(&mut file, &header);
//! journal::encode_input(&mut file, 0, Duration::ZERO, &Input::Start { seed: [7; 32] });
//! let mut server = Server::new(Config::default(), chain(), [7; 32]);
//! let t0 = Instant::now();
//! let from = Origin::Udp { listener: 0, peer: "127.0.0.1:5000".parse().unwrap() };
//! let query = Question::parse("ws3.example", "A").unwrap().encode(1);
//! let at = Duration::from_millis(5);
//! journal::encode_input(&mut file, 0, at, &Input::Client { from, bytes: &query });
//! server.handle_client(t0 + at, from, &query);
//! while let Some(action) = server.poll_action() {
//!     journal::encode_action(&mut file, 0, at, &action);
//! }
//!
//! // Replay: fresh servers, the same inputs at the same times, the same actions.
//! let mut reader = Reader::new(&file[..]).unwrap();
//! let config = reader.header().config.clone();
//! let mut replayer = Replayer::new(Instant::now(), reader.header().workers, move |_, seed| {
//!     Server::new(config.clone(), chain(), seed)
//! });
//! while let Some(entry) = reader.next_entry().unwrap() {
//!     replayer.feed(&entry).unwrap();
//!     if let Record::Action(recorded) = entry.record {
//!         assert_eq!(replayer.next_produced(entry.worker), Some(recorded));
//!     }
//! }
//! ```
//!
//! # Format (version 1)
//!
//! All integers are little-endian. The file starts with the 8 bytes `NAMESJNL`, then the
//! version as a `u16`, then entries. Each entry is framed as
//! `[len: u32][body: len bytes][check: u32]`, where `check` is the 32-bit FNV-1a hash of
//! the body (any one byte changed is detected) and `len` is at most [`MAX_ENTRY`]. The
//! first entry is the header; every other body starts with
//! `[kind: u8][worker: u16][at: u64]`, `at` being nanoseconds since the recording
//! started (one clock for every worker). Field types: `blob` = `[n: u32][n bytes]`,
//! `str` = a UTF-8 blob, `addr` = `[4 or 6: u8][4 or 16 address bytes][port: u16]`,
//! `origin` = `[0: u8][listener: u32][peer: addr]` (UDP) or `[1: u8][conn: u64]` (TCP).
//!
//! | kind | entry | fields after the common ones |
//! |---|---|---|
//! | 0 | header | `[names version: str][workers: u16][config: n: u16, then n × (key: str, value: u64)][settings: blob][files: n: u16, then n × (path: str, text: str)]` (no worker or time) |
//! | 1 | worker start | `[seed: 32 bytes]` |
//! | 2 | client message ([`Server::handle_client`]) | `[from: origin][bytes: blob]` |
//! | 3 | TCP open | `[conn: u64][peer: addr]` |
//! | 4 | TCP bytes written | `[conn: u64][bytes: u64]` |
//! | 5 | TCP end of stream | `[conn: u64]` |
//! | 6 | TCP closed | `[conn: u64]` |
//! | 7 | upstream reply | `[token: u64][from: addr][bytes: blob]` |
//! | 8 | upstream error | `[token: u64][0 = bind, 1 = I/O: u8]` |
//! | 9 | timeout ([`Server::handle_timeout`]) | none |
//! | 10 | lookup outcome | `[id: u64][0 = not encodable, 1 = encoded: u8][outcome: blob, when encoded]` |
//! | 11 | recording stopped (size cap, slow disk): nothing follows | `[reason: str]` (worker 0) |
//! | 32 | action: reply | `[to: origin][bytes: blob]` |
//! | 33 | action: send upstream | `[token: u64][to: addr][via: 0 = UDP, 1 = TCP: u8][local port: u16][bytes: blob]` |
//! | 34 | action: close upstream | `[token: u64]` |
//! | 35 | action: close client | `[conn: u64]` |
//! | 36 | action: pause read | `[conn: u64]` |
//! | 37 | action: resume read | `[conn: u64]` |
//!
//! The header's `config` is [`Config`] by field name (durations in nanoseconds), so a
//! field added later is one more key; `settings` is the runtime's own description of how
//! to rebuild the chain (the `names` binary stores its `serve` settings as TOML) and
//! `files` the texts of the files the chain was built from, so a replay needs neither.
//! [`Action::Log`] is derived from the others and not recorded.
//!
//! # Lookup outcomes
//!
//! The outcome of a runtime's own lookup is the user's type, which the core cannot
//! encode: the runtime encodes it (a [`LookupCodec`]) and the entry says so when it could
//! not; a replay gives the decoded outcome back through the hook set with
//! [`Replayer::on_lookup`].
//!
//! # Several workers
//!
//! Workers of one process share the cache (and the count of exchanges in flight). Their
//! entries go into one journal, and a replay runs every worker's server on one thread
//! in the journal's order, with one shared cache. For that to be exact, the runtime must
//! append an input and feed it to its server as one step with respect to the other
//! workers (the `names` binary holds one lock across both while recording), so the
//! journal's order is the order in which the servers touched what they share.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::action::{Action, ConnId, Origin, Token, UpstreamError, Via};
use crate::config::Config;
use crate::server::Server;

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"NAMESJNL";
/// The format version this module writes and reads.
pub const VERSION: u16 = 1;
/// The largest entry body read or written (64 MiB): a header with big zone files fits.
pub const MAX_ENTRY: usize = 64 << 20;

/// The latest time offset a replay accepts (a century).
const MAX_OFFSET: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What a journal starts with: how to rebuild the servers that were recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The version of the program that recorded (for the reader's information).
    pub names_version: String,
    /// Worker servers recorded (each announces its seed with [`Input::Start`]).
    pub workers: u16,
    /// The servers' configuration.
    pub config: Config,
    /// The runtime's own settings to rebuild the chain with (opaque to the core).
    pub settings: Vec<u8>,
    /// Files the chain was built from: path and text.
    pub files: Vec<(String, String)>,
}

/// One input of one worker's server, borrowed from the journal or from the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// The worker's server was made with this seed.
    Start {
        /// The seed given to [`Server::new`].
        seed: [u8; 32],
    },
    /// [`Server::handle_client`].
    Client {
        /// Where the bytes came from.
        from: Origin,
        /// The datagram or TCP bytes.
        bytes: &'a [u8],
    },
    /// [`Server::handle_tcp_open`].
    TcpOpen {
        /// The connection.
        conn: ConnId,
        /// The client.
        peer: SocketAddr,
    },
    /// [`Server::handle_tcp_written`].
    TcpWritten {
        /// The connection.
        conn: ConnId,
        /// Reply bytes written.
        bytes: usize,
    },
    /// [`Server::handle_tcp_eof`].
    TcpEof {
        /// The connection.
        conn: ConnId,
    },
    /// [`Server::handle_tcp_closed`].
    TcpClosed {
        /// The connection.
        conn: ConnId,
    },
    /// [`Server::handle_upstream`].
    Upstream {
        /// The try.
        token: Token,
        /// The upstream's address.
        from: SocketAddr,
        /// The datagram or TCP bytes.
        bytes: &'a [u8],
    },
    /// [`Server::handle_upstream_error`].
    UpstreamError {
        /// The try.
        token: Token,
        /// What failed.
        err: UpstreamError,
    },
    /// [`Server::handle_timeout`].
    Timeout,
    /// A lookup's outcome handed to the server, encoded by the runtime's [`LookupCodec`]
    /// (`None`: the codec could not encode it, so it cannot be replayed).
    Lookup {
        /// The lookup's id.
        id: u64,
        /// The encoded outcome.
        outcome: Option<&'a [u8]>,
    },
}

/// A journal entry after the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// An input, fed to the worker's server.
    Input(Input<'a>),
    /// An action the worker's server produced ([`Action::Log`] never appears).
    Action(Action),
    /// The recording stopped here (for this reason) before the server did: the last
    /// inputs' actions may be missing.
    Stopped(&'a str),
}

/// One entry: which worker, when, what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The worker's index.
    pub worker: u16,
    /// Time since the recording started.
    pub at: Duration,
    /// The input or action.
    pub record: Record<'a>,
}

/// Encodes the outcome of a runtime's own lookup for the journal, and decodes it for a
/// replay. `P` is the type the runtime hands the server as the outcome.
pub trait LookupCodec<P> {
    /// The outcome as bytes, or `None` when this codec cannot encode it.
    fn encode(&self, outcome: &P) -> Option<Vec<u8>>;
    /// The outcome back, or `None` when the bytes are not one.
    fn decode(&self, bytes: &[u8]) -> Option<P>;
}

/// Why a journal cannot be read or replayed: one line, with the entry's offset.
#[derive(Debug)]
pub struct JournalError {
    /// Byte offset of the entry at fault in the file.
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for JournalError {}

// ----- encoding -----

const K_HEADER: u8 = 0;
const K_START: u8 = 1;
const K_CLIENT: u8 = 2;
const K_TCP_OPEN: u8 = 3;
const K_TCP_WRITTEN: u8 = 4;
const K_TCP_EOF: u8 = 5;
const K_TCP_CLOSED: u8 = 6;
const K_UPSTREAM: u8 = 7;
const K_UPSTREAM_ERROR: u8 = 8;
const K_TIMEOUT: u8 = 9;
const K_LOOKUP: u8 = 10;
const K_STOPPED: u8 = 11;
const K_REPLY: u8 = 32;
const K_SEND_UPSTREAM: u8 = 33;
const K_CLOSE_UPSTREAM: u8 = 34;
const K_CLOSE_CLIENT: u8 = 35;
const K_PAUSE_READ: u8 = 36;
const K_RESUME_READ: u8 = 37;

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Appends one framed entry whose body `body` writes.
fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = out.len() - start - 4;
    let len32 = u32::try_from(len.min(MAX_ENTRY + 1)).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&len32.to_le_bytes());
    let check = fnv1a(&out[start + 4..]);
    out.extend_from_slice(&check.to_le_bytes());
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, u32::try_from(b.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(b);
}
fn put_addr(out: &mut Vec<u8>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    put_u16(out, a.port());
}
fn put_origin(out: &mut Vec<u8>, o: Origin) {
    match o {
        Origin::Udp { listener, peer } => {
            out.push(0);
            put_u32(out, u32::try_from(listener).unwrap_or(u32::MAX));
            put_addr(out, peer);
        }
        Origin::Tcp(conn) => {
            out.push(1);
            put_u64(out, conn.0);
        }
    }
}
fn put_common(out: &mut Vec<u8>, kind: u8, worker: u16, at: Duration) {
    out.push(kind);
    put_u16(out, worker);
    put_u64(out, u64::try_from(at.as_nanos()).unwrap_or(u64::MAX));
}

fn config_pairs(c: &Config) -> Vec<(&'static str, u64)> {
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let n = |v: usize| v as u64;
    vec![
        ("budget", ns(c.budget)),
        ("try_timeout", ns(c.try_timeout)),
        ("tcp_idle", ns(c.tcp_idle)),
        ("max_tcp", n(c.max_tcp)),
        ("max_tcp_per_client", n(c.max_tcp_per_client)),
        ("max_pipelined", n(c.max_pipelined)),
        ("max_tcp_buffered", n(c.max_tcp_buffered)),
        ("max_exchanges", n(c.max_exchanges)),
        ("max_waiting", n(c.max_waiting)),
        ("edns_udp_size", u64::from(c.edns_udp_size)),
        ("log_queries", u64::from(c.log_queries)),
    ]
}

fn set_config(c: &mut Config, key: &str, v: u64) -> Result<(), String> {
    let n = || usize::try_from(v).map_err(|_| format!("config {key} out of range"));
    match key {
        "budget" => c.budget = Duration::from_nanos(v),
        "try_timeout" => c.try_timeout = Duration::from_nanos(v),
        "tcp_idle" => c.tcp_idle = Duration::from_nanos(v),
        "max_tcp" => c.max_tcp = n()?,
        "max_tcp_per_client" => c.max_tcp_per_client = n()?,
        "max_pipelined" => c.max_pipelined = n()?,
        "max_tcp_buffered" => c.max_tcp_buffered = n()?,
        "max_exchanges" => c.max_exchanges = n()?,
        "max_waiting" => c.max_waiting = n()?,
        "edns_udp_size" => {
            c.edns_udp_size =
                u16::try_from(v).map_err(|_| "config edns_udp_size out of range".to_string())?
        }
        "log_queries" => c.log_queries = v != 0,
        _ => return Err(format!("unknown config key {key:?}")),
    }
    Ok(())
}

/// Starts a journal in `out`: the magic, the version and the header entry.
pub fn write_start(out: &mut Vec<u8>, header: &Header) {
    out.extend_from_slice(MAGIC);
    put_u16(out, VERSION);
    frame(out, |out| {
        out.push(K_HEADER);
        put_blob(out, header.names_version.as_bytes());
        put_u16(out, header.workers);
        let pairs = config_pairs(&header.config);
        put_u16(out, pairs.len() as u16);
        for (k, v) in pairs {
            put_blob(out, k.as_bytes());
            put_u64(out, v);
        }
        put_blob(out, &header.settings);
        put_u16(out, u16::try_from(header.files.len()).unwrap_or(u16::MAX));
        for (path, text) in header.files.iter().take(usize::from(u16::MAX)) {
            put_blob(out, path.as_bytes());
            put_blob(out, text.as_bytes());
        }
    });
}

/// Appends one input entry of `worker` at `at` to `out`.
pub fn encode_input(out: &mut Vec<u8>, worker: u16, at: Duration, input: &Input<'_>) {
    frame(out, |out| match *input {
        Input::Start { seed } => {
            put_common(out, K_START, worker, at);
            out.extend_from_slice(&seed);
        }
        Input::Client { from, bytes } => {
            put_common(out, K_CLIENT, worker, at);
            put_origin(out, from);
            put_blob(out, bytes);
        }
        Input::TcpOpen { conn, peer } => {
            put_common(out, K_TCP_OPEN, worker, at);
            put_u64(out, conn.0);
            put_addr(out, peer);
        }
        Input::TcpWritten { conn, bytes } => {
            put_common(out, K_TCP_WRITTEN, worker, at);
            put_u64(out, conn.0);
            put_u64(out, bytes as u64);
        }
        Input::TcpEof { conn } => {
            put_common(out, K_TCP_EOF, worker, at);
            put_u64(out, conn.0);
        }
        Input::TcpClosed { conn } => {
            put_common(out, K_TCP_CLOSED, worker, at);
            put_u64(out, conn.0);
        }
        Input::Upstream { token, from, bytes } => {
            put_common(out, K_UPSTREAM, worker, at);
            put_u64(out, token.0);
            put_addr(out, from);
            put_blob(out, bytes);
        }
        Input::UpstreamError { token, err } => {
            put_common(out, K_UPSTREAM_ERROR, worker, at);
            put_u64(out, token.0);
            out.push(match err {
                UpstreamError::Bind => 0,
                UpstreamError::Io => 1,
            });
        }
        Input::Timeout => put_common(out, K_TIMEOUT, worker, at),
        Input::Lookup { id, outcome } => {
            put_common(out, K_LOOKUP, worker, at);
            put_u64(out, id);
            match outcome {
                Some(b) => {
                    out.push(1);
                    put_blob(out, b);
                }
                None => out.push(0),
            }
        }
    });
}

/// Appends the entry that ends a recording cut short, at `at`, saying why.
pub fn encode_stopped(out: &mut Vec<u8>, at: Duration, reason: &str) {
    frame(out, |out| {
        put_common(out, K_STOPPED, 0, at);
        put_blob(out, reason.as_bytes());
    });
}

/// Appends one action entry of `worker` at `at` to `out` ([`Action::Log`]: nothing).
pub fn encode_action(out: &mut Vec<u8>, worker: u16, at: Duration, action: &Action) {
    if let Action::Log(_) = action {
        return;
    }
    frame(out, |out| match action {
        Action::Reply { to, bytes } => {
            put_common(out, K_REPLY, worker, at);
            put_origin(out, *to);
            put_blob(out, bytes);
        }
        Action::SendUpstream {
            token,
            to,
            via,
            bytes,
        } => {
            put_common(out, K_SEND_UPSTREAM, worker, at);
            put_u64(out, token.0);
            put_addr(out, *to);
            match via {
                Via::Udp { local_port } => {
                    out.push(0);
                    put_u16(out, *local_port);
                }
                Via::Tcp => {
                    out.push(1);
                    put_u16(out, 0);
                }
            }
            put_blob(out, bytes);
        }
        Action::CloseUpstream { token } => {
            put_common(out, K_CLOSE_UPSTREAM, worker, at);
            put_u64(out, token.0);
        }
        Action::CloseClient { conn } => {
            put_common(out, K_CLOSE_CLIENT, worker, at);
            put_u64(out, conn.0);
        }
        Action::PauseRead { conn } => {
            put_common(out, K_PAUSE_READ, worker, at);
            put_u64(out, conn.0);
        }
        Action::ResumeRead { conn } => {
            put_common(out, K_RESUME_READ, worker, at);
            put_u64(out, conn.0);
        }
        Action::Log(_) => {}
    });
}

// ----- decoding -----

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

// ----- replay -----

/// Feeds a lookup outcome from the journal to a server: the runtime decodes it with its
/// [`LookupCodec`] and hands it over (`Err`: the bytes are not an outcome).
pub type LookupFeeder = Box<dyn FnMut(&mut Server, Instant, u64, &[u8]) -> Result<(), String>>;

/// Replays a journal's entries: a fresh server per recorded worker (made by the runtime
/// when the worker's start entry comes, with its seed), inputs fed in order at
/// `start + at`, and the actions each server produces collected per worker, in order.
pub struct Replayer {
    make_server: Box<dyn FnMut(u16, [u8; 32]) -> Server>,
    servers: Vec<Option<Server>>,
    produced: Vec<VecDeque<Action>>,
    start: Instant,
    on_lookup: Option<LookupFeeder>,
}

impl Replayer {
    /// A replayer for `workers` workers; `make_server(worker, seed)` builds each one's
    /// server as recorded (configuration and chain from the header). `start` stands for
    /// the moment the recording started (any instant: only differences matter).
    pub fn new(
        start: Instant,
        workers: u16,
        make_server: impl FnMut(u16, [u8; 32]) -> Server + 'static,
    ) -> Replayer {
        Replayer {
            make_server: Box::new(make_server),
            servers: (0..workers).map(|_| None).collect(),
            produced: (0..workers).map(|_| VecDeque::new()).collect(),
            start,
            on_lookup: None,
        }
    }

    /// How lookup outcomes are handed back (without it, a lookup entry is an error).
    pub fn on_lookup(&mut self, feed: LookupFeeder) {
        self.on_lookup = Some(feed);
    }

    /// Feeds one entry. An input goes to its worker's server and the actions it produces
    /// are queued ([`Replayer::next_produced`]); an action entry is left to the caller.
    pub fn feed(&mut self, entry: &Entry<'_>) -> Result<(), String> {
        let w = usize::from(entry.worker);
        if w >= self.servers.len() {
            return Err(format!(
                "worker {w} is not one of the {} recorded",
                self.servers.len()
            ));
        }
        let Record::Input(input) = &entry.record else {
            return Ok(());
        };
        // A hostile journal's times stay within a century of the start.
        let now = match self.start.checked_add(entry.at) {
            Some(now) if entry.at <= MAX_OFFSET => now,
            _ => return Err(format!("time offset {:?} out of range", entry.at)),
        };
        if let Input::Start { seed } = input {
            if self.servers[w].is_some() {
                return Err(format!("worker {w} starts twice"));
            }
            self.servers[w] = Some((self.make_server)(entry.worker, *seed));
            return Ok(());
        }
        let Some(server) = self.servers[w].as_mut() else {
            return Err(format!("worker {w} has input before its start"));
        };
        match *input {
            Input::Start { .. } => {}
            Input::Client { from, bytes } => server.handle_client(now, from, bytes),
            Input::TcpOpen { conn, peer } => server.handle_tcp_open(now, conn, peer),
            Input::TcpWritten { conn, bytes } => server.handle_tcp_written(now, conn, bytes),
            Input::TcpEof { conn } => server.handle_tcp_eof(now, conn),
            Input::TcpClosed { conn } => server.handle_tcp_closed(now, conn),
            Input::Upstream { token, from, bytes } => {
                server.handle_upstream(now, token, from, bytes)
            }
            Input::UpstreamError { token, err } => server.handle_upstream_error(now, token, err),
            Input::Timeout => server.handle_timeout(now),
            Input::Lookup { id, outcome } => {
                let Some(bytes) = outcome else {
                    return Err(format!(
                        "lookup {id}: its outcome was not recorded (no codec could encode it)"
                    ));
                };
                match self.on_lookup.as_mut() {
                    Some(feed) => feed(server, now, id, bytes)?,
                    None => return Err(format!("lookup {id}: no way to replay lookup outcomes")),
                }
            }
        }
        while let Some(action) = server.poll_action() {
            if !matches!(action, Action::Log(_)) {
                self.produced[w].push_back(action);
            }
        }
        Ok(())
    }

    /// The oldest action worker `worker`'s server produced and nobody took yet.
    pub fn next_produced(&mut self, worker: u16) -> Option<Action> {
        self.produced.get_mut(usize::from(worker))?.pop_front()
    }

    /// Actions of `worker`'s server not taken yet.
    pub fn pending(&self, worker: u16) -> usize {
        self.produced
            .get(usize::from(worker))
            .map_or(0, VecDeque::len)
    }

    /// The server of `worker`, once started.
    pub fn server(&self, worker: u16) -> Option<&Server> {
        self.servers.get(usize::from(worker))?.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_header() -> Header {
        Header {
            names_version: "0.1.0".into(),
            workers: 2,
            config: Config {
                budget: Duration::from_millis(1234),
                max_tcp: 7,
                log_queries: true,
                ..Config::default()
            },
            settings: b"upstream = [\"127.0.0.1:53\"]".to_vec(),
            files: vec![("z.zone".into(), "$ORIGIN x.\n".into())],
        }
    }

    fn read_all(bytes: &[u8]) -> Result<(Header, Vec<String>), JournalError> {
        let mut r = Reader::new(bytes)?;
        let header = r.header().clone();
        let mut out = Vec::new();
        while let Some(e) = r.next_entry()? {
            out.push(format!("{e:?}"));
        }
        Ok((header, out))
    }

    fn addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(a.into(), p)),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(a.into(), p)),
        ]
    }

    fn origin() -> impl Strategy<Value = Origin> {
        prop_oneof![
            (0usize..8, addr()).prop_map(|(listener, peer)| Origin::Udp { listener, peer }),
            any::<u64>().prop_map(|c| Origin::Tcp(ConnId(c))),
        ]
    }

    /// An owned input, borrowed when encoded.
    #[derive(Clone, Debug)]
    enum Owned {
        Input(u8, Origin, SocketAddr, u64, Vec<u8>, bool),
        Action(Action),
    }

    fn owned() -> impl Strategy<Value = Owned> {
        let bytes = proptest::collection::vec(any::<u8>(), 0..64);
        let input = (
            0u8..11,
            origin(),
            addr(),
            any::<u64>(),
            bytes.clone(),
            any::<bool>(),
        )
            .prop_map(|(k, o, a, n, b, f)| Owned::Input(k, o, a, n, b, f));
        let action = (0u8..6, origin(), addr(), any::<u64>(), bytes, any::<u16>()).prop_map(
            |(k, o, a, n, b, p)| {
                Owned::Action(match k {
                    0 => Action::Reply { to: o, bytes: b },
                    1 => Action::SendUpstream {
                        token: Token(n),
                        to: a,
                        via: if p % 2 == 0 {
                            Via::Tcp
                        } else {
                            Via::Udp { local_port: p }
                        },
                        bytes: b,
                    },
                    2 => Action::CloseUpstream { token: Token(n) },
                    3 => Action::CloseClient { conn: ConnId(n) },
                    4 => Action::PauseRead { conn: ConnId(n) },
                    _ => Action::ResumeRead { conn: ConnId(n) },
                })
            },
        );
        prop_oneof![input, action]
    }

    fn as_input(k: u8, o: Origin, a: SocketAddr, n: u64, b: &[u8], f: bool) -> Input<'_> {
        match k {
            0 => Input::Start {
                seed: [n as u8; 32],
            },
            1 => Input::Client { from: o, bytes: b },
            2 => Input::TcpOpen {
                conn: ConnId(n),
                peer: a,
            },
            3 => Input::TcpWritten {
                conn: ConnId(n),
                bytes: n as usize,
            },
            4 => Input::TcpEof { conn: ConnId(n) },
            5 => Input::TcpClosed { conn: ConnId(n) },
            6 => Input::Upstream {
                token: Token(n),
                from: a,
                bytes: b,
            },
            7 => Input::UpstreamError {
                token: Token(n),
                err: if f {
                    UpstreamError::Bind
                } else {
                    UpstreamError::Io
                },
            },
            8 => Input::Timeout,
            _ => Input::Lookup {
                id: n,
                outcome: f.then_some(b),
            },
        }
    }

    proptest! {
        #[test]
        fn entries_round_trip(items in proptest::collection::vec((any::<u16>(), any::<u64>(), owned()), 0..24)) {
            let mut out = Vec::new();
            write_start(&mut out, &sample_header());
            let mut expected = Vec::new();
            for (worker, at, item) in &items {
                let at = Duration::from_nanos(*at);
                match item {
                    Owned::Input(k, o, a, n, b, f) => {
                        let input = as_input(*k, *o, *a, *n, b, *f);
                        encode_input(&mut out, *worker, at, &input);
                        expected.push(format!("{:?}", Entry { worker: *worker, at, record: Record::Input(input) }));
                    }
                    Owned::Action(action) => {
                        encode_action(&mut out, *worker, at, action);
                        expected.push(format!("{:?}", Entry { worker: *worker, at, record: Record::Action(action.clone()) }));
                    }
                }
            }
            let (header, got) = read_all(&out).unwrap();
            prop_assert_eq!(header, sample_header());
            prop_assert_eq!(got, expected);
        }

        /// Any one byte changed, or the file cut anywhere but between entries: an error
        /// (or, for a cut between entries, fewer entries), never a panic.
        #[test]
        fn damage_is_detected(pos in any::<prop::sample::Index>(), flip in 1u8..=255, cut in any::<prop::sample::Index>()) {
            let mut out = Vec::new();
            write_start(&mut out, &sample_header());
            encode_input(&mut out, 1, Duration::from_millis(3), &Input::Client {
                from: Origin::Udp { listener: 0, peer: "127.0.0.1:9".parse().unwrap() },
                bytes: b"hello",
            });
            encode_action(&mut out, 1, Duration::from_millis(3), &Action::CloseUpstream { token: Token(4) });
            let whole = read_all(&out).unwrap().1.len();
            let mut flipped = out.clone();
            let i = pos.index(flipped.len());
            flipped[i] ^= flip;
            prop_assert!(read_all(&flipped).is_err());
            let cut = &out[..cut.index(out.len())];
            if let Ok((_, entries)) = read_all(cut) {
                prop_assert!(entries.len() < whole);
            }
        }
    }

    proptest! {
        /// Whatever a (well-formed) journal holds, replaying it ends in actions or one
        /// error, never a panic: inputs before a start, unknown workers, hostile times.
        #[test]
        #[allow(clippy::disallowed_methods)] // a test's one clock read, as the epoch
        fn replaying_arbitrary_entries_never_panics(
            items in proptest::collection::vec((0u16..3, 0u64..10_000_000_000, owned()), 0..40),
        ) {
            let mut out = Vec::new();
            write_start(&mut out, &sample_header());
            for (worker, at, item) in &items {
                let at = Duration::from_nanos(*at);
                match item {
                    Owned::Input(k, o, a, n, b, f) => {
                        encode_input(&mut out, *worker, at, &as_input(*k, *o, *a, *n, b, *f))
                    }
                    Owned::Action(action) => encode_action(&mut out, *worker, at, action),
                }
            }
            encode_input(&mut out, 0, Duration::MAX, &Input::Timeout);
            let mut reader = Reader::new(&out[..]).unwrap();
            let mut replayer = Replayer::new(Instant::now(), 2, |_, seed| {
                Server::new(Config::default(), crate::Chain::new(), seed)
            });
            while let Some(entry) = reader.next_entry().unwrap() {
                let _ = replayer.feed(&entry);
                while replayer.next_produced(entry.worker).is_some() {}
            }
        }
    }

    #[test]
    fn wrong_magic_and_version_are_refused() {
        let mut out = Vec::new();
        write_start(&mut out, &sample_header());
        let mut bad = out.clone();
        bad[0] = b'X';
        assert!(Reader::new(&bad[..])
            .err()
            .unwrap()
            .to_string()
            .contains("magic"));
        let mut bad = out.clone();
        bad[8] = 9;
        assert!(Reader::new(&bad[..])
            .err()
            .unwrap()
            .to_string()
            .contains("version"));
        assert!(Reader::new(&[][..]).is_err());
    }

    #[test]
    fn a_huge_length_is_refused_without_allocating_it() {
        let mut out = Vec::new();
        write_start(&mut out, &sample_header());
        out.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut r = Reader::new(&out[..]).unwrap();
        assert!(r.next_entry().err().unwrap().message.contains("limit"));
    }
}
