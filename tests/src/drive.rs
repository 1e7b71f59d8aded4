//! Driving a sans-IO [`Server`] by hand: the one clock read of a test process and offsets
//! from it, the standard test chains, and sorting the actions a server queued.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use domain::base::iana::{Class, Rcode};
use domain::base::{Record, Ttl};
use domain::rdata::{AllRecordData, A};
use names_core::{
    Action, Answer, Chain, Config, ConnId, Context, Forwarder, Origin, Query, Resolution, Resolver,
    Rr, Server, Synth, SynthRule, Token, Via,
};

use crate::build::unframe;

/// The one real clock read of a test process; every other time is an offset from it.
#[allow(clippy::disallowed_methods)]
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `epoch() + ms`.
pub fn at(ms: u64) -> Instant {
    epoch() + Duration::from_millis(ms)
}

/// The RNG seed of every test server.
pub const SEED: [u8; 32] = [7; 32];

/// A UDP origin from client port `port` on 127.0.0.1.
pub fn udp(port: u16) -> Origin {
    udp_from(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// A datagram's origin: from `peer`, to the one listener (every test builds UDP origins
/// here).
pub fn udp_from(peer: SocketAddr) -> Origin {
    Origin::Udp { listener: 0, peer }
}

/// The client TCP connection used by tests.
pub const CONN: ConnId = ConnId(1);

/// The peer of [`CONN`].
pub fn tcp_peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

/// Upstream number `n`: 127.0.1.n port 53.
pub fn upstream_addr(n: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(127, 0, 1, n), 53))
}

/// A chain of `Synth` (workstation=172.0.2) and, if `upstreams` is not empty, a `Forwarder`.
pub fn chain(upstreams: &[SocketAddr]) -> Chain {
    synth_chain("workstation=172.0.2", upstreams)
}

/// A chain of `Synth` with this rule and, if `upstreams` is not empty, a `Forwarder`.
pub fn synth_chain(rule: &str, upstreams: &[SocketAddr]) -> Chain {
    let mut chain = Chain::new().with(Synth::new(vec![
        SynthRule::parse(rule).expect("a valid synth rule")
    ]));
    if !upstreams.is_empty() {
        chain = chain.with(Forwarder::new(upstreams.to_vec()));
    }
    chain
}

/// A server with [`chain`] and [`SEED`].
pub fn server(config: Config, upstreams: &[SocketAddr]) -> Server {
    Server::new(config, chain(upstreams), SEED)
}

/// A test resolver answering every query with `n` A records (10.9.x.y, TTL 60) for the
/// question name.
pub struct Many(pub usize);

impl Resolver for Many {
    fn name(&self) -> &str {
        "many"
    }

    fn resolve(&mut self, q: &Query<'_>, _: &mut Context) -> Resolution {
        let records: Vec<Rr> = (0..self.0)
            .map(|i| {
                let [_, _, a, b] = (i as u32).to_be_bytes();
                Record::new(
                    q.qname().clone(),
                    Class::IN,
                    Ttl::from_secs(60),
                    AllRecordData::A(A::new(Ipv4Addr::new(10, 9, a, b))),
                )
            })
            .collect();
        let mut answer = Answer::new(Rcode::NOERROR.into());
        answer.answer = records;
        Resolution::Answer(answer)
    }
}

/// Every action queued, in order.
pub fn drain(server: &mut Server) -> Vec<Action> {
    std::iter::from_fn(|| server.poll_action()).collect()
}

/// The replies among `actions`.
pub fn replies(actions: &[Action]) -> Vec<(Origin, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply { to, bytes } => Some((*to, bytes.clone())),
            _ => None,
        })
        .collect()
}

/// An upstream query the server asked the runtime to send.
#[derive(Clone, Debug)]
pub struct Sent {
    pub token: Token,
    pub to: SocketAddr,
    pub via: Via,
    /// The message, unframed.
    pub message: Vec<u8>,
}

impl Sent {
    /// Takes a `SendUpstream` apart, checking and stripping a TCP frame.
    pub fn of(token: Token, to: SocketAddr, via: Via, bytes: &[u8]) -> Sent {
        let message = match via {
            Via::Tcp => unframe(bytes).to_vec(),
            Via::Udp { .. } => bytes.to_vec(),
        };
        Sent {
            token,
            to,
            via,
            message,
        }
    }

    /// The message's ID.
    pub fn id(&self) -> u16 {
        u16::from_be_bytes([self.message[0], self.message[1]])
    }
}

/// `bytes` as an upstream try's transport carries them: framed over TCP.
pub fn wrap(via: Via, bytes: &[u8]) -> Vec<u8> {
    match via {
        Via::Udp { .. } => bytes.to_vec(),
        Via::Tcp => crate::build::frame(bytes),
    }
}

/// The upstream sends among `actions`, TCP frames checked and stripped.
pub fn sends(actions: &[Action]) -> Vec<Sent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendUpstream {
                token,
                to,
                via,
                bytes,
            } => Some(Sent::of(*token, *to, *via, bytes)),
            _ => None,
        })
        .collect()
}

/// The tokens closed among `actions`.
pub fn closes(actions: &[Action]) -> Vec<Token> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::CloseUpstream { token } => Some(*token),
            _ => None,
        })
        .collect()
}
