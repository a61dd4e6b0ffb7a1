//! `backup restore`.

use crate::exit;
use crate::output::{human_bytes, Output};
use crate::settings::Settings;
use anyhow::Result;
use backup_core::restore::{restore_files, RestoreOptions};
use std::path::PathBuf;

/// Flags of `restore`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Snapshot id, unique prefix, or `latest`.
    snapshot: String,
    /// Directory to restore into; captured paths are recreated under it.
    #[arg(long, short = 't')]
    target: PathBuf,
    /// Restore only this captured path and what lies below it (repeatable; absolute, as `show` lists).
    #[arg(long = "include", value_name = "PATH")]
    include: Vec<String>,
    /// With `latest`: the newest snapshot carrying these tags.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Replace a non-empty target atomically; its current content is kept next to it.
    #[arg(long)]
    overwrite: bool,
    /// Parallel pack readers (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Runs `restore`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let repo = s.open()?;
    let (id, snap) = super::pick(&repo, &a.snapshot, &a.tags)?;
    let options = RestoreOptions {
        target: a.target,
        include: a.include,
        overwrite: a.overwrite,
        workers: a.threads,
    };
    let bars = out.progress();
    let r = restore_files(&repo, &snap, &options, &bars);
    bars.finish();
    let r = r?;
    if out.json {
        let mut v = serde_json::to_value(&r)?;
        v["snapshot"] = serde_json::Value::String(id.to_hex());
        out.print_json(&v);
    } else {
        out.say(format!(
            "restored snapshot {} to {}: {} files, {} other entries, {}, verified, in {:.1}s",
            id.short(),
            r.target.display(),
            r.files,
            r.other,
            human_bytes(r.bytes),
            r.duration_secs
        ));
        if let Some(p) = &r.previous {
            out.say(format!(
                "the previous content of the target is kept at {}",
                p.display()
            ));
        }
    }
    Ok(exit::OK)
}
