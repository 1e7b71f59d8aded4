//! A DNS hierarchy in memory for the recursor's tests: authoritative servers by address,
//! each a `names_core::Server` over its zones (the core's own zone module answers, as
//! `names --zone` would), or misbehaving on purpose ([`Behaviour`]); and a driver that
//! plays the runtime of a recursive `Server`, answering each `SendUpstream` by its `to`
//! address, in simulated time. Nothing leaves the process.
//!
//! [`World::standard`] is the hierarchy of the tests (the addresses are documentation
//! addresses, 192.0.2.0/24, and one loopback one; all in memory):
//!
//! | zone | servers |
//! |---|---|
//! | `.` | a.root-servers.net 192.0.2.1 |
//! | `com`, `net` | a.gtld-servers.net 192.0.2.2 |
//! | `org` | ns.nic.org 192.0.2.3 |
//! | `example.com` ([`example_com`]: CNAME to example.net, DNAME, `sub` delegated, an empty non-terminal, an RRSIG) | .40, .41 |
//! | `sub.example.com` | .50 |
//! | `example.net`, `glueless.com` (NS ns.example.net, no glue in com) | .60 |
//! | `lame.com` | .70 REFUSED, .71 good, .72 dead |
//! | `tc.com` | .80, UDP replies truncated |
//! | `old.com` | .90, FORMERR to EDNS |
//! | `victim.org` | .100 (the NXNS target: `nxns.com` has 100 NS names there, no glue) |
//! | `up.com` | .110 refers up to the root, .111 good |
//! | `lo.com` | 127.0.0.53 |
//! | `loop1.com`, `loop2.com` | each NS in the other, no glue |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, Name, Ttl};
use domain::rdata::{Ns, A};
use names_core::cache::CacheConfig;
use names_core::recursor::{RecursorConfig, RootHints};
use names_core::setup::Setup;
use names_core::zone::{load_zone, Snapshot, ZoneResolver, ZoneSet};
use names_core::{Action, Chain, Config, ConnId, Origin, Server, Token, Via};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::build::{frame, query_wire, unframe, with_tc, Flags};
use crate::drive::{at, udp, SEED};
use crate::parse::{parse, Parsed};
use crate::scenario::Canned;

/// How an authoritative server of the world behaves.
pub enum Behaviour {
    /// Answers from its zones.
    Serve,
    /// REFUSED to everything.
    Refuse,
    /// Never answers.
    Dead,
    /// Over UDP its answers come truncated (TC=1); over TCP whole.
    TcpOnly,
    /// FORMERR (without OPT) to any query with an OPT record, as a server from before
    /// EDNS; answers the rest from its zones.
    NoEdns,
    /// Refers every query up to the root (NOERROR, no AA): a lame delegation.
    Upward,
    /// A script: the reply to each query (unframed), `None` for silence.
    Script(Script),
}

/// A scripted server: the reply to each query (unframed), `None` for silence.
pub type Script = Box<dyn FnMut(&Message<Bytes>) -> Option<Vec<u8>>>;

struct Auth {
    server: Server,
    behaviour: Behaviour,
}

/// One query a recursor sent into the world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked {
    pub to: SocketAddr,
    pub qname: String,
    pub qtype: Rtype,
    pub tcp: bool,
    pub edns: bool,
    pub dnssec_ok: bool,
    pub rd: bool,
}

/// The authoritative servers, and every query sent to them.
pub struct World {
    servers: BTreeMap<IpAddr, Auth>,
    /// Every query sent, in order.
    pub asked: Vec<Asked>,
    /// Simulated milliseconds since the epoch of [`crate::drive::at`].
    pub now_ms: u64,
    next_conn: u64,
    next_client_port: u16,
    /// When set, every reply is mangled at random ([`World::chaos`]).
    chaos: Option<ChaCha20Rng>,
}

impl Default for World {
    fn default() -> World {
        World {
            servers: BTreeMap::new(),
            asked: Vec::new(),
            now_ms: 0,
            next_conn: 1,
            next_client_port: 30000,
            chaos: None,
        }
    }
}

/// The root hints of the standard world.
pub const HINTS: &str =
    ". 3600000 NS a.root-servers.net.\na.root-servers.net. 3600000 A 192.0.2.1\n";

/// `192.0.2.last`.
pub fn ip(last: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, last])
}

impl World {
    /// An empty world.
    pub fn new() -> World {
        World::default()
    }

    /// Adds a server at `addr` serving `zones` (master-file texts), behaving so.
    pub fn serve(&mut self, addr: IpAddr, zones: &[String], behaviour: Behaviour) {
        let zones = zones
            .iter()
            .map(|text| {
                load_zone("world.zone", text, &mut |p, _| {
                    Err(format!("no include {p}"))
                })
                .unwrap_or_else(|e| panic!("a zone of the world: {e}\n{text}"))
            })
            .collect();
        let set = ZoneSet::new(zones).expect("zones that do not overlap");
        let chain = Chain::new().with(ZoneResolver::new(Snapshot::new(set)));
        let server = Server::new(Config::default(), chain, SEED);
        self.servers.insert(addr, Auth { server, behaviour });
    }

    /// Changes how the server at `addr` behaves.
    pub fn set_behaviour(&mut self, addr: IpAddr, behaviour: Behaviour) {
        if let Some(auth) = self.servers.get_mut(&addr) {
            auth.behaviour = behaviour;
        }
    }

    /// The hierarchy described in the module documentation.
    pub fn standard() -> World {
        let mut w = World::new();
        let root = zone(
            ".",
            "a.root-servers.net.",
            "\
            . NS a.root-servers.net.\n\
            a.root-servers.net. A 192.0.2.1\n\
            com. NS a.gtld-servers.net.\n\
            net. NS a.gtld-servers.net.\n\
            org. NS ns.nic.org.\n\
            a.gtld-servers.net. A 192.0.2.2\n\
            ns.nic.org. A 192.0.2.3\n",
        );
        w.serve(ip(1), &[root], Behaviour::Serve);
        let mut com = String::from(
            "\
            com. NS a.gtld-servers.net.\n\
            example.com. NS ns1.example.com.\n\
            example.com. NS ns2.example.com.\n\
            ns1.example.com. A 192.0.2.40\n\
            ns2.example.com. A 192.0.2.41\n\
            glueless.com. NS ns.example.net.\n\
            lame.com. NS ns1.lame.com.\n\
            lame.com. NS ns2.lame.com.\n\
            lame.com. NS ns3.lame.com.\n\
            ns1.lame.com. A 192.0.2.70\n\
            ns2.lame.com. A 192.0.2.71\n\
            ns3.lame.com. A 192.0.2.72\n\
            tc.com. NS ns.tc.com.\n\
            ns.tc.com. A 192.0.2.80\n\
            old.com. NS ns.old.com.\n\
            ns.old.com. A 192.0.2.90\n\
            loop1.com. NS ns.loop2.com.\n\
            loop2.com. NS ns.loop1.com.\n\
            up.com. NS ns1.up.com.\n\
            up.com. NS ns2.up.com.\n\
            ns1.up.com. A 192.0.2.110\n\
            ns2.up.com. A 192.0.2.111\n\
            lo.com. NS ns.lo.com.\n\
            ns.lo.com. A 127.0.0.53\n",
        );
        for i in 1..=100 {
            let _ = writeln!(com, "nxns.com. NS ns{i}.victim.org.");
        }
        let com = zone("com.", "a.gtld-servers.net.", &com);
        let net = zone(
            "net.",
            "a.gtld-servers.net.",
            "\
            net. NS a.gtld-servers.net.\n\
            a.gtld-servers.net. A 192.0.2.2\n\
            a.root-servers.net. A 192.0.2.1\n\
            example.net. NS ns.example.net.\n\
            ns.example.net. A 192.0.2.60\n",
        );
        w.serve(ip(2), &[com, net], Behaviour::Serve);
        let org = zone(
            "org.",
            "ns.nic.org.",
            "\
            org. NS ns.nic.org.\n\
            ns.nic.org. A 192.0.2.3\n\
            victim.org. NS ns.victim.org.\n\
            ns.victim.org. A 192.0.2.100\n",
        );
        w.serve(ip(3), &[org], Behaviour::Serve);
        let example = example_com();
        w.serve(ip(40), std::slice::from_ref(&example), Behaviour::Serve);
        w.serve(ip(41), &[example], Behaviour::Serve);
        let sub = single_server_zone(
            "sub.example.com.",
            "ns.sub.example.com.",
            "192.0.2.50",
            "www.sub.example.com. A 192.0.2.201\n",
        );
        w.serve(ip(50), &[sub], Behaviour::Serve);
        let example_net = single_server_zone(
            "example.net.",
            "ns.example.net.",
            "192.0.2.60",
            "www.example.net. A 192.0.2.202\nx.example.net. A 192.0.2.203\n",
        );
        let glueless = zone(
            "glueless.com.",
            "ns.example.net.",
            "\
            glueless.com. NS ns.example.net.\n\
            www.glueless.com. A 192.0.2.204\n",
        );
        w.serve(ip(60), &[example_net, glueless], Behaviour::Serve);
        let lame = zone(
            "lame.com.",
            "ns2.lame.com.",
            "\
            lame.com. NS ns1.lame.com.\n\
            lame.com. NS ns2.lame.com.\n\
            lame.com. NS ns3.lame.com.\n\
            ns1.lame.com. A 192.0.2.70\n\
            ns2.lame.com. A 192.0.2.71\n\
            ns3.lame.com. A 192.0.2.72\n\
            www.lame.com. A 192.0.2.205\n\
            ftp.lame.com. A 192.0.2.215\n\
            mail.lame.com. A 192.0.2.225\n",
        );
        w.serve(ip(70), std::slice::from_ref(&lame), Behaviour::Refuse);
        w.serve(ip(71), std::slice::from_ref(&lame), Behaviour::Serve);
        w.serve(ip(72), &[lame], Behaviour::Dead);
        let tc = single_server_zone(
            "tc.com.",
            "ns.tc.com.",
            "192.0.2.80",
            "www.tc.com. A 192.0.2.206\n",
        );
        w.serve(ip(80), &[tc], Behaviour::TcpOnly);
        let old = single_server_zone(
            "old.com.",
            "ns.old.com.",
            "192.0.2.90",
            "www.old.com. A 192.0.2.207\nftp.old.com. A 192.0.2.217\n",
        );
        w.serve(ip(90), &[old], Behaviour::NoEdns);
        let victim = single_server_zone("victim.org.", "ns.victim.org.", "192.0.2.100", "");
        w.serve(ip(100), &[victim], Behaviour::Serve);
        let up = zone(
            "up.com.",
            "ns2.up.com.",
            "\
            up.com. NS ns1.up.com.\n\
            up.com. NS ns2.up.com.\n\
            ns1.up.com. A 192.0.2.110\n\
            ns2.up.com. A 192.0.2.111\n\
            www.up.com. A 192.0.2.208\n\
            ftp.up.com. A 192.0.2.218\n",
        );
        w.serve(ip(110), std::slice::from_ref(&up), Behaviour::Upward);
        w.serve(ip(111), &[up], Behaviour::Serve);
        let lo = single_server_zone(
            "lo.com.",
            "ns.lo.com.",
            "127.0.0.53",
            "www.lo.com. A 192.0.2.209\n",
        );
        w.serve(IpAddr::from([127, 0, 0, 53]), &[lo], Behaviour::Serve);
        w
    }

    /// From now on every server misbehaves at random (seeded): of its replies, about one
    /// in ten is lost, one in five has a byte changed, one in ten is cut short, one in ten
    /// gets another rcode, one in twenty TC; the rest go out as they were.
    pub fn chaos(&mut self, seed: u64) {
        self.chaos = Some(ChaCha20Rng::seed_from_u64(seed));
    }

    /// The queries sent to `ip`.
    pub fn asked_of(&self, ip: IpAddr) -> Vec<&Asked> {
        self.asked.iter().filter(|a| a.to.ip() == ip).collect()
    }

    /// Sends `query` from a client to `server` and plays the world until the reply
    /// (or `None` when it stays silent: the loop is bounded in steps and in time).
    pub fn resolve(&mut self, server: &mut Server, query: &[u8]) -> Option<Parsed> {
        self.resolve_all(server, &[query.to_vec()]).pop().flatten()
    }

    /// Sends every query at once, each from its own client, and plays the world until
    /// each has its reply (`None` for one that never came).
    pub fn resolve_all(&mut self, server: &mut Server, queries: &[Vec<u8>]) -> Vec<Option<Parsed>> {
        let mut clients = Vec::new();
        for query in queries {
            self.next_client_port = self.next_client_port.wrapping_add(1).max(30000);
            let client = udp(self.next_client_port);
            clients.push(client);
            server.handle_client(self.now(), client, query);
        }
        let mut got: Vec<Option<Parsed>> = vec![None; queries.len()];
        for _ in 0..100_000 {
            let mut replies: Vec<(Token, SocketAddr, Vec<u8>)> = Vec::new();
            while let Some(action) = server.poll_action() {
                match action {
                    Action::Reply { to, bytes } => {
                        if let Some(i) = clients.iter().position(|c| *c == to) {
                            got[i] = Some(parse(&bytes));
                        }
                    }
                    Action::SendUpstream {
                        token,
                        to,
                        via,
                        bytes,
                    } => {
                        if let Some(reply) = self.answer(to, via, &bytes) {
                            replies.push((token, to, reply));
                        }
                    }
                    _ => {}
                }
            }
            if got.iter().all(Option::is_some) {
                break;
            }
            if replies.is_empty() {
                let Some(next) = server.poll_timeout() else {
                    break;
                };
                let ms = u64::try_from(next.saturating_duration_since(at(0)).as_millis())
                    .unwrap_or(u64::MAX);
                if ms > self.now_ms + 60_000 {
                    break; // nothing for a minute: silent
                }
                self.now_ms = self.now_ms.max(ms);
                server.handle_timeout(self.now());
                continue;
            }
            self.now_ms += 1;
            for (token, from, bytes) in replies {
                server.handle_upstream(self.now(), token, from, &bytes);
            }
        }
        got
    }

    /// Asks `server` for `qname` `qtype` with RD and EDNS (DO as given).
    pub fn ask(
        &mut self,
        server: &mut Server,
        qname: &str,
        qtype: Rtype,
        dnssec_ok: bool,
    ) -> Parsed {
        let query = client_query(qname, qtype, true, dnssec_ok);
        self.resolve(server, &query)
            .unwrap_or_else(|| panic!("no reply to {qname} {qtype}"))
    }

    /// The current simulated time.
    pub fn now(&self) -> Instant {
        at(self.now_ms)
    }

    /// The reply of the server at `to` to a query sent `via` (framed over TCP), as it
    /// behaves; `None` when it stays silent or there is no server there.
    pub fn answer(&mut self, to: SocketAddr, via: Via, bytes: &[u8]) -> Option<Vec<u8>> {
        let tcp = matches!(via, Via::Tcp);
        let message = if tcp { unframe(bytes) } else { bytes };
        let msg = Message::from_octets(Bytes::copy_from_slice(message)).ok()?;
        let question = msg.first_question()?;
        self.asked.push(Asked {
            to,
            qname: question.qname().to_string(),
            qtype: question.qtype(),
            tcp,
            edns: msg.opt().is_some(),
            dnssec_ok: msg.opt().is_some_and(|o| o.dnssec_ok()),
            rd: msg.header().rd(),
        });
        let now = self.now();
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let auth = self.servers.get_mut(&to.ip())?;
        let reply = match &mut auth.behaviour {
            Behaviour::Dead => return None,
            Behaviour::Script(script) => script(&msg)?,
            Behaviour::Refuse => rcode_reply(&msg, Rcode::REFUSED),
            Behaviour::NoEdns if msg.opt().is_some() => rcode_reply(&msg, Rcode::FORMERR),
            Behaviour::Upward => upward(&msg),
            Behaviour::TcpOnly if !tcp => {
                with_tc(&zone_answer(&mut auth.server, now, conn, message, false)?)
            }
            _ => zone_answer(&mut auth.server, now, conn, message, tcp)?,
        };
        let reply = match self.chaos.as_mut() {
            Some(rng) => mangle(rng, reply)?,
            None => reply,
        };
        Some(if tcp { frame(&reply) } else { reply })
    }
}

/// The text of the standard world's `example.com` zone (served by .40 and .41).
pub fn example_com() -> String {
    zone("example.com.", "ns1.example.com.", "\
            example.com. NS ns1.example.com.\n\
            example.com. NS ns2.example.com.\n\
            ns1.example.com. A 192.0.2.40\n\
            ns2.example.com. A 192.0.2.41\n\
            host.example.com. A 192.0.2.200\n\
            host.example.com. AAAA 2001:db8::200\n\
            www.example.com. CNAME www.example.net.\n\
            dname.example.com. DNAME example.net.\n\
            sub.example.com. NS ns.sub.example.com.\n\
            ns.sub.example.com. A 192.0.2.50\n\
            deep.ent.example.com. A 192.0.2.210\n\
            a.b.c.d.e.f.g.h.i.j.k.l.deep.example.com. A 192.0.2.212\n\
            signed.example.com. A 192.0.2.211\n\
            signed.example.com. RRSIG A 13 3 3600 20300101000000 20200101000000 12345 example.com. dGVzdA==\n")
}

/// A server answering from a table of canned replies by question, as the `RANGE` of an
/// Unbound scenario: `"www.example.com. A"` matches that question (case-insensitive),
/// `"*.example.com."` any question at or below the name (the rpl's `MATCH subdomain`).
/// The first entry that matches answers, RA clear; anything else gets REFUSED.
pub fn canned(table: Vec<(&str, Canned)>) -> Behaviour {
    table_server(table, false)
}

/// [`canned`] for a server that answers as a recursive server does: RA set, as the rpl's
/// `REPLY QR RA ...`.
pub fn canned_recursive(table: Vec<(&str, Canned)>) -> Behaviour {
    table_server(table, true)
}

fn table_server(table: Vec<(&str, Canned)>, ra: bool) -> Behaviour {
    let table: Vec<(String, Option<Rtype>, Canned)> = table
        .into_iter()
        .map(|(question, reply)| {
            let mut it = question.split_whitespace();
            let name = it.next().unwrap_or_default().to_ascii_lowercase();
            let rtype = it.next().map(|t| t.parse().expect("a known type"));
            (name, rtype, Canned { ra, ..reply })
        })
        .collect();
    Behaviour::Script(Box::new(move |q: &Message<Bytes>| {
        let question = q.first_question()?;
        let qname = format!("{}.", question.qname()).to_ascii_lowercase();
        let found = table
            .iter()
            .find(|(name, rtype, _)| match name.strip_prefix("*.") {
                Some(zone) => qname == zone || qname.ends_with(&format!(".{zone}")),
                None => qname == *name && *rtype == Some(question.qtype()),
            });
        match found {
            Some((_, _, reply)) => reply.reply_to(q.as_slice()),
            None => Some(rcode_reply(q, Rcode::REFUSED)),
        }
    }))
}

/// A client query with RD as given and EDNS (DO as given).
pub fn client_query(qname: &str, qtype: Rtype, rd: bool, dnssec_ok: bool) -> Vec<u8> {
    let flags = Flags {
        rd,
        cd: false,
        opcode: domain::base::iana::Opcode::QUERY,
    };
    let name: Name<Bytes> = crate::build::name(qname);
    query_wire(
        &name,
        qtype,
        Class::IN,
        4242,
        flags,
        Some((1232, 0, dnssec_ok)),
    )
}

/// A zone's text: its SOA and NS-server boilerplate, then `records`.
pub fn zone(origin: &str, primary: &str, records: &str) -> String {
    let mut text = format!(
        "$TTL 3600\n{origin} IN SOA {primary} hostmaster.{} 1 1800 900 604800 300\n",
        if origin == "." { "" } else { origin }
    );
    for line in records.lines() {
        text.push_str(line.trim());
        text.push('\n');
    }
    text
}

/// An authoritative server over `zones` (master-file texts), to answer from in a
/// [`Behaviour::Script`] with [`answer_udp`].
pub fn authoritative(zones: &[String]) -> Server {
    let mut w = World::new();
    w.serve(ip(0), zones, Behaviour::Serve);
    match w.servers.remove(&ip(0)) {
        Some(auth) => auth.server,
        None => unreachable!("just added"),
    }
}

/// `server`'s reply to `query` over UDP.
pub fn answer_udp(server: &mut Server, query: &[u8]) -> Option<Vec<u8>> {
    zone_answer(server, at(0), ConnId(0), query, false)
}

/// `reply` as a chaotic network and server leave it (`None`: lost).
fn mangle(rng: &mut ChaCha20Rng, mut reply: Vec<u8>) -> Option<Vec<u8>> {
    let roll = rng.next_u32() % 100;
    let at = |rng: &mut ChaCha20Rng, len: usize| (rng.next_u32() as usize) % len.max(1);
    match roll {
        0..=9 => return None,
        10..=29 => {
            let i = at(rng, reply.len());
            if let Some(b) = reply.get_mut(i) {
                *b ^= 1 << (rng.next_u32() % 8);
            }
        }
        30..=39 => {
            let keep = at(rng, reply.len());
            reply.truncate(keep);
        }
        40..=49 => {
            if let Some(b) = reply.get_mut(3) {
                *b = (*b & 0xf0) | (rng.next_u32() % 16) as u8;
            }
        }
        50..=54 => {
            if let Some(b) = reply.get_mut(2) {
                *b |= 0x02;
            }
        }
        _ => {}
    }
    Some(reply)
}

/// A zone served by one name server in it: its SOA, NS and the server's address, then
/// `records`.
pub fn single_server_zone(origin: &str, server: &str, addr: &str, records: &str) -> String {
    zone(
        origin,
        server,
        &format!("{origin} NS {server}\n{server} A {addr}\n{records}"),
    )
}

/// The authoritative server's own reply (unframed).
fn zone_answer(
    server: &mut Server,
    now: Instant,
    conn: ConnId,
    query: &[u8],
    tcp: bool,
) -> Option<Vec<u8>> {
    let peer: SocketAddr = "192.0.2.254:4000".parse().ok()?;
    let origin = if tcp {
        server.handle_tcp_open(now, conn, peer);
        server.handle_client(now, Origin::Tcp(conn), &frame(query));
        Origin::Tcp(conn)
    } else {
        let origin = Origin::Udp { listener: 0, peer };
        server.handle_client(now, origin, query);
        origin
    };
    let mut reply = None;
    while let Some(action) = server.poll_action() {
        if let Action::Reply { to, bytes } = action {
            if to == origin {
                reply = Some(if tcp { unframe(&bytes).to_vec() } else { bytes });
            }
        }
    }
    if tcp {
        server.handle_tcp_closed(now, conn);
    }
    reply
}

/// An empty reply with `rcode`, the question echoed, no OPT.
pub fn rcode_reply(query: &Message<Bytes>, rcode: Rcode) -> Vec<u8> {
    match MessageBuilder::new_vec().start_answer(query, rcode) {
        Ok(b) => b.finish(),
        Err(_) => Vec::new(),
    }
}

/// A referral up to the root: `. NS a.root-servers.net.` and its address, no AA.
fn upward(query: &Message<Bytes>) -> Vec<u8> {
    let Ok(b) = MessageBuilder::new_vec().start_answer(query, Rcode::NOERROR) else {
        return Vec::new();
    };
    let mut auth = b.authority();
    let root = Name::root_bytes();
    let ns: Name<Bytes> = crate::build::name("a.root-servers.net");
    let _ = auth.push((&root, Class::IN, Ttl::from_secs(3600), Ns::new(ns.clone())));
    let mut add = auth.additional();
    let _ = add.push((
        &ns,
        Class::IN,
        Ttl::from_secs(3600),
        A::new([192, 0, 2, 1].into()),
    ));
    add.finish()
}

/// A server with a cache (unless `cache` is false) and a recursor over the standard
/// world's hints (`query_localhost` as given), and the setup holding their shared state.
pub fn recursive_server(config: RecursorConfig, cache: bool) -> (Setup, Server) {
    let mut setup = Setup::new();
    if cache {
        setup = setup.cache(CacheConfig::default(), 1);
    }
    let setup = setup.recurse(config);
    let server = Server::new(Config::default(), setup.build(), SEED);
    (setup, server)
}

/// The recursor configuration of the standard world: its hints, loopback allowed.
pub fn config() -> RecursorConfig {
    RecursorConfig {
        root_hints: RootHints::parse(HINTS).expect("the world's hints"),
        query_localhost: true,
        ..RecursorConfig::default()
    }
}
