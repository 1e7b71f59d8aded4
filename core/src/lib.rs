//! # names-core
//!
//! A sans-IO DNS server core: it parses and builds wire-format messages with the
//! [`domain`] crate, runs a chain of [`Resolver`]s as a pure state machine, and emits
//! [`Action`]s ("reply to this client", "send this upstream") for a runtime to carry out.
//! It never touches a socket, a clock or a global RNG: time and randomness come in as
//! arguments, which makes it testable by deterministic simulation and usable from any
//! runtime (the `names` binary drives it with smol; `examples/blocking.rs` with std sockets).
//!
//! ```
//! use std::time::Instant;
//! use names_core::{Action, Chain, Config, Origin, Server, Synth, SynthRule};
//! use names_core::message::{encode_query, QuerySpec};
//!
//! let chain = Chain::new().with(Synth::new(vec![SynthRule::parse("workstation=172.0.2").unwrap()]));
//! let mut server = Server::new(Config::default(), chain, [7; 32]);
//! let name = "workstation7.example.com".parse().unwrap();
//! let query = encode_query(&QuerySpec {
//!     id: 42, qname: &name, qtype: names_core::domain::base::iana::Rtype::A,
//!     qclass: names_core::domain::base::iana::Class::IN, rd: true, cd: false, edns: None,
//! });
//! let from = Origin::Udp { local: "127.0.0.1:53".parse().unwrap(), peer: "127.0.0.1:5000".parse().unwrap() };
//! server.handle_client(Instant::now(), from, &query);
//! let Some(Action::Reply { bytes, .. }) = server.poll_action() else { panic!("one reply") };
//! assert_eq!(&bytes[..2], &42u16.to_be_bytes());
//! ```
//!
//! ## Driving the server by hand
//!
//! A runtime feeds every input with the current time, drains
//! [`poll_action`](Server::poll_action), and sleeps until
//! [`poll_timeout`](Server::poll_timeout) or the next input. Here the test plays both
//! the runtime and the upstream server of a [`Forwarder`]:
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddr};
//! use std::time::{Duration, Instant};
//! use names_core::{Action, Chain, Config, Forwarder, Origin, Server, Via};
//! use names_core::domain::base::iana::{Class, Rcode, Rtype};
//! use names_core::domain::base::{Message, MessageBuilder, Name};
//! use names_core::domain::rdata::A;
//! use names_core::message::{encode_query, QuerySpec};
//!
//! let upstream: SocketAddr = "192.0.2.53:53".parse().unwrap();
//! let chain = Chain::new().with(Forwarder::new(vec![upstream]));
//! let mut server = Server::new(Config::default(), chain, [42; 32]);
//! let t0 = Instant::now(); // the runtime reads the clock, never the core
//!
//! // 1. A client query arrives over UDP.
//! let qname: Name<_> = "example.com".parse().unwrap();
//! let query = encode_query(&QuerySpec {
//!     id: 1234, qname: &qname, qtype: Rtype::A, qclass: Class::IN,
//!     rd: true, cd: false, edns: Some((1232, false)),
//! });
//! let client = Origin::Udp {
//!     local: "127.0.0.1:53".parse().unwrap(),
//!     peer: "127.0.0.1:40000".parse().unwrap(),
//! };
//! server.handle_client(t0, client, &query);
//!
//! // 2. The core asks for an upstream exchange (fresh ID and source port) and a timer.
//! let Some(Action::SendUpstream { token, to, via, bytes }) = server.poll_action() else {
//!     panic!("an upstream query")
//! };
//! assert_eq!(to, upstream);
//! assert!(matches!(via, Via::Udp { .. }));
//! assert!(server.poll_timeout().is_some());
//! assert_eq!(server.pending_queries(), 1);
//!
//! // 3. Play the upstream: answer the query exactly as it was sent.
//! let sent = Message::from_octets(bytes).unwrap();
//! let mut answer = MessageBuilder::new_vec().start_answer(&sent, Rcode::NOERROR).unwrap();
//! answer.push((&qname, 300, A::new(Ipv4Addr::new(192, 0, 2, 1)))).unwrap();
//! let reply = answer.finish();
//! server.handle_upstream(t0 + Duration::from_millis(20), token, upstream, &reply);
//!
//! // 4. The core closes the upstream socket and replies to the client.
//! let mut client_reply = None;
//! while let Some(action) = server.poll_action() {
//!     match action {
//!         Action::CloseUpstream { token: t } => assert_eq!(t, token),
//!         Action::Reply { to, bytes } => {
//!             assert_eq!(to, client);
//!             client_reply = Some(Message::from_octets(bytes).unwrap());
//!         }
//!         other => panic!("unexpected {other:?}"),
//!     }
//! }
//! let client_reply = client_reply.expect("a reply");
//! assert_eq!(client_reply.header().id(), 1234);
//! assert!(client_reply.header().ra() && !client_reply.header().aa());
//! assert_eq!(server.pending_queries(), 0);
//! assert_eq!(server.stats().upstream_sent, 1);
//! ```
//!
//! See [`Resolver`] for a user-written resolver, and [`message`] for building a query and a
//! reply without a server.

#![warn(missing_docs)]

pub mod action;
pub mod cache;
pub mod config;
pub mod fasthash;
pub mod hosts;
pub mod message;
pub mod parse;
pub mod present;
pub mod record;
pub mod request;
pub mod resolver;
mod rng;
mod server;
pub mod stats;
pub mod tcp;
mod timers;
mod upstream;
pub mod wire;
pub mod zone;

pub use action::{Action, ConnId, Origin, QueryLog, Token, Transport, UpstreamError, Via};
pub use config::Config;
pub use domain;
pub use parse::ConfigError;
pub use record::Rr;
pub use resolver::{
    Answer, Chain, Context, Exchange, ExchangeFailure, Exchanged, Forwarder, Query, Resolution,
    Resolver, Synth, SynthRule,
};
pub use server::Server;
pub use stats::Stats;
