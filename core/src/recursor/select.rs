//! Choosing the server a query goes to next (Unbound's `iter_server_selection`): of the
//! delegation's addresses not tried yet for this goal, not lame for the zone and allowed
//! (loopback only with `query_localhost`), those whose timeout is within
//! [`RTT_BAND_MS`] of the best are equally likely; the draw comes from the server's
//! seeded RNG. A server that answered as a recursive server counts as
//! [`REC_LAME_PENALTY_MS`] slower, so it is asked only when nothing else is left.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::delegation::Point;
use super::infra::{Infra, ServerInfo};
use super::RecursorConfig;
use crate::cache::rrset::lower;

/// Servers within this many milliseconds of the best timeout are chosen among at random
/// (Unbound's `RTT_BAND`), so a slightly slower server is still explored now and then.
pub const RTT_BAND_MS: u32 = 400;

/// What a recursive server's answers (RA without AA) add to its timeout in the choice
/// (Unbound's `USEFUL_SERVER_TOP_TIMEOUT`).
pub const REC_LAME_PENALTY_MS: u32 = 120_000;

/// A server chosen, with what is known of it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Choice {
    pub addr: SocketAddr,
    pub info: ServerInfo,
}

/// Whether a server at `ip` may ever be asked: never the unspecified address, loopback
/// only when `query_localhost`.
pub(crate) fn allowed(ip: IpAddr, query_localhost: bool) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    !ip.is_unspecified() && !ip.is_multicast() && (query_localhost || !ip.is_loopback())
}

/// The server of `point` to ask next, if any is left.
pub(crate) fn choose(
    point: &Point,
    tried: &[SocketAddr],
    infra: &Infra,
    now: Instant,
    config: &RecursorConfig,
    random: u64,
) -> Option<Choice> {
    let zone_key = lower(&point.zone);
    let mut candidates: Vec<Choice> = Vec::new();
    for target in &point.targets {
        for &ip in &target.addrs {
            let addr = SocketAddr::new(ip, config.port);
            if !allowed(ip, config.query_localhost)
                || tried.contains(&addr)
                || candidates.iter().any(|c| c.addr == addr)
            {
                continue;
            }
            let info = infra.get(now, addr, &zone_key);
            if !info.lame {
                candidates.push(Choice { addr, info });
            }
        }
    }
    let cost = |c: &Choice| {
        let penalty = if c.info.rec_lame {
            REC_LAME_PENALTY_MS
        } else {
            0
        };
        c.info.rto_ms.saturating_add(penalty)
    };
    let best = candidates.iter().map(cost).min()?;
    let band: Vec<Choice> = candidates
        .into_iter()
        .filter(|c| cost(c) <= best.saturating_add(RTT_BAND_MS))
        .collect();
    band.get((random % band.len() as u64) as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn loopback_and_unspecified_are_refused_unless_allowed() {
        for ip in ["127.0.0.1", "127.53.0.9", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!allowed(ip, false), "{ip}");
            assert!(allowed(ip, true), "{ip}");
        }
        for ip in ["0.0.0.0", "::"] {
            assert!(!allowed(ip.parse().unwrap(), true));
        }
        assert!(allowed("192.0.2.1".parse().unwrap(), false));
    }

    #[test]
    fn the_band_excludes_slow_servers_and_lame_ones() {
        use super::super::delegation::Target;
        use bytes::Bytes;
        use domain::base::Name;
        #[allow(clippy::disallowed_methods)] // a test: any start will do
        let t0 = Instant::now();
        let infra = Infra::new(100, Duration::from_secs(900));
        let ips: Vec<IpAddr> = (1..=3).map(|n| IpAddr::from([192, 0, 2, n])).collect();
        let point = Point {
            zone: Name::<Bytes>::root_bytes(),
            targets: vec![Target {
                name: Name::root_bytes(),
                addrs: ips.clone(),
                fetched: true,
            }],
            from_hints: false,
            reserve: Vec::new(),
        };
        let addr = |i: usize| SocketAddr::new(ips[i], 53);
        infra.replied(t0, addr(0), b"\0", Duration::from_millis(10));
        infra.timed_out(t0, addr(1), b"\0");
        infra.lame(t0, addr(2), b"\0");
        let config = RecursorConfig::default();
        for r in 0..20 {
            let c = choose(&point, &[], &infra, t0, &config, r).unwrap();
            assert_eq!(c.addr, addr(0));
        }
        let c = choose(&point, &[addr(0)], &infra, t0, &config, 0).unwrap();
        assert_eq!(c.addr, addr(1));
        assert!(choose(&point, &[addr(0), addr(1)], &infra, t0, &config, 0).is_none());
    }
}
