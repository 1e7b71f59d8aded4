//! End-to-end tests: each test starts the real `names` binary on loopback
//! (its own process, its own fake upstreams), so tests run in parallel.

mod cli;
mod compress;
mod dig;
mod forward;
mod malformed;
mod refused;
mod silent;
mod spoof;
mod synth;
mod tc;
mod tcp;
mod zone_types;

use std::net::Ipv4Addr;

/// Address the default fake upstream answers with.
pub const UP_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// `--upstream ADDR` arguments for the given fakes, plus `extra`.
pub fn upstream_args(ups: &[&names_tests::FakeUpstream], extra: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    for u in ups {
        v.push("--upstream".to_string());
        v.push(u.arg());
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Start a server with owned-string args.
pub fn start(args: &[String]) -> names_tests::Server {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    names_tests::Server::start(&a)
}
