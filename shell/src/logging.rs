//! Logging on stderr through the [`log`] crate, and the query log.
//!
//! `--log-level error|warn|info|debug` sets what the [`log`] macros print (default
//! `info`). Every line starts with `names: LEVEL: `. The query log (`--log-queries`) is
//! written whatever the level: one line per answered query, see [`query_line`].

use std::io::Write;
use std::str::FromStr;

use log::{Level, LevelFilter, Log, Metadata, Record};
use names_core::{QueryLog, Transport};

/// The levels `--log-level` accepts.
pub const LEVELS: [&str; 4] = ["error", "warn", "info", "debug"];

/// Parses a `--log-level` value (case-insensitive).
pub fn parse_level(text: &str) -> Result<LevelFilter, String> {
    let lower = text.to_ascii_lowercase();
    if !LEVELS.contains(&lower.as_str()) {
        return Err(format!(
            "--log-level {text:?} is not one of {}",
            LEVELS.join(", ")
        ));
    }
    LevelFilter::from_str(&lower).map_err(|e| e.to_string())
}

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let level = match record.level() {
                Level::Error => "error",
                Level::Warn => "warn",
                Level::Info => "info",
                Level::Debug => "debug",
                Level::Trace => "trace",
            };
            // One write per line so lines from several threads never interleave.
            let line = format!("names: {level}: {}\n", record.args());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

static LOGGER: StderrLogger = StderrLogger;

/// Installs the stderr logger at `level`. Calling it again only changes the level.
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// The query log line for one answered query:
///
/// `names: query client=IP:PORT transport=udp|tcp name=NAME. type=TYPE rcode=RCODE source=RESOLVER latency_ms=F`
///
/// `source` is the name of the resolver that answered (`none` when none did), and the
/// latency runs from the query's arrival to its reply, in milliseconds with microsecond precision.
pub fn query_line(entry: &QueryLog) -> String {
    let transport = match entry.transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    };
    format!(
        "names: query client={} transport={} name={} type={} rcode={} source={} latency_ms={:.3}",
        entry.client,
        transport,
        entry.qname.fmt_with_dot(),
        entry.qtype,
        entry.rcode,
        entry.source,
        entry.latency.as_secs_f64() * 1000.0
    )
}

/// Writes the query log line for `entry` on stderr, whatever the log level.
pub fn log_query(entry: &QueryLog) {
    let mut line = query_line(entry);
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use names_core::domain::base::iana::{OptRcode, Rtype};
    use std::time::Duration;

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level("debug"), Ok(LevelFilter::Debug));
        assert_eq!(parse_level("WARN"), Ok(LevelFilter::Warn));
        assert!(parse_level("trace").unwrap_err().contains("--log-level"));
        assert!(parse_level("loud").is_err());
    }

    #[test]
    fn query_line_format() {
        let entry = QueryLog {
            client: "127.0.0.1:5353".parse().unwrap(),
            transport: Transport::Tcp,
            qname: "Workstation7.Example.com".parse().unwrap(),
            qtype: Rtype::AAAA,
            rcode: OptRcode::NXDOMAIN,
            source: "synth".into(),
            latency: Duration::from_micros(1500),
        };
        assert_eq!(
            query_line(&entry),
            "names: query client=127.0.0.1:5353 transport=tcp name=Workstation7.Example.com. \
             type=AAAA rcode=NXDOMAIN source=synth latency_ms=1.500"
        );
    }
}
