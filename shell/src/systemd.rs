//! systemd integration, harmless elsewhere: service notifications for `Type=notify`
//! units, and socket activation.
//!
//! - Notifications go to `$NOTIFY_SOCKET` (nothing is sent without it): `READY=1` once the
//!   sockets are bound and the workers start, `RELOADING=1` with `MONOTONIC_USEC` when a
//!   SIGHUP reload starts and `READY=1` when it is done, `STOPPING=1` when the graceful
//!   shutdown starts. A failure to send is logged and otherwise ignored.
//! - Socket activation: when `$LISTEN_PID` is this process, the `$LISTEN_FDS` descriptors
//!   from 3 on are served instead of binding `--listen`. UDP and TCP sockets are paired by
//!   local address; every address needs a UDP socket (its TCP twin is optional). With
//!   several workers, every worker reads the same handed-over UDP sockets (see
//!   [`Listeners::from_sockets`](crate::Listeners::from_sockets)).

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use sd_notify::NotifyState;
use socket2::{Socket, Type};

/// Tells the service manager the server is ready (start-up or reload done).
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells the service manager a reload has started.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(e) => log::warn!("systemd: cannot read the monotonic clock: {e}"),
    }
}

/// Tells the service manager the server is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("systemd: cannot notify the service manager: {e}");
    }
}

/// Set once the handed-over descriptors are taken: they are owned once.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The sockets handed over by socket activation, paired by address: `None` when this
/// process was not socket-activated. An error is one line naming the descriptor.
#[allow(clippy::type_complexity)]
pub fn activated_sockets() -> io::Result<Option<Vec<(UdpSocket, Option<TcpListener>)>>> {
    let fds = sd_notify::listen_fds()
        .map_err(|e| io::Error::new(e.kind(), format!("socket activation: {e}")))?;
    if fds.len() == 0 || TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    let sockets = fds
        .map(|fd| {
            // SAFETY: `$LISTEN_PID` names this process, so the service manager handed
            // descriptors 3 to 3 + `$LISTEN_FDS` - 1 to it, open and owned by nobody else;
            // `TAKEN` makes sure each is wrapped (and so closed) once.
            (fd, unsafe { Socket::from_raw_fd(fd) })
        })
        .collect();
    pair(sockets).map(Some)
}

/// Pairs UDP and TCP sockets by local address, in the order the UDP sockets came.
#[allow(clippy::type_complexity)]
fn pair(sockets: Vec<(RawFd, Socket)>) -> io::Result<Vec<(UdpSocket, Option<TcpListener>)>> {
    let mut udp: Vec<(SocketAddr, UdpSocket, Option<TcpListener>)> = Vec::new();
    let mut tcp: Vec<(SocketAddr, RawFd, TcpListener)> = Vec::new();
    for (fd, sock) in sockets {
        let fail = |what: String| io::Error::other(format!("socket activation: fd {fd}: {what}"));
        let addr = sock
            .local_addr()
            .map_err(|e| fail(e.to_string()))?
            .as_socket()
            .ok_or_else(|| fail("not an IP socket".into()))?;
        match sock.r#type().map_err(|e| fail(e.to_string()))? {
            Type::DGRAM => udp.push((addr, sock.into(), None)),
            Type::STREAM => tcp.push((addr, fd, sock.into())),
            _ => return Err(fail("neither a UDP nor a TCP socket".into())),
        }
    }
    for (addr, fd, listener) in tcp {
        let Some(slot) = udp.iter_mut().find(|(a, _, t)| *a == addr && t.is_none()) else {
            return Err(io::Error::other(format!(
                "socket activation: fd {fd}: TCP socket on {addr} has no UDP socket on the same address"
            )));
        };
        slot.2 = Some(listener);
    }
    Ok(udp.into_iter().map(|(_, u, t)| (u, t)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn sock(s: impl Into<Socket>) -> (RawFd, Socket) {
        let s = s.into();
        (s.as_raw_fd(), s)
    }

    /// A UDP socket on a free port and a TCP listener on the same port (another process
    /// may hold the TCP twin of a free UDP port: then another port, a bounded number of times).
    fn udp_tcp_twins() -> (UdpSocket, TcpListener) {
        for _ in 0..100 {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
                return (udp, tcp);
            }
        }
        panic!("no port free for both UDP and TCP in 100 tries");
    }

    #[test]
    fn pairs_by_address_and_refuses_a_lone_tcp_socket() {
        let (u1, t1) = udp_tcp_twins();
        let a1 = u1.local_addr().unwrap();
        let u2 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a2 = u2.local_addr().unwrap();
        let pairs = pair(vec![sock(t1), sock(u1), sock(u2)]).unwrap();
        let got: Vec<_> = pairs
            .iter()
            .map(|(u, t)| {
                let tcp = t.as_ref().map(|t| t.local_addr().unwrap());
                (u.local_addr().unwrap(), tcp)
            })
            .collect();
        assert_eq!(got, vec![(a1, Some(a1)), (a2, None)]);

        let lone = TcpListener::bind("127.0.0.1:0").unwrap();
        let err = pair(vec![sock(lone)]).unwrap_err().to_string();
        assert!(err.contains("has no UDP socket"), "{err}");
        assert_eq!(err.lines().count(), 1);
    }
}
