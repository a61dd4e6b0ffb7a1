//! `backup export`.

use crate::exit;
use crate::output::{human_bytes, Output};
use crate::settings::Settings;
use anyhow::Result;
use backup_core::export_snapshot;
use std::path::PathBuf;

/// Flags of `export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Snapshot id, unique prefix, or `latest`.
    snapshot: String,
    /// The bundle to write (a tar file).
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// With `latest`: the newest snapshot carrying these tags.
    #[arg(long = "tag")]
    tags: Vec<String>,
}

/// Runs `export`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let repo = s.open()?;
    let (id, snap) = super::pick(&repo, &a.snapshot, &a.tags)?;
    let bars = out.progress();
    let r = export_snapshot(&repo, &id, &snap, &a.output, &bars);
    bars.finish();
    let r = r?;
    if out.json {
        out.print_json(&serde_json::json!({"snapshot": id.to_hex(), "path": r.path, "files": r.files, "bytes": r.bytes}));
    } else {
        out.say(format!(
            "exported snapshot {} to {}: {} files, {}; check it with `sha256sum -c SHA256SUMS` after extracting",
            id.short(),
            r.path.display(),
            r.files,
            human_bytes(r.bytes)
        ));
    }
    Ok(exit::OK)
}
