//! The `names` binary: `names serve` and `names query`.
//! Errors end in one line on stderr and a non-zero exit, never a panic.

#![warn(clippy::undocumented_unsafe_blocks)]

mod check_zone;
mod cli;
mod config_file;
mod notify;
mod query;
mod reload;
mod replay;
mod secondaries;
mod serve;

use std::process::ExitCode;

use argh::FromArgs;

/// Parses the command line. `--help` prints the usage and exits 0; a bad flag prints one
/// line on stderr and exits 2.
fn parse_args() -> Result<cli::Cli, ExitCode> {
    let args: Vec<String> = std::env::args().collect();
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (cmd, rest) = strs
        .split_first()
        .map_or(("names", &[][..]), |(c, r)| (*c, r));
    let cmd = std::path::Path::new(cmd)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("names");
    cli::Cli::from_args(&[cmd], rest).map_err(|early| {
        if early.status.is_ok() {
            print!("{}", early.output);
            ExitCode::SUCCESS
        } else {
            let first = early.output.lines().next().unwrap_or("bad arguments");
            eprintln!("names: error: {first} (see names --help)");
            ExitCode::from(2)
        }
    })
}

/// `names --version` (or `-V`) alone: argh wants a command after the flag, so it is
/// answered before parsing.
fn version_asked() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    matches!(args.as_slice(), [flag] if flag == "--version" || flag == "-V")
}

/// The name and version, as operators and packagers expect.
fn print_version() -> ExitCode {
    println!("names {}", env!("CARGO_PKG_VERSION"));
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    if version_asked() {
        return print_version();
    }
    let cli = match parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if cli.version {
        return print_version();
    }
    let result = match cli.cmd {
        cli::Cmd::Serve(s) => serve::run(s),
        cli::Cmd::Query(q) => query::run(q),
        cli::Cmd::CheckConfig(c) => serve::check_config(&c.file),
        cli::Cmd::CheckZone(c) => check_zone::run(c),
        cli::Cmd::Replay(r) => replay::run(r),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("names: error: {message}");
            ExitCode::from(2)
        }
    }
}
