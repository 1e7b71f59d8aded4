//! Readiness of the upstream UDP sockets, one level-triggered epoll set per worker.
//!
//! Every upstream try has its own socket on a random port (RFC 5452), so a forwarded
//! query costs a socket's whole life. Registered with the async reactor, that life takes
//! four epoll calls and a task; here it takes one: the socket joins this set once, with
//! its token as the event's data, and leaves it by being closed. The set's own file
//! descriptor is what the reactor watches: it is readable while any member is.

use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::task::{Context, Poll};

use smol::Async;

/// Events taken per `ready` call.
const EVENTS: usize = 64;

/// A set of upstream sockets, watched as one readable source.
pub struct UpstreamPoll {
    epoll: Async<OwnedFd>,
}

impl UpstreamPoll {
    pub fn new() -> io::Result<UpstreamPoll> {
        // SAFETY: plain system call; the result is checked and owned at once.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(UpstreamPoll {
            epoll: Async::new_nonblocking(fd)?,
        })
    }

    /// Watches `sock` (non-blocking) for datagrams; `ready` reports `token` then. Closing
    /// the socket removes it.
    pub fn add(&self, sock: &UdpSocket, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open; `event` lives across the call.
        let rc = unsafe {
            libc::epoll_ctl(
                self.epoll.get_ref().as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                sock.as_raw_fd(),
                &mut event,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Ready once some member may have a datagram.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.epoll.poll_readable(cx).map(|_| ())
    }

    /// The tokens of members with datagrams waiting, without blocking.
    pub fn ready(&self, out: &mut Vec<u64>) {
        out.clear();
        // SAFETY: zero is a valid epoll_event.
        let mut events: [libc::epoll_event; EVENTS] = unsafe { std::mem::zeroed() };
        // SAFETY: `events` has room for EVENTS entries; timeout 0 never blocks.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.get_ref().as_raw_fd(),
                events.as_mut_ptr(),
                EVENTS as libc::c_int,
                0,
            )
        };
        for event in events.iter().take(n.max(0) as usize) {
            out.push(event.u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn reports_the_token_of_a_socket_with_a_datagram_and_forgets_closed_ones() {
        let poll = UpstreamPoll::new().unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        poll.add(&a, 7).unwrap();
        poll.add(&b, 9).unwrap();
        let mut ready = Vec::new();
        poll.ready(&mut ready);
        assert!(ready.is_empty());
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"x", b.local_addr().unwrap()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while ready.is_empty() && Instant::now() < deadline {
            poll.ready(&mut ready);
        }
        assert_eq!(ready, vec![9]);
        drop(b); // closing removes it, though its datagram was never read
        poll.ready(&mut ready);
        assert!(ready.is_empty());
    }
}
