//! `backup rollback` and its subcommands: the command parses and prints;
//! the steps, journal and records are `backup_core::rollback`'s.

use super::{rollback_apply, rollback_plan};
use crate::exit;
use crate::output::{human_secs, Output};
use crate::settings::Settings;
use anyhow::{bail, Result};
use backup_core::rollback::{self, audit, RollbackOptions, RollbackReport, Session};
use backup_core::system::System;
use std::io::IsTerminal;

/// Flags of `rollback`: a snapshot to roll back to, or a subcommand.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    sub: Option<Sub>,
    /// Snapshot id, unique prefix, or `latest` (with --tag: the newest carrying the tags).
    #[arg(required = true)]
    snapshot: Option<String>,
    /// With `latest`: the newest snapshot carrying these tags.
    #[arg(long = "tag")]
    tags: Vec<String>,
    #[command(flatten)]
    run: RunArgs,
    /// Do not capture the replaced state as a safety snapshot (tagged pre-rollback).
    #[arg(long)]
    no_safety_snapshot: bool,
}

/// Flags shared by the commands that switch the live system.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Parallel database connections and pack readers for staging.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Write what a rollback would change (JSON with -o, a summary on stdout) for review.
    Plan(rollback_plan::PlanArgs),
    /// Carry out a reviewed plan, exactly (refused when the live state moved since; exit 12).
    Apply(rollback_apply::ApplyArgs),
    /// Finish or revert a rollback or undo that was interrupted (killed, power loss).
    Resume(RunArgs),
    /// Show an unfinished rollback or undo, if there is one.
    Status,
    /// Switch back to the state the last rollback replaced (stop, switch, start, health check).
    Undo(RunArgs),
    /// Drop the databases and directories kept aside by finished rollbacks and undos.
    Cleanup(CleanupArgs),
    /// List the rollbacks and undos recorded in the repository.
    History,
}

/// Flags of `rollback cleanup`.
#[derive(Debug, clap::Args)]
struct CleanupArgs {
    /// Only what was kept longer ago than this (e.g. 7d, 12h).
    #[arg(long, value_parser = backup_core::system::parse_duration)]
    older_than: Option<std::time::Duration>,
}

/// Runs `rollback`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    match a.sub {
        Some(Sub::Plan(p)) => rollback_plan::run(s, p, out),
        Some(Sub::Apply(p)) => rollback_apply::run(s, p, out),
        Some(Sub::Resume(r)) => resume(s, &r, out),
        Some(Sub::Status) => status(s, out),
        Some(Sub::Undo(r)) => undo(s, &r, out),
        Some(Sub::Cleanup(c)) => cleanup(s, &c, out),
        Some(Sub::History) => history(s, out),
        None => {
            let spec = a.snapshot.unwrap_or_else(|| "latest".into());
            let options = RollbackOptions {
                no_safety_snapshot: a.no_safety_snapshot,
                plan_hash: None,
            };
            roll_back(s, &spec, &a.tags, &a.run, &options, out)
        }
    }
}

/// The system description, which every rollback command needs.
pub fn system(s: &Settings) -> Result<&System> {
    match s.system() {
        Some(sys) => Ok(sys),
        None => bail!(backup_core::Error::usage(
            "rollback needs the system description: pass --config FILE (or set BACKUP_CONFIG)"
        )),
    }
}

/// Asks before the live system is touched, or refuses without a terminal.
pub fn confirm(run: &RunArgs, what: &str) -> Result<()> {
    if run.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!(backup_core::Error::usage(format!(
            "{what} changes the live system and there is no terminal to ask on: pass --yes"
        )));
    }
    eprint!("{what}: the application will be stopped for the switch. Type yes to go on: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!(backup_core::Error::usage(
            "not confirmed: nothing was changed"
        ));
    }
    Ok(())
}

/// Rolls back to `spec` (used by `rollback` and `rollback apply`).
pub fn roll_back(
    s: &Settings,
    spec: &str,
    tags: &[String],
    run: &RunArgs,
    options: &RollbackOptions,
    out: Output,
) -> Result<i32> {
    let sys = system(s)?;
    let repo = s.open()?;
    let (id, snap) = super::pick(&repo, spec, tags)?;
    confirm(run, &format!("roll back to snapshot {}", id.short()))?;
    let bars = out.progress();
    let session = Session::open(&repo, sys, run.jobs.into(), &bars, "rollback")?;
    let report = rollback::rollback(&session, &id, &snap, options);
    bars.finish();
    Ok(print_report(&report?, out))
}

fn resume(s: &Settings, run: &RunArgs, out: Output) -> Result<i32> {
    let sys = system(s)?;
    let Some(j) = rollback::status(sys)? else {
        out.say("no unfinished rollback or undo: nothing to resume");
        if out.json {
            out.print_json(&serde_json::json!({ "resumed": null }));
        }
        return Ok(exit::OK);
    };
    let repo = s.open()?;
    confirm(run, &format!("resume {} {}", j.operation.word(), j.id))?;
    let bars = out.progress();
    let session = Session::open(&repo, sys, run.jobs.into(), &bars, "rollback resume")?;
    let report = rollback::resume(&session);
    bars.finish();
    match report? {
        Some(r) => Ok(print_report(&r, out)),
        None => Ok(exit::OK),
    }
}

fn undo(s: &Settings, run: &RunArgs, out: Output) -> Result<i32> {
    let sys = system(s)?;
    let repo = s.open()?;
    confirm(run, "undo the last rollback")?;
    let bars = out.progress();
    let session = Session::open(&repo, sys, run.jobs.into(), &bars, "rollback undo")?;
    let report = rollback::undo(&session);
    bars.finish();
    Ok(print_report(&report?, out))
}

fn status(s: &Settings, out: Output) -> Result<i32> {
    let sys = system(s)?;
    let current = rollback::status(sys)?;
    if out.json {
        out.print_json(&serde_json::json!({ "unfinished": current }));
        return Ok(exit::OK);
    }
    match current {
        None => out.say("no unfinished rollback or undo"),
        Some(j) => {
            out.say(format!(
                "unfinished {} {} to snapshot {}, started {} by {} on {}, stopped in phase {:?}",
                j.operation.word(),
                j.id,
                short(&j.snapshot),
                j.started.format("%Y-%m-%d %H:%M:%S UTC"),
                j.user,
                j.host,
                j.phase
            ));
            out.say(if j.phase >= backup_core::rollback::Phase::Switched && j.phase != backup_core::rollback::Phase::Reverting {
                "every component was switched: `backup rollback resume` finishes it (start, health check)"
            } else {
                "not every component was switched: `backup rollback resume` reverts it"
            });
        }
    }
    Ok(exit::OK)
}

fn cleanup(s: &Settings, a: &CleanupArgs, out: Output) -> Result<i32> {
    let sys = system(s)?;
    let repo = s.open()?;
    let bars = out.progress();
    let session = Session::open(&repo, sys, 1, &bars, "rollback cleanup")?;
    let report = rollback::cleanup(&session, a.older_than)?;
    if out.json {
        out.print_json(&serde_json::to_value(&report)?);
        return Ok(exit::OK);
    }
    for k in &report.removed {
        out.say(format!("removed {} (kept copy of {})", k.kept, k.component));
    }
    out.say(format!(
        "{} kept copies removed; {} operations younger than the limit left as they are",
        report.removed.len(),
        report.left
    ));
    Ok(exit::OK)
}

fn history(s: &Settings, out: Output) -> Result<i32> {
    let repo = s.open()?;
    let mut records = audit::history(&repo)?;
    // A delta computed later (`salvage compute`) is not in the audit record.
    for sv in backup_core::salvage::summaries(&repo)? {
        if let Some(r) = records.iter_mut().find(|r| r.id == sv.rollback) {
            r.salvage = Some(sv);
        }
    }
    if out.json {
        out.print_json(&serde_json::to_value(&records)?);
        return Ok(exit::OK);
    }
    if records.is_empty() {
        out.say("no rollback recorded in this repository");
    }
    for r in &records {
        let down = r
            .downtime_secs
            .map(human_secs)
            .unwrap_or_else(|| "-".into());
        out.say(format!(
            "{}  {:<8} {:<11} to {}  by {}@{}  down {}  safety {}{}",
            r.started.format("%Y-%m-%d %H:%M:%S"),
            r.operation.word(),
            r.result,
            short(&r.snapshot),
            r.user,
            r.host,
            down,
            r.safety_snapshot.as_deref().map(short).unwrap_or("-"),
            r.failure
                .as_deref()
                .map(|f| format!("  ({f})"))
                .unwrap_or_default()
        ));
        if let Some(sv) = &r.salvage {
            print_salvage(sv, out);
        }
    }
    Ok(exit::OK)
}

/// The per-table counts of the data written since the snapshot.
fn print_salvage(sv: &backup_core::salvage::SalvageSummary, out: Output) {
    out.say(format!(
        "written since the snapshot: {} (`backup salvage show {}`)",
        sv.line(),
        sv.rollback
    ));
    for t in &sv.tables {
        out.say(format!(
            "  {:<40} +{} ~{} -{}{}",
            t.table,
            t.inserted,
            t.updated,
            t.deleted,
            match t.status {
                backup_core::salvage::TableStatus::Added => "  (table added since the snapshot)",
                backup_core::salvage::TableStatus::Dropped =>
                    "  (table dropped since the snapshot)",
                _ => "",
            }
        ));
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Prints a report; returns the exit code (11 when it was reverted).
pub fn print_report(r: &RollbackReport, out: Output) -> i32 {
    let code = if r.reverted() {
        exit::REVERTED
    } else {
        exit::OK
    };
    if out.json {
        out.print_json(&serde_json::to_value(r).unwrap_or_default());
        return code;
    }
    for st in &r.steps {
        out.say(format!(
            "  {:<22} {:>8}  {}  {}",
            st.name,
            human_secs(st.duration_secs),
            if st.ok { "ok    " } else { "FAILED" },
            st.detail
        ));
        if let Some(o) = &st.output {
            out.say(format!("  {:<22} output: {o}", ""));
        }
    }
    for k in &r.kept {
        out.say(format!("kept {} {}: {}", k.kind, k.component, k.kept));
    }
    if let Some(sv) = &r.salvage {
        print_salvage(sv, out);
    }
    let stopped = r.steps.iter().any(|s| s.name == "stop");
    let down = match (r.downtime_secs, stopped) {
        (Some(d), _) => format!("was down {}", human_secs(d)),
        (None, true) => "is still down".into(),
        (None, false) => "was not stopped".into(),
    };
    match r.result {
        "reverted" => eprintln!(
            "error: {} {} failed and was reverted: the system is as it was before ({}); the application {down}",
            r.operation.word(),
            r.id,
            r.failure.as_deref().unwrap_or("interrupted")
        ),
        result => {
            out.say(format!(
                "{result}: snapshot {} in {}; the application {down}{}",
                short(&r.snapshot),
                human_secs(r.duration_secs),
                r.safety_snapshot
                    .as_deref()
                    .map(|s| format!("; the replaced state is snapshot {}", short(s)))
                    .unwrap_or_default()
            ));
            if let Some(f) = &r.failure {
                eprintln!("warning: {f}");
            }
        }
    }
    code
}
