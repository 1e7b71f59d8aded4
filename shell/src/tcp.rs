//! Client TCP connections: an acceptor task per listener, and per connection a reader and
//! a writer task that only move bytes and report to the driver through [`Event`]s.
//!
//! How much of a connection the server holds is the core's business (it counts replies
//! not yet written, reported by the writer, and says when to pause reading); the tasks
//! only obey.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use names_core::ConnId;
use smol::channel::{self, Receiver, Sender};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{LocalExecutor, Task, Timer};

use crate::driver::Event;

/// How long a closed connection's writer may keep trying to hand over its queued replies.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Bytes read from a connection at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The driver's side of a client TCP connection.
pub struct ConnHandle {
    writes: Sender<Vec<u8>>,
    paused: Rc<Cell<bool>>,
    resume: Sender<()>,
    /// Tells the reader its chunk reached the core: one chunk in flight at a time, so a
    /// pause takes effect before the next read.
    fed: Sender<()>,
    /// The writer is in the middle of a write.
    writing: Rc<Cell<bool>>,
    stream: TcpStream,
}

/// A worker's client connections and what their tasks share.
pub struct Clients {
    conns: HashMap<ConnId, ConnHandle>,
    ex: Rc<LocalExecutor<'static>>,
    next_conn: Rc<Cell<u64>>,
    /// Set on shutdown: readers read nothing new (what they read is still answered).
    stop_reading: Rc<Cell<bool>>,
}

impl Clients {
    pub fn new(ex: Rc<LocalExecutor<'static>>) -> Clients {
        Clients {
            conns: HashMap::new(),
            ex,
            next_conn: Rc::new(Cell::new(0)),
            stop_reading: Rc::new(Cell::new(false)),
        }
    }

    /// Starts accepting on `listener`; dropping the task closes the listener.
    pub fn accept(&self, listener: TcpListener, events: Sender<Event>) -> Task<()> {
        self.ex.spawn(tcp_acceptor(
            self.ex.clone(),
            listener,
            self.next_conn.clone(),
            self.stop_reading.clone(),
            events,
        ))
    }

    /// A connection the acceptor reported.
    pub fn open(&mut self, conn: ConnId, handle: ConnHandle) {
        self.conns.insert(conn, handle);
    }

    /// The core took the chunk the reader sent: it may read on.
    pub fn fed(&self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.fed.try_send(());
        }
    }

    /// The connection's tasks reported it closed.
    pub fn closed(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// Hands a framed reply to the connection's writer.
    pub fn write(&self, conn: ConnId, bytes: Vec<u8>) {
        if let Some(c) = self.conns.get(&conn) {
            let _ = c.writes.try_send(bytes);
        }
    }

    /// The core closed the connection. The writer sees its channel close and shuts the
    /// stream once its queue is written; a client that does not read is cut off after a
    /// grace period.
    pub fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            if c.writing.get() || !c.writes.is_empty() {
                let stream = c.stream;
                self.ex
                    .spawn(async move {
                        Timer::after(CLOSE_GRACE).await;
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                    })
                    .detach();
            }
        }
    }

    pub fn pause(&self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            c.paused.set(true);
        }
    }

    pub fn resume(&self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            c.paused.set(false);
            let _ = c.resume.try_send(());
        }
    }

    /// Shutdown: readers read nothing new.
    pub fn stop_reading(&self) {
        self.stop_reading.set(true);
    }

    /// Closes every connection (their replies were written, or the drain limit passed)
    /// and gives the writers a moment to shut their streams.
    pub async fn flush(&mut self) {
        self.conns.clear();
        Timer::after(Duration::from_millis(20)).await;
    }
}

async fn tcp_acceptor(
    ex: Rc<LocalExecutor<'static>>,
    listener: TcpListener,
    next_conn: Rc<Cell<u64>>,
    stop_reading: Rc<Cell<bool>>,
    events: Sender<Event>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if !start(&ex, stream, peer, &next_conn, &stop_reading, &events).await {
                    return;
                }
            }
            Err(e) => {
                // EMFILE/ENFILE and friends: back off, keep serving what is open, then accept again.
                log::warn!("accept failed: {e}; retrying in 100 ms");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reports a new connection to the driver and starts its writer and reader; false once
/// the driver is gone.
async fn start(
    ex: &Rc<LocalExecutor<'static>>,
    stream: TcpStream,
    peer: SocketAddr,
    next_conn: &Cell<u64>,
    stop_reading: &Rc<Cell<bool>>,
    events: &Sender<Event>,
) -> bool {
    let conn = ConnId(next_conn.get());
    next_conn.set(conn.0 + 1);
    let (writes, write_rx) = channel::unbounded();
    let (resume, resume_rx) = channel::bounded(1);
    let (fed, fed_rx) = channel::bounded(1);
    let paused = Rc::new(Cell::new(false));
    let writing = Rc::new(Cell::new(false));
    let handle = ConnHandle {
        writes,
        paused: paused.clone(),
        resume,
        fed,
        writing: writing.clone(),
        stream: stream.clone(),
    };
    if events
        .send(Event::TcpOpen { conn, peer, handle })
        .await
        .is_err()
    {
        return false;
    }
    ex.spawn(tcp_writer(
        stream.clone(),
        conn,
        write_rx,
        writing,
        events.clone(),
    ))
    .detach();
    let reader = Reader {
        conn,
        paused,
        resume: resume_rx,
        fed: fed_rx,
        stop: stop_reading.clone(),
    };
    ex.spawn(tcp_reader(stream, reader, events.clone()))
        .detach();
    true
}

/// A reader task's view of its connection.
struct Reader {
    conn: ConnId,
    paused: Rc<Cell<bool>>,
    resume: Receiver<()>,
    fed: Receiver<()>,
    /// The worker is shutting down: read nothing new.
    stop: Rc<Cell<bool>>,
}

async fn tcp_reader(mut stream: TcpStream, r: Reader, events: Sender<Event>) {
    let conn = r.conn;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        while r.paused.get() {
            if r.resume.recv().await.is_err() {
                return; // the connection was closed
            }
        }
        if r.stop.get() {
            return;
        }
        match stream.read(&mut buf).await {
            Ok(0) => {
                // A half-close (RFC 7766 6.2.x): what was read is still answered.
                let _ = events.send(Event::TcpEof { conn }).await;
                return;
            }
            Err(_) => break,
            Ok(n) => {
                let ev = Event::TcpData {
                    conn,
                    bytes: buf[..n].to_vec(),
                };
                if events.send(ev).await.is_err() || r.fed.recv().await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = events.send(Event::TcpClosed { conn }).await;
}

async fn tcp_writer(
    mut stream: TcpStream,
    conn: ConnId,
    writes: Receiver<Vec<u8>>,
    writing: Rc<Cell<bool>>,
    events: Sender<Event>,
) {
    while let Ok(bytes) = writes.recv().await {
        writing.set(true);
        let result = stream.write_all(&bytes).await;
        writing.set(false);
        let ev = match result {
            Ok(()) => Event::TcpWritten {
                conn,
                bytes: bytes.len(),
            },
            Err(_) => Event::TcpClosed { conn },
        };
        let failed = matches!(ev, Event::TcpClosed { .. });
        if events.send(ev).await.is_err() || failed {
            break;
        }
    }
    // The core closed the connection (idle, cap, garbage, all answered) or the peer went away.
    let _ = stream.shutdown(std::net::Shutdown::Both);
}
