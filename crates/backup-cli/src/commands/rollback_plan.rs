//! `backup rollback plan`: what a rollback would change, for review.

use crate::exit;
use crate::output::Output;
use crate::settings::Settings;
use anyhow::{bail, Result};
use backup_core::plan::{live_moved, make_plan, render_markdown, render_text, Plan};
use backup_core::system::System;
use std::path::Path;

/// Flags of `rollback plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Snapshot id, unique prefix, or `latest`.
    #[arg(required_unless_present = "check")]
    pub snapshot: Option<String>,
    /// With `latest`: the newest snapshot carrying these tags.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Write the plan (JSON) to this file.
    #[arg(long, short = 'o', value_name = "FILE", conflicts_with = "check")]
    pub output: Option<std::path::PathBuf>,
    /// Print the summary as Markdown (for a change ticket).
    #[arg(long)]
    pub markdown: bool,
    /// Check a plan written earlier instead: its hash, and whether the live state moved since (exit 12 when it did).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["snapshot", "tags", "markdown"])]
    pub check: Option<std::path::PathBuf>,
}

/// Runs `rollback plan`.
pub fn run(s: &Settings, a: PlanArgs, out: Output) -> Result<i32> {
    let Some(system) = s.system() else {
        bail!(backup_core::Error::usage(
            "rollback plan needs the system description: pass --config FILE (or set BACKUP_CONFIG) \
             naming the databases and file trees to roll back"
        ));
    };
    if let Some(path) = &a.check {
        return check(system, path, out);
    }
    let Some(spec) = a.snapshot.as_deref() else {
        bail!(backup_core::Error::usage(
            "name the snapshot to plan a rollback to (an id, a prefix or `latest`)"
        ));
    };
    let repo = s.open()?;
    let (id, snap) = super::pick(&repo, spec, &a.tags)?;
    let bars = out.progress();
    let plan = make_plan(&repo, system, id, &snap, &bars);
    bars.finish();
    let plan = plan?;
    if let Some(path) = &a.output {
        plan.save(path)?;
    }
    if out.json {
        out.print_json(&serde_json::to_value(&plan)?);
    } else if a.markdown {
        print!("{}", render_markdown(&plan));
    } else if !out.quiet {
        print!("{}", render_text(&plan));
    }
    if let (Some(path), false) = (&a.output, out.json || out.quiet) {
        eprintln!("plan written to {}", path.display());
    }
    Ok(exit::OK)
}

/// `--check FILE`: refuses an edited plan, then says what moved.
fn check(system: &System, path: &Path, out: Output) -> Result<i32> {
    let plan = Plan::load(path)?;
    plan.check_hash()?;
    let moved = live_moved(system, &plan)?;
    if out.json {
        out.print_json(&serde_json::json!({
            "plan": plan.hash,
            "snapshot": plan.snapshot,
            "moved": moved,
        }));
    } else if moved.is_empty() {
        out.say(format!(
            "the live state is what the plan {} saw",
            path.display()
        ));
    } else {
        println!(
            "the live state moved since the plan {} was made:",
            path.display()
        );
        for m in &moved {
            println!("  {}: {}", m.component, m.what);
        }
    }
    Ok(if moved.is_empty() {
        exit::OK
    } else {
        exit::MOVED
    })
}
