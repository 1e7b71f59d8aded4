//! Writing journal entries: the framing (length, body, checksum) and each kind's fields.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{Header, Input, MAGIC, MAX_ENTRY, VERSION};
use crate::action::{Action, Origin, UpstreamError, Via};
use crate::config::Config;

pub(super) const K_HEADER: u8 = 0;
pub(super) const K_START: u8 = 1;
pub(super) const K_CLIENT: u8 = 2;
pub(super) const K_TCP_OPEN: u8 = 3;
pub(super) const K_TCP_WRITTEN: u8 = 4;
pub(super) const K_TCP_EOF: u8 = 5;
pub(super) const K_TCP_CLOSED: u8 = 6;
pub(super) const K_UPSTREAM: u8 = 7;
pub(super) const K_UPSTREAM_ERROR: u8 = 8;
pub(super) const K_TIMEOUT: u8 = 9;
pub(super) const K_LOOKUP: u8 = 10;
pub(super) const K_STOPPED: u8 = 11;
pub(super) const K_REPLY: u8 = 32;
pub(super) const K_SEND_UPSTREAM: u8 = 33;
pub(super) const K_CLOSE_UPSTREAM: u8 = 34;
pub(super) const K_CLOSE_CLIENT: u8 = 35;
pub(super) const K_PAUSE_READ: u8 = 36;
pub(super) const K_RESUME_READ: u8 = 37;
pub(super) const K_LOOKUP_JOB: u8 = 38;
pub(super) const K_CANCEL_LOOKUP: u8 = 39;

pub(super) fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Appends one framed entry whose body `body` writes.
fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = out.len() - start - 4;
    let len32 = u32::try_from(len.min(MAX_ENTRY + 1)).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&len32.to_le_bytes());
    let check = fnv1a(&out[start + 4..]);
    out.extend_from_slice(&check.to_le_bytes());
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, u32::try_from(b.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(b);
}
fn put_addr(out: &mut Vec<u8>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    put_u16(out, a.port());
}
fn put_origin(out: &mut Vec<u8>, o: Origin) {
    match o {
        Origin::Udp { listener, peer } => {
            out.push(0);
            put_u32(out, u32::try_from(listener).unwrap_or(u32::MAX));
            put_addr(out, peer);
        }
        Origin::Tcp(conn) => {
            out.push(1);
            put_u64(out, conn.0);
        }
    }
}
fn put_common(out: &mut Vec<u8>, kind: u8, worker: u16, at: Duration) {
    out.push(kind);
    put_u16(out, worker);
    put_u64(out, u64::try_from(at.as_nanos()).unwrap_or(u64::MAX));
}

fn config_pairs(c: &Config) -> Vec<(&'static str, u64)> {
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let n = |v: usize| v as u64;
    vec![
        ("budget", ns(c.budget)),
        ("try_timeout", ns(c.try_timeout)),
        ("tcp_idle", ns(c.tcp_idle)),
        ("max_tcp", n(c.max_tcp)),
        ("max_tcp_per_client", n(c.max_tcp_per_client)),
        ("max_pipelined", n(c.max_pipelined)),
        ("max_tcp_buffered", n(c.max_tcp_buffered)),
        ("max_exchanges", n(c.max_exchanges)),
        ("max_waiting", n(c.max_waiting)),
        ("edns_udp_size", u64::from(c.edns_udp_size)),
        ("log_queries", u64::from(c.log_queries)),
    ]
}

pub(super) fn set_config(c: &mut Config, key: &str, v: u64) -> Result<(), String> {
    let n = || usize::try_from(v).map_err(|_| format!("config {key} out of range"));
    match key {
        "budget" => c.budget = Duration::from_nanos(v),
        "try_timeout" => c.try_timeout = Duration::from_nanos(v),
        "tcp_idle" => c.tcp_idle = Duration::from_nanos(v),
        "max_tcp" => c.max_tcp = n()?,
        "max_tcp_per_client" => c.max_tcp_per_client = n()?,
        "max_pipelined" => c.max_pipelined = n()?,
        "max_tcp_buffered" => c.max_tcp_buffered = n()?,
        "max_exchanges" => c.max_exchanges = n()?,
        "max_waiting" => c.max_waiting = n()?,
        "edns_udp_size" => {
            c.edns_udp_size =
                u16::try_from(v).map_err(|_| "config edns_udp_size out of range".to_string())?
        }
        "log_queries" => c.log_queries = v != 0,
        _ => return Err(format!("unknown config key {key:?}")),
    }
    Ok(())
}

/// Starts a journal in `out`: the magic, the version and the header entry.
pub fn write_start(out: &mut Vec<u8>, header: &Header) {
    out.extend_from_slice(MAGIC);
    put_u16(out, VERSION);
    frame(out, |out| {
        out.push(K_HEADER);
        put_blob(out, header.names_version.as_bytes());
        put_u16(out, header.workers);
        let pairs = config_pairs(&header.config);
        put_u16(out, pairs.len() as u16);
        for (k, v) in pairs {
            put_blob(out, k.as_bytes());
            put_u64(out, v);
        }
        put_blob(out, &header.settings);
        put_u16(out, u16::try_from(header.files.len()).unwrap_or(u16::MAX));
        for (path, text) in header.files.iter().take(usize::from(u16::MAX)) {
            put_blob(out, path.as_bytes());
            put_blob(out, text.as_bytes());
        }
    });
}

/// Appends one input entry of `worker` at `at` to `out`.
pub fn encode_input(out: &mut Vec<u8>, worker: u16, at: Duration, input: &Input<'_>) {
    frame(out, |out| match *input {
        Input::Start { seed } => {
            put_common(out, K_START, worker, at);
            out.extend_from_slice(&seed);
        }
        Input::Client { from, bytes } => {
            put_common(out, K_CLIENT, worker, at);
            put_origin(out, from);
            put_blob(out, bytes);
        }
        Input::TcpOpen { conn, peer } => {
            put_common(out, K_TCP_OPEN, worker, at);
            put_u64(out, conn.0);
            put_addr(out, peer);
        }
        Input::TcpWritten { conn, bytes } => {
            put_common(out, K_TCP_WRITTEN, worker, at);
            put_u64(out, conn.0);
            put_u64(out, bytes as u64);
        }
        Input::TcpEof { conn } => {
            put_common(out, K_TCP_EOF, worker, at);
            put_u64(out, conn.0);
        }
        Input::TcpClosed { conn } => {
            put_common(out, K_TCP_CLOSED, worker, at);
            put_u64(out, conn.0);
        }
        Input::Upstream { token, from, bytes } => {
            put_common(out, K_UPSTREAM, worker, at);
            put_u64(out, token.0);
            put_addr(out, from);
            put_blob(out, bytes);
        }
        Input::UpstreamError { token, err } => {
            put_common(out, K_UPSTREAM_ERROR, worker, at);
            put_u64(out, token.0);
            out.push(match err {
                UpstreamError::Bind => 0,
                UpstreamError::Io => 1,
            });
        }
        Input::Timeout => put_common(out, K_TIMEOUT, worker, at),
        Input::Lookup { id, outcome } => {
            put_common(out, K_LOOKUP, worker, at);
            put_u64(out, id);
            match outcome {
                Some(b) => {
                    out.push(1);
                    put_blob(out, b);
                }
                None => out.push(0),
            }
        }
    });
}

/// Appends the entry that ends a recording cut short, at `at`, saying why.
pub fn encode_stopped(out: &mut Vec<u8>, at: Duration, reason: &str) {
    frame(out, |out| {
        put_common(out, K_STOPPED, 0, at);
        put_blob(out, reason.as_bytes());
    });
}

/// Appends one action entry of `worker` at `at` to `out` ([`Action::Log`] and
/// [`Action::Notified`]: nothing).
pub fn encode_action(out: &mut Vec<u8>, worker: u16, at: Duration, action: &Action) {
    if matches!(action, Action::Log(_) | Action::Notified { .. }) {
        return;
    }
    frame(out, |out| match action {
        Action::Reply { to, bytes } => {
            put_common(out, K_REPLY, worker, at);
            put_origin(out, *to);
            put_blob(out, bytes);
        }
        Action::SendUpstream {
            token,
            to,
            via,
            bytes,
        } => {
            put_common(out, K_SEND_UPSTREAM, worker, at);
            put_u64(out, token.0);
            put_addr(out, *to);
            match via {
                Via::Udp { local_port } => {
                    out.push(0);
                    put_u16(out, *local_port);
                }
                Via::Tcp => {
                    out.push(1);
                    put_u16(out, 0);
                }
            }
            put_blob(out, bytes);
        }
        Action::CloseUpstream { token } => {
            put_common(out, K_CLOSE_UPSTREAM, worker, at);
            put_u64(out, token.0);
        }
        Action::CloseClient { conn } => {
            put_common(out, K_CLOSE_CLIENT, worker, at);
            put_u64(out, conn.0);
        }
        Action::PauseRead { conn } => {
            put_common(out, K_PAUSE_READ, worker, at);
            put_u64(out, conn.0);
        }
        Action::ResumeRead { conn } => {
            put_common(out, K_RESUME_READ, worker, at);
            put_u64(out, conn.0);
        }
        Action::Lookup { id, job: _ } => {
            put_common(out, K_LOOKUP_JOB, worker, at);
            put_u64(out, id.0);
        }
        Action::CancelLookup { id } => {
            put_common(out, K_CANCEL_LOOKUP, worker, at);
            put_u64(out, id.0);
        }
        Action::Log(_) | Action::Notified { .. } => {}
    });
}
