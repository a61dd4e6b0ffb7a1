//! `backup create`.

use crate::exit;
use crate::output::{human_bytes, Output};
use crate::settings::Settings;
use anyhow::Result;
use backup_core::source::files::FilesOptions;
use backup_core::source::postgres::{PostgresOptions, DEFAULT_SPLIT_MIB};
use backup_core::{create_snapshot, CreateOptions, FileSource, PostgresSource};

/// Flags of `create`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory tree or file to capture (repeatable); NAME=PATH names the component (default: the path's last element). With --config, --files and --postgres replace the file's components.
    #[arg(long = "files", value_name = "[NAME=]PATH")]
    files: Vec<String>,
    /// A PostgreSQL database to capture (libpq connection string or URI; repeatable).
    #[arg(long = "postgres", value_name = "CONNINFO")]
    postgres: Vec<String>,
    /// Also capture roles and tablespaces (pg_dumpall --globals-only; needs a superuser).
    #[arg(long)]
    globals: bool,
    /// Parallel database connections.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// Tables larger than this many MiB are read in parallel page ranges.
    #[arg(long, default_value_t = DEFAULT_SPLIT_MIB, value_parser = clap::value_parser!(u64).range(1..))]
    table_split_mib: u64,
    /// Seconds to wait for a table lock before failing.
    #[arg(long, default_value_t = 10)]
    lock_timeout: u64,
    /// Read every file and table again, even those unchanged since the previous snapshot.
    #[arg(long)]
    force: bool,
    /// Leave out paths matching this glob (repeatable); without `/` it matches names anywhere.
    #[arg(long = "exclude", value_name = "GLOB")]
    exclude: Vec<String>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// A free-form label, e.g. "v1.0 go-live".
    #[arg(long)]
    label: Option<String>,
    /// Skip unreadable files with a warning (exit code 10) instead of failing.
    #[arg(long)]
    skip_unreadable: bool,
    /// Leave extended attributes out (ACLs, file capabilities, user.* attributes).
    #[arg(long)]
    no_xattrs: bool,
    /// Compression threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Record the snapshot as taken at this UTC time ("YYYY-MM-DD HH:MM:SS"), e.g. for a capture made earlier.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    time: Option<chrono::DateTime<chrono::Utc>>,
    /// Record this host name instead of this machine's (unchanged files are then looked up in that host's snapshots).
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
}

/// Parses `--time`: "YYYY-MM-DD HH:MM:SS" (or with a `T`), in UTC.
fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{text:?} is not a time: write \"YYYY-MM-DD HH:MM:SS\" (UTC)"))
}

/// Runs `create`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let repo = s.open()?;
    // Sources on the command line replace those of the system description.
    let (files, postgres) = match s.system() {
        Some(sys) if a.files.is_empty() && a.postgres.is_empty() => {
            (sys.file_sources(), sys.postgres_sources())
        }
        _ => (
            a.files.iter().map(|f| FileSource::parse(f)).collect(),
            a.postgres.into_iter().map(PostgresSource::from).collect(),
        ),
    };
    let options = CreateOptions {
        files,
        files_options: FilesOptions {
            excludes: a.exclude,
            skip_unreadable: a.skip_unreadable,
            force: a.force,
            no_xattrs: a.no_xattrs,
        },
        postgres,
        postgres_options: PostgresOptions {
            jobs: a.jobs.into(),
            globals: a.globals,
            lock_timeout: std::time::Duration::from_secs(a.lock_timeout.max(1)),
            split_bytes: a.table_split_mib * 1024 * 1024,
        },
        tags: a.tags,
        label: a.label,
        workers: a.threads,
        time: a.time,
        host: a.host,
        ..CreateOptions::default()
    };
    let bars = out.progress();
    let result = create_snapshot(&repo, &options, &bars);
    bars.finish();
    let r = result?;
    let snap = &r.snapshot;
    let warnings: Vec<String> = snap
        .file_components()
        .flat_map(|f| f.warnings.clone())
        .collect();
    let stats = snap.file_stats();
    if out.json {
        out.print_json(&serde_json::json!({
            "id": r.id.to_hex(),
            "time": snap.time,
            "files": stats.files,
            "dirs": stats.dirs,
            "bytes": stats.bytes,
            "databases": snap.databases().map(|d| serde_json::json!({
                "name": d.name, "database": d.database, "tables": d.tables.len(), "rows": d.rows(), "bytes": d.bytes(),
                "parts": d.parts(), "reused_parts": d.reused_parts,
            })).collect::<Vec<_>>(),
            "skipped": stats.skipped,
            "bytes_read": snap.summary.bytes_read,
            "new_bytes": snap.summary.new_bytes,
            "stored_bytes": snap.summary.stored_bytes,
            "duration_secs": snap.summary.duration_secs,
            "recovered_packs": r.recovered_packs,
            "warnings": warnings,
        }));
    } else {
        if r.recovered_packs > 0 {
            out.say(format!(
                "reused {} pack(s) left by an interrupted run",
                r.recovered_packs
            ));
        }
        for d in snap.databases() {
            out.say(format!(
                "database {}: {} tables, {} rows, {} of data (PostgreSQL {}); {} of {} table parts unchanged since the last capture, reused unread",
                d.database,
                d.tables.len(),
                d.rows(),
                human_bytes(d.bytes()),
                d.server_version,
                d.reused_parts,
                d.parts()
            ));
        }
        out.say(format!(
            "snapshot {} saved: {} files, {} dirs, {} read, {} new, {} stored in {:.1}s",
            r.id.short(),
            stats.files,
            stats.dirs,
            human_bytes(snap.summary.bytes_read),
            human_bytes(snap.summary.new_bytes),
            human_bytes(snap.summary.stored_bytes),
            snap.summary.duration_secs
        ));
        if out.quiet {
            println!("{}", r.id);
        }
    }
    if stats.incomplete() {
        eprintln!(
            "warning: snapshot {} is incomplete: {} entries left out, {} files changed while read (see the warnings above, or `backup show {}`)",
            r.id.short(),
            stats.skipped,
            stats.changed,
            r.id.short()
        );
    }
    Ok(if stats.incomplete() {
        exit::WARNINGS
    } else {
        exit::OK
    })
}
