//! Root hints: where resolution starts. The standard `named.root` format (as IANA
//! publishes it), and the current IANA hints built in.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use bytes::Bytes;
use domain::base::{Name, ToName};

use crate::parse::ConfigError;

/// The IANA root hints (`named.root`, last changed 2023-11-27 when b.root-servers.net
/// moved to 170.247.170.2 / 2801:1b8:10::b).
const IANA: &str = "\
.                        3600000      NS    A.ROOT-SERVERS.NET.
A.ROOT-SERVERS.NET.      3600000      A     198.41.0.4
A.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:ba3e::2:30
.                        3600000      NS    B.ROOT-SERVERS.NET.
B.ROOT-SERVERS.NET.      3600000      A     170.247.170.2
B.ROOT-SERVERS.NET.      3600000      AAAA  2801:1b8:10::b
.                        3600000      NS    C.ROOT-SERVERS.NET.
C.ROOT-SERVERS.NET.      3600000      A     192.33.4.12
C.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:2::c
.                        3600000      NS    D.ROOT-SERVERS.NET.
D.ROOT-SERVERS.NET.      3600000      A     199.7.91.13
D.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:2d::d
.                        3600000      NS    E.ROOT-SERVERS.NET.
E.ROOT-SERVERS.NET.      3600000      A     192.203.230.10
E.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:a8::e
.                        3600000      NS    F.ROOT-SERVERS.NET.
F.ROOT-SERVERS.NET.      3600000      A     192.5.5.241
F.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:2f::f
.                        3600000      NS    G.ROOT-SERVERS.NET.
G.ROOT-SERVERS.NET.      3600000      A     192.112.36.4
G.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:12::d0d
.                        3600000      NS    H.ROOT-SERVERS.NET.
H.ROOT-SERVERS.NET.      3600000      A     198.97.190.53
H.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:1::53
.                        3600000      NS    I.ROOT-SERVERS.NET.
I.ROOT-SERVERS.NET.      3600000      A     192.36.148.17
I.ROOT-SERVERS.NET.      3600000      AAAA  2001:7fe::53
.                        3600000      NS    J.ROOT-SERVERS.NET.
J.ROOT-SERVERS.NET.      3600000      A     192.58.128.30
J.ROOT-SERVERS.NET.      3600000      AAAA  2001:503:c27::2:30
.                        3600000      NS    K.ROOT-SERVERS.NET.
K.ROOT-SERVERS.NET.      3600000      A     193.0.14.129
K.ROOT-SERVERS.NET.      3600000      AAAA  2001:7fd::1
.                        3600000      NS    L.ROOT-SERVERS.NET.
L.ROOT-SERVERS.NET.      3600000      A     199.7.83.42
L.ROOT-SERVERS.NET.      3600000      AAAA  2001:500:9f::42
.                        3600000      NS    M.ROOT-SERVERS.NET.
M.ROOT-SERVERS.NET.      3600000      A     202.12.27.33
M.ROOT-SERVERS.NET.      3600000      AAAA  2001:dc3::35
";

/// One root server of the hints: its name and addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintServer {
    /// Its name (`a.root-servers.net.`).
    pub name: Name<Bytes>,
    /// Its addresses, in file order.
    pub addrs: Vec<IpAddr>,
}

/// The root servers resolution starts from: their names and addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootHints {
    servers: Vec<HintServer>,
}

impl Default for RootHints {
    fn default() -> RootHints {
        RootHints::iana()
    }
}

impl RootHints {
    /// The current IANA root hints, built in: the 13 letters, each with its A and AAAA.
    pub fn iana() -> RootHints {
        match RootHints::parse(IANA) {
            Ok(hints) => hints,
            Err(e) => unreachable!("the built-in hints parse: {e}"),
        }
    }

    /// Reads root hints in the standard `named.root` format: `.` NS records naming the
    /// servers and their A/AAAA records, each line `OWNER [TTL] [IN] TYPE DATA`, `;`
    /// comments. Every NS name needs an address; records for other names are an error.
    /// The error is one line naming the line number.
    pub fn parse(text: &str) -> Result<RootHints, ConfigError> {
        let mut servers: Vec<HintServer> = Vec::new();
        let mut addressed: Vec<(Name<Bytes>, IpAddr, usize)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let err = |what: &str| ConfigError::new(format!("root hints line {n}: {what}"));
            let line = line.split(';').next().unwrap_or_default();
            let mut fields = line.split_whitespace().peekable();
            let Some(owner) = fields.next() else { continue };
            let owner = parse_name(owner).ok_or_else(|| err("bad owner name"))?;
            if fields
                .peek()
                .is_some_and(|f| f.bytes().all(|b| b.is_ascii_digit()))
            {
                fields.next(); // the TTL
            }
            if fields.peek().is_some_and(|f| f.eq_ignore_ascii_case("IN")) {
                fields.next();
            }
            let (Some(rtype), Some(data), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(err("expected OWNER [TTL] [IN] TYPE DATA"));
            };
            match rtype.to_ascii_uppercase().as_str() {
                "NS" => {
                    if !owner.is_root() {
                        return Err(err("an NS record not owned by the root"));
                    }
                    let name = parse_name(data).ok_or_else(|| err("bad NS name"))?;
                    if !servers.iter().any(|s| s.name.name_eq(&name)) {
                        servers.push(HintServer {
                            name,
                            addrs: Vec::new(),
                        });
                    }
                }
                "A" | "AAAA" => {
                    let addr = IpAddr::from_str(data).map_err(|_| err("bad address"))?;
                    if addr.is_ipv4() != rtype.eq_ignore_ascii_case("A") {
                        return Err(err("an address of the wrong family for its type"));
                    }
                    addressed.push((owner, addr, n));
                }
                _ => return Err(err("only NS, A and AAAA records belong in root hints")),
            }
        }
        for (owner, addr, n) in addressed {
            let Some(server) = servers.iter_mut().find(|s| s.name.name_eq(&owner)) else {
                return Err(ConfigError::new(format!(
                    "root hints line {n}: an address for {owner}, which no root NS names"
                )));
            };
            if !server.addrs.contains(&addr) {
                server.addrs.push(addr);
            }
        }
        if servers.is_empty() {
            return Err(ConfigError::new("root hints: no root NS record"));
        }
        if let Some(bare) = servers.iter().find(|s| s.addrs.is_empty()) {
            return Err(ConfigError::new(format!(
                "root hints: no address for {}",
                bare.name
            )));
        }
        Ok(RootHints { servers })
    }

    /// The root servers with their addresses, in file order.
    pub fn servers(&self) -> &[HintServer] {
        &self.servers
    }

    /// Every address of every root server, on port `port` (for the startup line).
    pub fn addresses(&self, port: u16) -> Vec<SocketAddr> {
        self.servers
            .iter()
            .flat_map(|s| s.addrs.iter().map(move |&ip| SocketAddr::new(ip, port)))
            .collect()
    }
}

/// A domain name in master-file form, relative names taken as absolute.
fn parse_name(text: &str) -> Option<Name<Bytes>> {
    let name: Name<Vec<u8>> = text.parse().ok()?;
    Name::from_octets(Bytes::from(name.into_octets())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_has_thirteen_letters_with_both_families() {
        let hints = RootHints::iana();
        assert_eq!(hints.servers().len(), 13);
        assert!(hints.servers().iter().all(|s| s.addrs.len() == 2));
        assert_eq!(hints.addresses(53).len(), 26);
        assert_eq!(hints.servers()[0].name.to_string(), "A.ROOT-SERVERS.NET");
    }

    #[test]
    fn errors_name_their_line() {
        let cases = [
            (
                ". NS a.root.\na.root. A 10.0.0.300\n",
                "root hints line 2: bad address",
            ),
            (
                ". NS a.root.\nb.root. A 10.0.0.1\n",
                "root hints line 2: an address for b.root",
            ),
            (
                "x. NS a.root.\n",
                "root hints line 1: an NS record not owned by the root",
            ),
            (". 3600 IN MX 10 mx.\n", "root hints line 1: expected"),
            (". NS a.root.\n", "root hints: no address for a.root"),
            ("; nothing\n", "root hints: no root NS record"),
            (
                ". NS a.root.\na.root. AAAA 10.0.0.1\n",
                "root hints line 2: an address of the wrong",
            ),
        ];
        for (text, want) in cases {
            let got = RootHints::parse(text).unwrap_err().to_string();
            assert!(got.starts_with(want), "{text:?}: {got}");
            assert!(!got.contains('\n'));
        }
    }
}
