//! Text the operator writes, turned into typed configuration: upstream addresses and
//! resolv.conf. The runtime reads files; the core parses their text.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// A configuration value that cannot be used, with a message fit for one stderr line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError {
    /// What is wrong, naming the flag or file and the value.
    pub message: String,
}

impl ConfigError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError {
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Parses `IP`, `IP:PORT`, `[IPv6]:PORT` or bare IPv6; the port defaults to 53.
pub fn parse_server(text: &str) -> Result<SocketAddr, ConfigError> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            ConfigError::new(format!(
                "{text:?} is not an address (expected IP or IP:PORT)"
            ))
        })
}

/// The `nameserver` addresses of a resolv.conf text, port 53, in file order.
///
/// Zone IDs (`fe80::1%eth0`) are dropped with the address; other lines are ignored.
pub fn nameservers(conf: &str) -> Vec<SocketAddr> {
    conf.lines()
        .filter_map(|line| {
            let mut words = line.split(['#', ';']).next()?.split_whitespace();
            (words.next()? == "nameserver").then(|| words.next())?
        })
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        assert_eq!(
            parse_server("127.0.0.1").unwrap(),
            "127.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("127.0.0.1:5300").unwrap(),
            "127.0.0.1:5300".parse().unwrap()
        );
        assert_eq!(parse_server("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert_eq!(
            parse_server("[::1]:54").unwrap(),
            "[::1]:54".parse().unwrap()
        );
        assert!(parse_server("example.com").is_err());
        assert!(parse_server("1.2.3.4:99999").is_err());
    }

    #[test]
    fn resolv_conf() {
        let conf = "# comment\nsearch example.com\nnameserver 10.0.0.1 # trailing\n  nameserver ::1\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:2\n";
        assert_eq!(
            nameservers(conf),
            vec![
                "10.0.0.1:53".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
    }
}
