//! The seed's forwarding server listing (Twisted Names' `doc/names/howto/listings/names`),
//! in Rust: a DNS server on 127.0.0.1:10053 that forwards every query to the name servers
//! of /etc/resolv.conf.
//!
//! ```sh
//! cargo run -p names-shell --example forwarding_server
//! dig -p 10053 @127.0.0.1 example.com A
//! ```
//!
//! Optional arguments, for tests: `[LISTEN [UPSTREAM...]]` (an `IP:PORT` to listen on,
//! then upstream servers used instead of resolv.conf).

use std::process::ExitCode;

use names_core::{parse_server, Chain, ConfigError, Forwarder};
use names_shell::{resolv_conf, serve, Options};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("forwarding_server: {e}");
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
    // One chain per worker: just the forwarder (Twisted's `client.Resolver`).
    serve(options, move || {
        Chain::new().with(Forwarder::new(upstreams.clone()))
    })
    .map_err(|e| format!("cannot serve: {e}"))
}
