//! `backup prune`, and the prune half of `forget --prune`.

use crate::exit;
use crate::output::{human_bytes, Output};
use crate::settings::Settings;
use anyhow::Result;
use backup_core::{prune, PruneOptions, PruneReport, Repository};

/// How much a prune may leave and copy.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Unused space tolerated after the prune (of the space that stays), e.g. 5% or 0%.
    #[arg(long, default_value = "5%", value_parser = parse_percent)]
    max_unused: f64,
    /// Copy at most this many MiB of still-used data while repacking.
    #[arg(long, value_name = "MiB")]
    max_repack: Option<u64>,
}

/// Flags of `prune`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plan and report; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    limits: Limits,
}

fn parse_percent(text: &str) -> Result<f64, String> {
    let bad = || format!("{text:?} is not a percentage below 100: write e.g. 5%");
    let v: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| bad())?;
    if !(0.0..100.0).contains(&v) {
        return Err(bad());
    }
    Ok(v / 100.0)
}

/// Runs `prune`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let repo = s.open()?;
    let report = run_prune(&repo, &a.limits, a.dry_run, Vec::new(), out)?;
    if out.json {
        out.print_json(&serde_json::to_value(&report)?);
    } else {
        print_report(&report, out);
    }
    Ok(exit::OK)
}

/// Prunes `repo` within `limits`, counting `forgotten` snapshots as gone.
pub fn run_prune(
    repo: &Repository,
    limits: &Limits,
    dry_run: bool,
    forgotten: Vec<backup_core::Id>,
    out: Output,
) -> Result<PruneReport> {
    let options = PruneOptions {
        dry_run,
        max_unused: limits.max_unused,
        max_repack: limits.max_repack.map(|m| m * 1024 * 1024),
        forgotten,
    };
    let bars = out.progress();
    let report = prune(repo, &options, &bars);
    bars.finish();
    Ok(report?)
}

/// Prints what a prune did (or would do).
pub fn print_report(r: &PruneReport, out: Output) {
    let verb = if r.dry_run { "would free" } else { "freed" };
    out.say(format!(
        "{} snapshots keep {} blobs; {} blobs unreferenced",
        r.snapshots, r.blobs_used, r.blobs_removed
    ));
    out.say(format!(
        "packs: {} before, {} deleted (unused), {} repacked into {} ({} copied), {} in no index deleted",
        r.packs_before,
        r.packs_deleted,
        r.packs_repacked,
        r.packs_written,
        human_bytes(r.bytes_repacked),
        r.unindexed_deleted
    ));
    out.say(format!(
        "{verb} {}: {} -> {}; {} unused left in partly used packs",
        human_bytes(r.bytes_freed),
        human_bytes(r.bytes_before),
        human_bytes(r.bytes_after),
        human_bytes(r.unused_bytes_after)
    ));
}
