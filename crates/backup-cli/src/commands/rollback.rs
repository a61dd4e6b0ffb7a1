//! `backup rollback` and its subcommands.

use super::rollback_plan;
use crate::output::Output;
use crate::settings::Settings;
use anyhow::{bail, Result};

/// Flags of `rollback`: a snapshot to roll back to, or a subcommand.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    sub: Option<Sub>,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Write what a rollback would change (JSON with -o, a summary on stdout) for review.
    Plan(rollback_plan::PlanArgs),
}

/// Runs `rollback`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    match a.sub {
        Some(Sub::Plan(p)) => rollback_plan::run(s, p, out),
        None => bail!("rollback is not built yet"),
    }
}
