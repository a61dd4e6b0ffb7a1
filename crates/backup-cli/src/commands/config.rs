//! `backup config check`: reads the system description and checks it
//! against this machine, printing every problem. The checks are
//! `backup_core::system::check_file`; this only prints.

use crate::exit;
use crate::output::Output;
use anyhow::{bail, Result};
use backup_core::system::check_file;
use std::path::Path;

/// Flags of `config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check the --config file: keys and values, file paths, database connections, hook programs, the password file (not the repository).
    Check,
}

/// Runs `config`; `config` is the `--config` path. It does not go through
/// the settings: a broken file is what it reports on.
pub fn run(config: Option<&Path>, a: Args, out: Output) -> Result<i32> {
    let Command::Check = a.command;
    let Some(path) = config else {
        bail!(backup_core::Error::usage(
            "say which file to check: --config FILE (or BACKUP_CONFIG)"
        ));
    };
    let report = check_file(path);
    if out.json {
        out.print_json(&serde_json::json!({
            "ok": report.ok(),
            "components": report.components,
            "problems": report.problems,
        }));
    } else if report.ok() {
        out.say(format!("config OK: {} components", report.components));
    } else {
        for p in &report.problems {
            eprintln!("problem: {p}");
        }
        eprintln!("{} problem(s) in {}", report.problems.len(), path.display());
    }
    Ok(if report.ok() { exit::OK } else { exit::USAGE })
}
