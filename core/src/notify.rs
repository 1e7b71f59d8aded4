//! NOTIFY out (RFC 1996): telling secondaries that a zone changed.
//!
//! A [`Notifier`] is a small sans-IO state machine beside the [`Server`](crate::Server):
//! the runtime tells it when a zone's serial changed ([`Notifier::zone_changed`]: at
//! start and after a reload, as NSD and Knot do), sends what
//! [`poll_send`](Notifier::poll_send) gives from one UDP socket of its own, feeds the
//! replies to [`handle_reply`](Notifier::handle_reply) and calls
//! [`handle_timeout`](Notifier::handle_timeout) at [`poll_timeout`](Notifier::poll_timeout).
//!
//! Each target gets a NOTIFY (opcode NOTIFY, AA, the zone and SOA in the question, the
//! new SOA in the answer section, RFC 1996 3.7), signed with the target's TSIG key if it
//! names one. It is sent again, with a fresh ID, after 1, 2, 4 and 8 seconds without a
//! matching reply (from the target's address and port, QR, opcode NOTIFY, the same ID
//! and zone, correctly signed when the request was) — 5 tries in all, as BIND and NSD
//! retry — then given up ([`NotifyEvent::GaveUp`]). Any rcode ends the retries: the
//! secondary answered. A newer change of the same zone replaces a NOTIFY still pending.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, Name};

use crate::parse::{parse_server, ConfigError};
use crate::record::Rr;
use crate::rng::Rng;
use crate::tsig::{ClientSigner, KeyName, KeyRing, UnixClock};

/// Tries per NOTIFY, the first included.
pub const MAX_TRIES: u8 = 5;

/// The wait after the first try; it doubles after each.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Most NOTIFYs pending at once; a change beyond it is dropped (logged as given up).
pub const MAX_PENDING: usize = 65536;

/// One `--notify` target: where, for which zone (all zones when `None`), with which key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyTarget {
    /// The zone this target is for; `None`: every zone served.
    pub zone: Option<Name<Bytes>>,
    /// The secondary's address (port 53 unless given).
    pub addr: SocketAddr,
    /// The TSIG key to sign with.
    pub key: Option<KeyName>,
}

impl NotifyTarget {
    /// Parses `[ZONE=]ADDR[:PORT][,key=NAME]`, e.g. `192.0.2.7`, `[::1]:5353,key=xfr` or
    /// `example.com=192.0.2.7:53`.
    pub fn parse(text: &str) -> Result<NotifyTarget, ConfigError> {
        let bad = |why: &str| ConfigError::new(format!("--notify {text:?}: {why}"));
        let (rest, key) = crate::tsig::split_key(text).map_err(bad)?;
        let (zone, addr) = match rest.split_once('=') {
            Some((zone, addr)) => {
                let zone: Name<Bytes> = zone
                    .parse()
                    .map_err(|_| bad("the zone is not a domain name"))?;
                (Some(zone), addr)
            }
            None => (None, rest),
        };
        let addr = parse_server(addr).map_err(|_| bad("expected [ZONE=]ADDR[:PORT][,key=NAME]"))?;
        Ok(NotifyTarget { zone, addr, key })
    }
}

/// What became of a NOTIFY, for the runtime's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotifyEvent {
    /// The target answered (with this rcode: NOERROR, or its reason not to).
    Answered {
        /// The zone.
        zone: Name<Bytes>,
        /// The serial notified.
        serial: u32,
        /// The target.
        to: SocketAddr,
        /// The reply's rcode.
        rcode: Rcode,
    },
    /// No matching reply after [`MAX_TRIES`] tries (or no room to send at all).
    GaveUp {
        /// The zone.
        zone: Name<Bytes>,
        /// The serial notified.
        serial: u32,
        /// The target.
        to: SocketAddr,
    },
}

struct Pending {
    zone: Name<Bytes>,
    soa: Rr,
    serial: u32,
    to: SocketAddr,
    key: Option<crate::tsig::Key>,
    id: u16,
    tries: u8,
    next: Instant,
    signer: Option<ClientSigner>,
}

/// NOTIFYs to send, waiting for replies, and to retry.
pub struct Notifier {
    targets: Vec<NotifyTarget>,
    keys: KeyRing,
    clock: Option<UnixClock>,
    rng: Rng,
    pending: Vec<Pending>,
    sends: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<NotifyEvent>,
}

impl Notifier {
    /// A notifier for these targets; their keys come from `keys` (a key it lacks is
    /// a NOTIFY sent unsigned: the runtime checks the names when it parses them).
    /// `seed` draws the message IDs.
    pub fn new(targets: Vec<NotifyTarget>, keys: KeyRing, seed: [u8; 32]) -> Notifier {
        Notifier {
            targets,
            keys,
            clock: None,
            rng: Rng::new(seed),
            pending: Vec::new(),
            sends: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The wall-clock time TSIG signs with: `now` was `unix_secs` (see
    /// [`Server::set_unix_time`](crate::Server::set_unix_time)).
    pub fn set_unix_time(&mut self, now: Instant, unix_secs: u64) {
        self.clock = Some(UnixClock::new(now, unix_secs));
    }

    /// Whether any target exists (else nothing is ever sent).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The zone at `origin` has a new serial (its `soa`): notify every target for it.
    pub fn zone_changed(&mut self, now: Instant, origin: &Name<Bytes>, soa: &Rr) {
        let serial = match soa.data() {
            domain::rdata::AllRecordData::Soa(s) => s.serial().into_int(),
            _ => return,
        };
        let targets: Vec<_> = self
            .targets
            .iter()
            .filter(|t| t.zone.as_ref().is_none_or(|z| z == origin))
            .cloned()
            .collect();
        for target in targets {
            // A newer change replaces the one still pending for the same zone and target.
            self.pending
                .retain(|p| !(p.to == target.addr && p.zone == *origin));
            if self.pending.len() >= MAX_PENDING {
                self.events.push_back(NotifyEvent::GaveUp {
                    zone: origin.clone(),
                    serial,
                    to: target.addr,
                });
                continue;
            }
            let key = target.key.as_ref().and_then(|k| self.keys.get(k)).cloned();
            let mut pending = Pending {
                zone: origin.clone(),
                soa: soa.clone(),
                serial,
                to: target.addr,
                key,
                id: 0,
                tries: 0,
                next: now,
                signer: None,
            };
            self.send(now, &mut pending);
            self.pending.push(pending);
        }
    }

    /// The next datagram to send: the target and the message.
    pub fn poll_send(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.sends.pop_front()
    }

    /// The next outcome to log.
    pub fn poll_event(&mut self) -> Option<NotifyEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Notifier::handle_timeout) must next be called, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.next).min()
    }

    /// NOTIFYs sent and not yet answered or given up.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Retries what is due, and gives up on what had its last try.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].next > now {
                i += 1;
                continue;
            }
            if self.pending[i].tries >= MAX_TRIES {
                let p = self.pending.swap_remove(i);
                self.events.push_back(NotifyEvent::GaveUp {
                    zone: p.zone,
                    serial: p.serial,
                    to: p.to,
                });
                continue;
            }
            let mut p = self.pending.swap_remove(i);
            self.send(now, &mut p);
            self.pending.push(p);
        }
    }

    /// A datagram received on the notifier's socket from `from`. A matching reply ends
    /// that NOTIFY's retries; anything else is ignored.
    pub fn handle_reply(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let unix = self.unix_secs(now);
        let Ok(msg) = Message::from_octets(bytes) else {
            return;
        };
        let h = msg.header();
        if !h.qr() || h.opcode() != Opcode::NOTIFY {
            return;
        }
        let Some(question) = msg.sole_question().ok() else {
            return;
        };
        let Some(index) = self.pending.iter().position(|p| {
            p.to == from
                && p.id == h.id()
                && question.qname() == &p.zone
                && question.qtype() == Rtype::SOA
        }) else {
            return;
        };
        if let Some(signer) = &mut self.pending[index].signer {
            let mut reply = bytes.to_vec();
            if signer.verify(&mut reply, unix).is_err() {
                return; // forged or broken: wait for the real reply or the next try
            }
        }
        let p = self.pending.swap_remove(index);
        self.events.push_back(NotifyEvent::Answered {
            zone: p.zone,
            serial: p.serial,
            to: p.to,
            rcode: h.rcode(),
        });
    }

    fn unix_secs(&self, now: Instant) -> u64 {
        self.clock.map_or(0, |c| c.unix_secs(now))
    }

    /// Sends one try of `p` with a fresh ID and arms its retry.
    fn send(&mut self, now: Instant, p: &mut Pending) {
        p.id = self.rng.id();
        p.tries += 1;
        p.next = now + FIRST_RETRY * (1 << (p.tries - 1));
        let mut message = notify_message(p.id, &p.zone, &p.soa);
        p.signer = match &p.key {
            Some(key) => match ClientSigner::sign(key, &mut message, self.unix_secs(now)) {
                Ok(signer) => Some(signer),
                Err(_) => return, // no room: cannot happen for one SOA; retried anyway
            },
            None => None,
        };
        self.sends.push_back((p.to, message));
    }
}

/// A NOTIFY for `zone` carrying `soa` (RFC 1996 3.7).
fn notify_message(id: u16, zone: &Name<Bytes>, soa: &Rr) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    let h = b.header_mut();
    h.set_id(id);
    h.set_opcode(Opcode::NOTIFY);
    h.set_aa(true);
    let mut q = b.question();
    // One question and one SOA always fit in 64 KiB.
    let _ = q.push((zone, Rtype::SOA, Class::IN));
    let mut answer = q.answer();
    let _ = answer.push(soa);
    answer.finish()
}
