//! `backup completions SHELL` and `backup man DIR`: generated from the
//! command-line definition itself, so they never drift from it.

use crate::cli::Cli;
use crate::exit;
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::path::PathBuf;

/// Flags of `completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

/// Flags of `man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The directory to write backup.1 and backup-<command>.1 into (created if absent).
    dir: PathBuf,
}

/// Prints the completion script.
pub fn completions(a: CompletionArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "backup", &mut script);
    // A reader that stops early (`| head`) is not an error.
    match std::io::Write::write_all(&mut std::io::stdout(), &script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(exit::OK),
    }
}

/// Writes the man pages.
pub fn man(a: ManArgs) -> Result<i32> {
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd, &a.dir)
        .with_context(|| format!("cannot write man pages into {}", a.dir.display()))?;
    Ok(exit::OK)
}
