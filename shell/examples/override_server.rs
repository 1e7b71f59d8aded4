//! The seed's override server listing (Twisted Names' `override_server.py`), in Rust:
//! a user-written resolver answers `workstationN` names with `172.0.2.N`, and every other
//! query goes on to the forwarder (the name servers of /etc/resolv.conf).
//!
//! ```sh
//! cargo run -p names-shell --example override_server
//! dig -p 10053 @127.0.0.1 workstation1.example.com A +short   # 172.0.2.1
//! ```
//!
//! Optional arguments, for tests: `[LISTEN [UPSTREAM...]]` (an `IP:PORT` to listen on,
//! then upstream servers used instead of resolv.conf).

use std::net::Ipv4Addr;
use std::process::ExitCode;

use names_core::domain::base::iana::Rtype;
use names_core::domain::rdata::A;
use names_core::setup::Setup;
use names_core::{parse_server, ConfigError, Context, Query, Resolution, Resolver};
use names_shell::{resolv_conf, serve, Options};

/// A resolver which calculates the answers to certain queries based on the query type
/// and name (Twisted's `DynamicResolver`): `workstationN.anything A` is `172.0.2.N`.
/// Anything else is not ours: `Pass` asks the next resolver in the chain.
struct DynamicResolver;

impl Resolver for DynamicResolver {
    fn name(&self) -> &str {
        "dynamic"
    }

    fn resolve(&mut self, query: &Query<'_>, _: &mut Context) -> Resolution {
        match (query.qtype(), workstation_number(query.first_label())) {
            (Rtype::A, Some(n)) => {
                Resolution::answer([query.record(60, A::new(Ipv4Addr::new(172, 0, 2, n)))])
            }
            _ => Resolution::Pass,
        }
    }
}

/// `workstationN`, in any case, with N in 0..=255: N.
fn workstation_number(label: &[u8]) -> Option<u8> {
    let label = std::str::from_utf8(label).ok()?.to_ascii_lowercase();
    let digits = label.strip_prefix("workstation")?;
    digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse().ok())?
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("override_server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen = args.first().map_or("127.0.0.1:10053", String::as_str);
    let upstreams = if args.len() > 1 {
        args[1..]
            .iter()
            .map(|a| parse_server(a))
            .collect::<Result<Vec<_>, ConfigError>>()
    } else {
        resolv_conf("/etc/resolv.conf")
    }
    .map_err(|e| e.to_string())?;
    let options = Options::on(listen).map_err(|e| e.to_string())?;
    // `DNSServerFactory(clients=[DynamicResolver(), client.Resolver(resolv='/etc/resolv.conf')])`
    let setup = Setup::new()
        .resolver(|| DynamicResolver)
        .forward_to(upstreams);
    serve(options, move || setup.build()).map_err(|e| format!("cannot serve: {e}"))
}
