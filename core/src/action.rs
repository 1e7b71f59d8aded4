//! What the core asks its runtime to do, and the handles it uses to name things.
//!
//! The core never touches a socket: every effect leaves as an [`Action`] polled from
//! [`Server::poll_action`](crate::Server::poll_action).

use std::net::SocketAddr;

/// A client TCP connection, named by the runtime. Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// One upstream exchange attempt (one socket in the runtime). Never reused, so a
/// late packet for a closed token is plainly stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u64);

/// Where a client query came from, and so where its reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A datagram received on the listening socket `local` from `peer`.
    Udp { local: SocketAddr, peer: SocketAddr },
    /// A message read from a client TCP connection.
    Tcp(ConnId),
}

impl Origin {
    /// The transport the query arrived on.
    pub fn transport(&self) -> Transport {
        match self {
            Origin::Udp { .. } => Transport::Udp,
            Origin::Tcp(_) => Transport::Tcp,
        }
    }
}

/// UDP or TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

/// How an upstream message must be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// From a fresh UDP socket bound to this (random) local port and connected to the upstream.
    Udp { local_port: u16 },
    /// Over a fresh TCP connection to the upstream; the bytes are already length-framed.
    Tcp,
}

/// Why the runtime could not carry out a [`Action::SendUpstream`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamError {
    /// The local port could not be bound (in use): the core draws another.
    Bind,
    /// Connecting, sending or receiving failed, or the peer closed the TCP connection.
    Io,
}

/// An effect for the runtime to carry out, in the order polled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a reply to a client. For TCP the bytes carry their 2-byte length prefix.
    Reply { to: Origin, bytes: Vec<u8> },
    /// Send a query upstream. Replies come back through `handle_upstream` with this token.
    SendUpstream {
        token: Token,
        to: SocketAddr,
        via: Via,
        bytes: Vec<u8>,
    },
    /// The exchange attempt is over: close its socket. Exactly one per token.
    CloseUpstream { token: Token },
    /// Close a client TCP connection (idle, over the cap, or garbage).
    CloseClient { conn: ConnId },
    /// Stop reading from a client TCP connection until [`Action::ResumeRead`]:
    /// it has too many queries in flight.
    PauseRead { conn: ConnId },
    /// Read from the connection again.
    ResumeRead { conn: ConnId },
    /// A query was answered (only with [`Config::log_queries`](crate::Config::log_queries)).
    Log(QueryLog),
}

/// One answered query, for the query log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryLog {
    pub client: SocketAddr,
    pub transport: Transport,
    pub qname: domain::base::Name<bytes::Bytes>,
    pub qtype: domain::base::iana::Rtype,
    pub rcode: domain::base::iana::OptRcode,
    /// Name of the resolver that answered (`none` when none did).
    pub source: String,
    /// Time from the query's arrival to its reply.
    pub latency: std::time::Duration,
}
