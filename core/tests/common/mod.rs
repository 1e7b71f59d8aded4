//! Helpers shared by the core's integration tests: fake time, message building and
//! parsing, and draining a [`Server`]'s actions. Each test crate uses a subset.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use names_core::domain::base::iana::{Class, Opcode, OptRcode, Rcode, Rtype};
use names_core::domain::base::{
    Message, MessageBuilder, Name, Record, StaticCompressor, ToName, Ttl,
};
use names_core::domain::rdata::{AllRecordData, A};
use names_core::message::{encode_query, QuerySpec};
use names_core::{
    Action, Answer, Chain, Config, ConnId, Context, Forwarder, Origin, Query, Resolution, Resolver,
    Rr, Server, Synth, SynthRule, Token, Via,
};

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

pub const SEED: [u8; 32] = [7; 32];
pub const LISTEN: &str = "127.0.0.53:53";

/// A UDP origin from client port `port` on 127.0.0.1.
pub fn udp(port: u16) -> Origin {
    Origin::Udp {
        listener: 0,
        peer: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    }
}

pub fn name(s: &str) -> Name<Bytes> {
    s.parse()
        .unwrap_or_else(|e| panic!("bad name {s:?}: {e:?}"))
}

/// A standard query, EDNS(0) with this UDP size when `edns` is set.
pub fn query(id: u16, qname: &str, qtype: Rtype, rd: bool, edns: Option<u16>) -> Vec<u8> {
    let qname = name(qname);
    encode_query(&QuerySpec {
        id,
        qname: &qname,
        qtype,
        qclass: Class::IN,
        rd,
        cd: false,
        edns: edns.map(|size| (size, false)),
    })
}

/// A query with any opcode and EDNS version.
pub fn query_with(id: u16, qname: &str, opcode: Opcode, edns_version: Option<u8>) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(id);
    b.header_mut().set_opcode(opcode);
    b.header_mut().set_rd(true);
    let mut q = b.question();
    q.push((&name(qname), Rtype::A, Class::IN)).unwrap();
    let mut add = q.additional();
    if let Some(version) = edns_version {
        add.opt(|o| {
            o.set_udp_payload_size(1232);
            o.set_version(version);
            Ok(())
        })
        .unwrap();
    }
    add.finish()
}

/// Parses a message that must be well formed.
pub fn parse(bytes: &[u8]) -> Message<Vec<u8>> {
    let msg = Message::from_octets(bytes.to_vec()).expect("at least a header");
    for item in msg.iter() {
        item.unwrap_or_else(|e| panic!("unreadable record {e:?} in {bytes:02x?}"));
    }
    msg
}

/// The bytes of the first question (name, type, class), read by hand so case and
/// encoding are compared exactly.
pub fn question_bytes(msg: &[u8]) -> &[u8] {
    let mut i = 12;
    while i < msg.len() {
        let len = usize::from(msg[i]);
        if len == 0 {
            i += 1;
            break;
        }
        assert!(len < 64, "the question name must not be compressed");
        i += 1 + len;
    }
    &msg[12..(i + 4).min(msg.len())]
}

/// The A addresses of the answer section.
pub fn a_addrs(msg: &Message<Vec<u8>>) -> Vec<Ipv4Addr> {
    msg.answer()
        .unwrap()
        .limit_to::<A>()
        .map(|rr| rr.unwrap().data().addr())
        .collect()
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
    pub fn id(&self) -> u16 {
        u16::from_be_bytes([self.message[0], self.message[1]])
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
            } => {
                let message = match via {
                    Via::Tcp => {
                        let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
                        assert_eq!(len + 2, bytes.len(), "TCP upstream query is framed");
                        bytes[2..].to_vec()
                    }
                    Via::Udp { .. } => bytes.clone(),
                };
                Some(Sent {
                    token: *token,
                    to: *to,
                    via: *via,
                    message,
                })
            }
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

/// Strips the 2-byte TCP length prefix, checking it.
pub fn unframe(bytes: &[u8]) -> &[u8] {
    let len = usize::from(u16::from_be_bytes([bytes[0], bytes[1]]));
    assert_eq!(len + 2, bytes.len(), "a TCP reply is exactly one frame");
    &bytes[2..]
}

/// Prefixes a message with its length.
pub fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

/// An upstream's reply to `query`: same ID and question, `rcode`, one A record per
/// address, AA set (which the server must not pass on), OPT if the query had one.
pub fn upstream_reply(query: &[u8], rcode: Rcode, addrs: &[Ipv4Addr], tc: bool) -> Vec<u8> {
    let q = Message::from_octets(query).unwrap();
    let question = q.sole_question().unwrap();
    let owner: Name<Vec<u8>> = question.qname().to_name();
    let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::new())).unwrap();
    let h = b.header_mut();
    h.set_id(q.header().id());
    h.set_qr(true);
    h.set_rd(q.header().rd());
    h.set_ra(true);
    h.set_aa(true);
    h.set_tc(tc);
    h.set_rcode(rcode);
    let mut qb = b.question();
    qb.push((&owner, question.qtype(), question.qclass()))
        .unwrap();
    let mut ans = qb.answer();
    for addr in addrs {
        ans.push((&owner, Class::IN, 300, A::new(*addr))).unwrap();
    }
    let mut add = ans.additional();
    if q.opt().is_some() {
        add.opt(|o| {
            o.set_udp_payload_size(1232);
            Ok(())
        })
        .unwrap();
    }
    add.finish().into_target()
}

/// Changes a message's ID.
pub fn with_id(msg: &[u8], id: u16) -> Vec<u8> {
    let mut m = msg.to_vec();
    m[..2].copy_from_slice(&id.to_be_bytes());
    m
}

/// A chain of `Synth` (workstation=172.0.2) and, if `upstreams` is not empty, a `Forwarder`.
pub fn chain(upstreams: &[SocketAddr]) -> Chain {
    let mut chain = Chain::new().with(Synth::new(vec![
        SynthRule::parse("workstation=172.0.2").unwrap()
    ]));
    if !upstreams.is_empty() {
        chain = chain.with(Forwarder::new(upstreams.to_vec()));
    }
    chain
}

pub fn server(config: Config, upstreams: &[SocketAddr]) -> Server {
    Server::new(config, chain(upstreams), SEED)
}

pub fn upstream_addr(n: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(127, 0, 1, n), 53))
}

/// A test resolver answering every query with `n` A records for the question name.
pub struct Many(pub usize);

impl Resolver for Many {
    fn name(&self) -> &str {
        "many"
    }

    fn resolve(&mut self, q: &Query<'_>, _: &mut Context) -> Resolution {
        let records: Vec<Rr> = (0..self.0)
            .map(|i| {
                let [_, _, a, b] = (i as u32).to_be_bytes();
                q.record(60, A::new(Ipv4Addr::new(10, 9, a, b)))
            })
            .collect();
        let mut answer = Answer::new(Rcode::NOERROR.into());
        answer.answer = records;
        Resolution::Answer(answer)
    }
}

/// An owned record, for building answers by hand.
pub fn a_record(owner: &str, addr: Ipv4Addr) -> Rr {
    Record::new(
        name(owner),
        Class::IN,
        Ttl::from_secs(60),
        AllRecordData::A(A::new(addr)),
    )
}

/// The response code, extended rcode included.
pub fn opt_rcode(msg: &Message<Vec<u8>>) -> OptRcode {
    msg.opt_rcode()
}

/// The client TCP connection used by tests.
pub const CONN: ConnId = ConnId(1);

pub fn tcp_peer() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}
