//! `backup create`.

use crate::exit;
use crate::output::{human_bytes, Output};
use crate::settings::Settings;
use anyhow::Result;
use backup_core::source::files::FilesOptions;
use backup_core::{create_snapshot, CreateOptions};
use std::path::PathBuf;

/// Flags of `create`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A directory tree or file to capture (repeatable).
    #[arg(long = "files", value_name = "PATH")]
    files: Vec<PathBuf>,
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
    /// Compression threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Runs `create`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let repo = s.open()?;
    let options = CreateOptions {
        files: a.files,
        files_options: FilesOptions {
            excludes: a.exclude,
            skip_unreadable: a.skip_unreadable,
        },
        tags: a.tags,
        label: a.label,
        workers: a.threads,
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
        out.say(format!(
            "snapshot {} saved: {} files, {} dirs, {} read, {} new, {} stored in {:.1}s",
            r.id.short(),
            stats.files,
            stats.dirs,
            human_bytes(stats.bytes),
            human_bytes(snap.summary.new_bytes),
            human_bytes(snap.summary.stored_bytes),
            snap.summary.duration_secs
        ));
        if out.quiet {
            println!("{}", r.id);
        }
    }
    Ok(if warnings.iter().any(|w| w.contains("cannot read")) {
        exit::WARNINGS
    } else {
        exit::OK
    })
}
