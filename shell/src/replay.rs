//! `names replay FILE [--check]`: a journal recorded by `names serve --record`, replayed.
//!
//! A fresh core per recorded worker, with the recorded configuration, seed and chain
//! (rebuilt from the recorded settings and the recorded texts of the zone, hosts and
//! root hints files), is fed the recorded inputs in the journal's order at their
//! recorded times ([`names_core::journal::Replayer`]). Every action is printed, one line each, or with
//! `--check` compared with the recorded ones: exit 0 when identical, 1 at the first
//! difference. A damaged or cut journal is one error line and exit 2.
//!
//! Workers share one cache, in the replay as in the recording. While recording, each
//! input is queued and fed to its core under one process-wide lock, so the journal's
//! order is the order in which the workers' cores touched what they share, and a replay
//! in that order is exact with any number of workers (tested with three under parallel
//! queries). Known gaps: the cache's shards are picked by a hash keyed per process, so
//! once the cache is full, which entry is evicted may differ in a replay; and a zone or
//! hosts reload (SIGHUP) during the recording is not replayed: the data is the one
//! loaded at the start.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use names_core::client::Reply;
use names_core::config::InFlight;
use names_core::hosts::Hosts;
use names_core::journal::{same_action, LookupCodec, Reader, Record, Replayer};
use names_core::zone::{load_zone, Snapshot, Zone, ZoneSet};
use names_core::{Action, LookupId, Origin, Server, Via};
use names_shell::OutcomeCodec;

use crate::cli::ReplayCmd;
use crate::serve;

/// Actions a worker's core may produce in a `--check` before the journal shows them.
const MAX_UNMATCHED: usize = 65_536;

/// Where `$INCLUDE inc` in the file `from` points.
fn include_path(inc: &str, from: &str) -> String {
    let full = if Path::new(inc).is_absolute() {
        PathBuf::from(inc)
    } else {
        Path::new(from).parent().unwrap_or(Path::new("")).join(inc)
    };
    full.display().to_string()
}

/// The texts of the zone files (with their `$INCLUDE`s) and the hosts file, for a
/// journal's header.
pub fn gather_files(
    zones: &[String],
    hosts: Option<&str>,
) -> Result<Vec<(String, String)>, String> {
    let mut files = Vec::new();
    for path in zones {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read zone file {path}: {e}"))?;
        let mut included = Vec::new();
        let mut include = |inc: &str, from: &str| -> Result<(String, String), String> {
            let name = include_path(inc, from);
            let text = std::fs::read_to_string(&name)
                .map_err(|e| format!("cannot read $INCLUDE file {name}: {e}"))?;
            included.push((name.clone(), text.clone()));
            Ok((name, text))
        };
        load_zone(path, &text, &mut include).map_err(|e| e.to_string())?;
        files.push((path.clone(), text));
        files.append(&mut included);
    }
    if let Some(path) = hosts {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read hosts file {path}: {e}"))?;
        files.push((path.to_string(), text));
    }
    Ok(files)
}

/// A file's recorded text.
fn recorded<'a>(files: &'a [(String, String)], path: &str) -> Result<&'a str, String> {
    files
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, t)| t.as_str())
        .ok_or_else(|| format!("the journal does not hold the file {path}"))
}

fn recorded_zone(files: &[(String, String)], path: &str) -> Result<Zone, String> {
    let mut include = |inc: &str, from: &str| -> Result<(String, String), String> {
        let name = include_path(inc, from);
        recorded(files, &name).map(|t| (name.clone(), t.to_string()))
    };
    load_zone(path, recorded(files, path)?, &mut include).map_err(|e| e.to_string())
}

pub fn run(cmd: ReplayCmd) -> Result<ExitCode, String> {
    let name = &cmd.file;
    let file = File::open(name).map_err(|e| format!("cannot read {name}: {e}"))?;
    let mut reader = Reader::new(BufReader::new(file)).map_err(|e| format!("{name}: {e}"))?;
    let header = reader.header().clone();
    let settings = std::str::from_utf8(&header.settings)
        .map_err(|_| format!("{name}: the journal's settings are not UTF-8"))?;
    let read = |path: &str| recorded(&header.files, path).map(str::to_string);
    let (sources, zone_paths, hosts_path) = serve::replay_sources(settings, &read)?;
    let zones = if zone_paths.is_empty() {
        None
    } else {
        let zones = zone_paths
            .iter()
            .map(|p| recorded_zone(&header.files, p))
            .collect::<Result<Vec<_>, _>>()?;
        Some(Snapshot::new(ZoneSet::new(zones)?))
    };
    let hosts = match hosts_path {
        Some(p) => Some(Snapshot::new(
            Hosts::parse(&p, recorded(&header.files, &p)?).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let setup = sources.setup(usize::from(header.workers), zones, hosts);
    let in_flight = InFlight::new();
    let config = header.config.clone();
    let mut replayer = Replayer::new(std::time::Instant::now(), header.workers, move |_, seed| {
        Server::with_shared(config.clone(), setup.build(), seed, &in_flight)
    });
    // Lookup outcomes, as the shell records them (its async resolvers' outcomes).
    replayer.on_lookup(Box::new(|server, now, id, bytes| {
        let outcome = OutcomeCodec.decode(bytes).ok_or_else(|| {
            format!("lookup {id}: the outcome recorded is not one this runtime writes")
        })?;
        server.handle_lookup(now, LookupId(id), outcome);
        Ok(())
    }));
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (mut index, mut inputs, mut actions) = (0u64, 0u64, 0u64);
    let mut stopped = None;
    let print = |out: &mut BufWriter<_>, line: String| -> Result<(), String> {
        writeln!(out, "{line}").map_err(|e| format!("cannot write the output: {e}"))
    };
    loop {
        let entry = match reader.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                let _ = out.flush();
                return Err(format!("{name}: {e}"));
            }
        };
        index += 1;
        match &entry.record {
            Record::Stopped(reason) => {
                stopped = Some(reason.to_string());
                break;
            }
            Record::Input(_) => {
                inputs += 1;
                replayer
                    .feed(&entry)
                    .map_err(|e| format!("{name}: entry {index}: {e}"))?;
                if !cmd.check {
                    while let Some(a) = replayer.next_produced(entry.worker) {
                        print(&mut out, line(entry.at, entry.worker, &a))?;
                    }
                } else if replayer.pending(entry.worker) > MAX_UNMATCHED {
                    // A recording holds each turn's actions right after its inputs: this
                    // many unmatched ones is a difference (and keeps memory bounded).
                    let extra = replayer.next_produced(entry.worker).map(|a| describe(&a));
                    print(
                        &mut out,
                        format!(
                            "names: replay: first difference at entry {index} ({}): recorded none of the last {MAX_UNMATCHED} actions; replayed {}",
                            when(entry.at, entry.worker),
                            extra.unwrap_or_default(),
                        ),
                    )?;
                    let _ = out.flush();
                    return Ok(ExitCode::from(1));
                }
            }
            Record::Action(recorded) if cmd.check => {
                let got = replayer.next_produced(entry.worker);
                if !got.as_ref().is_some_and(|got| same_action(recorded, got)) {
                    let got = got.map_or("nothing".to_string(), |a| describe(&a));
                    print(
                        &mut out,
                        format!(
                            "names: replay: first difference at entry {index} ({}): recorded {}; replayed {got}",
                            when(entry.at, entry.worker),
                            describe(recorded),
                        ),
                    )?;
                    let _ = out.flush();
                    return Ok(ExitCode::from(1));
                }
                actions += 1;
            }
            Record::Action(_) => {}
        }
    }
    if cmd.check {
        if stopped.is_none() {
            for w in 0..header.workers {
                if let Some(extra) = replayer.next_produced(w) {
                    print(
                        &mut out,
                        format!(
                            "names: replay: first difference after the last entry (worker {w}): recorded nothing; replayed {}",
                            describe(&extra)
                        ),
                    )?;
                    let _ = out.flush();
                    return Ok(ExitCode::from(1));
                }
            }
        }
        let note = match &stopped {
            Some(reason) => format!(" (the recording stopped early: {reason})"),
            None => String::new(),
        };
        print(
            &mut out,
            format!("names: replay: {inputs} inputs, {actions} actions: identical{note}"),
        )?;
    } else if let Some(reason) = &stopped {
        print(&mut out, format!(";; the recording stopped here: {reason}"))?;
    }
    out.flush()
        .map_err(|e| format!("cannot write the output: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

/// `+1.234567s w0`: the time since the recording started and the worker.
fn when(at: Duration, worker: u16) -> String {
    format!("+{}.{:06}s w{worker}", at.as_secs(), at.subsec_micros())
}

fn line(at: Duration, worker: u16, action: &Action) -> String {
    format!("{} {}", when(at, worker), describe(action))
}

/// One action in one line; replies decoded as `names query` prints them.
fn describe(action: &Action) -> String {
    match action {
        Action::Reply { to, bytes } => {
            let (to, message) = match to {
                Origin::Udp { listener, peer } => {
                    (format!("{peer} udp (listener {listener})"), &bytes[..])
                }
                Origin::Tcp(conn) => (
                    format!("conn {} tcp", conn.0),
                    bytes.get(2..).unwrap_or(&[]),
                ),
            };
            format!("reply to {to}: {}", reply_text(message))
        }
        Action::SendUpstream {
            token,
            to,
            via,
            bytes,
        } => {
            let (via, message) = match via {
                Via::Udp { local_port } => (format!("udp from port {local_port}"), &bytes[..]),
                Via::Tcp => ("tcp".to_string(), bytes.get(2..).unwrap_or(&[])),
            };
            format!(
                "upstream query token={} to {to} {via}: {}",
                token.0,
                question(message)
            )
        }
        Action::CloseUpstream { token } => format!("close upstream token={}", token.0),
        Action::CloseClient { conn } => format!("close conn {}", conn.0),
        Action::PauseRead { conn } => format!("pause reading conn {}", conn.0),
        Action::ResumeRead { conn } => format!("resume reading conn {}", conn.0),
        Action::Log(entry) => format!("log {} {}", entry.qname, entry.qtype),
        Action::Notified { zone, from } => format!("notified {zone} from {from}"),
        Action::Lookup { id, .. } => format!("lookup id={}", id.0),
        Action::CancelLookup { id } => format!("cancel lookup id={}", id.0),
    }
}

/// `;; status: NOERROR, id: 1, flags: ... / QNAME QTYPE / record / record`.
fn reply_text(message: &[u8]) -> String {
    match Reply::decode(bytes::Bytes::copy_from_slice(message)) {
        Some(reply) => {
            let mut parts = vec![reply.summary(), question(message)];
            parts.extend(reply.records());
            parts.join(" / ")
        }
        None => format!("{} bytes, not a DNS message", message.len()),
    }
}

/// The first question of a message, `name. TYPE`.
fn question(message: &[u8]) -> String {
    let q = names_core::domain::base::Message::from_octets(message)
        .ok()
        .and_then(|m| m.first_question());
    match q {
        Some(q) => format!("{} {}", q.qname(), q.qtype()),
        None => "no question".to_string(),
    }
}
