//! `backup diff`.

use crate::exit;
use crate::output::Output;
use crate::settings::Settings;
use anyhow::{bail, Result};
use backup_core::{diff_live, diff_snapshots, ChangeKind};

/// Flags of `diff`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The older snapshot (id, prefix or `latest`).
    snapshot: String,
    /// The newer snapshot; omit it with --live.
    other: Option<String>,
    /// Compare with the live files instead of a second snapshot. A file
    /// whose size, times and inode are as captured is taken as unchanged
    /// without being read, as `create` does.
    #[arg(long, conflicts_with = "other")]
    live: bool,
    /// With --live: read and hash every live file, trusting no metadata.
    #[arg(long, requires = "live")]
    read_all: bool,
}

/// Runs `diff`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let repo = s.open()?;
    let (_, old) = super::pick(&repo, &a.snapshot, &[])?;
    let mut how = None;
    let changes = match (&a.other, a.live) {
        (Some(o), false) => {
            let (_, new) = super::pick(&repo, o, &[])?;
            diff_snapshots(&repo, &old, &new)?
        }
        (None, true) => {
            let bars = out.progress();
            bars_phase(&bars);
            let d = diff_live(&repo, &old, a.read_all, &bars);
            bars.finish();
            let d = d?;
            how = Some(format!(
                "; {} live files read, {} taken as captured (same size, times and inode)",
                d.files_read, d.files_trusted
            ));
            d.changes
        }
        _ => bail!("name a second snapshot, or pass --live to compare with the live files"),
    };
    if out.json {
        out.print_json(&serde_json::to_value(&changes)?);
    } else {
        for c in &changes {
            let mark = match c.kind {
                ChangeKind::Added => "+",
                ChangeKind::Removed => "-",
                ChangeKind::Modified => "M",
            };
            if c.details.is_empty() {
                println!("{mark} {}", c.path);
            } else {
                println!("{mark} {} ({})", c.path, c.details.join(", "));
            }
        }
        let count = |k| changes.iter().filter(|c| c.kind == k).count();
        out.say(format!(
            "{} added, {} removed, {} modified{}",
            count(ChangeKind::Added),
            count(ChangeKind::Removed),
            count(ChangeKind::Modified),
            how.unwrap_or_default()
        ));
    }
    Ok(exit::OK)
}

fn bars_phase(bars: &crate::output::Bars) {
    use backup_core::Progress;
    bars.phase("comparing live files", None);
}
