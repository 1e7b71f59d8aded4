//! End to end: `names --secondary` against a hostile primary (an endless transfer, cut by
//! `--max-transfer-bytes`) and a NOTIFY flood (coalesced into a few serial checks),
//! through the real binary, on loopback only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, Name, Record, Serial, Ttl};
use domain::rdata::{Soa, A};
use names_tests::{dig_at, within, Server};

/// How a fake primary answers a transfer.
#[derive(Clone, Copy)]
enum Transfer {
    /// The zone (SOA, www A, SOA) in one message.
    Whole,
    /// The opening SOA, then A records without end.
    Endless,
}

/// A primary on loopback: SOA over UDP (serial 1), AXFR over TCP as told; it counts the
/// SOA queries and stops (its threads end) when dropped.
struct FakePrimary {
    tcp: SocketAddr,
    soa_queries: Arc<AtomicUsize>,
    sent_bytes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

fn soa_record() -> Record<Name<Vec<u8>>, Soa<Name<Vec<u8>>>> {
    let name = |s: &str| s.parse::<Name<Vec<u8>>>().unwrap();
    Record::new(
        name("example.com"),
        Class::IN,
        Ttl::from_secs(300),
        Soa::new(
            name("ns1.example.com"),
            name("host.example.com"),
            Serial(1),
            Ttl::from_secs(3600),
            Ttl::from_secs(600),
            Ttl::from_secs(86400),
            Ttl::from_secs(300),
        ),
    )
}

/// An answer to `query` with the SOA (`soa`) and `a_records` A records for www.
fn answer(query: &[u8], soa_first: bool, a_records: usize, soa_last: bool) -> Vec<u8> {
    let q = Message::from_octets(query).unwrap();
    let mut b = MessageBuilder::new_vec()
        .start_answer(&q, Rcode::NOERROR)
        .unwrap();
    b.header_mut().set_aa(true);
    let www: Name<Vec<u8>> = "www.example.com".parse().unwrap();
    if soa_first {
        b.push(soa_record()).unwrap();
    }
    for n in 0..a_records {
        let ip = std::net::Ipv4Addr::from(0xc000_0200u32 + n as u32);
        b.push((&www, 300, A::new(ip))).unwrap();
    }
    if soa_last {
        b.push(soa_record()).unwrap();
    }
    b.finish()
}

impl FakePrimary {
    /// A primary whose UDP and TCP share one port (the one `--secondary` names).
    fn start(transfer: Transfer) -> FakePrimary {
        let (udp, tcp) = (0..50)
            .find_map(|_| {
                let tcp = TcpListener::bind("127.0.0.1:0").ok()?;
                let udp = UdpSocket::bind(tcp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .expect("a loopback port free for UDP and TCP");
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let primary = FakePrimary {
            tcp: tcp.local_addr().unwrap(),
            soa_queries: Arc::default(),
            sent_bytes: Arc::default(),
            stop: Arc::default(),
        };
        let (count, stop) = (primary.soa_queries.clone(), primary.stop.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, from)) = udp.recv_from(&mut buf) {
                    count.fetch_add(1, Ordering::Relaxed);
                    let _ = udp.send_to(&answer(&buf[..n], true, 0, false), from);
                }
            }
        });
        let (sent, stop) = (primary.sent_bytes.clone(), primary.stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = tcp.accept() else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_write_timeout(Some(Duration::from_secs(2)))
                    .unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut len = [0u8; 2];
                if conn.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if conn.read_exact(&mut query).is_err() {
                    continue;
                }
                let frame = |m: Vec<u8>| {
                    let mut f = (m.len() as u16).to_be_bytes().to_vec();
                    f.extend(m);
                    f
                };
                match transfer {
                    Transfer::Whole => {
                        let _ = conn.write_all(&frame(answer(&query, true, 1, true)));
                    }
                    Transfer::Endless => {
                        let _ = conn.write_all(&frame(answer(&query, true, 0, false)));
                        let more = frame(answer(&query, false, 200, false));
                        // Until names closes the connection (or 64 MiB, a bound of the test's own).
                        for _ in 0..(64 << 20) / more.len() {
                            if stop.load(Ordering::Relaxed) || conn.write_all(&more).is_err() {
                                break;
                            }
                            sent.fetch_add(more.len(), Ordering::Relaxed);
                        }
                    }
                }
            }
        });
        primary
    }

    /// The `--secondary` value naming this primary.
    fn secondary_arg(&self) -> String {
        format!("example.com={}", self.tcp)
    }
}

impl Drop for FakePrimary {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn status(server: SocketAddr) -> String {
    let out = dig_at(server, &["+norec", "www.example.com", "A"]);
    out.lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map_or("no reply".into(), |s| {
            s.split(',').next().unwrap().to_string()
        })
}

#[test]
fn an_endless_transfer_is_cut_at_max_transfer_bytes() {
    let primary = FakePrimary::start(Transfer::Endless);
    let names = Server::start(&[
        "--no-forward",
        "--secondary",
        &primary.secondary_arg(),
        "--max-transfer-bytes",
        "1000000",
    ]);
    assert!(
        within(Duration::from_secs(10), || names
            .logs()
            .contains("exceeds --max-transfer-bytes 1000000")),
        "{}",
        names.logs()
    );
    assert_eq!(status(names.udp_addr()), "SERVFAIL", "nothing served");
    let sent = primary.sent_bytes.load(Ordering::Relaxed);
    assert!(
        sent < 8 << 20,
        "names closed the stream early: {sent} bytes sent"
    );
}

#[test]
fn a_notify_flood_is_coalesced_into_a_few_checks() {
    let primary = FakePrimary::start(Transfer::Whole);
    let names = Server::start(&["--no-forward", "--secondary", &primary.secondary_arg()]);
    assert!(within(Duration::from_secs(5), || status(names.udp_addr())
        == "NOERROR"));
    let before = primary.soa_queries.load(Ordering::Relaxed);
    // 2000 NOTIFYs from the primary's address, as fast as they go.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_opcode(Opcode::NOTIFY);
    let mut q = b.question();
    q.push(("example.com".parse::<Name<Vec<u8>>>().unwrap(), Rtype::SOA))
        .unwrap();
    let notify = q.finish();
    for _ in 0..2000 {
        let _ = socket.send_to(&notify, names.udp_addr());
    }
    thread::sleep(Duration::from_millis(500));
    let checks = primary.soa_queries.load(Ordering::Relaxed) - before;
    eprintln!("{checks} checks for 2000 NOTIFYs");
    assert!(checks >= 1, "a NOTIFY starts a check");
    // Each check takes a round trip on loopback; NOTIFYs during one add one more, at most.
    assert!(checks < 2000 / 4, "{checks} checks for 2000 NOTIFYs");
    assert_eq!(status(names.udp_addr()), "NOERROR", "still serving");
}
