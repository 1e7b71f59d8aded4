//! Batched UDP I/O for the listening sockets: `recvmmsg`/`sendmmsg` on Linux move up to
//! [`BATCH`] datagrams per system call; elsewhere a plain loop does the same job.
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
        sys::recv(sock, &mut self.bufs, &mut self.lens, &mut self.peers)
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
    let mut sent = 0;
    let mut rest = msgs;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(BATCH)];
        match sys::send(sock, chunk) {
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

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    use socket2::SockAddr;

    use super::{BATCH, SLOT};

    pub fn recv(
        sock: &UdpSocket,
        bufs: &mut [u8],
        lens: &mut [usize; BATCH],
        peers: &mut [Option<SocketAddr>; BATCH],
    ) -> io::Result<usize> {
        // SAFETY: plain C structs, zero is a valid value for each.
        let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iovs[i].iov_base = bufs[i * SLOT..].as_mut_ptr().cast();
            iovs[i].iov_len = SLOT;
            hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at a live buffer of SLOT bytes inside `bufs` and at
        // its own address slot; the kernel writes at most that much.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
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
            peers[i] = socket_addr(&addrs[i]);
        }
        Ok(n)
    }

    /// The address the kernel wrote into a `sockaddr_storage`, if it is IPv4 or IPv6.
    fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in, which fits in it.
                let a = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddr::from((ip, u16::from_be(a.sin_port))))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6, which fits in it.
                let a = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                    ip,
                    u16::from_be(a.sin6_port),
                    u32::from_be(a.sin6_flowinfo),
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    pub fn send(sock: &UdpSocket, msgs: &[(Vec<u8>, SocketAddr)]) -> io::Result<usize> {
        let n = msgs.len().min(BATCH);
        let addrs: Vec<SockAddr> = msgs[..n]
            .iter()
            .map(|(_, to)| SockAddr::from(*to))
            .collect();
        // SAFETY: plain C structs, zero is a valid value for each.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..n {
            iovs[i].iov_base = msgs[i].0.as_ptr() as *mut libc::c_void;
            iovs[i].iov_len = msgs[i].0.len();
            hdrs[i].msg_hdr.msg_name = addrs[i].as_ptr() as *mut libc::c_void;
            hdrs[i].msg_hdr.msg_namelen = addrs[i].len();
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the headers point at live payloads and addresses for the call's duration;
        // the kernel only reads them.
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

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::net::{SocketAddr, UdpSocket};

    use super::{BATCH, SLOT};

    pub fn recv(
        sock: &UdpSocket,
        bufs: &mut [u8],
        lens: &mut [usize; BATCH],
        peers: &mut [Option<SocketAddr>; BATCH],
    ) -> io::Result<usize> {
        let mut n = 0;
        while n < BATCH {
            match sock.recv_from(&mut bufs[n * SLOT..(n + 1) * SLOT]) {
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
        for (i, (bytes, to)) in msgs.iter().enumerate() {
            if let Err(e) = sock.send_to(bytes, to) {
                return if i == 0 { Err(e) } else { Ok(i) };
            }
        }
        Ok(msgs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn batches_round_trip_on_loopback() {
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
            let n = batch.read(&server).unwrap();
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
        assert_eq!(send_all(&server, &replies), 40);
        let mut buf = [0u8; 16];
        for i in 0..40u8 {
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i; 3]);
        }
    }
}
