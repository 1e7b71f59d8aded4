//! The same core, driven by plain std blocking sockets and threads: no smol, no async
//! runtime at all. This proves `names-core` is runtime-agnostic.
//!
//! ```sh
//! cargo run -p names-core --example blocking -- 127.0.0.1:10053 --synth workstation=172.0.2 --upstream 192.0.2.53
//! dig -p 10053 @127.0.0.1 workstation7.example.com A +short   # 172.0.2.7
//! ```
//!
//! Usage: `blocking [LISTEN] [--synth PREFIX=NET]... [--upstream IP[:PORT]]...` (listen
//! default 127.0.0.1:10053; port 0 binds a free port). It serves UDP clients only. Once
//! bound it prints `blocking: ready udp=IP:PORT chain=...` on stderr.
//!
//! The loop is the one the core documents: drain `poll_action`, then wait for the next
//! input no longer than `poll_timeout() - now`, feed it with the current time, and call
//! `handle_timeout`. Socket reads happen in threads that send what they read over a
//! channel; each upstream socket reads with `set_read_timeout` so it notices when the
//! core closes its token.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use names_core::setup::Setup;
use names_core::{
    parse_server, Action, Config, Origin, Server, SynthRule, Token, UpstreamError, Via,
};

/// How often an upstream reader checks whether its token was closed.
const READ_SLICE: Duration = Duration::from_millis(100);
/// How long connecting to an upstream over TCP may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Something read from a socket, for the core.
enum Event {
    Client {
        peer: SocketAddr,
        bytes: Vec<u8>,
    },
    Upstream {
        token: Token,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    UpstreamFailed {
        token: Token,
        err: UpstreamError,
    },
}

/// An open upstream socket: its reader thread stops when `closed` is set.
struct Upstream {
    closed: Arc<AtomicBool>,
    tcp: Option<TcpStream>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blocking: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut listen = "127.0.0.1:10053".to_string();
    let mut rules = Vec::new();
    let mut upstreams = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "--synth" => {
                rules.push(SynthRule::parse(&value("--synth")?).map_err(|e| e.to_string())?)
            }
            "--upstream" => {
                upstreams.push(parse_server(&value("--upstream")?).map_err(|e| e.to_string())?)
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            addr => listen = addr.to_string(),
        }
    }
    let listen: SocketAddr = listen
        .parse()
        .map_err(|_| format!("{listen:?} is not an IP:PORT address"))?;

    let chain = Setup::new().synth(rules).forward_to(upstreams).build();
    let names = chain.names().join(",");
    let mut server = Server::new(Config::default(), chain, seed());

    let socket = UdpSocket::bind(listen).map_err(|e| format!("cannot bind {listen}: {e}"))?;
    let bound = socket.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    spawn_listener(socket.try_clone().map_err(|e| e.to_string())?, tx.clone());
    eprintln!("blocking: ready udp={bound} chain={names}");

    let mut open: BTreeMap<Token, Upstream> = BTreeMap::new();
    loop {
        while let Some(action) = server.poll_action() {
            perform(action, &socket, &mut server, &mut open, &tx);
        }
        let now = clock();
        let event = match server.poll_timeout() {
            Some(deadline) => rx.recv_timeout(deadline.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        let now = clock();
        match event {
            Ok(Event::Client { peer, bytes }) => {
                let origin = Origin::Udp { listener: 0, peer };
                server.handle_client(now, origin, &bytes);
            }
            Ok(Event::Upstream { token, from, bytes }) => {
                server.handle_upstream(now, token, from, &bytes)
            }
            Ok(Event::UpstreamFailed { token, err }) => {
                server.handle_upstream_error(now, token, err)
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Err("the listener stopped".into()),
        }
        server.handle_timeout(now);
    }
}

/// Carries out one action of the core.
fn perform(
    action: Action,
    socket: &UdpSocket,
    server: &mut Server,
    open: &mut BTreeMap<Token, Upstream>,
    tx: &Sender<Event>,
) {
    match action {
        Action::Reply {
            to: Origin::Udp { peer, .. },
            bytes,
        } => {
            let _ = socket.send_to(&bytes, peer);
        }
        Action::SendUpstream {
            token,
            to,
            via,
            bytes,
        } => {
            match send_upstream(token, to, via, &bytes, tx) {
                Ok(up) => {
                    open.insert(token, up);
                }
                // The core reacts (another port, or the next server) at once.
                Err(err) => server.handle_upstream_error(clock(), token, err),
            }
        }
        Action::CloseUpstream { token } => {
            if let Some(up) = open.remove(&token) {
                up.closed.store(true, Ordering::Relaxed);
                if let Some(stream) = up.tcp {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        // No resolver here asks for lookups: one that did would get SERVFAIL.
        Action::Lookup { id, .. } => {
            server.handle_lookup(clock(), id, names_core::Payload::new(()))
        }
        // No TCP clients here, and no query log.
        Action::CancelLookup { .. }
        | Action::Reply { .. }
        | Action::CloseClient { .. }
        | Action::PauseRead { .. }
        | Action::ResumeRead { .. }
        | Action::Log(_) => {}
    }
}

/// Opens the socket a try asks for, sends the query and starts its reader thread.
fn send_upstream(
    token: Token,
    to: SocketAddr,
    via: Via,
    bytes: &[u8],
    tx: &Sender<Event>,
) -> Result<Upstream, UpstreamError> {
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    let tx = tx.clone();
    match via {
        Via::Udp { local_port } => {
            let any: IpAddr = match to {
                SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
                SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
            };
            let sock = UdpSocket::bind((any, local_port)).map_err(|_| UpstreamError::Bind)?;
            sock.connect(to).map_err(|_| UpstreamError::Io)?;
            sock.send(bytes).map_err(|_| UpstreamError::Io)?;
            sock.set_read_timeout(Some(READ_SLICE))
                .map_err(|_| UpstreamError::Io)?;
            thread::spawn(move || {
                let mut buf = vec![0u8; 65535];
                while !flag.load(Ordering::Relaxed) {
                    if let Ok(n) = sock.recv(&mut buf) {
                        let bytes = buf[..n].to_vec();
                        if tx
                            .send(Event::Upstream {
                                token,
                                from: to,
                                bytes,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
            Ok(Upstream { closed, tcp: None })
        }
        Via::Tcp => {
            let mut stream =
                TcpStream::connect_timeout(&to, CONNECT_TIMEOUT).map_err(|_| UpstreamError::Io)?;
            stream.write_all(bytes).map_err(|_| UpstreamError::Io)?;
            stream
                .set_read_timeout(Some(READ_SLICE))
                .map_err(|_| UpstreamError::Io)?;
            let mut reader = stream.try_clone().map_err(|_| UpstreamError::Io)?;
            thread::spawn(move || {
                let mut buf = vec![0u8; 16384];
                while !flag.load(Ordering::Relaxed) {
                    let event = match reader.read(&mut buf) {
                        Ok(0) => Event::UpstreamFailed {
                            token,
                            err: UpstreamError::Io,
                        },
                        Ok(n) => Event::Upstream {
                            token,
                            from: to,
                            bytes: buf[..n].to_vec(),
                        },
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            continue
                        }
                        Err(_) => Event::UpstreamFailed {
                            token,
                            err: UpstreamError::Io,
                        },
                    };
                    let last = matches!(event, Event::UpstreamFailed { .. });
                    if tx.send(event).is_err() || last {
                        return;
                    }
                }
            });
            Ok(Upstream {
                closed,
                tcp: Some(stream),
            })
        }
    }
}

/// Reads client datagrams forever.
fn spawn_listener(socket: UdpSocket, tx: Sender<Event>) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 65535];
        loop {
            match socket.recv_from(&mut buf) {
                Ok((n, peer)) => {
                    let bytes = buf[..n].to_vec();
                    if tx.send(Event::Client { peer, bytes }).is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!("blocking: receive failed: {e}"),
            }
        }
    });
}

/// The runtime's clock: the core never reads one, its driver does and passes `now` in.
#[allow(clippy::disallowed_methods)]
fn clock() -> Instant {
    Instant::now()
}

/// 32 bytes from the operating system for the core's CSPRNG (upstream IDs and ports).
fn seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(&mut seed).is_ok() {
            return seed;
        }
    }
    // Elsewhere: std's per-process random hash keys.
    use std::hash::{BuildHasher, Hasher};
    for chunk in seed.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    seed
}
