//! The upstream UDP sockets of one worker and their readiness, watched as one source.
//!
//! Every upstream try has its own socket on a random port (RFC 5452), so a forwarded
//! query costs a socket's whole life. Registered with the async reactor one by one, that
//! life takes four registration calls and a task; here it takes two: the socket joins one
//! `polling::Poller` (epoll, kqueue or event ports, whichever the system has) with its
//! token as the key, and leaves it just before it is closed. The poller's own descriptor
//! is what the reactor watches: it is readable while any member is.
//!
//! Which members are ready is asked without waiting, once per wake-up. `Poller::wait`
//! does that anywhere; on Linux it also re-arms the poller's internal timer and notifier
//! (four system calls more than the question needs), so there a single `epoll_wait` with
//! a zero timeout asks the same poller instead. The tests run both.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroUsize;
use std::task::{Context, Poll};
use std::time::Duration;

use names_core::Token;
use polling::{Event, Events, PollMode, Poller};
use smol::Async;

/// Events taken per `ready` call.
const EVENTS: NonZeroUsize = match NonZeroUsize::new(64) {
    Some(n) => n,
    None => unreachable!(),
};

/// The upstream UDP sockets of a worker, by token, and the poller that watches them.
pub struct UpstreamSockets {
    /// Every socket here is registered with `poller` under its token's key, and leaves
    /// the poller before it leaves this map (`remove`, `Drop`).
    sockets: HashMap<Token, (UdpSocket, SocketAddr)>,
    poller: Async<Poller>,
    /// Level-triggered where the system can (a socket with several datagrams is reported
    /// again); one-shot and re-armed after each read elsewhere (event ports).
    mode: PollMode,
    events: Events,
    /// How ready keys are asked for (see the module comment).
    harvest: Harvest,
    /// The keys found ready by the last harvest.
    ready: Vec<usize>,
}

/// Appends the keys of the ready members to the vector, without blocking.
type Harvest = fn(&Poller, &mut Events, &mut Vec<usize>);

impl UpstreamSockets {
    pub fn new() -> io::Result<UpstreamSockets> {
        UpstreamSockets::with_harvest(fast::harvest)
    }

    fn with_harvest(harvest: Harvest) -> io::Result<UpstreamSockets> {
        let poller = Poller::new()?;
        let mode = if poller.supports_level() {
            PollMode::Level
        } else {
            PollMode::Oneshot
        };
        Ok(UpstreamSockets {
            sockets: HashMap::new(),
            // The poller's descriptor is never read or written, only watched for
            // readiness, so whether it is non-blocking does not matter.
            poller: Async::new_nonblocking(poller)?,
            mode,
            events: Events::with_capacity(EVENTS),
            harvest,
            ready: Vec::with_capacity(EVENTS.get()),
        })
    }

    /// Watches `sock` (non-blocking, connected to `to`) for datagrams for `token`.
    pub fn insert(&mut self, token: Token, sock: UdpSocket, to: SocketAddr) -> io::Result<()> {
        if let Some((old, _)) = self.sockets.remove(&token) {
            let _ = self.poller.get_ref().delete(&old);
        }
        // SAFETY: the socket goes into `self.sockets` right after, and leaves it only
        // through `remove` or `Drop`, which both delete it from the poller before it is
        // closed.
        unsafe {
            self.poller
                .get_ref()
                .add_with_mode(&sock, Event::readable(key(token)), self.mode)?;
        }
        self.sockets.insert(token, (sock, to));
        Ok(())
    }

    /// Stops watching `token`'s socket and closes it. Whether there was one.
    pub fn remove(&mut self, token: Token) -> bool {
        match self.sockets.remove(&token) {
            Some((sock, _)) => {
                let _ = self.poller.get_ref().delete(&sock);
                true
            }
            None => false,
        }
    }

    /// Ready once some member may have a datagram.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.poller.poll_readable(cx).map(|_| ())
    }

    /// Reads one datagram from each member that has one, without blocking, and hands it
    /// (or the error that ended the try) to `on`. With level triggering a socket holding
    /// more is reported again by the next call, so a flooding upstream cannot starve the
    /// others.
    pub fn read_ready(
        &mut self,
        buf: &mut [u8],
        mut on: impl FnMut(Token, SocketAddr, io::Result<&[u8]>),
    ) {
        self.ready.clear();
        (self.harvest)(self.poller.get_ref(), &mut self.events, &mut self.ready);
        for &k in &self.ready {
            let token = Token(k as u64);
            let Some((sock, to)) = self.sockets.get(&token) else {
                continue;
            };
            match sock.recv(buf) {
                Ok(n) => on(token, *to, Ok(&buf[..n])),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // ICMP port unreachable and the like: this try is dead.
                Err(e) => on(token, *to, Err(e)),
            }
            if self.mode != PollMode::Level {
                if let Some((sock, _)) = self.sockets.get(&token) {
                    let _ =
                        self.poller
                            .get_ref()
                            .modify_with_mode(sock, Event::readable(k), self.mode);
                }
            }
        }
    }

    /// Sockets open.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sockets.len()
    }
}

impl Drop for UpstreamSockets {
    fn drop(&mut self) {
        for (sock, _) in self.sockets.values() {
            let _ = self.poller.get_ref().delete(sock);
        }
    }
}

/// The portable harvest: `Poller::wait` with a zero timeout.
#[cfg_attr(any(target_os = "linux", target_os = "android"), allow(dead_code))]
fn portable_harvest(poller: &Poller, events: &mut Events, out: &mut Vec<usize>) {
    events.clear();
    if poller.wait(events, Some(Duration::ZERO)).is_ok() {
        out.extend(events.iter().map(|e| e.key));
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod fast {
    use polling::{Events, Poller};

    pub fn harvest(poller: &Poller, events: &mut Events, out: &mut Vec<usize>) {
        super::portable_harvest(poller, events, out)
    }
}

/// One `epoll_wait` on the poller's epoll descriptor, which holds each member with its
/// key as the event's data (and the poller's own timer and notifier, never armed here:
/// this poller is never waited on with a timeout, nor notified).
#[cfg(any(target_os = "linux", target_os = "android"))]
mod fast {
    use std::os::fd::AsRawFd;

    use polling::{Events, Poller};

    use super::EVENTS;

    pub fn harvest(poller: &Poller, _: &mut Events, out: &mut Vec<usize>) {
        // SAFETY: epoll_event is a plain C struct, for which all zeroes is valid.
        let mut events: [libc::epoll_event; EVENTS.get()] = unsafe { std::mem::zeroed() };
        // SAFETY: the poller's descriptor is open while `poller` is borrowed; `events`
        // has room for the EVENTS entries the kernel may write; a zero timeout never blocks.
        let n = unsafe {
            libc::epoll_wait(
                poller.as_raw_fd(),
                events.as_mut_ptr(),
                EVENTS.get() as libc::c_int,
                0,
            )
        };
        for event in events.iter().take(n.max(0) as usize) {
            let key = event.u64 as usize;
            if key != usize::MAX {
                out.push(key);
            }
        }
    }
}

/// The poller key of a token. Tokens count up from zero and live for seconds, so on a
/// 32-bit system two live tokens never share their low bits; `usize::MAX` (reserved by
/// the poller) is never reached on 64-bit systems.
fn key(token: Token) -> usize {
    token.0 as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn socket_to(to: SocketAddr) -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(to).unwrap();
        s.set_nonblocking(true).unwrap();
        s
    }

    /// Calls `read_ready` until something is read or two seconds pass.
    fn read(set: &mut UpstreamSockets) -> Vec<(Token, Vec<u8>)> {
        let mut buf = vec![0u8; 512];
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        while got.is_empty() && Instant::now() < deadline {
            set.read_ready(&mut buf, |t, _, r| got.push((t, r.unwrap().to_vec())));
        }
        got
    }

    #[test]
    fn reports_the_token_of_a_socket_with_a_datagram_and_forgets_removed_ones() {
        reports_and_forgets(UpstreamSockets::new().unwrap());
    }

    #[test]
    fn the_portable_harvest_does_the_same() {
        reports_and_forgets(UpstreamSockets::with_harvest(portable_harvest).unwrap());
    }

    fn reports_and_forgets(mut set: UpstreamSockets) {
        let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = upstream.local_addr().unwrap();
        let (a, b) = (socket_to(to), socket_to(to));
        let b_addr = b.local_addr().unwrap();
        set.insert(Token(7), a, to).unwrap();
        set.insert(Token(9), b, to).unwrap();
        let mut buf = vec![0u8; 512];
        let mut calls = 0;
        set.read_ready(&mut buf, |_, _, _| calls += 1);
        assert_eq!(calls, 0, "nothing arrived yet");
        upstream.send_to(b"x", b_addr).unwrap();
        upstream.send_to(b"y", b_addr).unwrap();
        assert_eq!(read(&mut set), vec![(Token(9), b"x".to_vec())]);
        // The second datagram is reported again by the next call (level triggered).
        assert_eq!(read(&mut set), vec![(Token(9), b"y".to_vec())]);
        assert!(set.remove(Token(9)));
        assert!(!set.remove(Token(9)));
        assert_eq!(set.len(), 1);
        upstream.send_to(b"z", b_addr).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        set.read_ready(&mut buf, |_, _, _| calls += 1);
        assert_eq!(calls, 0, "a removed socket is closed and never reported");
    }

    #[test]
    fn the_poller_wakes_the_executor() {
        let mut set = UpstreamSockets::new().unwrap();
        let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = upstream.local_addr().unwrap();
        let a = socket_to(to);
        let a_addr = a.local_addr().unwrap();
        set.insert(Token(1), a, to).unwrap();
        upstream.send_to(b"x", a_addr).unwrap();
        let woke = smol::block_on(smol::future::or(
            async {
                smol::future::poll_fn(|cx| set.poll_ready(cx)).await;
                true
            },
            async {
                smol::Timer::after(Duration::from_secs(2)).await;
                false
            },
        ));
        assert!(woke);
        assert_eq!(read(&mut set), vec![(Token(1), b"x".to_vec())]);
    }
}
