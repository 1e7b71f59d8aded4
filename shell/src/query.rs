//! `names query`: one question, the reply printed in master-file format.
//! Truncated UDP replies are asked again over TCP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use names_core::domain::base::iana::{Class, Rcode, Rtype};
use names_core::domain::base::{Message, Name};
use names_core::parse_server;
use names_core::query_support::{encode_query, frame, record_lines, QuerySpec};

use crate::cli::QueryCmd;

pub fn run(cmd: QueryCmd) -> Result<ExitCode, String> {
    let mut server = None;
    let mut rest = Vec::new();
    for arg in &cmd.args {
        match arg.strip_prefix('@') {
            Some(s) => server = Some(parse_server(s).map_err(|e| e.to_string())?),
            None => rest.push(arg.as_str()),
        }
    }
    let (name, rtype) = match rest.as_slice() {
        [name] => (*name, "A"),
        [name, rtype] => (*name, *rtype),
        _ => return Err("usage: names query [@SERVER[:PORT]] NAME [TYPE] [--tcp]".into()),
    };
    let qname: Name<Bytes> =
        Name::from_str(name).map_err(|e| format!("{name:?} is not a domain name: {e}"))?;
    let qtype = Rtype::from_str(&rtype.to_ascii_uppercase())
        .map_err(|_| format!("{rtype:?} is not a record type"))?;
    let server = match server {
        Some(s) => s,
        None => *names_shell::resolv_conf("/etc/resolv.conf")
            .map_err(|e| e.to_string())?
            .first()
            .ok_or("no nameserver")?,
    };
    let mut seed = [0u8; 2];
    getrandom::fill(&mut seed).map_err(|e| format!("no OS randomness: {e}"))?;
    let id = u16::from_be_bytes(seed);
    let query = encode_query(&QuerySpec {
        id,
        qname: &qname,
        qtype,
        qclass: Class::IN,
        rd: true,
        cd: false,
        edns: Some((1232, false)),
    });
    let deadline = Instant::now() + Duration::from_millis(cmd.timeout.max(1));
    let mut reply = if cmd.tcp {
        None
    } else {
        Some(over_udp(server, &query, id, deadline)?)
    };
    if reply
        .as_ref()
        .is_none_or(|r: &Message<Bytes>| r.header().tc())
    {
        if reply.is_some() {
            println!(";; truncated over UDP, retrying over TCP");
        }
        reply = Some(over_tcp(server, &query, id, deadline)?);
    }
    let reply = reply.expect("set above");
    let rcode = reply.opt_rcode();
    let h = reply.header();
    let flags: Vec<&str> = [
        (h.aa(), "aa"),
        (h.tc(), "tc"),
        (h.rd(), "rd"),
        (h.ra(), "ra"),
        (h.ad(), "ad"),
    ]
    .into_iter()
    .filter_map(|(on, f)| on.then_some(f))
    .collect();
    println!(
        ";; status: {rcode}, id: {}, flags: {}",
        h.id(),
        flags.join(" ")
    );
    for line in record_lines(&reply) {
        println!("{line}");
    }
    if rcode.rcode() == Rcode::NOERROR && !rcode.is_ext() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("names: {name} {rtype}: {rcode}");
        Ok(ExitCode::from(1))
    }
}

fn left(deadline: Instant) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "timed out: no reply".to_string())
}

fn matches(bytes: Vec<u8>, id: u16) -> Option<Message<Bytes>> {
    let msg = Message::from_octets(Bytes::from(bytes)).ok()?;
    (msg.header().qr() && msg.header().id() == id).then_some(msg)
}

fn over_udp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    deadline: Instant,
) -> Result<Message<Bytes>, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("literal");
    let sock = UdpSocket::bind(bind).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    sock.connect(server)
        .map_err(|e| format!("cannot reach {server}: {e}"))?;
    sock.send(query)
        .map_err(|e| format!("cannot send to {server}: {e}"))?;
    let mut buf = vec![0u8; 65535];
    loop {
        sock.set_read_timeout(Some(left(deadline)?))
            .map_err(|e| e.to_string())?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                if let Some(msg) = matches(buf[..n].to_vec(), id) {
                    return Ok(msg);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("timed out: no reply from {server}"));
            }
            Err(e) => return Err(format!("no reply from {server}: {e}")),
        }
    }
}

fn over_tcp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    deadline: Instant,
) -> Result<Message<Bytes>, String> {
    let fail = |e: std::io::Error| format!("TCP to {server}: {e}");
    let mut s = TcpStream::connect_timeout(&server, left(deadline)?).map_err(fail)?;
    s.set_read_timeout(Some(left(deadline)?)).map_err(fail)?;
    s.write_all(&frame(query)).map_err(fail)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).map_err(fail)?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut msg).map_err(fail)?;
    matches(msg, id).ok_or_else(|| format!("TCP to {server}: the reply does not match the query"))
}
