//! # names-core
//!
//! A sans-IO DNS server core. It parses and builds wire-format messages with the
//! [`domain`] crate, asks a chain of resolvers for answers, forwards what they cannot
//! answer, and tells its runtime what to do next. It never touches a socket, a clock or a
//! global RNG: bytes, the time and a seed come in as arguments, [`Action`]s go out. That
//! makes it testable by deterministic simulation and usable from any runtime (the `names`
//! binary drives it with smol; `examples/blocking.rs` with std sockets and threads).
//!
//! ## A runtime drives a [`Server`]
//!
//! A runtime owns the sockets and the clock. Per worker thread it makes one [`Server`]
//! from a [`Config`], a [`Chain`] of resolvers and a seed, then loops:
//!
//! 1. feed every input, with the current time: [`handle_client`](Server::handle_client)
//!    for a datagram or TCP bytes from a client (its [`Origin`]; a TCP connection is a
//!    [`ConnId`] the runtime picks, opened and closed with the `handle_tcp_*` calls),
//!    [`handle_upstream`](Server::handle_upstream) for bytes from an upstream socket,
//!    [`handle_timeout`](Server::handle_timeout) when woken;
//! 2. drain [`poll_action`](Server::poll_action) and carry out each [`Action`]: reply to a
//!    client, send a query upstream (a fresh socket named by a [`Token`], bound [`Via`] a
//!    port the core drew, or TCP), close a socket, pause or resume reading a connection,
//!    write a [`QueryLog`] line, run a resolver's job ([`Action::Lookup`], whose result
//!    goes to [`handle_lookup`](Server::handle_lookup)) or drop it ([`Action::CancelLookup`]);
//! 3. sleep until [`poll_timeout`](Server::poll_timeout) or the next input.
//!
//! A send the runtime could not carry out comes back as an [`UpstreamError`]; counters
//! are in [`Server::stats`] ([`Stats`]).
//!
//! ```
//! use std::time::Instant;
//! use names_core::{Action, Chain, Config, Origin, Server, Synth, SynthRule};
//! use names_core::domain::base::iana::Rtype;
//! use names_core::domain::base::{MessageBuilder, Name};
//!
//! let chain = Chain::new().with(Synth::new(vec![SynthRule::parse("workstation=172.0.2").unwrap()]));
//! let mut server = Server::new(Config::default(), chain, [7; 32]);
//!
//! let mut query = MessageBuilder::new_vec();
//! query.header_mut().set_id(42);
//! let mut query = query.question();
//! let name: Name<Vec<u8>> = "workstation7.example.com".parse().unwrap();
//! query.push((&name, Rtype::A)).unwrap();
//! let query = query.finish();
//!
//! let from = Origin::Udp { listener: 0, peer: "127.0.0.1:5000".parse().unwrap() };
//! server.handle_client(Instant::now(), from, &query);
//! let Some(Action::Reply { to, bytes }) = server.poll_action() else { panic!("one reply") };
//! assert_eq!((to, &bytes[..2]), (from, &42u16.to_be_bytes()[..]));
//! ```
//!
//! ## A resolver answers a [`Query`]
//!
//! The [`Chain`] asks its [`Resolver`]s in order. Each looks at the [`Query`] (and the
//! [`Context`]: the time) and returns a [`Resolution`]: an [`Answer`] (an rcode and
//! records: [`Rr`]), a [`Prebuilt`] answer encoded once and served many times,
//! [`Resolution::Pass`] to ask the next resolver, or an [`Exchange`] with upstream servers.
//! The core runs the exchange (IDs, ports, retries, TCP after a truncated reply, the
//! budget) and gives the resolver the outcome, [`Exchanged`] or an [`ExchangeFailure`].
//! A resolver that needs other I/O (a database, an HTTP service registry) returns
//! [`Resolution::Lookup`] with a job of its own type in a [`Payload`]; the runtime runs it
//! without blocking other queries and the resolver is resumed with a [`LookupOutcome`]
//! (its result, or the end of the query's budget). A resolver that answers in several
//! steps keeps what it learnt of one query in [`Context::state`], which waits with the
//! query and is freed with it. The [`Resolver`] trait shows a user-written resolver,
//! [`Resolution::Lookup`] a runtime carrying a lookup.
//!
//! ## The built-in resolvers and their data
//!
//! In the order `names` chains them:
//!
//! - [`zone::ZoneResolver`]: authoritative answers and AXFR from master files
//!   ([`zone::load_zone`] into a [`zone::ZoneSet`], shared by every worker through a
//!   [`zone::Snapshot`] that a reload replaces);
//! - [`hosts::HostsResolver`]: a hosts file ([`hosts::Hosts`]), in a [`zone::Snapshot`] too;
//! - [`Synth`]: `workstationN.*` style names from [`SynthRule`]s;
//! - [`cache::Cache`]: upstream answers, in a [`cache::Store`] shared by the workers;
//! - [`Forwarder`]: everything else, to upstream servers ([`parse_server`] reads an
//!   address, [`nameservers`] the servers of a resolv.conf), the names of a zone to that
//!   zone's servers ([`ForwardRoute`]: conditional forwarding);
//! - and after it, or in its place, [`recursor::Recursor`]: resolution from the root
//!   itself (root hints, referrals, an infrastructure cache shared by the workers).
//!
//! [`setup::Setup`] puts them together in that order, leaving out what has nothing to do,
//! and builds one [`Chain`] per worker (your own resolvers go after synth, before the cache).
//! The core reads no files: the runtime reads them and gives the core their text; what
//! cannot be used is a [`ConfigError`] or a [`zone::LoadError`] of one line.
//!
//! ## Replication: transfers, NOTIFY, TSIG
//!
//! The zone resolver answers AXFR and IXFR ([`zone::ZoneSet::incremental`], from the
//! differences a reload keeps: [`zone::ZoneSet::with_history_from`]) to the clients its
//! [`zone::TransferRule`]s allow; [`zone::Serial`] compares serials (RFC 1982).
//! [`notify::Notifier`] tells secondaries that a zone changed, a small sans-IO machine of
//! its own. [`tsig`] signs and verifies messages (RFC 8945): a server given keys
//! ([`Server::set_tsig_keys`]) and the wall-clock time ([`Server::set_unix_time`])
//! verifies every signed request and signs its replies.
//! [`secondary::Secondary`] is the other side, another sans-IO machine: it keeps copies of
//! zones from their primaries (SOA timers, IXFR or AXFR, TSIG) and publishes them into
//! the shared [`zone::Snapshot`] like a reload; [`secondary::Unavailable`] answers
//! SERVFAIL for those without data, and a server given a [`secondary::NotifyPolicy`]
//! answers NOTIFY and says so with [`Action::Notified`].
//!
//! ## A DNS client too
//!
//! [`client::Lookup`] is the same sans-IO shape for the other side: it builds a query
//! ([`client::Question`]), checks that a reply comes from the server asked with the ID and
//! question sent (the check the forwarder uses), asks for TCP after a truncated reply and
//! reassembles TCP frames. `names query` is a thin shell over it.
//!
//! ## Where the limits live
//!
//! Every limit and timeout is a field of [`Config`], with its default documented there:
//! a query's time budget, TCP connections and their buffers, exchanges and lookups in flight. The
//! workers of one process share the exchange limit through one [`config::InFlight`]
//! ([`Server::with_shared`]); the fixed bounds are the constants of [`config`], the
//! cache's are in [`cache::CacheConfig`].
//!
//! ## Record and replay
//!
//! Since every input comes in as an argument, a run can be recorded and replayed exactly:
//! [`journal`] encodes a server's inputs (with their times, the seed and the config) and
//! actions in a versioned, checksummed format, and its [`journal::Replayer`] feeds a
//! journal to fresh servers, so any runtime can replay one (`names serve --record` and
//! `names replay` do).
//!
//! ## Driving the server by hand
//!
//! Here the test plays both the runtime and the upstream server of a [`Forwarder`]:
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddr};
//! use std::time::{Duration, Instant};
//! use names_core::{Action, Chain, Config, Forwarder, Origin, Server, Via};
//! use names_core::domain::base::iana::{Rcode, Rtype};
//! use names_core::domain::base::{Message, MessageBuilder, Name};
//! use names_core::domain::rdata::A;
//!
//! let upstream: SocketAddr = "192.0.2.53:53".parse().unwrap();
//! let chain = Chain::new().with(Forwarder::new(vec![upstream]));
//! let mut server = Server::new(Config::default(), chain, [42; 32]);
//! let t0 = Instant::now(); // the runtime reads the clock, never the core
//!
//! // 1. A client query arrives over UDP.
//! let qname: Name<Vec<u8>> = "example.com".parse().unwrap();
//! let mut query = MessageBuilder::new_vec();
//! query.header_mut().set_id(1234);
//! query.header_mut().set_rd(true);
//! let mut query = query.question();
//! query.push((&qname, Rtype::A)).unwrap();
//! let mut query = query.additional();
//! query.opt(|opt| { opt.set_udp_payload_size(1232); Ok(()) }).unwrap();
//! let query = query.finish();
//! let client = Origin::Udp {
//!     listener: 0,
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

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod action;
pub mod cache;
pub mod client;
pub mod config;
mod fasthash;
pub mod hosts;
pub mod journal;
mod lookup;
mod message;
pub mod notify;
mod parse;
mod record;
pub mod recursor;
mod request;
mod resolver;
mod rng;
mod scrub;
pub mod secondary;
mod server;
pub mod setup;
pub mod stats;
mod tcp;
mod timers;
pub mod tsig;
mod upstream;
mod wire;
pub mod zone;

pub use action::{Action, ConnId, Origin, QueryLog, Token, Transport, UpstreamError, Via};
pub use config::Config;
pub use domain;
pub use lookup::{LookupId, LookupOutcome, Payload};
pub use parse::{nameservers, parse_server, ConfigError};
pub use record::Rr;
pub use resolver::{
    Answer, Chain, Context, Exchange, ExchangeFailure, Exchanged, ForwardRoute, Forwarder, Query,
    Resolution, Resolver, Synth, SynthRule,
};
pub use server::Server;
pub use stats::Stats;
pub use wire::Prebuilt;
