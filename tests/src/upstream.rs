//! [`FakeUpstream`]: a programmable upstream DNS server (UDP and TCP on the same loopback
//! port) that records every query it receives.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use domain::base::iana::Rcode;

use crate::build::{answer_a, answer_rcode, frame};
use crate::net::again;
use crate::parse::{msg_id, parse, Parsed};

// ---------------------------------------------------------------------------

/// A query the fake upstream received.
#[derive(Clone, Debug)]
pub struct Received {
    pub bytes: Vec<u8>,
    pub from: SocketAddr,
    pub tcp: bool,
    pub at: Instant,
}

impl Received {
    /// The DNS ID of the received query (0 if shorter than 2 bytes).
    pub fn id(&self) -> u16 {
        msg_id(&self.bytes)
    }
    /// The parsed query.
    pub fn parsed(&self) -> Parsed {
        parse(&self.bytes)
    }
}

/// What the fake upstream does in response to one query. Replies are
/// executed in order (so `Delay` also delays everything after it).
#[derive(Clone, Debug)]
pub enum Reply {
    /// Send these bytes to the querier (UDP datagram / TCP frame).
    Send(Vec<u8>),
    /// Sleep, then send.
    Delay(Duration, Vec<u8>),
    /// Sleep without sending anything.
    Pause(Duration),
    /// UDP only: send from a different local port (a spoofing attempt).
    FromOtherPort(Vec<u8>),
    /// TCP only: close the connection.
    Close,
    /// These bytes exactly as given: over TCP without a length prefix (so one write can
    /// carry several frames, a zero-length frame or an endless stream), over UDP as one
    /// datagram.
    Raw(Vec<u8>),
    /// Do nothing.
    Nothing,
}

type Handler = dyn Fn(&Received) -> Vec<Reply> + Send + Sync;

struct FakeShared {
    stop: AtomicBool,
    received: Mutex<Vec<Received>>,
    handler: Box<Handler>,
    conns: Mutex<Vec<JoinHandle<()>>>,
}

/// A programmable upstream server on 127.0.0.1 (UDP and TCP, same port).
pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<FakeShared>,
    threads: Vec<JoinHandle<()>>,
}

const POLL: Duration = Duration::from_millis(50);

/// UDP and TCP on one port of `at`; port 0: any free port (the same for both).
fn bind_pair(at: SocketAddr) -> (UdpSocket, TcpListener) {
    assert!(
        at.ip().is_loopback(),
        "fake upstreams live on loopback only: {at}"
    );
    let mut last_err = None;
    for _ in 0..50 {
        let udp = UdpSocket::bind(at).unwrap_or_else(|e| panic!("bind fake UDP {at}: {e}"));
        let bound = udp.local_addr().unwrap();
        match TcpListener::bind(bound) {
            Ok(tcp) => return (udp, tcp),
            Err(e) if at.port() != 0 => panic!("bind fake TCP {at}: {e}"),
            Err(e) => last_err = Some(e),
        }
    }
    panic!("could not bind UDP+TCP on one loopback port: {last_err:?}");
}

impl FakeUpstream {
    /// Start a fake upstream whose behaviour is `handler`.
    pub fn start<F>(handler: F) -> FakeUpstream
    where
        F: Fn(&Received) -> Vec<Reply> + Send + Sync + 'static,
    {
        FakeUpstream::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), handler)
    }

    /// Like [`FakeUpstream::start`], on the loopback address `at` (a name server of the
    /// [`Hierarchy`](crate::loopback::Hierarchy) at port 53); panics if it is taken.
    pub fn start_on<F>(at: SocketAddr, handler: F) -> FakeUpstream
    where
        F: Fn(&Received) -> Vec<Reply> + Send + Sync + 'static,
    {
        let (udp, tcp) = bind_pair(at);
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(POLL)).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let shared = Arc::new(FakeShared {
            stop: AtomicBool::new(false),
            received: Mutex::new(Vec::new()),
            handler: Box::new(handler),
            conns: Mutex::new(Vec::new()),
        });
        let other = UdpSocket::bind((addr.ip(), 0)).expect("bind spoof socket");
        let t_udp = {
            let shared = shared.clone();
            thread::spawn(move || udp_loop(udp, other, shared))
        };
        let t_tcp = {
            let shared = shared.clone();
            thread::spawn(move || tcp_accept_loop(tcp, shared))
        };
        FakeUpstream {
            addr,
            shared,
            threads: vec![t_udp, t_tcp],
        }
    }

    /// Answers every A query with `ips` (TTL 300, AA and RA set).
    pub fn answering(ips: &[Ipv4Addr]) -> FakeUpstream {
        let ips = ips.to_vec();
        FakeUpstream::start(move |r| vec![Reply::Send(answer_a(&r.bytes, &ips, 300))])
    }

    /// Never answers (but records the queries).
    pub fn silent() -> FakeUpstream {
        FakeUpstream::start(|_| vec![Reply::Nothing])
    }

    /// Answers every query with an empty reply carrying `rcode`.
    pub fn rcode(rcode: Rcode) -> FakeUpstream {
        FakeUpstream::start(move |r| vec![Reply::Send(answer_rcode(&r.bytes, rcode))])
    }

    /// The loopback address (same port for UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `ip:port` string for `--upstream`.
    pub fn arg(&self) -> String {
        self.addr.to_string()
    }
    /// All queries received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
    /// Number of queries received so far.
    pub fn count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }
    /// Number of queries received over UDP.
    pub fn udp_count(&self) -> usize {
        self.received().iter().filter(|r| !r.tcp).count()
    }
    /// Number of queries received over TCP.
    pub fn tcp_count(&self) -> usize {
        self.received().iter().filter(|r| r.tcp).count()
    }
    /// Wait until at least `n` queries arrived or `timeout` passed.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let conns: Vec<_> = self.shared.conns.lock().unwrap().drain(..).collect();
        for t in conns {
            let _ = t.join();
        }
    }
}

fn udp_loop(sock: UdpSocket, other: UdpSocket, shared: Arc<FakeShared>) {
    let other = Arc::new(other);
    let mut buf = vec![0u8; 65535];
    while !shared.stop.load(Ordering::SeqCst) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue, // timeout (WouldBlock/TimedOut) or transient
        };
        let rec = Received {
            bytes: buf[..n].to_vec(),
            from,
            tcp: false,
            at: Instant::now(),
        };
        shared.received.lock().unwrap().push(rec.clone());
        let replies = (shared.handler)(&rec);
        let Ok(sock2) = sock.try_clone() else {
            continue;
        };
        let other = other.clone();
        // Each query's replies run in their own (short-lived) thread so a
        // Delay does not hold up other queries.
        thread::spawn(move || {
            for r in replies {
                match r {
                    Reply::Send(b) | Reply::Raw(b) => {
                        let _ = sock2.send_to(&b, from);
                    }
                    Reply::Delay(d, b) => {
                        thread::sleep(d);
                        let _ = sock2.send_to(&b, from);
                    }
                    Reply::Pause(d) => thread::sleep(d),
                    Reply::FromOtherPort(b) => {
                        let _ = other.send_to(&b, from);
                    }
                    Reply::Close | Reply::Nothing => {}
                }
            }
        });
    }
}

fn tcp_accept_loop(listener: TcpListener, shared: Arc<FakeShared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, from)) => {
                let shared2 = shared.clone();
                let h = thread::spawn(move || tcp_conn(stream, from, shared2));
                shared.conns.lock().unwrap().push(h);
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Read exactly `buf.len()` bytes, polling the stop flag; gives up after
/// `idle` without progress. Returns false on EOF/error/stop/idle.
fn read_full(s: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool, idle: Duration) -> bool {
    let mut got = 0;
    let mut last = Instant::now();
    while got < buf.len() {
        if stop.load(Ordering::SeqCst) || last.elapsed() > idle {
            return false;
        }
        match s.read(&mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => {
                got += n;
                last = Instant::now();
            }
            Err(e) if again(&e) => {}
            Err(_) => return false,
        }
    }
    true
}

fn tcp_conn(mut s: TcpStream, from: SocketAddr, shared: Arc<FakeShared>) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(POLL));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let idle = Duration::from_secs(10);
    loop {
        let mut len = [0u8; 2];
        if !read_full(&mut s, &mut len, &shared.stop, idle) {
            return;
        }
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        if !read_full(&mut s, &mut msg, &shared.stop, idle) {
            return;
        }
        let rec = Received {
            bytes: msg,
            from,
            tcp: true,
            at: Instant::now(),
        };
        shared.received.lock().unwrap().push(rec.clone());
        for r in (shared.handler)(&rec) {
            let b = match r {
                Reply::Send(b) => b,
                Reply::Delay(d, b) => {
                    thread::sleep(d);
                    b
                }
                Reply::Pause(d) => {
                    thread::sleep(d);
                    continue;
                }
                Reply::Close => return,
                Reply::Raw(b) => {
                    if s.write_all(&b).is_err() {
                        return;
                    }
                    continue;
                }
                Reply::FromOtherPort(_) | Reply::Nothing => continue,
            };
            if s.write_all(&frame(&b)).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::*;
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    #[test]
    fn fake_upstream_udp_and_tcp() {
        let up = FakeUpstream::answering(&[Ipv4Addr::new(192, 0, 2, 9)]);
        let q = query("x.example", Rtype::A, 42, true, None);
        let r = udp_exchange(up.addr(), &q, Duration::from_secs(2)).expect("udp reply");
        assert_eq!(parse(&r).a_addrs(), vec![Ipv4Addr::new(192, 0, 2, 9)]);
        let qs: Vec<Vec<u8>> = (0..3)
            .map(|i| query("y.example", Rtype::A, 100 + i, true, None))
            .collect();
        let rs = tcp_exchange(up.addr(), &qs);
        assert_eq!(rs.len(), 3);
        assert_eq!(
            rs.iter().map(|r| msg_id(r)).collect::<Vec<_>>(),
            vec![100, 101, 102]
        );
        assert!(up.wait_for(4, Duration::from_secs(1)));
        assert_eq!((up.udp_count(), up.tcp_count()), (1, 3));
        assert_eq!(up.received()[0].id(), 42);
    }

    #[test]
    fn fake_upstream_spoof_and_delay_order() {
        let up = FakeUpstream::start(|r| {
            vec![
                Reply::FromOtherPort(with_id(&r.bytes, 1)),
                Reply::Delay(Duration::from_millis(50), with_id(&r.bytes, 2)),
            ]
        });
        let c = UdpClient::new(up.addr());
        c.send(&query("z.example", Rtype::A, 9, true, None));
        // the FromOtherPort datagram is filtered out by UdpClient
        let r = c.recv(Duration::from_secs(2)).expect("delayed reply");
        assert_eq!(msg_id(&r), 2);
        let silent = FakeUpstream::silent();
        let t0 = Instant::now();
        assert!(udp_exchange(silent.addr(), &[0; 12], Duration::from_millis(200)).is_none());
        assert!(t0.elapsed() >= Duration::from_millis(190));
        assert_eq!(silent.count(), 1);
    }
}
