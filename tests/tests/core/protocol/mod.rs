//! One table-driven test per protocol rule of the forwarding server (issue 2), driven
//! through `Server` with fixed seeds and fake `Instant`s (offsets from one epoch); the
//! forwarder's in the simulated world, which checks every token is closed once.

mod edns;
mod forwarder;
mod header;
mod synth;
mod tcp;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use names_core::domain::base::iana::{Opcode, OptRcode, Rcode, Rtype};
use names_core::domain::base::Message;
use names_core::{Action, Chain, Config, ConnId, Origin, Server, Token, Via};
use names_tests::build::*;
use names_tests::drive::*;
use names_tests::parse::{a_addrs, message, question_bytes};
use names_tests::sim::{Conn, Event, World};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const WS7: Ipv4Addr = Ipv4Addr::new(172, 0, 2, 7);
const UP_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Sends one UDP message at `now` and returns every action.
fn ask_at(server: &mut Server, now_ms: u64, bytes: &[u8]) -> Vec<Action> {
    server.handle_client(at(now_ms), udp(5353), bytes);
    drain(server)
}

fn ask(server: &mut Server, bytes: &[u8]) -> Vec<Action> {
    ask_at(server, 0, bytes)
}

/// The single reply among `actions`, unframed if TCP, parsed.
fn only_reply(actions: &[Action]) -> Message<Vec<u8>> {
    let r = replies(actions);
    assert_eq!(r.len(), 1, "exactly one reply expected, got {actions:?}");
    let (to, bytes) = &r[0];
    match to {
        Origin::Udp { .. } => message(bytes),
        Origin::Tcp(_) => message(unframe(bytes)),
    }
}

fn synth_only() -> Server {
    server(Config::default(), &[])
}

fn forwarding(n: u8) -> Server {
    let ups: Vec<SocketAddr> = (1..=n).map(upstream_addr).collect();
    server(Config::default(), &ups)
}

/// Feeds an upstream datagram and returns every action.
fn upstream(
    server: &mut Server,
    now_ms: u64,
    s: &Sent,
    from: SocketAddr,
    bytes: &[u8],
) -> Vec<Action> {
    server.handle_upstream(at(now_ms), s.token, from, bytes);
    drain(server)
}

fn timeout(server: &mut Server, now_ms: u64) -> Vec<Action> {
    server.handle_timeout(at(now_ms));
    drain(server)
}
