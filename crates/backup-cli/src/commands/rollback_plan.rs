//! `backup rollback plan`: what a rollback would change, for review.

use crate::output::Output;
use crate::settings::Settings;
use anyhow::{bail, Result};

/// Flags of `rollback plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Snapshot id, unique prefix, or `latest`.
    pub snapshot: String,
    /// With `latest`: the newest snapshot carrying these tags.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Write the plan (JSON) to this file.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Print the summary as Markdown (for a change ticket).
    #[arg(long)]
    pub markdown: bool,
}

/// Runs `rollback plan`.
pub fn run(_s: &Settings, _a: PlanArgs, _out: Output) -> Result<i32> {
    bail!("rollback plan is not built yet")
}
