//! Batched UDP I/O for the listening sockets: `recvmmsg`/`sendmmsg` on Linux and Android
//! move up to [`BATCH`] datagrams per system call; elsewhere a plain loop of
//! `recv_from`/`send_to` does the same job (the tests run it on Linux too).
//!
//! Under load a listening socket usually holds many queries at once, and per-call
//! overhead, not per-byte work, dominates the cost of a small DNS datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Datagrams per batch.
pub const BATCH: usize = 32;
/// Receive buffer per datagram. A query is rarely over 512 bytes; a longer one than this
/// is cut by the kernel and then fails admission (FORMERR), never read past its buffer.
pub const SLOT: usize = 4096;

/// Receive buffers and the lengths and sources of what the last call read.
pub struct RecvBatch {
    bufs: Vec<u8>,
    lens: [usize; BATCH],
    peers: [Option<SocketAddr>; BATCH],
}

impl RecvBatch {
    pub fn new() -> RecvBatch {
        RecvBatch {
            bufs: vec![0u8; BATCH * SLOT],
            lens: [0; BATCH],
            peers: [None; BATCH],
        }
    }

    /// Datagram `i` of the last read and its source.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let peer = self.peers.get(i).copied().flatten()?;
        Some((&self.bufs[i * SLOT..i * SLOT + self.lens[i]], peer))
    }

    /// Reads what is queued, up to a batch, without blocking. `Ok(0)`: nothing queued.
    pub fn read(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        self.read_with(sys::recv, sock)
    }

    fn read_with(&mut self, recv: Recv, sock: &UdpSocket) -> io::Result<usize> {
        recv(sock, &mut self.bufs, &mut self.lens, &mut self.peers)
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch::new()
    }
}

/// Sends `msgs` (payload, destination) from `sock`, without blocking; returns how many
/// left (the rest hit a full socket buffer or failed for their own destination: those
/// are skipped, as a lost UDP reply would be).
pub fn send_all(sock: &UdpSocket, msgs: &[(Vec<u8>, SocketAddr)]) -> usize {
    send_all_with(sys::send, sock, msgs)
}

/// One batched read: fills buffers, lengths and sources; `Ok(0)` when nothing is queued.
type Recv = fn(
    &UdpSocket,
    &mut [u8],
    &mut [usize; BATCH],
    &mut [Option<SocketAddr>; BATCH],
) -> io::Result<usize>;
/// One batched send: how many of the (at most `BATCH`) messages left.
type Send = fn(&UdpSocket, &[(Vec<u8>, SocketAddr)]) -> io::Result<usize>;

fn send_all_with(send: Send, sock: &UdpSocket, msgs: &[(Vec<u8>, SocketAddr)]) -> usize {
    let mut sent = 0;
    let mut rest = msgs;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(BATCH)];
        match send(sock, chunk) {
            Ok(0) | Err(_) => {
                // The first datagram of the chunk failed: skip it, carry on with the rest.
                rest = &rest[1..];
            }
            Ok(n) => {
                sent += n;
                rest = &rest[n..];
            }
        }
    }
    sent
}

/// The batched system calls: Linux and Android have `recvmmsg`/`sendmmsg`.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod sys {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    use socket2::{SockAddr, SockAddrStorage};

    use super::{BATCH, SLOT};

    pub fn recv(
        sock: &UdpSocket,
        bufs: &mut [u8],
        lens: &mut [usize; BATCH],
        peers: &mut [Option<SocketAddr>; BATCH],
    ) -> io::Result<usize> {
        let mut addrs: [SockAddrStorage; BATCH] =
            std::array::from_fn(|_| SockAddrStorage::zeroed());
        // SAFETY: iovec and mmsghdr are plain C structs (integers and raw pointers), for
        // which all zeroes is a valid value.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (i, chunk) in bufs.chunks_exact_mut(SLOT).take(BATCH).enumerate() {
            iovs[i].iov_base = chunk.as_mut_ptr().cast();
            iovs[i].iov_len = SLOT;
            hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut SockAddrStorage).cast();
            hdrs[i].msg_hdr.msg_namelen = size_of::<SockAddrStorage>() as libc::socklen_t;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        let slots = (bufs.len() / SLOT).min(BATCH);
        // SAFETY: the first `slots` headers each point at a live buffer of SLOT bytes inside
        // `bufs` and at their own address storage (sized as the header says); the kernel
        // writes no more than that, and all of it outlives the call.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                slots as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let n = n as usize;
        for i in 0..n {
            lens[i] = (hdrs[i].msg_len as usize).min(SLOT);
            let storage = std::mem::replace(&mut addrs[i], SockAddrStorage::zeroed());
            // SAFETY: the kernel initialised `msg_namelen` bytes of this storage with the
            // datagram's source address (the rest stays zeroed).
            let addr = unsafe { SockAddr::new(storage, hdrs[i].msg_hdr.msg_namelen) };
            peers[i] = addr.as_socket();
        }
        Ok(n)
    }

    pub fn send(sock: &UdpSocket, msgs: &[(Vec<u8>, SocketAddr)]) -> io::Result<usize> {
        let n = msgs.len().min(BATCH);
        let addrs: Vec<SockAddr> = msgs[..n]
            .iter()
            .map(|(_, to)| SockAddr::from(*to))
            .collect();
        // SAFETY: iovec and mmsghdr are plain C structs (integers and raw pointers), for
        // which all zeroes is a valid value.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..n {
            iovs[i].iov_base = msgs[i].0.as_ptr() as *mut libc::c_void;
            iovs[i].iov_len = msgs[i].0.len();
            hdrs[i].msg_hdr.msg_name = addrs[i].as_ptr() as *mut libc::c_void;
            hdrs[i].msg_hdr.msg_namelen = addrs[i].len();
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `n` headers point at live payloads and addresses for the call's
        // duration; the kernel only reads them.
        let sent = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

/// The plain loop every Unix has: one `recv_from`/`send_to` per datagram. The tests run it
/// on Linux too.
#[cfg(any(test, not(any(target_os = "linux", target_os = "android"))))]
mod plain {
    use std::io;
    use std::net::{SocketAddr, UdpSocket};

    use super::{BATCH, SLOT};

    /// Reads datagrams until the socket would block or `BATCH` were read; the socket
    /// must be non-blocking.
    pub fn recv(
        sock: &UdpSocket,
        bufs: &mut [u8],
        lens: &mut [usize; BATCH],
        peers: &mut [Option<SocketAddr>; BATCH],
    ) -> io::Result<usize> {
        let mut n = 0;
        for chunk in bufs.chunks_exact_mut(SLOT).take(BATCH) {
            match sock.recv_from(chunk) {
                Ok((len, peer)) => {
                    lens[n] = len;
                    peers[n] = Some(peer);
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(n)
    }

    pub fn send(sock: &UdpSocket, msgs: &[(Vec<u8>, SocketAddr)]) -> io::Result<usize> {
        for (i, (bytes, to)) in msgs.iter().take(BATCH).enumerate() {
            if let Err(e) = sock.send_to(bytes, to) {
                return if i == 0 { Err(e) } else { Ok(i) };
            }
        }
        Ok(msgs.len().min(BATCH))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
use plain as sys;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// 40 datagrams in, 40 replies out, through the given pair of calls.
    fn round_trip(recv: Recv, send: Send) {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_nonblocking(true).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        for i in 0..40u8 {
            client
                .send_to(&[i; 3], server.local_addr().unwrap())
                .unwrap();
        }
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.len() < 40 && Instant::now() < deadline {
            let n = batch.read_with(recv, &server).unwrap();
            assert!(n <= BATCH);
            for i in 0..n {
                let (bytes, peer) = batch.get(i).unwrap();
                assert_eq!(peer, client.local_addr().unwrap());
                got.push(bytes.to_vec());
            }
        }
        assert_eq!(got.len(), 40);
        assert_eq!(got[39], vec![39; 3]);
        let replies: Vec<_> = got
            .iter()
            .map(|g| (g.clone(), client.local_addr().unwrap()))
            .collect();
        assert_eq!(send_all_with(send, &server, &replies), 40);
        let mut buf = [0u8; 16];
        for i in 0..40u8 {
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i; 3]);
        }
        // Nothing queued: zero, not an error.
        assert_eq!(batch.read_with(recv, &server).unwrap(), 0);
    }

    #[test]
    fn batches_round_trip_on_loopback() {
        round_trip(sys::recv, sys::send);
    }

    #[test]
    fn the_plain_fallback_round_trips_on_loopback() {
        round_trip(plain::recv, plain::send);
    }

    #[test]
    fn ipv6_sources_are_decoded() {
        let Ok(server) = UdpSocket::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback");
            return;
        };
        server.set_nonblocking(true).unwrap();
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client
            .send_to(b"six", server.local_addr().unwrap())
            .unwrap();
        for recv in [sys::recv as Recv, plain::recv] {
            let mut batch = RecvBatch::new();
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut n = 0;
            while n == 0 && Instant::now() < deadline {
                n = batch.read_with(recv, &server).unwrap();
            }
            assert_eq!(n, 1);
            assert_eq!(
                batch.get(0),
                Some((&b"six"[..], client.local_addr().unwrap()))
            );
            client
                .send_to(b"six", server.local_addr().unwrap())
                .unwrap();
        }
    }
}
