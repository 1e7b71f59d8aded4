//! The journal: every input a [`Server`](crate::Server) received, in order, with the time it came, so a
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
//! | 2 | client message ([`Server::handle_client`](crate::Server::handle_client)) | `[from: origin][bytes: blob]` |
//! | 3 | TCP open | `[conn: u64][peer: addr]` |
//! | 4 | TCP bytes written | `[conn: u64][bytes: u64]` |
//! | 5 | TCP end of stream | `[conn: u64]` |
//! | 6 | TCP closed | `[conn: u64]` |
//! | 7 | upstream reply | `[token: u64][from: addr][bytes: blob]` |
//! | 8 | upstream error | `[token: u64][0 = bind, 1 = I/O: u8]` |
//! | 9 | timeout ([`Server::handle_timeout`](crate::Server::handle_timeout)) | none |
//! | 10 | lookup outcome | `[id: u64][0 = not encodable, 1 = encoded: u8][outcome: blob, when encoded]` |
//! | 11 | recording stopped (size cap, slow disk): nothing follows | `[reason: str]` (worker 0) |
//! | 32 | action: reply | `[to: origin][bytes: blob]` |
//! | 33 | action: send upstream | `[token: u64][to: addr][via: 0 = UDP, 1 = TCP: u8][local port: u16][bytes: blob]` |
//! | 34 | action: close upstream | `[token: u64]` |
//! | 35 | action: close client | `[conn: u64]` |
//! | 36 | action: pause read | `[conn: u64]` |
//! | 37 | action: resume read | `[conn: u64]` |
//! | 38 | action: run a lookup | `[id: u64]` (the job itself is the user's type and not stored: a replay takes the outcome from kind 10; read back, the job is a [`RecordedJob`]) |
//! | 39 | action: cancel a lookup | `[id: u64]` |
//!
//! The header's `config` is [`Config`] by field name (durations in nanoseconds), so a
//! field added later is one more key; `settings` is the runtime's own description of how
//! to rebuild the chain (the `names` binary stores its `serve` settings as TOML) and
//! `files` the texts of the files the chain was built from, so a replay needs neither.
//! [`Action::Log`] is derived from the others and not recorded, nor is
//! [`Action::Notified`] (the secondary machine it feeds is not recorded).
//!
//! # Lookup outcomes
//!
//! The outcome of a runtime's own lookup is the user's type, which the core cannot
//! encode: the runtime encodes it (a [`LookupCodec`]; [`encode_answer`] and
//! [`decode_answer`] do the [`Answer`](crate::Answer) an outcome usually holds) and the
//! entry says so when it could not; a replay gives the decoded outcome back through the
//! hook set with [`Replayer::on_lookup`]. A recorded lookup action is compared by its id
//! only ([`same_action`]).
//!
//! # Several workers
//!
//! Workers of one process share the cache (and the count of exchanges in flight). Their
//! entries go into one journal, and a replay runs every worker's server on one thread
//! in the journal's order, with one shared cache. For that to be exact, the runtime must
//! append an input and feed it to its server as one step with respect to the other
//! workers (the `names` binary holds one lock across both while recording), so the
//! journal's order is the order in which the servers touched what they share.

mod answer;
mod decode;
mod encode;
mod replay;

use std::net::SocketAddr;
use std::time::Duration;

use crate::action::{Action, ConnId, Origin, Token, UpstreamError};
use crate::config::Config;

pub use answer::{decode_answer, encode_answer};
pub use decode::Reader;
pub use encode::{encode_action, encode_input, encode_stopped, write_start};
pub use replay::{LookupFeeder, Replayer};

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"NAMESJNL";
/// The format version this module writes and reads.
pub const VERSION: u16 = 1;
/// The largest entry body read or written (64 MiB): a header with big zone files fits.
pub const MAX_ENTRY: usize = 64 << 20;

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
        /// The seed given to [`Server::new`](crate::Server::new).
        seed: [u8; 32],
    },
    /// [`Server::handle_client`](crate::Server::handle_client).
    Client {
        /// Where the bytes came from.
        from: Origin,
        /// The datagram or TCP bytes.
        bytes: &'a [u8],
    },
    /// [`Server::handle_tcp_open`](crate::Server::handle_tcp_open).
    TcpOpen {
        /// The connection.
        conn: ConnId,
        /// The client.
        peer: SocketAddr,
    },
    /// [`Server::handle_tcp_written`](crate::Server::handle_tcp_written).
    TcpWritten {
        /// The connection.
        conn: ConnId,
        /// Reply bytes written.
        bytes: usize,
    },
    /// [`Server::handle_tcp_eof`](crate::Server::handle_tcp_eof).
    TcpEof {
        /// The connection.
        conn: ConnId,
    },
    /// [`Server::handle_tcp_closed`](crate::Server::handle_tcp_closed).
    TcpClosed {
        /// The connection.
        conn: ConnId,
    },
    /// [`Server::handle_upstream`](crate::Server::handle_upstream).
    Upstream {
        /// The try.
        token: Token,
        /// The upstream's address.
        from: SocketAddr,
        /// The datagram or TCP bytes.
        bytes: &'a [u8],
    },
    /// [`Server::handle_upstream_error`](crate::Server::handle_upstream_error).
    UpstreamError {
        /// The try.
        token: Token,
        /// What failed.
        err: UpstreamError,
    },
    /// [`Server::handle_timeout`](crate::Server::handle_timeout).
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
#[derive(Debug, PartialEq, Eq)]
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
#[derive(Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The worker's index.
    pub worker: u16,
    /// Time since the recording started.
    pub at: Duration,
    /// The input or action.
    pub record: Record<'a>,
}

/// The job of a lookup action read back from a journal: the job itself (the user's
/// type) is not recorded, only that there was one, with its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedJob;

/// Whether a replayed action is the recorded one: equal, except that lookup actions are
/// compared by id (a recorded job is a [`RecordedJob`], never the user's job).
pub fn same_action(recorded: &Action, replayed: &Action) -> bool {
    match (recorded, replayed) {
        (Action::Lookup { id: a, .. }, Action::Lookup { id: b, .. }) => a == b,
        _ => recorded == replayed,
    }
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
