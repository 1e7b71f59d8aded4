//! `names query`: one question, the reply printed in master-file format. The DNS work
//! (building the query, matching the reply, TC -> TCP, framing, presentation) is
//! [`names_core::client`]'s; this file owns the sockets, the deadline and the printing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use names_core::client::{Lookup, Question, Reply, Step};
use names_core::parse_server;

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
    let question = Question::parse(name, rtype).map_err(|e| e.to_string())?;
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
    let deadline = Instant::now() + Duration::from_millis(cmd.timeout.max(1));
    let mut lookup = if cmd.tcp {
        Lookup::over_tcp(question, server, id)
    } else {
        Lookup::new(question, server, id)
    };
    let reply = match cmd.tcp {
        true => over_tcp(&mut lookup, deadline)?,
        false => match over_udp(&mut lookup, deadline)? {
            Some(reply) => reply,
            None => {
                println!(";; truncated over UDP, retrying over TCP");
                over_tcp(&mut lookup, deadline)?
            }
        },
    };
    println!("{}", reply.summary());
    for line in reply.records() {
        println!("{line}");
    }
    if reply.is_noerror() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("names: {name} {rtype}: {}", reply.rcode());
        Ok(ExitCode::from(1))
    }
}

fn left(deadline: Instant) -> Result<Duration, String> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "timed out: no reply".to_string())
}

/// The reply over UDP, or `None` when it was truncated (the lookup is then over TCP).
fn over_udp(lookup: &mut Lookup, deadline: Instant) -> Result<Option<Reply>, String> {
    let server = lookup.server();
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
    sock.send(&lookup.message())
        .map_err(|e| format!("cannot send to {server}: {e}"))?;
    let mut buf = vec![0u8; 65535];
    // Each datagram read either ends the loop or comes before the deadline runs out.
    loop {
        sock.set_read_timeout(Some(left(deadline)?))
            .map_err(|e| e.to_string())?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => match lookup.handle(from, &buf[..n]) {
                Step::Done(reply) => return Ok(Some(reply)),
                Step::RetryOverTcp => return Ok(None),
                Step::Wait | Step::Broken => {}
            },
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

fn over_tcp(lookup: &mut Lookup, deadline: Instant) -> Result<Reply, String> {
    let server = lookup.server();
    let fail = |e: std::io::Error| format!("TCP to {server}: {e}");
    let mut s = TcpStream::connect_timeout(&server, left(deadline)?).map_err(fail)?;
    s.set_read_timeout(Some(left(deadline)?)).map_err(fail)?;
    s.write_all(&lookup.message()).map_err(fail)?;
    let mut buf = vec![0u8; 16 * 1024];
    // Every read returns at least one byte or ends the loop, and a frame is at most
    // 65,537 bytes: the loop is bounded.
    loop {
        let n = s.read(&mut buf).map_err(fail)?;
        if n == 0 {
            return Err(format!("TCP to {server}: failed to fill whole buffer"));
        }
        match lookup.handle(server, &buf[..n]) {
            Step::Done(reply) => return Ok(reply),
            Step::Wait | Step::RetryOverTcp => {}
            Step::Broken => {
                return Err(format!(
                    "TCP to {server}: the reply does not match the query"
                ))
            }
        }
    }
}
