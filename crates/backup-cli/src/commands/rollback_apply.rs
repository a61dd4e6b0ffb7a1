//! `backup rollback apply PLAN`: carries out exactly a reviewed plan, or
//! refuses when the live state moved since it was made.

use super::rollback::{roll_back, system, RunArgs};
use crate::exit;
use crate::output::Output;
use crate::settings::Settings;
use anyhow::Result;
use backup_core::plan::{live_moved, make_plan, render_text, Plan};
use backup_core::rollback::RollbackOptions;
use backup_core::Id;
use std::path::PathBuf;

/// Flags of `rollback apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The plan written by `rollback plan -o FILE`.
    plan: PathBuf,
    /// When the live state moved: write a fresh plan to the same file for review instead of refusing (nothing is rolled back).
    #[arg(long)]
    replan: bool,
    #[command(flatten)]
    run: RunArgs,
    /// Do not capture the replaced state as a safety snapshot (tagged pre-rollback).
    #[arg(long)]
    no_safety_snapshot: bool,
}

/// Runs `rollback apply`.
pub fn run(s: &Settings, a: ApplyArgs, out: Output) -> Result<i32> {
    let sys = system(s)?;
    let plan = Plan::load(&a.plan)?;
    plan.check_hash()?;
    let repo = s.open()?;
    let id = Id::from_hex(&plan.snapshot)?;
    let snap = backup_core::snapshot::load_snapshot(&repo, &id)?;
    plan.check_snapshot(id, &snap)?;
    let moved = live_moved(sys, &plan)?;
    if !moved.is_empty() {
        if a.replan {
            let bars = out.progress();
            let fresh = make_plan(&repo, sys, id, &snap, &bars);
            bars.finish();
            let fresh = fresh?;
            fresh.save(&a.plan)?;
            if out.json {
                out.print_json(&serde_json::json!({"moved": moved, "replanned": fresh.hash}));
            } else {
                print!("{}", render_text(&fresh));
                eprintln!(
                    "the live state moved; a fresh plan was written to {}: review it, then apply it",
                    a.plan.display()
                );
            }
            return Ok(exit::MOVED);
        }
        if out.json {
            out.print_json(&serde_json::json!({"moved": moved, "plan": plan.hash}));
        }
        eprintln!(
            "error: the live state moved since the plan {} was made; nothing was changed:",
            a.plan.display()
        );
        for m in &moved {
            eprintln!("  {}: {}", m.component, m.what);
        }
        eprintln!(
            "make a fresh plan (`rollback apply --replan`, or `rollback plan`) and review it"
        );
        return Ok(exit::MOVED);
    }
    drop(repo);
    let options = RollbackOptions {
        no_safety_snapshot: a.no_safety_snapshot,
        plan_hash: Some(plan.hash.clone()),
    };
    roll_back(s, &plan.snapshot, &[], &a.run, &options, out)
}
