//! A hosts(5) file as a resolver (Twisted's `hosts.Resolver`).
//!
//! It answers A and AAAA for its names and aliases (case-insensitive), PTR for its
//! addresses, and passes everything else on.
//!
//! The core reads no files: [`Hosts::parse`] takes the text. Lookups go through hash
//! indexes built at parse time.
//!
//! ```
//! use names_core::hosts::{Hosts, HostsResolver};
//! use names_core::zone::Snapshot;
//! let hosts = Hosts::parse("/etc/hosts", "192.0.2.7 printer lp # office\n").unwrap();
//! assert_eq!(hosts.names(), 2);
//! let _resolver = HostsResolver::new(Snapshot::new(hosts));
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{Name, Record, Ttl};
use domain::rdata::{Aaaa, AllRecordData, Ptr, A};

use crate::fasthash::FastMap;
use crate::record::Rr;
use crate::resolver::{Answer, Context, Query, Resolution, Resolver};
use crate::zone::{LoadError, Snapshot};

/// TTL of answers from the hosts file (Twisted uses an hour too).
pub const HOSTS_TTL: u32 = 3600;

#[derive(Debug, Default)]
struct Addresses {
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
}

/// A parsed hosts file, indexed by name and by reverse name.
#[derive(Debug, Default)]
pub struct Hosts {
    /// Lowercase wire name -> its addresses, in file order.
    by_name: FastMap<Box<[u8]>, Addresses>,
    /// Lowercase wire reverse name (in-addr.arpa / ip6.arpa) -> names, first seen first.
    by_addr: FastMap<Box<[u8]>, Vec<Name<Bytes>>>,
}

impl Hosts {
    /// Parses `IP NAME [ALIAS...]` lines; `#` starts a comment. An address with a
    /// `%zone` suffix is taken without it. A bad address or name is an error naming
    /// `file` and the line.
    pub fn parse(file: &str, text: &str) -> Result<Hosts, LoadError> {
        let mut hosts = Hosts::default();
        for (i, line) in text.lines().enumerate() {
            let err = |message: String| LoadError {
                file: file.to_string(),
                line: Some(i + 1),
                message,
            };
            let content = line.split('#').next().unwrap_or("");
            let mut words = content.split_whitespace();
            let Some(addr) = words.next() else { continue };
            let ip: IpAddr = addr
                .split('%')
                .next()
                .unwrap_or(addr)
                .parse()
                .map_err(|_| err(format!("{addr:?} is not an IP address")))?;
            let ip = ip.to_canonical();
            let mut any = false;
            for word in words {
                any = true;
                let name: Name<Bytes> = Name::bytes_from_str(word)
                    .map_err(|e| err(format!("{word:?} is not a host name: {e}")))?;
                let key: Box<[u8]> = name.as_slice().to_ascii_lowercase().into();
                let entry = hosts.by_name.entry(key).or_default();
                match ip {
                    IpAddr::V4(a) if !entry.v4.contains(&a) => entry.v4.push(a),
                    IpAddr::V6(a) if !entry.v6.contains(&a) => entry.v6.push(a),
                    _ => {}
                }
                let names = hosts.by_addr.entry(reverse_key(ip)).or_default();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            if !any {
                return Err(err(format!("{addr} has no host name")));
            }
        }
        Ok(hosts)
    }

    /// How many distinct names (aliases included).
    pub fn names(&self) -> usize {
        self.by_name.len()
    }

    /// The answer for a class IN question, or `None` to pass.
    pub fn answer(&self, qname: &Name<Bytes>, qtype: Rtype) -> Option<Answer> {
        let key = qname.as_slice().to_ascii_lowercase();
        let records: Vec<Rr> = match qtype {
            Rtype::A => {
                let entry = self.by_name.get(key.as_slice())?;
                entry
                    .v4
                    .iter()
                    .map(|a| record(qname, AllRecordData::A(A::new(*a))))
                    .collect()
            }
            Rtype::AAAA => {
                let entry = self.by_name.get(key.as_slice())?;
                entry
                    .v6
                    .iter()
                    .map(|a| record(qname, AllRecordData::Aaaa(Aaaa::new(*a))))
                    .collect()
            }
            Rtype::PTR => self
                .by_addr
                .get(key.as_slice())?
                .iter()
                .map(|n| record(qname, AllRecordData::Ptr(Ptr::new(n.clone()))))
                .collect(),
            _ => return None,
        };
        let mut answer = Answer::new(Rcode::NOERROR.into());
        answer.authoritative = true;
        answer.answer = records;
        Some(answer)
    }
}

fn record(owner: &Name<Bytes>, data: AllRecordData<Bytes, Name<Bytes>>) -> Rr {
    Record::new(owner.clone(), Class::IN, Ttl::from_secs(HOSTS_TTL), data)
}

/// The lowercase wire form of the address's reverse name.
fn reverse_key(ip: IpAddr) -> Box<[u8]> {
    let mut wire = Vec::with_capacity(80);
    let mut label = |text: &[u8]| {
        // Labels here are at most 3 bytes.
        wire.push(text.len() as u8);
        wire.extend_from_slice(text);
    };
    match ip {
        IpAddr::V4(a) => {
            for octet in a.octets().iter().rev() {
                label(octet.to_string().as_bytes());
            }
            label(b"in-addr");
        }
        IpAddr::V6(a) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for octet in a.octets().iter().rev() {
                label(&[HEX[usize::from(octet & 0x0f)]]);
                label(&[HEX[usize::from(octet >> 4)]]);
            }
            label(b"ip6");
        }
    }
    label(b"arpa");
    wire.push(0);
    wire.into()
}

/// Answers from a shared hosts file; passes what the file does not name.
pub struct HostsResolver {
    hosts: Snapshot<Hosts>,
}

impl HostsResolver {
    /// A resolver answering from `hosts`, which a reload may replace while it serves.
    pub fn new(hosts: Snapshot<Hosts>) -> HostsResolver {
        HostsResolver { hosts }
    }
}

impl Resolver for HostsResolver {
    fn name(&self) -> &str {
        "hosts"
    }

    fn resolve(&mut self, query: &Query<'_>, _: &mut Context) -> Resolution {
        if query.qclass() != Class::IN {
            return Resolution::Pass;
        }
        match self.hosts.load().answer(query.qname(), query.qtype()) {
            Some(answer) => Resolution::Answer(answer),
            None => Resolution::Pass,
        }
    }
}
