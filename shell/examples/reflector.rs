//! The LIMIT row of `tests/bench/compare.sh`: a trivial UDP DNS "server" that answers
//! every query with the same A record, as cheaply as a std `UdpSocket` allows.
//!
//! It does no real DNS work: it walks the question name to find the end of the question,
//! keeps the header and question, sets QR/AA/RA, one answer (a compression pointer to the
//! question name, `A 192.0.2.1`, TTL 300) and no other records. That is the least any DNS
//! server must do per query, so its QPS and CPU per answer are the ceiling of what a DNS
//! server can reach on this machine under this load generator.
//!
//! ```sh
//! cargo run --release -p names-shell --example reflector -- 127.0.0.1:15399
//! ```
//!
//! Single thread, blocking `recv_from`/`send_to`, one buffer, no allocation per query.
//! Runs until killed.

use std::net::UdpSocket;
use std::process::ExitCode;

/// The answer record appended after the question: pointer to offset 12 (the qname),
/// TYPE A, CLASS IN, TTL 300, RDLENGTH 4, 192.0.2.1.
const ANSWER: [u8; 16] = [
    0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x04, 192, 0, 2, 1,
];

/// The end of the (first) question, or `None` for a message this reflector will not answer.
fn question_end(msg: &[u8]) -> Option<usize> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 || msg[4..6] != [0, 1] {
        return None;
    }
    let mut i = 12;
    // A name has at most 127 labels; bound the walk anyway.
    for _ in 0..128 {
        let len = *msg.get(i)? as usize;
        if len == 0 {
            let end = i + 1 + 4;
            return (end <= msg.len()).then_some(end);
        }
        if len & 0xc0 != 0 {
            return None;
        }
        i += 1 + len;
    }
    None
}

fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:15399".to_string());
    let socket = match UdpSocket::bind(&addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("reflector: cannot bind {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match socket.local_addr() {
        Ok(local) => eprintln!("reflector: ready udp={local}"),
        Err(_) => eprintln!("reflector: ready udp={addr}"),
    }
    let mut buf = [0u8; 4096];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf[..512]) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let Some(end) = question_end(&buf[..n]) else {
            continue;
        };
        // QR, opcode 0, AA, RD kept; RA, rcode 0.
        buf[2] = 0x84 | (buf[2] & 0x01);
        buf[3] = 0x80;
        buf[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
        buf[end..end + ANSWER.len()].copy_from_slice(&ANSWER);
        let _ = socket.send_to(&buf[..end + ANSWER.len()], peer);
    }
}
