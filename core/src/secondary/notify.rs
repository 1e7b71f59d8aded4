//! NOTIFY in (RFC 1996): who may tell a secondary that its zone changed, and the answer.
//!
//! A NOTIFY for a secondary zone from the zone's primary address, or from an address in
//! `--allow-notify`, is answered NOERROR (AA, opcode NOTIFY, the question echoed) and
//! passed on; from anyone else it is REFUSED; for a zone that is not a secondary here,
//! NOTAUTH. A message that cannot be read as one question is FORMERR; a NOTIFY response
//! is dropped (it answers a NOTIFY this server never sent).

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, Rcode};
use domain::base::{Message, MessageBuilder, Name, ToName};

use super::SecondaryZone;
use crate::zone::Cidr;

/// Which zones take NOTIFY, and from whom. Every worker's server holds one
/// ([`Server::accept_notify`](crate::Server::accept_notify)); a server without one
/// answers every NOTIFY NOTAUTH.
#[derive(Clone, Debug, Default)]
pub struct NotifyPolicy {
    zones: Vec<(Name<Bytes>, IpAddr)>,
    allow: Vec<Cidr>,
}

impl NotifyPolicy {
    /// NOTIFY for `zones`, from each zone's primary and from `allow` (`--allow-notify`).
    pub fn new(zones: &[SecondaryZone], allow: Vec<Cidr>) -> NotifyPolicy {
        NotifyPolicy {
            zones: zones
                .iter()
                .map(|z| (z.origin.clone(), z.primary.ip()))
                .collect(),
            allow,
        }
    }

    /// The rcode for a NOTIFY about `zone` from `from`.
    fn decide(&self, zone: &Name<Bytes>, from: IpAddr) -> Rcode {
        let primaries: Vec<IpAddr> = self
            .zones
            .iter()
            .filter(|(origin, _)| origin.name_eq(zone))
            .map(|(_, primary)| primary.to_canonical())
            .collect();
        if primaries.is_empty() {
            Rcode::NOTAUTH
        } else if primaries.contains(&from.to_canonical())
            || self.allow.iter().any(|c| c.contains(from))
        {
            Rcode::NOERROR
        } else {
            Rcode::REFUSED
        }
    }
}

/// Whether a client message is a NOTIFY request (opcode 4, QR clear).
pub(crate) fn is_notify(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && bytes[2] & 0x80 == 0 && (bytes[2] >> 3) & 0x0f == Opcode::NOTIFY.to_int()
}

/// The answer to a NOTIFY from `from`, and the zone to check when it is accepted. `None`:
/// nothing is sent.
pub(crate) fn answer_notify(
    policy: &NotifyPolicy,
    from: SocketAddr,
    bytes: &[u8],
) -> Option<(Vec<u8>, Option<Name<Bytes>>)> {
    let msg = Message::from_octets(bytes).ok()?;
    let question = match msg.sole_question() {
        Ok(q) if q.qclass() == Class::IN => Some(q),
        _ => None,
    };
    let (rcode, zone) = match question {
        Some(q) => {
            let zone = q.qname().to_name::<Bytes>();
            let rcode = policy.decide(&zone, from.ip());
            (rcode, (rcode == Rcode::NOERROR).then_some(zone))
        }
        None => (Rcode::FORMERR, None),
    };
    let mut reply = MessageBuilder::new_vec();
    let h = reply.header_mut();
    h.set_id(msg.header().id());
    h.set_qr(true);
    h.set_opcode(Opcode::NOTIFY);
    h.set_aa(rcode == Rcode::NOERROR);
    h.set_rcode(rcode);
    let mut q = reply.question();
    if let Some(question) = question {
        q.push(question).ok()?;
    }
    Some((q.finish(), zone))
}
