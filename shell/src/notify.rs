//! NOTIFY out: a thread carrying the core's `Notifier` with a UDP socket of its own
//! (one per address family the targets use). Zone changes come from the loader (at start
//! and on every reload that changes a serial) over a channel.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use names_core::domain::base::Name;
use names_core::notify::{Notifier, NotifyEvent, NotifyTarget};
use names_core::tsig::KeyRing;
use names_core::Rr;
use smol::channel::{Receiver, Sender};
use smol::net::UdpSocket;

/// Zones whose serial changed: origin and new SOA.
pub type Changes = Vec<(Name<Bytes>, Rr)>;

/// Starts the notifier thread; returns where to send zone changes.
pub fn start(targets: Vec<NotifyTarget>, keys: KeyRing) -> io::Result<Sender<Changes>> {
    // Unbounded, but one message per reload: SIGHUPs are few.
    let (tx, rx) = smol::channel::unbounded();
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| io::Error::other(format!("no OS randomness: {e}")))?;
    let v4 = targets.iter().any(|t| t.addr.is_ipv4());
    let v6 = targets.iter().any(|t| t.addr.is_ipv6());
    let v4 = v4
        .then(|| std::net::UdpSocket::bind(("0.0.0.0", 0)))
        .transpose()?;
    let v6 = v6
        .then(|| std::net::UdpSocket::bind(("::", 0)))
        .transpose()?;
    let mut notifier = Notifier::new(targets, keys, seed);
    notifier.set_unix_time(Instant::now(), names_shell::unix_now());
    std::thread::Builder::new()
        .name("names-notify".into())
        .spawn(move || {
            let ex = smol::LocalExecutor::new();
            smol::block_on(ex.run(async {
                // Replies from either socket, bounded: a flood waits in the kernel's buffer.
                let (replies_tx, replies) = smol::channel::bounded(64);
                let mut sockets = (None, None);
                for (socket, slot) in [(v4, &mut sockets.0), (v6, &mut sockets.1)] {
                    let Some(socket) = socket else { continue };
                    match UdpSocket::try_from(socket) {
                        Ok(socket) => {
                            ex.spawn(read(socket.clone(), replies_tx.clone())).detach();
                            *slot = Some(socket);
                        }
                        Err(e) => return log::error!("notify: cannot use its socket: {e}"),
                    }
                }
                run(notifier, sockets, rx, replies).await
            }))
        })?;
    Ok(tx)
}

/// Forwards every datagram the socket receives.
async fn read(socket: UdpSocket, to: Sender<(SocketAddr, Vec<u8>)>) {
    let mut buf = vec![0u8; 65535];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if to.send((from, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
            // An ICMP error or the like: the socket still works; pause, never spin.
            Err(e) => {
                log::debug!("notify: receive: {e}");
                smol::Timer::after(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

enum Event {
    Changes(Changes),
    Reply(SocketAddr, Vec<u8>),
    Timeout,
    Closed,
}

async fn run(
    mut notifier: Notifier,
    (v4, v6): (Option<UdpSocket>, Option<UdpSocket>),
    changes: Receiver<Changes>,
    replies: Receiver<(SocketAddr, Vec<u8>)>,
) {
    loop {
        while let Some((to, message)) = notifier.poll_send() {
            let socket = if to.is_ipv4() { &v4 } else { &v6 };
            if let Some(socket) = socket {
                if let Err(e) = socket.send_to(&message, to).await {
                    log::warn!("notify: cannot send to {to}: {e}");
                }
            }
        }
        while let Some(event) = notifier.poll_event() {
            match event {
                NotifyEvent::Answered {
                    zone,
                    serial,
                    to,
                    rcode,
                } => log::info!(
                    "notify: {to} answered {rcode} for zone {} serial {serial}",
                    zone.fmt_with_dot()
                ),
                NotifyEvent::GaveUp { zone, serial, to } => log::warn!(
                    "notify: {to} did not answer for zone {} serial {serial}; given up",
                    zone.fmt_with_dot()
                ),
            }
        }
        let changed = async { changes.recv().await.map_or(Event::Closed, Event::Changes) };
        let replied = async {
            match replies.recv().await {
                Ok((from, bytes)) => Event::Reply(from, bytes),
                Err(_) => std::future::pending().await,
            }
        };
        let timer = async {
            match notifier.poll_timeout() {
                Some(at) => smol::Timer::at(at).await,
                None => std::future::pending().await,
            };
            Event::Timeout
        };
        let event = smol::future::or(changed, smol::future::or(replied, timer)).await;
        let now = Instant::now();
        match event {
            Event::Changes(changes) => {
                for (zone, soa) in changes {
                    notifier.zone_changed(now, &zone, &soa);
                }
            }
            Event::Reply(from, bytes) => notifier.handle_reply(now, from, &bytes),
            Event::Timeout => notifier.handle_timeout(now),
            Event::Closed => return,
        }
    }
}
