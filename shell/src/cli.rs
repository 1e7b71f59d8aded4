//! Command-line flags (argh). Defaults are stated in each description, since `--help`
//! does not print them.

use argh::FromArgs;

#[derive(FromArgs, Debug)]
/// names: a DNS server toolkit. Forwarding, synthesised answers, and a dig-like client.
pub struct Cli {
    #[argh(subcommand)]
    pub cmd: Cmd,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Cmd {
    Serve(Serve),
    Query(QueryCmd),
}

#[derive(FromArgs, Debug, Default)]
/// Serve DNS over UDP and TCP.
#[argh(subcommand, name = "serve")]
pub struct Serve {
    /// address to serve on, UDP and TCP (IP:PORT; repeatable; default 127.0.0.1:10053; port 0 = any free port)
    #[argh(option)]
    pub listen: Vec<String>,
    /// upstream server to forward to (IP or IP:PORT, port 53 by default; repeatable; default: the resolv.conf nameservers)
    #[argh(option)]
    pub upstream: Vec<String>,
    /// resolv.conf whose nameserver lines give the upstreams when no --upstream is given (default /etc/resolv.conf)
    #[argh(option)]
    pub resolv_conf: Option<String>,
    /// do not forward: names no local source answers get REFUSED (wins over --upstream and --resolv-conf)
    #[argh(switch)]
    pub no_forward: bool,
    /// synthesise A records: PREFIX=NET answers PREFIX<N>.anything with NET.N, N in 0..=255 (repeatable; e.g. workstation=172.0.2)
    #[argh(option)]
    pub synth: Vec<String>,
    /// total time for a query before the client gets SERVFAIL, in ms (default 5000)
    #[argh(option)]
    pub timeout: Option<u64>,
    /// time one upstream try gets before the next upstream is tried, in ms (default 1000)
    #[argh(option)]
    pub try_timeout: Option<u64>,
    /// worker threads, each with its own sockets and state (default 1)
    #[argh(option)]
    pub workers: Option<usize>,
    /// close client TCP connections idle this long, in ms (default 10000)
    #[argh(option)]
    pub tcp_idle_ms: Option<u64>,
    /// most open client TCP connections; more are closed at once (default 1024)
    #[argh(option)]
    pub max_tcp: Option<usize>,
    /// most queries in flight on one TCP connection before it is no longer read (default 64)
    #[argh(option)]
    pub max_pipelined: Option<usize>,
    /// most upstream exchanges in flight; beyond it queries get SERVFAIL (default 4096)
    #[argh(option)]
    pub max_inflight: Option<usize>,
}

#[derive(FromArgs, Debug)]
/// Ask a DNS server one question and print the reply, one record per line.
#[argh(subcommand, name = "query")]
pub struct QueryCmd {
    /// arguments: [@SERVER[:PORT]] NAME [TYPE]; without @SERVER, the first nameserver of /etc/resolv.conf; TYPE defaults to A
    #[argh(positional, greedy)]
    pub args: Vec<String>,
    /// ask over TCP from the start
    #[argh(switch)]
    pub tcp: bool,
    /// give up after this many ms (default 3000)
    #[argh(option, default = "3000")]
    pub timeout: u64,
}
