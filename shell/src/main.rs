//! The `names` binary: `names serve` and `names query`.
//! Errors end in one line on stderr and a non-zero exit, never a panic.

mod cli;
mod config_file;
mod query;
mod serve;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli: cli::Cli = argh::from_env();
    let result = match cli.cmd {
        cli::Cmd::Serve(s) => serve::run(s),
        cli::Cmd::Query(q) => query::run(q),
        cli::Cmd::CheckConfig(c) => serve::check_config(&c.file),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("names: error: {message}");
            ExitCode::from(2)
        }
    }
}
