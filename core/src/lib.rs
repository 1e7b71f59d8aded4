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

pub mod action;
pub mod cache;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
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
