//! Secondary zones: one thread drives the core's [`Secondary`] machine with sockets of
//! its own (a UDP socket per SOA query, a TCP connection per transfer) and hands every
//! zone it may serve, or must stop serving, to the caller's publisher (`names serve`
//! swaps the workers' zone snapshot, as a SIGHUP reload does). NOTIFYs accepted by the
//! workers arrive on a channel ([`NotifyRoute`]).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_net::{TcpStream, UdpSocket};
use bytes::Bytes;
use names_core::domain::base::Name;
use names_core::secondary::{Action, Level, NotifyPolicy, Secondary, SecondaryStats, ZoneStatus};
use names_core::Token;
use smol::channel::{self, Receiver, Sender};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{LocalExecutor, Task, Timer};

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Socket events waiting for the machine; a full queue makes the readers wait.
const EVENT_QUEUE: usize = 64;
/// NOTIFYs waiting for the machine; more are dropped (a check is coming anyway).
pub const NOTIFY_QUEUE: usize = 256;

/// Where the workers send the zones of the NOTIFYs they accepted, and which they accept.
#[derive(Clone, Debug)]
pub struct NotifyRoute {
    /// Which NOTIFYs are answered NOERROR and passed on.
    pub policy: NotifyPolicy,
    /// The secondary thread's inbox.
    pub to: Sender<Name<Bytes>>,
}

/// The machine's counters and zones, as the metrics endpoint reads them.
#[derive(Clone, Debug, Default)]
pub struct SecondaryProbe(Arc<Mutex<(SecondaryStats, Vec<ZoneStatus>)>>);

impl SecondaryProbe {
    /// The latest counters and zone states.
    pub fn read(&self) -> (SecondaryStats, Vec<ZoneStatus>) {
        match self.0.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn write(&self, machine: &Secondary) {
        let value = (machine.stats(), machine.status());
        match self.0.lock() {
            Ok(mut g) => *g = value,
            Err(poisoned) => *poisoned.into_inner() = value,
        }
    }
}

/// What the publisher is told.
pub enum Publish {
    /// Serve this zone from now on; `transferred`: new data from the primary.
    Serve(Arc<names_core::zone::Zone>, bool),
    /// Stop serving the zone of this origin (SERVFAIL).
    Expire(Name<Bytes>),
}

enum Event {
    Udp(Token, SocketAddr, Vec<u8>),
    Tcp(Token, Vec<u8>),
    Closed(Token),
}

/// Runs `machine` on a thread of its own until the process ends.
pub fn spawn(
    machine: Secondary,
    notified: Receiver<Name<Bytes>>,
    probe: SecondaryProbe,
    publish: Box<dyn FnMut(Publish) + Send>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("names-secondary".into())
        .spawn(move || {
            let ex = Rc::new(LocalExecutor::new());
            smol::block_on(ex.run(run(ex.clone(), machine, notified, probe, publish)));
        })?;
    Ok(())
}

async fn run(
    ex: Rc<LocalExecutor<'static>>,
    mut machine: Secondary,
    notified: Receiver<Name<Bytes>>,
    probe: SecondaryProbe,
    mut publish: Box<dyn FnMut(Publish) + Send>,
) {
    let (tx, rx) = channel::bounded::<Event>(EVENT_QUEUE);
    let mut sockets: HashMap<Token, Task<()>> = HashMap::new();
    loop {
        while let Some(action) = machine.poll_action() {
            match action {
                Action::SendUdp { token, to, bytes } => {
                    sockets.insert(token, ex.spawn(udp(token, to, bytes, tx.clone())));
                }
                Action::Connect { token, to, bytes } => {
                    sockets.insert(token, ex.spawn(tcp(token, to, bytes, tx.clone())));
                }
                Action::Close { token } => {
                    sockets.remove(&token);
                }
                Action::Serve { zone, transferred } => publish(Publish::Serve(zone, transferred)),
                Action::Expire { origin } => publish(Publish::Expire(origin)),
                Action::Log { level, line } => match level {
                    Level::Info => log::info!("{line}"),
                    Level::Warn => log::warn!("{line}"),
                },
            }
        }
        probe.write(&machine);
        let timer = async {
            match machine.poll_timeout() {
                Some(at) => Timer::at(at).await,
                None => Timer::never().await,
            };
            None
        };
        let socket = async { rx.recv().await.ok().map(Ok) };
        let notify = async { notified.recv().await.ok().map(Err) };
        let next = smol::future::or(socket, smol::future::or(notify, timer)).await;
        let now = Instant::now();
        match next {
            Some(Ok(Event::Udp(token, from, bytes))) => {
                machine.handle_udp(now, token, from, &bytes)
            }
            Some(Ok(Event::Tcp(token, bytes))) => machine.handle_tcp(now, token, &bytes),
            Some(Ok(Event::Closed(token))) => machine.handle_closed(now, token),
            Some(Err(origin)) => machine.notify(now, &origin),
            None => machine.handle_timeout(now),
        }
        machine.handle_timeout(Instant::now());
    }
}

fn unspecified(to: SocketAddr) -> SocketAddr {
    let ip = match to.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}

/// One SOA query over UDP: every datagram read goes to the machine until it closes us.
async fn udp(token: Token, to: SocketAddr, bytes: Vec<u8>, events: Sender<Event>) {
    let result: io::Result<()> = async {
        let socket = UdpSocket::bind(unspecified(to)).await?;
        socket.connect(to).await?;
        socket.send(&bytes).await?;
        let mut buf = vec![0u8; 65535];
        loop {
            let n = socket.recv(&mut buf).await?;
            if events
                .send(Event::Udp(token, to, buf[..n].to_vec()))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
    .await;
    if result.is_err() {
        let _ = events.send(Event::Closed(token)).await;
    }
}

/// One TCP exchange: connect, write the query, hand every chunk read to the machine.
async fn tcp(token: Token, to: SocketAddr, bytes: Vec<u8>, events: Sender<Event>) {
    let _: io::Result<()> = async {
        let mut stream = TcpStream::connect(to).await?;
        stream.write_all(&bytes).await?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            if events
                .send(Event::Tcp(token, buf[..n].to_vec()))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
    .await;
    let _ = events.send(Event::Closed(token)).await;
}
