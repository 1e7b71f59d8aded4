//! Upstream tries of one worker: a fresh UDP socket per UDP try (read by the driver when
//! the poll set says so), a task per TCP try.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_net::TcpStream;
use names_core::{Token, UpstreamError, Via};

use crate::record::Core;
use smol::channel::{self, Receiver, Sender};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{LocalExecutor, Task};

use crate::driver::Event;
use crate::net;
use crate::upstream_poll::UpstreamSockets;

/// Largest UDP datagram read; longer ones would be cut silently by the kernel.
const MAX_DATAGRAM: usize = 65535;
/// Bytes read from an upstream TCP stream at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A worker's upstream tries.
pub struct Upstreams {
    udp: UpstreamSockets,
    /// Receive buffer for upstream replies.
    buf: Vec<u8>,
    /// TCP tries: their task, and the channel telling it the core took its last chunk.
    tcp: HashMap<Token, (Task<()>, Sender<()>)>,
    ex: Rc<LocalExecutor<'static>>,
    events: Sender<Event>,
}

impl Upstreams {
    pub fn new(ex: Rc<LocalExecutor<'static>>, events: Sender<Event>) -> io::Result<Upstreams> {
        Ok(Upstreams {
            udp: UpstreamSockets::new()?,
            buf: vec![0u8; MAX_DATAGRAM],
            tcp: HashMap::new(),
            ex,
            events,
        })
    }

    /// Starts a try. A failure to start goes back to the core as an event (never
    /// re-entering it from here).
    pub fn send(
        &mut self,
        token: Token,
        to: SocketAddr,
        via: Via,
        bytes: Vec<u8>,
        server: &mut Core,
    ) {
        match via {
            Via::Udp { local_port } => {
                // Bind, connect and send right here; the poll set reports replies.
                let started = net::upstream_udp(to, local_port).and_then(|sock| {
                    sock.send(&bytes)?;
                    self.udp.insert(token, sock, to)
                });
                server.recycle(bytes);
                if let Err(e) = started {
                    let err = if e.kind() == io::ErrorKind::AddrInUse {
                        UpstreamError::Bind
                    } else {
                        UpstreamError::Io
                    };
                    let _ = self.events.try_send(Event::UpstreamFailed { token, err });
                }
            }
            Via::Tcp => {
                let (taken_tx, taken_rx) = channel::bounded(1);
                let task = self.ex.spawn(upstream_tcp(
                    token,
                    to,
                    bytes,
                    self.events.clone(),
                    taken_rx,
                ));
                self.tcp.insert(token, (task, taken_tx));
            }
        }
    }

    /// Ends a try: closing its socket (which leaves the poll set) or dropping its task
    /// (which cancels it).
    pub fn close(&mut self, token: Token) {
        if !self.udp.remove(token) {
            self.tcp.remove(&token);
        }
    }

    /// A TCP try's chunk reached the core: its task may read on.
    pub fn taken(&self, token: Token) {
        if let Some((_, taken)) = self.tcp.get(&token) {
            let _ = taken.try_send(());
        }
    }

    /// Ready once some UDP try may have a reply.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.udp.poll_ready(cx)
    }

    /// Reads one datagram from each UDP try with replies waiting and hands it to the core.
    pub fn read(&mut self, now: Instant, server: &mut Core) {
        self.udp
            .read_ready(&mut self.buf, |token, to, read| match read {
                Ok(bytes) => server.handle_upstream(now, token, to, bytes),
                Err(_) => server.handle_upstream_error(now, token, UpstreamError::Io),
            });
    }
}

/// One upstream TCP try: sends the query, then hands every chunk read to the core and
/// waits until the core has taken it (`taken`) before reading more, so a hostile upstream
/// never has more than one chunk of its stream in memory here; the core closes the try
/// (dropping this task) as soon as the stream is broken.
async fn upstream_tcp(
    token: Token,
    to: SocketAddr,
    query: Vec<u8>,
    events: Sender<Event>,
    taken: Receiver<()>,
) {
    let result: io::Result<()> = async {
        let mut stream = TcpStream::connect(to).await?;
        stream.write_all(&query).await?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let ev = Event::Upstream {
                token,
                from: to,
                bytes: buf[..n].to_vec(),
            };
            if events.send(ev).await.is_err() || taken.recv().await.is_err() {
                return Ok(());
            }
        }
    }
    .await;
    if result.is_err() {
        let _ = events
            .send(Event::UpstreamFailed {
                token,
                err: UpstreamError::Io,
            })
            .await;
    }
}
