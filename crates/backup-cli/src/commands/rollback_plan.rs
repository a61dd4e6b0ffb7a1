//! `backup rollback plan`: what a rollback would change, for review.

use crate::exit;
use crate::output::Output;
use crate::settings::Settings;
use anyhow::{bail, Result};
use backup_core::plan::{live_moved, make_plan, render_markdown, render_text, LiveAhead, Plan};
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
    /// Also compute the exact rows written since the snapshot (restores the snapshot's databases into scratch databases to compare; the plan file is unchanged).
    #[arg(long, conflicts_with = "check")]
    pub exact: bool,
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
    // The live side needs nothing from the repository: it is read while
    // the repository opens.
    let ahead = LiveAhead::start(system);
    let repo = s.open()?;
    let (id, snap) = super::pick(&repo, spec, &a.tags)?;
    let bars = out.progress();
    let plan = make_plan(&repo, system, id, &snap, Some(&ahead), &bars);
    bars.finish();
    let plan = plan?;
    if let Some(path) = &a.output {
        plan.save(path)?;
    }
    let exact = match a.exact {
        true => Some(exact_delta(&repo, system, &snap)?),
        false => None,
    };
    if out.json {
        let mut v = serde_json::to_value(&plan)?;
        if let (Some(e), Some(obj)) = (&exact, v.as_object_mut()) {
            obj.insert("exact".into(), e.clone());
        }
        out.print_json(&v);
    } else if a.markdown {
        print!("{}", render_markdown(&plan));
    } else if !out.quiet {
        print!("{}", render_text(&plan));
    }
    if let (Some(e), false) = (&exact, out.json) {
        print_exact(e, out);
    }
    if let (Some(path), false) = (&a.output, out.json || out.quiet) {
        eprintln!("plan written to {}", path.display());
    }
    Ok(exit::OK)
}

/// `--exact`: the exact per-table delta between the snapshot and the live
/// databases, as JSON (`databases`, each with its `tables` counts).
fn exact_delta(
    repo: &backup_core::Repository,
    system: &System,
    snap: &backup_core::snapshot::Snapshot,
) -> Result<serde_json::Value> {
    let _lock = backup_core::repository::Lock::acquire(repo, false, "rollback plan --exact")?;
    let (dbs, stats) =
        backup_core::salvage::exact_against_live(repo, system, snap, 2, &backup_core::NoProgress)?;
    let dbs: Vec<_> = dbs
        .iter()
        .map(|d| {
            let tables: Vec<_> = d
                .tables
                .iter()
                .filter(|t| t.status != backup_core::salvage::TableStatus::Unchanged)
                .map(|t| {
                    serde_json::json!({"table": t.label(), "status": t.status, "inserted": t.inserted,
                                       "updated": t.updated, "deleted": t.deleted})
                })
                .collect();
            serde_json::json!({"name": d.name, "tables": tables})
        })
        .collect();
    Ok(
        serde_json::json!({"databases": dbs, "tables_skipped": stats.skipped, "rows_read": stats.rows_read}),
    )
}

fn print_exact(e: &serde_json::Value, out: Output) {
    out.say("\nRows written since the snapshot (exact), which a rollback now would set aside:");
    for d in e["databases"].as_array().into_iter().flatten() {
        for t in d["tables"].as_array().into_iter().flatten() {
            out.say(format!(
                "  {}:{:<40} +{} ~{} -{}  {}",
                d["name"].as_str().unwrap_or(""),
                t["table"].as_str().unwrap_or(""),
                t["inserted"],
                t["updated"],
                t["deleted"],
                t["status"].as_str().unwrap_or("")
            ));
        }
    }
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
