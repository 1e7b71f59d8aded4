//! Recording (`names serve --record FILE`): every input a worker's core receives, and
//! every action it produces, into a journal ([`names_core::journal`]).
//!
//! Each worker talks to its core through a [`Core`], which forwards every `handle_*` call
//! and appends it to the worker's [`Recorder`] first when there is one (one branch per
//! input when recording is off). The entries go through a bounded queue to one writer
//! thread, so no worker ever waits on the disk: when the queue is full (the disk does not
//! keep up) the entry is dropped and recording stops for every worker, with one log line;
//! at `--record-max-bytes` it stops too, with one log line. Either way the journal ends
//! with a "recording stopped" entry after whole entries, so it replays up to that point.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use names_core::journal::{self, Header, Input, LookupCodec};
use names_core::{Action, ConnId, LookupId, Origin, Payload, Server, Token, UpstreamError};

use crate::deferred::OutcomeCodec;

/// Held while a recorded input is queued and fed to its server (see `Core::record`).
static ORDER: Mutex<()> = Mutex::new(());

/// Entries queued to the writer thread at most; beyond it recording stops.
const QUEUE: usize = 64 * 1024;

/// The recording of one `names serve` run: the writer thread and what workers share.
#[derive(Clone)]
pub struct Recording {
    shared: Arc<Shared>,
    tx: SyncSender<Message>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording").finish_non_exhaustive()
    }
}

struct Shared {
    /// The clock every worker's times are offsets from.
    start: Instant,
    stopped: AtomicBool,
    dropped: AtomicU64,
}

enum Message {
    Entry(Vec<u8>),
    /// The server stopped: write what is queued and end.
    Finish,
}

impl Recording {
    /// Creates (or replaces) `path`, writes the header, and starts the writer thread; the
    /// file holds at most `max_bytes` (the header alone may exceed it).
    pub fn start(path: &str, max_bytes: u64, header: &Header) -> io::Result<Recording> {
        let mut start = Vec::new();
        journal::write_start(&mut start, header);
        let file = File::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("--record {path}: {e}")))?;
        let mut out = BufWriter::new(file);
        out.write_all(&start)?;
        out.flush()?;
        let shared = Arc::new(Shared {
            start: Instant::now(),
            stopped: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let writer = {
            let shared = shared.clone();
            let path = path.to_string();
            let written = start.len() as u64;
            std::thread::Builder::new()
                .name("names-record".into())
                .spawn(move || write_loop(rx, out, &shared, &path, written, max_bytes))?
        };
        log::info!("recording every input to {path} (at most {max_bytes} bytes)");
        Ok(Recording {
            shared,
            tx,
            writer: Arc::new(Mutex::new(Some(writer))),
        })
    }

    /// The recorder of worker `worker`, whose first entry is its seed.
    pub fn worker(&self, worker: u16, seed: [u8; 32]) -> Recorder {
        let mut r = Recorder {
            worker,
            tx: self.tx.clone(),
            shared: self.shared.clone(),
            at: Duration::ZERO,
            dirty: false,
        };
        r.input(self.shared.start, &Input::Start { seed });
        r
    }

    /// Writes what is queued and waits for the writer to end (after the workers stopped).
    pub fn finish(&self) {
        let _ = self.tx.send(Message::Finish);
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// The writer thread: entries to the file until the cap, the end or a failure.
fn write_loop(
    rx: Receiver<Message>,
    mut out: BufWriter<File>,
    shared: &Shared,
    path: &str,
    mut written: u64,
    max_bytes: u64,
) {
    let mut reason = None;
    loop {
        // Flush whenever the queue runs empty, so the file is whole up to the last entry.
        let message = match rx.try_recv() {
            Ok(m) => m,
            Err(_) => {
                if let Err(e) = out.flush() {
                    log::error!("recording stopped: cannot write {path}: {e}");
                    shared.stopped.store(true, Ordering::Relaxed);
                    return;
                }
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
        };
        if shared.stopped.load(Ordering::Relaxed) && reason.is_none() {
            let lost = shared.dropped.load(Ordering::Relaxed);
            log::warn!(
                "recording stopped: the disk did not keep up with the journal ({lost} entries dropped); {path} replays up to here"
            );
            reason = Some("the disk did not keep up");
            break;
        }
        match message {
            Message::Finish => break,
            Message::Entry(bytes) => {
                // Room for the final entry is kept under the cap.
                if written + bytes.len() as u64 + 64 > max_bytes {
                    shared.stopped.store(true, Ordering::Relaxed);
                    log::warn!(
                        "recording stopped: {path} reached --record-max-bytes ({max_bytes} bytes)"
                    );
                    reason = Some("the size cap was reached");
                    break;
                }
                if let Err(e) = out.write_all(&bytes) {
                    log::error!("recording stopped: cannot write {path}: {e}");
                    shared.stopped.store(true, Ordering::Relaxed);
                    return;
                }
                written += bytes.len() as u64;
            }
        }
    }
    if let Some(reason) = reason {
        let mut end = Vec::new();
        journal::encode_stopped(&mut end, shared.start.elapsed(), reason);
        let _ = out.write_all(&end);
    }
    if let Err(e) = out.flush() {
        log::error!("cannot write {path}: {e}");
    }
    // Anything still queued is dropped with the receiver.
}

/// One worker's end of the recording.
pub struct Recorder {
    worker: u16,
    tx: SyncSender<Message>,
    shared: Arc<Shared>,
    /// The time of the last input, given to the actions that follow it.
    at: Duration,
    /// An input was recorded since the last timeout entry.
    dirty: bool,
}

impl Recorder {
    fn input(&mut self, now: Instant, input: &Input<'_>) {
        self.at = now.saturating_duration_since(self.shared.start);
        self.dirty = true;
        let mut buf = Vec::with_capacity(32 + input_len(input));
        journal::encode_input(&mut buf, self.worker, self.at, input);
        self.send(buf);
    }

    fn action(&mut self, action: &Action) {
        let mut buf = Vec::new();
        journal::encode_action(&mut buf, self.worker, self.at, action);
        if !buf.is_empty() {
            self.send(buf);
        }
    }

    fn send(&mut self, buf: Vec<u8>) {
        if self.shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        match self.tx.try_send(Message::Entry(buf)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                self.shared.stopped.store(true, Ordering::Relaxed);
                // Wakes the writer so it logs and ends the journal (may fail: it is full).
                let _ = self.tx.try_send(Message::Entry(Vec::new()));
            }
            Err(TrySendError::Disconnected(_)) => {
                self.shared.stopped.store(true, Ordering::Relaxed)
            }
        }
    }
}

fn input_len(input: &Input<'_>) -> usize {
    match input {
        Input::Client { bytes, .. } | Input::Upstream { bytes, .. } => bytes.len(),
        _ => 0,
    }
}

/// A worker's core: the [`Server`] with every input recorded first when a recorder is
/// set. Reads go to the server through `Deref`.
pub struct Core {
    server: Server,
    rec: Option<Recorder>,
}

impl Deref for Core {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Core {
    pub fn new(server: Server, rec: Option<Recorder>) -> Core {
        Core { server, rec }
    }

    /// The wall clock for TSIG (not recorded: journals hold no TSIG secrets, so a replay
    /// of signed traffic cannot verify it anyway).
    pub fn set_unix_time(&mut self, now: Instant, unix_secs: u64) {
        self.server.set_unix_time(now, unix_secs);
    }

    pub fn handle_client(&mut self, now: Instant, from: Origin, bytes: &[u8]) {
        self.record(now, &Input::Client { from, bytes }, |s| {
            s.handle_client(now, from, bytes)
        });
    }

    pub fn handle_tcp_open(&mut self, now: Instant, conn: ConnId, peer: SocketAddr) {
        self.record(now, &Input::TcpOpen { conn, peer }, |s| {
            s.handle_tcp_open(now, conn, peer)
        });
    }

    pub fn handle_tcp_written(&mut self, now: Instant, conn: ConnId, bytes: usize) {
        self.record(now, &Input::TcpWritten { conn, bytes }, |s| {
            s.handle_tcp_written(now, conn, bytes)
        });
    }

    pub fn handle_tcp_eof(&mut self, now: Instant, conn: ConnId) {
        self.record(now, &Input::TcpEof { conn }, |s| {
            s.handle_tcp_eof(now, conn)
        });
    }

    pub fn handle_tcp_closed(&mut self, now: Instant, conn: ConnId) {
        self.record(now, &Input::TcpClosed { conn }, |s| {
            s.handle_tcp_closed(now, conn)
        });
    }

    pub fn handle_upstream(&mut self, now: Instant, token: Token, from: SocketAddr, bytes: &[u8]) {
        self.record(now, &Input::Upstream { token, from, bytes }, |s| {
            s.handle_upstream(now, token, from, bytes)
        });
    }

    pub fn handle_upstream_error(&mut self, now: Instant, token: Token, err: UpstreamError) {
        self.record(now, &Input::UpstreamError { token, err }, |s| {
            s.handle_upstream_error(now, token, err)
        });
    }

    /// Recorded only when it can do something: a timer is due, or an input came since the
    /// last one (the driver calls it on every turn of its loop).
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = |r: &Recorder, s: &Server| r.dirty || s.poll_timeout().is_some_and(|t| t <= now);
        match &mut self.rec {
            Some(r) if due(r, &self.server) => {
                let _order = ORDER.lock().unwrap_or_else(|e| e.into_inner());
                r.input(now, &Input::Timeout);
                r.dirty = false;
                self.server.handle_timeout(now);
            }
            _ => self.server.handle_timeout(now),
        }
    }

    /// Feeds an input to the server, recording it first when recording. With several
    /// workers, the entry is queued and the server called under one process-wide lock, so
    /// the journal's order is the order in which the workers' servers touched what they
    /// share (the cache, the count of exchanges in flight): a replay in the journal's
    /// order is exact. Recording so serialises the workers' calls into their cores.
    fn record(&mut self, now: Instant, input: &Input<'_>, call: impl FnOnce(&mut Server)) {
        let Some(r) = &mut self.rec else {
            return call(&mut self.server);
        };
        let _order = ORDER.lock().unwrap_or_else(|e| e.into_inner());
        r.input(now, input);
        call(&mut self.server);
    }

    /// A lookup's outcome, recorded through [`OutcomeCodec`] (the outcomes of the
    /// resolvers made by [`deferred`](crate::deferred)).
    pub fn handle_lookup(&mut self, now: Instant, id: LookupId, result: Payload) {
        let encoded = match self.rec {
            Some(_) => OutcomeCodec.encode(&result),
            None => None,
        };
        let outcome = encoded.as_deref();
        self.record(now, &Input::Lookup { id: id.0, outcome }, |s| {
            s.handle_lookup(now, id, result)
        });
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        let action = self.server.poll_action()?;
        if let Some(r) = &mut self.rec {
            r.action(&action);
        }
        Some(action)
    }

    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.server.recycle(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use names_core::{Chain, Config};

    /// A writer that does not keep up (here: none at all): the worker never waits, the
    /// entry that does not fit is dropped and counted, and recording stops for good.
    #[test]
    fn a_full_queue_stops_recording_without_blocking() {
        let (tx, rx) = mpsc::sync_channel(2);
        let start = Instant::now();
        let recording = Recording {
            shared: Arc::new(Shared {
                start,
                stopped: AtomicBool::new(false),
                dropped: AtomicU64::new(0),
            }),
            tx,
            writer: Arc::new(Mutex::new(None)),
        };
        let server = Server::new(Config::default(), Chain::new(), [1; 32]);
        let mut core = Core::new(server, Some(recording.worker(0, [1; 32])));
        let peer = "127.0.0.1:9".parse().unwrap();
        for i in 0..100u64 {
            let now = start + Duration::from_millis(i);
            core.handle_client(now, Origin::Udp { listener: 0, peer }, b"garbage");
            core.handle_timeout(now);
            while core.poll_action().is_some() {}
        }
        assert!(recording.shared.stopped.load(Ordering::Relaxed));
        assert_eq!(recording.shared.dropped.load(Ordering::Relaxed), 1);
        // The start entry and the first input; nothing after the drop.
        assert_eq!(rx.try_iter().count(), 2);
    }
}
