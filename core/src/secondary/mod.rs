//! Secondary zones: copies of zones kept in sync with their primary server by the DNS's
//! own protocols (RFC 1034 4.3.5, RFC 1996 NOTIFY, RFC 1995 IXFR, RFC 5936 AXFR).
//!
//! [`Secondary`] is a sans-IO machine of its own, beside the [`Server`](crate::Server)s:
//! per zone it runs the SOA timers (refresh, retry, expire), asks the primary for its SOA
//! serial, and transfers the zone when the serial is newer (RFC 1982), by IXFR when it has
//! a version and AXFR otherwise. The runtime carries out its [`Action`]s (datagrams, TCP
//! connections, closes) and feeds back what the sockets read; a transfer that was checked
//! from end to end comes out as [`Action::Serve`], which the runtime publishes like a
//! reload (a new [`ZoneSet`](crate::zone::ZoneSet) in the shared
//! [`Snapshot`](crate::zone::Snapshot)). A zone not refreshed within its SOA's EXPIRE
//! comes out as [`Action::Expire`]: the [`Unavailable`] resolver then answers SERVFAIL
//! for it, as it does before the first transfer.
//!
//! NOTIFY reaches the servers, not this machine: a [`Server`](crate::Server) given a
//! [`NotifyPolicy`] answers it and says so with
//! [`Action::Notified`](crate::Action::Notified); the runtime passes it on to
//! [`Secondary::notify`].
//!
//! ```
//! use std::time::Instant;
//! use names_core::secondary::{Action, Limits, Secondary, SecondaryZone};
//!
//! let zone = SecondaryZone::parse("example.com=127.0.0.1:5300", &Default::default()).unwrap();
//! let now = Instant::now();
//! let mut secondary = Secondary::new(vec![zone], Limits::default(), [7; 32], now);
//! // The first check is due at once: the primary's SOA is asked for, over UDP.
//! secondary.handle_timeout(now);
//! let Some(Action::SendUdp { to, .. }) = secondary.poll_action() else { panic!() };
//! assert_eq!(to, "127.0.0.1:5300".parse().unwrap());
//! assert!(secondary.poll_timeout().is_some()); // the query's deadline
//! ```

mod apply;
mod machine;
mod master;
mod notify;
mod transfer;
mod unavailable;

pub use machine::Secondary;
pub use master::master_file;
pub use notify::NotifyPolicy;
pub(crate) use notify::{answer_notify, is_notify};
pub use unavailable::Unavailable;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::base::Name;

use crate::action::Token;
use crate::parse::{parse_server, ConfigError};
use crate::tsig::{split_key, Key, KeyRing};
use crate::zone::Zone;

/// One secondary zone: its name, where its primary is, and the TSIG key of their
/// exchanges, if any.
#[derive(Clone, Debug)]
pub struct SecondaryZone {
    /// The zone's origin.
    pub origin: Name<Bytes>,
    /// The primary server (port 53 unless given).
    pub primary: SocketAddr,
    /// Signs the SOA queries and transfers (every message of the answers must verify),
    /// and is required on the NOTIFYs for the zone.
    pub key: Option<Key>,
}

impl SecondaryZone {
    /// Parses `ZONE=PRIMARY[:PORT][,key=NAME]` (`--secondary`); the key is one of `keys`.
    pub fn parse(text: &str, keys: &KeyRing) -> Result<SecondaryZone, ConfigError> {
        let bad = |why: String| ConfigError::new(format!("--secondary {text:?}: {why}"));
        let (zone_and_primary, key) = split_key(text).map_err(|why| bad(why.into()))?;
        let Some((zone, primary)) = zone_and_primary.split_once('=') else {
            return Err(bad("expected ZONE=PRIMARY[:PORT][,key=NAME]".into()));
        };
        let origin = Name::bytes_from_str(zone.trim())
            .map_err(|e| bad(format!("{zone:?} is not a domain name: {e}")))?;
        let primary = parse_server(primary).map_err(|e| bad(e.message))?;
        let key = match key {
            None => None,
            Some(name) => Some(
                keys.get(&name)
                    .cloned()
                    .ok_or_else(|| bad(format!("no --tsig-key named {name}")))?,
            ),
        };
        Ok(SecondaryZone {
            origin,
            primary,
            key,
        })
    }
}

/// The bounds of a secondary's exchanges with its primaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes one transfer may bring (`--max-transfer-bytes`); beyond it the
    /// transfer is dropped and the data served before stays. Default 64 MiB: a zone of
    /// a million records (some 60 bytes each on the wire) fits; a primary sending
    /// without end is cut off long before memory runs out.
    pub max_transfer_bytes: usize,
    /// Most time one transfer may take, from connecting to the closing SOA. Default 5 minutes.
    pub transfer_timeout: Duration,
    /// Most time an SOA query (UDP, or TCP after TC) may take. Default 3 seconds.
    pub query_timeout: Duration,
    /// The retry interval before the first transfer, when there is no SOA to say it.
    /// Default 5 seconds.
    pub first_retry: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_transfer_bytes: 64 << 20,
            transfer_timeout: Duration::from_secs(300),
            query_timeout: Duration::from_secs(3),
            first_retry: Duration::from_secs(5),
        }
    }
}

/// How much a log line matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Things going as they should: a transfer done, a zone up to date.
    Info,
    /// Something to look at: a failed transfer, an expired zone, a serial going back.
    Warn,
}

/// What the secondary asks its runtime to do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send a datagram from a fresh UDP socket connected to `to`; what it reads goes to
    /// [`Secondary::handle_udp`] with this token.
    SendUdp {
        /// Names the socket.
        token: Token,
        /// The primary.
        to: SocketAddr,
        /// The query.
        bytes: Vec<u8>,
    },
    /// Open a TCP connection to `to` and write `bytes` (already length-framed); what it
    /// reads goes to [`Secondary::handle_tcp`], its end or failure to
    /// [`Secondary::handle_closed`].
    Connect {
        /// Names the connection.
        token: Token,
        /// The primary.
        to: SocketAddr,
        /// The framed query.
        bytes: Vec<u8>,
    },
    /// Close the socket of `token`. Exactly one per token.
    Close {
        /// The socket to close.
        token: Token,
    },
    /// Serve this zone from now on (in place of the version served before, if any).
    Serve {
        /// The zone, checked.
        zone: Arc<Zone>,
        /// Whether it is new data from the primary (worth saving), rather than data
        /// served again after an expiry or loaded from a saved copy.
        transferred: bool,
    },
    /// The zone expired: stop serving it (SERVFAIL until it is refreshed).
    Expire {
        /// The zone's origin.
        origin: Name<Bytes>,
    },
    /// A line for the log.
    Log {
        /// How much it matters.
        level: Level,
        /// The line.
        line: String,
    },
}

/// Counters of a [`Secondary`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecondaryStats {
    /// Transfers that replaced a zone's data.
    pub transfers_ok: u64,
    /// Transfers that ended without new data (cut, refused, broken, over a bound).
    pub transfers_failed: u64,
    /// SOA serial checks started.
    pub checks: u64,
    /// NOTIFYs passed to the machine.
    pub notifies: u64,
    /// Times a zone expired.
    pub expirations: u64,
}

/// One zone as the secondary sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneStatus {
    /// The zone's origin.
    pub origin: Name<Bytes>,
    /// The serial of the data it has, if any.
    pub serial: Option<u32>,
    /// Whether that data is served (false before the first transfer and once expired).
    pub served: bool,
}
