//! The listening UDP sockets of one worker: read in batches, replies gathered and sent in
//! batches.
//!
//! The driver reads these sockets itself, draining each readable socket until it would
//! block (no task, channel or copy per datagram). A datagram's [`Origin`] names its socket
//! by index, and the reply goes back out through the same socket.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::task::{Context, Poll};
use std::time::Instant;

use names_core::Origin;

use crate::record::Core;
use smol::Async;

use crate::batch;

/// Datagrams read from one listening socket per wake-up before replies go out.
const UDP_BATCH: usize = 64;

/// A worker's listening UDP sockets, their receive buffers and their pending replies.
pub struct UdpListeners {
    sockets: Vec<Async<UdpSocket>>,
    /// Receive buffers for the sockets.
    recv: batch::RecvBatch,
    /// Replies waiting to be sent, per socket.
    out: Vec<Vec<(Vec<u8>, SocketAddr)>>,
    /// A socket left readable after a full batch.
    hot: Option<usize>,
    /// Set on shutdown: the sockets are no longer read (they stay open, since the
    /// replies still in flight leave through them).
    stopped: bool,
}

impl UdpListeners {
    /// Registers the sockets with the reactor. Index `i` in `sockets` is listener `i`.
    pub fn new(sockets: Vec<UdpSocket>) -> io::Result<UdpListeners> {
        let sockets = sockets
            .into_iter()
            .map(Async::new)
            .collect::<io::Result<Vec<_>>>()?;
        let out = (0..sockets.len())
            .map(|_| Vec::with_capacity(batch::BATCH))
            .collect();
        Ok(UdpListeners {
            sockets,
            recv: batch::RecvBatch::new(),
            out,
            hot: None,
            stopped: false,
        })
    }

    /// The socket that still had datagrams after a full batch, if any (taken).
    pub fn take_hot(&mut self) -> Option<usize> {
        self.hot.take()
    }

    /// Whether a socket was left with datagrams after the last read.
    pub fn is_hot(&self) -> bool {
        self.hot.is_some()
    }

    /// Ready with the index of a readable socket; never ready after [`UdpListeners::stop`].
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<usize> {
        if self.stopped {
            return Poll::Pending;
        }
        for (i, sock) in self.sockets.iter().enumerate() {
            if sock.poll_readable(cx).is_ready() {
                return Poll::Ready(i);
            }
        }
        Poll::Pending
    }

    /// Stops reading (shutdown); replies still go out.
    pub fn stop(&mut self) {
        self.stopped = true;
        self.hot = None;
    }

    /// Reads datagrams from socket `i` until it would block (at most `UDP_BATCH`, in
    /// batched system calls) and hands them to the core.
    pub fn read(&mut self, now: Instant, i: usize, server: &mut Core) {
        let Some(sock) = self.sockets.get(i) else {
            return;
        };
        let recv = &mut self.recv;
        let hot = drain_socket(|| {
            let n = recv.read(sock.get_ref())?;
            for k in 0..n {
                if let Some((bytes, peer)) = recv.get(k) {
                    server.handle_client(now, Origin::Udp { listener: i, peer }, bytes);
                }
            }
            Ok(n)
        });
        self.hot = hot.then_some(i);
    }

    /// Queues a reply for `peer` on socket `listener`; the buffer goes back to the core
    /// when there is no such socket.
    pub fn queue(&mut self, listener: usize, peer: SocketAddr, bytes: Vec<u8>, server: &mut Core) {
        match self.out.get_mut(listener) {
            Some(out) => out.push((bytes, peer)),
            None => server.recycle(bytes),
        }
    }

    /// Sends the queued replies, a batch per system call, and gives their buffers back to
    /// the core.
    pub fn flush(&mut self, server: &mut Core) {
        for (sock, out) in self.sockets.iter().zip(&mut self.out) {
            if out.is_empty() {
                continue;
            }
            batch::send_all(sock.get_ref(), out);
            for (bytes, _) in out.drain(..) {
                server.recycle(bytes);
            }
        }
    }
}

/// Calls `read_batch` (one batched read, returning the datagrams it handled) until the
/// socket would block (`Ok(0)`) or `UDP_BATCH` datagrams were read; returns whether the
/// socket may still hold datagrams. An error ends the round: the socket's next readiness
/// brings the driver back, so a persistent error can never hold the worker in this loop.
fn drain_socket(mut read_batch: impl FnMut() -> io::Result<usize>) -> bool {
    let mut read = 0;
    while read < UDP_BATCH {
        match read_batch() {
            Ok(0) | Err(_) => return false,
            Ok(n) => read += n,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persistent_read_error_ends_the_round() {
        let mut calls = 0;
        let hot = drain_socket(|| {
            calls += 1;
            Err(io::Error::other("recvmmsg keeps failing"))
        });
        assert!(!hot);
        assert_eq!(
            calls, 1,
            "one failed read, then back to waiting for readiness"
        );
    }

    #[test]
    fn a_full_batch_leaves_the_socket_hot_and_would_block_does_not() {
        let mut calls = 0;
        assert!(drain_socket(|| {
            calls += 1;
            Ok(16)
        }));
        assert_eq!(calls, UDP_BATCH / 16);
        let mut left = 3;
        assert!(!drain_socket(|| {
            left -= 1;
            Ok(if left > 0 { 8 } else { 0 })
        }));
    }
}
