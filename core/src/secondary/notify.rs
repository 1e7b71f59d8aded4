//! NOTIFY in (RFC 1996): who may tell a secondary that its zone changed, and the answer.
//!
//! A NOTIFY for a secondary zone from the zone's primary address, or from an address in
//! `--allow-notify`, is answered NOERROR (AA, opcode NOTIFY, the question echoed) and
//! passed on; from anyone else it is REFUSED; for a zone that is not a secondary here,
//! NOTAUTH. A message that cannot be read as one question is FORMERR; a NOTIFY response
//! is dropped (it answers a NOTIFY this server never sent). For a zone with a TSIG key,
//! only a NOTIFY signed with that key is taken (NOTAUTH otherwise), and answered signed.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, Rcode};
use domain::base::{Message, MessageBuilder, Name, ToName};

use super::SecondaryZone;
use crate::tsig::{verify_request, Key, KeyRing, ServerSigner, Verified};
use crate::zone::Cidr;

/// Which zones take NOTIFY, and from whom. Every worker's server holds one
/// ([`Server::accept_notify`](crate::Server::accept_notify)); a server without one
/// answers NOTIFY NOTIMP, as any opcode but QUERY.
#[derive(Clone, Debug, Default)]
pub struct NotifyPolicy {
    zones: Vec<SecondaryZone>,
    allow: Vec<Cidr>,
    /// The zones' keys: a signed NOTIFY is verified with them.
    keys: KeyRing,
}

impl NotifyPolicy {
    /// NOTIFY for `zones`, from each zone's primary and from `allow` (`--allow-notify`);
    /// for a zone with a key, only signed with that key.
    pub fn new(zones: &[SecondaryZone], allow: Vec<Cidr>) -> NotifyPolicy {
        let mut keys: Vec<Key> = Vec::new();
        for key in zones.iter().filter_map(|z| z.key.as_ref()) {
            if !keys.iter().any(|k| k.name() == key.name()) {
                keys.push(key.clone());
            }
        }
        NotifyPolicy {
            zones: zones.to_vec(),
            allow,
            keys: KeyRing::from_keys(keys).unwrap_or_default(),
        }
    }

    /// The rcode for a NOTIFY about `zone` from `from`, signed with `signed_with`.
    fn decide(&self, zone: &Name<Bytes>, from: IpAddr, signed_with: Option<&Key>) -> Rcode {
        let Some(secondary) = self.zones.iter().find(|z| z.origin.name_eq(zone)) else {
            return Rcode::NOTAUTH;
        };
        if let Some(key) = &secondary.key {
            if signed_with.is_none_or(|k| k.name() != key.name()) {
                return Rcode::NOTAUTH;
            }
        }
        let from = from.to_canonical();
        if secondary.primary.ip().to_canonical() == from
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

/// The answer to a NOTIFY from `from` at `unix_secs`, and the zone to check when it is
/// accepted. `None`: nothing is sent. A signed NOTIFY that does not verify gets the TSIG
/// error reply (RFC 8945 5.2); a verified one a signed answer.
pub(crate) fn answer_notify(
    policy: &NotifyPolicy,
    from: SocketAddr,
    bytes: &[u8],
    unix_secs: u64,
) -> Option<(Vec<u8>, Option<Name<Bytes>>)> {
    let msg = Message::from_octets(bytes).ok()?;
    let mut signer = match verify_request(&policy.keys, bytes, unix_secs) {
        Verified::Unsigned => None,
        Verified::Signed(signer) => Some(signer),
        Verified::Rejected { reply, .. } => return Some((reply, None)),
    };
    let question = match msg.sole_question() {
        Ok(q) if q.qclass() == Class::IN => Some(q),
        _ => None,
    };
    let (rcode, zone) = match question {
        Some(q) => {
            let zone = q.qname().to_name::<Bytes>();
            let rcode = policy.decide(&zone, from.ip(), signer.as_ref().map(ServerSigner::key));
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
    let mut reply = q.finish();
    if let Some(signer) = signer.as_mut() {
        signer.sign(&mut reply, unix_secs).ok()?;
    }
    Some((reply, zone))
}
