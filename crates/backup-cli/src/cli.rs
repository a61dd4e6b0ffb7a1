//! Command-line definition and dispatch.

use crate::commands;
use crate::exit;
use crate::output::Output;
use crate::settings::{GlobalArgs, Settings};
use clap::{Parser, Subcommand};

const ABOUT: &str = "Capture a database-backed application (files, config) as one verified, \
compressed, encrypted, deduplicated snapshot, and restore it.";

const AFTER: &str = "Quick start:
  export BACKUP_PASSWORD_FILE=~/.backup-password      # chmod 600
  backup init   --repo /var/backups/dms
  backup create --repo /var/backups/dms --files /srv/dms/releases/current --files /etc/dms --tag pre-deploy
  backup snapshots --repo /var/backups/dms
  backup restore latest --repo /var/backups/dms --target /tmp/restore

Snapshot ids may be shortened to a unique prefix; `latest` (optionally with --tag) picks the newest.
Environment: BACKUP_REPOSITORY, BACKUP_PASSWORD, BACKUP_PASSWORD_FILE, BACKUP_CONFIG,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL, BACKUP_S3_PATH_STYLE.
";

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "backup", version, about = ABOUT, after_help = format!("{AFTER}\n{}", exit::HELP))]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new repository (encrypted unless --insecure-no-encryption).
    Init(commands::init::Args),
    /// Capture files and directories as a new snapshot.
    Create(commands::create::Args),
    /// List snapshots.
    Snapshots(commands::snapshots::Args),
    /// Show one snapshot: components, files, sizes, checksums.
    Show(commands::show::Args),
    /// Check the repository: structure, and optionally every byte of data.
    Verify(commands::verify::Args),
    /// Restore a snapshot to a directory (staged, verified, then moved into place).
    Restore(commands::restore::Args),
    /// Roll the whole system (databases, file trees) back to a snapshot, verified, with the application down for seconds.
    Rollback(commands::rollback::Args),
    /// The data written since the snapshot a rollback restored: compute, show, export as SQL or CSV, re-apply.
    Salvage(commands::salvage::Args),
    /// Remove the snapshots a retention policy does not keep (--keep-daily 7 ...; --prune frees their data).
    Forget(commands::forget::Args),
    /// Delete the data no snapshot references: unused packs go, partly used ones are repacked.
    Prune(commands::prune::Args),
    /// Compare two snapshots, or a snapshot with the live files.
    Diff(commands::diff::Args),
    /// Write a snapshot as a self-contained tar bundle usable without this tool.
    Export(commands::export::Args),
    /// Store a bundle written by `export` as a snapshot.
    Import(commands::import::Args),
    /// What the daemon (backupd) says about its jobs: last and next runs, health.
    Status(commands::status::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(commands::docs::CompletionArgs),
    /// Write man pages (backup.1 and one per subcommand) into a directory.
    Man(commands::docs::ManArgs),
    /// The system description (--config FILE): `config check` checks it against this machine.
    Config(commands::config::Args),
}

/// Parses the command line, runs the command, returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    let out = Output {
        json: cli.global.json,
        quiet: cli.global.quiet,
    };
    let result = run_command(&cli.global, cli.command, out);
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = exit::code_for(&e);
            if out.json {
                let v = serde_json::json!({"error": format!("{e:#}"), "exit_code": code});
                println!("{v}");
            }
            eprintln!("error: {e:#}");
            code
        }
    }
}

/// Runs a command. Every command but `config` resolves the settings (and
/// so reads the config file) first; `config check` reports on the file
/// itself, so it must not need the file to be valid.
fn run_command(global: &GlobalArgs, command: Command, out: Output) -> anyhow::Result<i32> {
    let s = || Settings::resolve(global);
    match command {
        Command::Init(a) => commands::init::run(&s()?, a, out),
        Command::Create(a) => commands::create::run(&s()?, a, out),
        Command::Snapshots(a) => commands::snapshots::run(&s()?, a, out),
        Command::Show(a) => commands::show::run(&s()?, a, out),
        Command::Verify(a) => commands::verify::run(&s()?, a, out),
        Command::Restore(a) => commands::restore::run(&s()?, a, out),
        Command::Rollback(a) => commands::rollback::run(&s()?, a, out),
        Command::Salvage(a) => commands::salvage::run(&s()?, a, out),
        Command::Diff(a) => commands::diff::run(&s()?, a, out),
        Command::Forget(a) => commands::forget::run(&s()?, a, out),
        Command::Prune(a) => commands::prune::run(&s()?, a, out),
        Command::Export(a) => commands::export::run(&s()?, a, out),
        Command::Import(a) => commands::import::run(&s()?, a, out),
        Command::Status(a) => commands::status::run(&s()?, a, out),
        Command::Completions(a) => commands::docs::completions(a),
        Command::Man(a) => commands::docs::man(a),
        Command::Config(a) => commands::config::run(global.config.as_deref(), a, out),
    }
}
