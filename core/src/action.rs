//! What the core asks its runtime to do, and the handles it uses to name things.
//!
//! The core never touches a socket: every effect leaves as an [`Action`] polled from
//! [`Server::poll_action`](crate::Server::poll_action).

use std::net::SocketAddr;

use crate::lookup::{LookupId, Payload};

/// A client TCP connection, named by the runtime. Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// One upstream exchange attempt (one socket in the runtime).
///
/// Never reused, so a late packet for a closed token is plainly stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub u64);

/// Where a client query came from, and so where its reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A datagram received on listening socket number `listener` from `peer`.
    Udp {
        /// Which of the runtime's listening UDP sockets the datagram arrived on (the reply
        /// leaves from it): an index the runtime chose, passed back untouched.
        listener: usize,
        /// The client's address and port.
        peer: SocketAddr,
    },
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
    /// DNS over UDP datagrams.
    Udp,
    /// DNS over TCP, each message preceded by its 2-byte length.
    Tcp,
}

/// How an upstream message must be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// From a fresh UDP socket bound to this (random) local port and connected to the upstream.
    Udp {
        /// The local port to bind, drawn at random by the core (RFC 5452).
        local_port: u16,
    },
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
///
/// Not `Clone`: a [`Action::Lookup`] carries a job of the user's type (whose
/// [`Payload`] compares equal only to itself).
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a reply to a client. For TCP the bytes carry their 2-byte length prefix.
    Reply {
        /// Where the query came from.
        to: Origin,
        /// The wire-format reply.
        bytes: Vec<u8>,
    },
    /// Send a query upstream. Replies come back through `handle_upstream` with this token.
    SendUpstream {
        /// Names this try in later inputs and in [`Action::CloseUpstream`].
        token: Token,
        /// The upstream server.
        to: SocketAddr,
        /// UDP from a given local port, or TCP.
        via: Via,
        /// The wire-format query (length-prefixed for TCP).
        bytes: Vec<u8>,
    },
    /// The exchange attempt is over: close its socket. Exactly one per token.
    CloseUpstream {
        /// The try whose socket to close.
        token: Token,
    },
    /// Close a client TCP connection (idle, over a cap, garbage, or half-closed by the
    /// client and all answered). Replies already handed over should still be written.
    CloseClient {
        /// The connection to close.
        conn: ConnId,
    },
    /// Stop reading from a client TCP connection until [`Action::ResumeRead`]: it has
    /// `max_pipelined` queries in flight, or more than `max_tcp_buffered` bytes of replies
    /// not yet reported written. Input pushed despite it is bounded: see
    /// [`Server::handle_client`](crate::Server::handle_client).
    PauseRead {
        /// The connection to stop reading.
        conn: ConnId,
    },
    /// Read from the connection again.
    ResumeRead {
        /// The connection to read again.
        conn: ConnId,
    },
    /// Run a resolver's job ([`Resolution::Lookup`](crate::Resolution::Lookup)), then give
    /// its result to [`Server::handle_lookup`](crate::Server::handle_lookup) with this id.
    /// Do not block the loop on it: other queries go on meanwhile.
    Lookup {
        /// Names the lookup in `handle_lookup` and [`Action::CancelLookup`].
        id: LookupId,
        /// The job, in the resolver's own type.
        job: Payload,
    },
    /// The query that asked for lookup `id` is gone (its budget ended): drop the job. A
    /// result given for it later is ignored.
    CancelLookup {
        /// The lookup to drop.
        id: LookupId,
    },
    /// An accepted NOTIFY (RFC 1996) for a secondary zone, already answered: pass it on
    /// to the [`Secondary`](crate::secondary::Secondary) machine, which checks the
    /// zone's serial ([`Server::accept_notify`](crate::Server::accept_notify)).
    Notified {
        /// The zone the NOTIFY is about.
        zone: domain::base::Name<bytes::Bytes>,
        /// Who sent it.
        from: SocketAddr,
    },
    /// A query was answered (only with [`Config::log_queries`](crate::Config::log_queries)).
    Log(QueryLog),
}

/// One answered query, for the query log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryLog {
    /// The client's address and port.
    pub client: SocketAddr,
    /// The transport the query came in on.
    pub transport: Transport,
    /// The question name, as asked (case kept).
    pub qname: domain::base::Name<bytes::Bytes>,
    /// The question type.
    pub qtype: domain::base::iana::Rtype,
    /// The reply's response code.
    pub rcode: domain::base::iana::OptRcode,
    /// Name of the resolver that answered (`none` when none did).
    pub source: String,
    /// Time from the query's arrival to its reply.
    pub latency: std::time::Duration,
}
