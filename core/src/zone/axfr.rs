//! The zone resolver: authoritative answers, and AXFR (RFC 5936) and IXFR (RFC 1995)
//! with an ACL of addresses and TSIG keys.
//!
//! Transfer rules: AXFR over UDP -> REFUSED (AXFR is defined over TCP only, RFC 5936
//! 4.2; NSD answers NOTIMP there); a name that is not the apex of a served zone ->
//! NOTAUTH; a client no `--allow-transfer` rule covers -> REFUSED; covered only by rules
//! that name a TSIG key and not signed with one of those keys -> NOTAUTH, with the TSIG
//! error BADKEY when signed with another known key (as Knot; a signed request whose key
//! is unknown or whose MAC is wrong never gets here: the server answers it NOTAUTH with
//! BADKEY or BADSIG); otherwise the zone, SOA first and last.
//! IXFR over UDP gets the current SOA alone, whatever the client's serial (as Knot: the
//! client then asks over TCP, RFC 1995 2); over TCP, [`ZoneSet::incremental`]. The
//! server splits a TCP transfer into several messages.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use domain::base::iana::{Class, Rcode, Rtype};

use super::{Snapshot, ZoneSet};
use crate::action::Transport;
use crate::cache::store::{key_of, MAX_KEY};
use crate::parse::ConfigError;
use crate::resolver::{Answer, Context, Query, Resolution, Resolver};
use crate::tsig::{KeyName, TsigRcode};
use crate::wire::Prebuilt;

/// An address prefix, e.g. `127.0.0.0/8` or `::1` (a bare address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `IP` or `IP/PREFIX`. The error says what is wrong with `text`; the caller
    /// names the flag (`--allow-transfer`, `--allow-notify`).
    pub fn parse(text: &str) -> Result<Cidr, ConfigError> {
        let bad = |why: &str| ConfigError::new(format!("{text:?}: {why}"));
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("expected IP or IP/PREFIX"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad(&format!("the prefix length must be 0 to {max}")))?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// The default transfer ACL: loopback only.
    pub fn loopback() -> Vec<Cidr> {
        vec![
            Cidr {
                addr: IpAddr::from([127, 0, 0, 0]),
                prefix: 8,
            },
            Cidr {
                addr: IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                prefix: 128,
            },
        ]
    }

    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) is inside the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), 32, self.prefix)
                    == masked(u128::from(u32::from(ip)), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// One `--allow-transfer` rule: a prefix, and the TSIG key its transfers must be signed
/// with, if any (NSD's `provide-xfr: ADDR KEY`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRule {
    /// Who.
    pub net: Cidr,
    /// The key a request must be signed with; `None`: no signature needed.
    pub key: Option<KeyName>,
}

impl TransferRule {
    /// Parses `CIDR` or `CIDR,key=NAME`.
    pub fn parse(text: &str) -> Result<TransferRule, ConfigError> {
        let (net, key) = crate::tsig::split_key(text).map_err(|why| {
            ConfigError::new(format!(
                "--allow-transfer {text:?}: {why} (expected CIDR or CIDR,key=NAME)"
            ))
        })?;
        let net = Cidr::parse(net)
            .map_err(|e| ConfigError::new(format!("--allow-transfer {}", e.message)))?;
        Ok(TransferRule { net, key })
    }

    /// The default: loopback, no key.
    pub fn loopback() -> Vec<TransferRule> {
        Cidr::loopback()
            .into_iter()
            .map(TransferRule::from)
            .collect()
    }
}

impl From<Cidr> for TransferRule {
    fn from(net: Cidr) -> TransferRule {
        TransferRule { net, key: None }
    }
}

/// What the rules say about one transfer request.
#[derive(Debug, PartialEq, Eq)]
enum Permission {
    Allowed,
    /// Some rule covers the address, but names a key the request is not signed with.
    KeyRequired,
    Refused,
}

fn permission(rules: &[TransferRule], query: &Query<'_>) -> Permission {
    let client = query.client().ip();
    let signed_with = query.tsig_key().map(|k| k.name());
    let mut covered = false;
    for rule in rules.iter().filter(|r| r.net.contains(client)) {
        covered = true;
        match (&rule.key, signed_with) {
            (None, _) => return Permission::Allowed,
            (Some(need), Some(used)) if need == used => return Permission::Allowed,
            _ => {}
        }
    }
    if covered {
        Permission::KeyRequired
    } else {
        Permission::Refused
    }
}

fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
    let host = width - u32::from(prefix);
    if host >= 128 {
        0
    } else {
        bits >> host
    }
}

/// Answers names inside the served zones (their whole subtrees) and passes the rest.
pub struct ZoneResolver {
    zones: Snapshot<ZoneSet>,
    allow_transfer: Arc<[TransferRule]>,
    /// Positive answers already encoded, by question: served by splicing, like cache hits.
    encoded: EncodedAnswers,
}

/// Most encoded answers kept per resolver; when full it starts over.
const MAX_ENCODED: usize = 4096;

/// Encoded answers of one zone set (emptied when a reload swaps the set). Keyed with std's
/// SipHash: under a wildcard, any name a client asks becomes a key.
#[derive(Default)]
struct EncodedAnswers {
    /// The snapshot generation they were encoded from.
    generation: u64,
    answers: HashMap<Box<[u8]>, Prebuilt>,
}

impl ZoneResolver {
    /// A resolver over shared zones; transfers allowed from loopback only.
    pub fn new(zones: Snapshot<ZoneSet>) -> ZoneResolver {
        ZoneResolver {
            zones,
            allow_transfer: TransferRule::loopback().into(),
            encoded: EncodedAnswers::default(),
        }
    }

    /// Replaces the transfer ACL: [`TransferRule`]s, or plain [`Cidr`]s (no key needed).
    pub fn allow_transfer(
        mut self,
        allow: impl IntoIterator<Item = impl Into<TransferRule>>,
    ) -> ZoneResolver {
        self.allow_transfer = allow.into_iter().map(Into::into).collect();
        self
    }

    /// Keeps a plain positive answer (records in the answer section only) encoded for the
    /// next time the question is asked.
    fn encode(&mut self, key: &[u8], query: &Query<'_>, answer: &Answer) -> Option<Prebuilt> {
        let plain = answer.rcode == Rcode::NOERROR.into()
            && answer.authoritative
            && !answer.answer.is_empty()
            && answer.authority.is_empty()
            && answer.additional.is_empty();
        if !plain {
            return None;
        }
        let prebuilt = Prebuilt::new(query.qname(), answer)?;
        if self.encoded.answers.len() >= MAX_ENCODED {
            self.encoded.answers.clear();
        }
        self.encoded.answers.insert(key.into(), prebuilt.clone());
        Some(prebuilt)
    }

    /// AXFR, and IXFR (`incremental`).
    fn transfer(
        &self,
        zones: &ZoneSet,
        query: &Query<'_>,
        cx: &mut Context,
        incremental: bool,
    ) -> Answer {
        let udp = query.transport() != Transport::Tcp;
        if udp && !incremental {
            return Answer::new(Rcode::REFUSED.into());
        }
        let Some(zone) = zones.zone_at(query.qname()) else {
            return Answer::new(Rcode::NOTAUTH.into());
        };
        // The ACL before the records: building them copies the whole zone.
        match permission(&self.allow_transfer, query) {
            Permission::Allowed => {}
            Permission::KeyRequired => {
                if query.tsig_key().is_some() {
                    cx.refuse_key(TsigRcode::BADKEY); // a known key, not this rule's (as Knot)
                }
                return Answer::new(Rcode::NOTAUTH.into());
            }
            Permission::Refused => return Answer::refused(),
        }
        let records = match (incremental, udp) {
            (true, true) => Some(vec![zone.soa().clone()]),
            (true, false) => zones.incremental(query.qname(), query.ixfr_serial()),
            (false, _) => zones.transfer(query.qname()),
        };
        let Some(records) = records else {
            return Answer::new(Rcode::NOTAUTH.into());
        };
        let mut answer = Answer::new(Rcode::NOERROR.into());
        answer.authoritative = true;
        answer.answer = records;
        answer
    }
}

impl Resolver for ZoneResolver {
    fn name(&self) -> &str {
        "zones"
    }

    fn resolve(&mut self, query: &Query<'_>, cx: &mut Context) -> Resolution {
        if query.qclass() != Class::IN {
            return Resolution::Pass;
        }
        let (generation, zones) = self.zones.load_versioned();
        if self.encoded.generation != generation {
            self.encoded = EncodedAnswers {
                generation,
                answers: HashMap::new(),
            };
        }
        let mut buf = [0u8; MAX_KEY];
        let qtype = query.qtype().to_int();
        let key = key_of(
            &mut buf,
            query.qname().as_slice(),
            qtype,
            Class::IN.to_int(),
            0,
        );
        if let Some(prebuilt) = self.encoded.answers.get(key) {
            return Resolution::Prebuilt(prebuilt.clone());
        }
        match query.qtype() {
            Rtype::AXFR => Resolution::Answer(self.transfer(&zones, query, cx, false)),
            Rtype::IXFR if zones.serves(query.qname()) => {
                Resolution::Answer(self.transfer(&zones, query, cx, true))
            }
            qtype => match zones.answer(query.qname(), qtype) {
                Some(answer) => match self.encode(key, query, &answer) {
                    Some(prebuilt) => Resolution::Prebuilt(prebuilt),
                    None => Resolution::Answer(answer),
                },
                None => Resolution::Pass,
            },
        }
    }
}
