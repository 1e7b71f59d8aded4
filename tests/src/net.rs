//! Tiny UDP and TCP clients with deadlines, for talking to a server over loopback.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use crate::build::frame;
use crate::parse::{hex, parse, Parsed};

// ---------------------------------------------------------------------------

/// A UDP client socket on 127.0.0.1 for multi-step exchanges.
pub struct UdpClient {
    sock: UdpSocket,
    server: SocketAddr,
}

impl UdpClient {
    pub fn new(server: SocketAddr) -> UdpClient {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind client UDP");
        UdpClient { sock, server }
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }
    pub fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).expect("UDP send");
    }
    /// Next datagram from the server, or None after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65535];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) if from == self.server => return Some(buf[..n].to_vec()),
                Ok(_) => {} // stray datagram from someone else
                Err(e) if again(&e) => {}
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

/// Send one datagram and wait for one reply from `addr` (None on timeout).
pub fn udp_exchange(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let c = UdpClient::new(addr);
    c.send(bytes);
    c.recv(timeout)
}

/// Like [`udp_exchange`] with a 5 s timeout, panicking on no reply, and
/// returning the parsed reply.
pub fn udp_ask(addr: SocketAddr, bytes: &[u8]) -> Parsed {
    match udp_exchange(addr, bytes, Duration::from_secs(5)) {
        Some(r) => parse(&r),
        None => panic!("no UDP reply from {addr} within 5s to {}", hex(bytes)),
    }
}

/// Connect with a deadline (5 s).
pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("TCP connect to {addr}: {e}"));
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Read one length-prefixed frame before `deadline`; None on EOF/timeout.
pub fn tcp_read_frame(s: &mut TcpStream, deadline: Instant) -> Option<Vec<u8>> {
    fn read_exact_by(s: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> bool {
        let mut got = 0;
        while got < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match s.read(&mut buf[got..]) {
                Ok(0) => return false,
                Ok(n) => got += n,
                Err(e) if again(&e) => {}
                Err(_) => return false,
            }
        }
        true
    }
    let mut len = [0u8; 2];
    if !read_exact_by(s, &mut len, deadline) {
        return None;
    }
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    if !read_exact_by(s, &mut msg, deadline) {
        return None;
    }
    Some(msg)
}

/// Open one TCP connection, write all `msgs` pipelined (in a single write),
/// then read up to `msgs.len()` replies within `timeout`.
pub fn tcp_exchange_timeout(addr: SocketAddr, msgs: &[Vec<u8>], timeout: Duration) -> Vec<Vec<u8>> {
    let mut s = tcp_connect(addr);
    let mut out = Vec::new();
    for m in msgs {
        out.extend_from_slice(&frame(m));
    }
    s.write_all(&out).expect("TCP write");
    let deadline = Instant::now() + timeout;
    let mut replies = Vec::new();
    while replies.len() < msgs.len() {
        match tcp_read_frame(&mut s, deadline) {
            Some(r) => replies.push(r),
            None => break,
        }
    }
    replies
}

/// [`tcp_exchange_timeout`] with a 5 s deadline.
pub fn tcp_exchange(addr: SocketAddr, msgs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    tcp_exchange_timeout(addr, msgs, Duration::from_secs(5))
}

/// One query over TCP; panics if no reply within 5 s.
pub fn tcp_ask(addr: SocketAddr, bytes: &[u8]) -> Parsed {
    let r = tcp_exchange(addr, &[bytes.to_vec()]);
    match r.first() {
        Some(r) => parse(r),
        None => panic!("no TCP reply from {addr} within 5s to {}", hex(bytes)),
    }
}

/// client address on loopback).
pub fn tcp_connect_from(from: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("TCP socket");
    sock.bind(&SocketAddr::new(from, 0).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("TCP connect from {from} to {addr}: {e}"));
    let s: TcpStream = sock.into();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Whether the peer closes `s` (end of stream or reset) within `within`; data is skipped.
pub fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if again(&e) => {}
            Err(_) => return true,
        }
    }
}

/// Whether a socket error only says "not yet" (a read timed out, would block or was
/// interrupted): the caller tries again until its deadline.
pub fn again(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// A loopback port free for both UDP and TCP at the time of asking (for a daemon the test
/// starts, which listens on both). It is below the kernel's ephemeral range (32768 and
/// up), so no socket bound to port 0 meanwhile (a dig's, another server's) takes it
/// before the daemon binds it, and it is never handed out twice in one test process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering::SeqCst};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Test processes running at once start at different places.
    let start = 20_000 + (std::process::id() % 500) as u16 * 20;
    let _ = NEXT.compare_exchange(0, start, SeqCst, SeqCst);
    for _ in 0..500 {
        let port = NEXT.fetch_add(1, SeqCst);
        if port >= 32_000 {
            NEXT.store(20_000, SeqCst);
            continue;
        }
        let free = UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP in 500 tries");
}
