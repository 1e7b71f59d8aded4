//! Command-line flags (argh). Defaults are stated in each description, since `--help`
//! does not print them.

// The doc comments below are argh's `--help` text (`[TYPE]`, `PREFIX<N>`), not rustdoc markup.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use argh::FromArgs;
use serde::{Deserialize, Serialize};

#[derive(FromArgs, Debug)]
/// names: a DNS server toolkit. Forwarding, synthesised answers, and a dig-like client.
pub struct Cli {
    /// print the name and version (`names 0.1.0`) and exit
    #[argh(switch, short = 'V')]
    pub version: bool,
    #[argh(subcommand)]
    pub cmd: Cmd,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
#[allow(clippy::large_enum_variant)] // built once per process: boxing buys nothing
pub enum Cmd {
    Serve(Serve),
    Query(QueryCmd),
    CheckConfig(CheckConfig),
    CheckZone(CheckZone),
    Replay(ReplayCmd),
}

#[derive(FromArgs, Debug, Default, Deserialize, Serialize)]
/// Serve DNS over UDP and TCP.
#[argh(subcommand, name = "serve")]
// The same struct reads the config file: its keys are the fields.
#[serde(deny_unknown_fields, default)]
pub struct Serve {
    /// address to serve on, UDP and TCP (IP:PORT; repeatable; default 127.0.0.1:10053; port 0 = any free port)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::one_or_many")]
    pub listen: Vec<String>,
    /// upstream server to forward to (IP or IP:PORT, port 53 by default; repeatable; default: the resolv.conf nameservers)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::one_or_many")]
    pub upstream: Vec<String>,
    /// resolv.conf whose nameserver lines give the upstreams when no --upstream is given (default /etc/resolv.conf)
    #[argh(option)]
    pub resolv_conf: Option<String>,
    /// do not forward: names no local source answers get REFUSED (wins over --upstream and --resolv-conf)
    #[argh(switch)]
    pub no_forward: bool,
    /// forward names at or under ZONE to these servers instead (ZONE=ADDR[,ADDR...], each IP or IP:PORT, port 53 by default; repeatable; the longest matching zone wins; other names go to the upstreams, or with --recursive are resolved from the root)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::one_or_many")]
    pub forward: Vec<String>,
    /// resolve from the root name servers instead of forwarding: no --upstream, no resolv.conf (default off)
    #[argh(switch)]
    pub recursive: bool,
    /// with --recursive: the root name servers, from this file in named.root format, read at start only (default: the IANA root hints built in)
    #[argh(option)]
    pub root_hints: Option<String>,
    /// with --recursive: also query name servers at loopback addresses (127.0.0.0/8, ::1), which are never queried otherwise (default off; for tests)
    #[argh(switch)]
    pub query_localhost: bool,
    /// synthesise A records: PREFIX=NET answers PREFIX<N>.anything with NET.N, N in 0..=255 (repeatable; e.g. workstation=172.0.2)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::one_or_many")]
    pub synth: Vec<String>,
    /// most cached answers, least recently used out first; 0 disables the cache (default 10000)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub cache_size: Option<usize>,
    /// cached TTLs below this many seconds are raised to it (default 0)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub min_ttl: Option<u32>,
    /// cached TTLs above this many seconds are lowered to it (default 86400)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub max_ttl: Option<u32>,
    /// when every upstream fails, serve cached answers expired less than this many seconds ago, with TTL 30 (default off)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub serve_stale: Option<u32>,
    /// true: replies carry authority and additional records only where the protocol needs them (the SOA of a negative answer); false: also the NS and glue the cache holds for the answer (default true)
    #[argh(option)]
    pub minimal_responses: Option<bool>,
    /// refresh a cached answer asked for in the last tenth of its TTL from upstream in the background, while the client gets the cached answer (default off)
    #[argh(switch)]
    pub prefetch: bool,
    /// total time for a query before the client gets SERVFAIL, in ms (default 5000)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub timeout: Option<u64>,
    /// time one upstream try gets before the next upstream is tried, in ms (default 1000)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub try_timeout: Option<u64>,
    /// worker threads, each with its own UDP socket and state, sharing the cache (default: one per CPU)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub workers: Option<usize>,
    /// close client TCP connections idle this long, in ms (default 10000; a tenth of it while 90% of --max-tcp are open)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub tcp_idle_ms: Option<u64>,
    /// most open client TCP connections; more are closed at once (default 1024)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub max_tcp: Option<usize>,
    /// most open TCP connections from one client address; one more is closed at once (default 32)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub max_tcp_per_client: Option<usize>,
    /// most queries in flight on one TCP connection before it is no longer read (default 64)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub max_pipelined: Option<usize>,
    /// bytes of replies a TCP client has not read yet beyond which no more of its queries are taken (default 65536)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub max_tcp_buffered: Option<usize>,
    /// most upstream exchanges in flight; beyond it queries get SERVFAIL (default 4096)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub max_inflight: Option<usize>,
    /// most client queries waiting for upstream answers, per worker, and at most 64 per identical question; beyond it queries get SERVFAIL at once (default 16384)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub max_waiting: Option<usize>,
    /// read settings from this TOML file: keys are these flags' long names with '_' for '-' (flags given here win over the file)
    #[argh(option)]
    #[serde(skip)]
    pub config: Option<String>,
    /// serve Prometheus metrics over HTTP at http://ADDR/metrics (IP:PORT; port 0 = any free port; default off)
    #[argh(option)]
    pub metrics: Option<String>,
    /// what to log on stderr: error, warn, info or debug (default info)
    #[argh(option)]
    pub log_level: Option<String>,
    /// log one line per answered query on stderr (client, name, type, rcode, source, latency), whatever --log-level says
    #[argh(switch)]
    pub log_queries: bool,
    /// serve this zone file (RFC 1035 master file; its origin is its SOA owner) authoritatively; repeatable; re-read on SIGHUP
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::one_or_many")]
    pub zone: Vec<String>,
    /// answer A/AAAA for the names and PTR for the addresses of this hosts(5) file; re-read on SIGHUP
    #[argh(option)]
    pub hosts: Option<String>,
    /// clients allowed to transfer zones with AXFR and IXFR: IP or IP/PREFIX, optionally ",key=NAME" to require requests signed with that --tsig-key (e.g. 192.0.2.0/24,key=xfr); repeatable; default loopback only: 127.0.0.0/8 and ::1
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::one_or_many")]
    pub allow_transfer: Vec<String>,
    /// keep a copy of this zone from its primary: ZONE=PRIMARY[:PORT][,key=NAME] (port 53 by default; repeatable; key: sign the SOA queries and transfers with that --tsig-key, and take NOTIFY for the zone only signed with it); transferred over TCP by IXFR when a version is held, AXFR otherwise; checked on the SOA refresh/retry timers and on NOTIFY; SERVFAIL before the first transfer and after the SOA expire time without a refresh
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::one_or_many")]
    pub secondary: Vec<String>,
    /// also take NOTIFY for the secondary zones from these addresses besides each zone's primary (IP or IP/PREFIX; repeatable; others get REFUSED)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::one_or_many")]
    pub allow_notify: Vec<String>,
    /// write each transferred secondary zone into this directory as a master file (ZONE.zone, replaced atomically), and serve those files at start until the primary is asked (default off)
    #[argh(option)]
    pub zone_dir: Option<String>,
    /// most bytes one zone transfer may bring; a larger one is dropped and the data served before stays (default 67108864, 64 MiB)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub max_transfer_bytes: Option<usize>,
    /// a TSIG key (RFC 8945) as NAME:ALGORITHM:BASE64, ALGORITHM one of hmac-sha1, hmac-sha256, hmac-sha384, hmac-sha512; repeatable. Signed requests are verified with these keys and answered signed
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::one_or_many")]
    pub tsig_key: Vec<String>,
    /// zone versions whose differences are kept for IXFR across reloads, per zone, and never more records than the zone holds (default 16; 0: IXFR always gets the whole zone)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub ixfr_versions: Option<usize>,
    /// send NOTIFY (RFC 1996) to this secondary at start and whenever a reload changes a zone's serial, retried 5 times (1 s, then doubling) until answered: [ZONE=]ADDR[:PORT][,key=NAME] (ZONE: only for that zone; key: sign with that --tsig-key); repeatable
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::one_or_many")]
    pub notify: Vec<String>,
    /// record every input of the server (queries, upstream replies, timeouts, with their times), its actions, seeds and settings into this journal file, replaced if it exists, for `names replay` (default off)
    #[argh(option)]
    pub record: Option<String>,
    /// stop recording, with one log line, before the journal grows over this many bytes (default 1073741824, 1 GiB)
    #[argh(option)]
    #[serde(deserialize_with = "crate::config_file::number")]
    pub record_max_bytes: Option<u64>,
}

#[derive(FromArgs, Debug)]
/// Check a config file (the one `names serve --config FILE` reads) without serving.
#[argh(subcommand, name = "check-config")]
pub struct CheckConfig {
    /// the TOML config file to check
    #[argh(positional)]
    pub file: String,
}

#[derive(FromArgs, Debug)]
/// Load a zone file as `names serve --zone` would; print its origin, serial and record count, or the error with its line.
#[argh(subcommand, name = "check-zone")]
pub struct CheckZone {
    /// the zone file to check
    #[argh(positional)]
    pub path: String,
}

#[derive(FromArgs, Debug)]
/// Ask a DNS server one question and print the reply, one record per line.
#[argh(subcommand, name = "query")]
pub struct QueryCmd {
    /// arguments: [@SERVER[:PORT]] NAME [TYPE]; without @SERVER, the first nameserver of /etc/resolv.conf; TYPE defaults to A
    #[argh(positional)]
    pub args: Vec<String>,
    /// ask over TCP from the start
    #[argh(switch)]
    pub tcp: bool,
    /// give up after this many ms (default 3000)
    #[argh(option, default = "3000")]
    pub timeout: u64,
}

#[derive(FromArgs, Debug)]
/// Replay a journal recorded with `names serve --record`: a fresh core per recorded worker, fed the recorded inputs at their recorded times; prints the actions, one line each.
#[argh(subcommand, name = "replay")]
pub struct ReplayCmd {
    /// the journal file
    #[argh(positional)]
    pub file: String,
    /// compare the actions with the recorded ones instead of printing them: exit 0 when identical, 1 with the first difference
    #[argh(switch)]
    pub check: bool,
}
