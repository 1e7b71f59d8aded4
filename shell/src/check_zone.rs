//! `names check-zone PATH`: loads a zone file (and its `$INCLUDE`s) as `names serve --zone`
//! would, and prints its origin, serial and record count, or the error with its line.

use std::process::ExitCode;

use crate::cli::CheckZone;
use crate::reload::read_zone;

pub fn run(cmd: CheckZone) -> Result<ExitCode, String> {
    let zone = read_zone(&cmd.path)?;
    println!(
        "{}: origin {} serial {} records {}",
        cmd.path,
        zone.origin().fmt_with_dot(),
        zone.serial(),
        zone.record_count()
    );
    Ok(ExitCode::SUCCESS)
}
