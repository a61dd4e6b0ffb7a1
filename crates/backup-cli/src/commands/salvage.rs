//! `backup salvage`: the data written since the snapshot a rollback
//! restored. The command parses and prints; computing, storing, exporting
//! and applying are `backup_core::salvage`'s.

use crate::exit;
use crate::output::{human_secs, Output};
use crate::settings::Settings;
use anyhow::{bail, Context, Result};
use backup_core::repository::Lock;
use backup_core::salvage::{self, Change, DatabaseDelta, OnConflict, Salvage, TableDelta};
use backup_core::source::postgres::conninfo::ConnInfo;
use serde_json::json;
use std::path::PathBuf;

/// Flags of `salvage`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    sub: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Compute (again) the delta of a rollback and store it (needs --config; default: the newest rollback).
    Compute(ComputeArgs),
    /// Per-table counts and sample rows of a rollback's stored delta.
    Show(ShowArgs),
    /// Write the delta as SQL that re-applies it (or as CSV files with --format csv).
    Export(ExportArgs),
    /// Re-apply the delta to the rolled-back database (needs --config), with a summary.
    Apply(ApplyArgs),
}

#[derive(Debug, clap::Args)]
struct ComputeArgs {
    /// The rollback's id (or a unique prefix); the newest when omitted.
    rollback: Option<String>,
    /// Tables compared at once, each on its own pair of connections.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The rollback's id (or a unique prefix).
    rollback: String,
    /// Only this table (`schema.name`, or `name`).
    #[arg(long)]
    table: Option<String>,
    /// Sample rows shown per table.
    #[arg(long, default_value_t = 5)]
    rows: usize,
}

/// `--on-conflict` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ConflictArg {
    Skip,
    Overwrite,
    Fail,
}

impl From<ConflictArg> for OnConflict {
    fn from(a: ConflictArg) -> OnConflict {
        match a {
            ConflictArg::Skip => OnConflict::Skip,
            ConflictArg::Overwrite => OnConflict::Overwrite,
            ConflictArg::Fail => OnConflict::Fail,
        }
    }
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Sql,
    Csv,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The rollback's id (or a unique prefix).
    rollback: String,
    /// The SQL file to write (with --format csv: the directory).
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// `sql` (one transaction) or `csv` (one file per table and kind of change).
    #[arg(long, value_enum, default_value = "sql")]
    format: Format,
    /// Rows changed in the target since the rollback: skip them, overwrite them, or apply nothing.
    #[arg(long, value_enum, default_value = "fail")]
    on_conflict: ConflictArg,
    /// The database component, when the rollback switched several.
    #[arg(long)]
    component: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ApplyArgs {
    /// The rollback's id (or a unique prefix).
    rollback: String,
    /// Do everything, report, and roll the transaction back.
    #[arg(long)]
    dry_run: bool,
    /// Rows changed in the target since the rollback: skip them, overwrite them, or apply nothing.
    #[arg(long, value_enum, default_value = "fail")]
    on_conflict: ConflictArg,
    /// The database component, when the rollback switched several.
    #[arg(long)]
    component: Option<String>,
}

/// Runs `salvage`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    match a.sub {
        Sub::Compute(c) => compute(s, c, out),
        Sub::Show(c) => show(s, c, out),
        Sub::Export(c) => export(s, c, out),
        Sub::Apply(c) => apply(s, c, out),
    }
}

fn compute(s: &Settings, a: ComputeArgs, out: Output) -> Result<i32> {
    let system = super::rollback::system(s)?;
    let j = salvage::find_rollback(system, a.rollback.as_deref())?;
    let repo = s.open()?;
    let _lock = Lock::acquire(&repo, false, "salvage compute")?;
    let (id, sv, stats) = salvage::compute_for(&repo, system, &j, a.jobs.into())?;
    if out.json {
        out.print_json(&json!({
            "rollback": sv.rollback,
            "object": id.to_hex(),
            "duration_secs": sv.duration_secs,
            "tables_skipped": stats.skipped,
            "rows_read": stats.rows_read,
            "tables": sv.counts(),
        }));
        return Ok(exit::OK);
    }
    print_counts(&sv, out);
    out.say(format!(
        "computed in {}: {} tables unchanged (not read), {} rows read; stored as salvage {}",
        human_secs(sv.duration_secs),
        stats.skipped,
        stats.rows_read,
        id.short()
    ));
    Ok(exit::OK)
}

fn print_counts(sv: &Salvage, out: Output) {
    let (i, u, d) = sv.totals();
    out.say(format!(
        "rollback {} to snapshot {}: {i} rows inserted, {u} updated, {d} deleted since the snapshot",
        sv.rollback,
        sv.snapshot.get(..8).unwrap_or(&sv.snapshot)
    ));
    for c in sv.counts() {
        out.say(format!(
            "  {:<40} {:<9} +{} ~{} -{}",
            c.table,
            format!("{:?}", c.status).to_lowercase(),
            c.inserted,
            c.updated,
            c.deleted
        ));
    }
}

fn matches_table(t: &TableDelta, want: &str) -> bool {
    t.label() == want || t.name == want
}

fn show(s: &Settings, a: ShowArgs, out: Output) -> Result<i32> {
    let repo = s.open()?;
    let (object, sv) = salvage::find(&repo, &a.rollback)?;
    let tables = |t: &&TableDelta| a.table.as_deref().is_none_or(|w| matches_table(t, w));
    if let Some(w) = &a.table {
        if !sv
            .databases
            .iter()
            .flat_map(|d| &d.tables)
            .any(|t| matches_table(t, w))
        {
            bail!(backup_core::Error::usage(format!(
                "the delta of rollback {} has no table {w}",
                sv.rollback
            )));
        }
    }
    if out.json {
        let dbs: Vec<_> = sv
            .databases
            .iter()
            .map(|d| {
                let ts: Vec<_> = d
                    .tables
                    .iter()
                    .filter(tables)
                    .map(|t| table_json(d, t, a.rows))
                    .collect();
                json!({"name": d.name, "live": d.live, "kept": d.kept,
                       "identities_used": d.identities_used, "tables": ts})
            })
            .collect();
        out.print_json(
            &json!({"rollback": sv.rollback, "snapshot": sv.snapshot, "object": object,
                               "computed": sv.computed, "databases": dbs}),
        );
        return Ok(exit::OK);
    }
    print_counts(&sv, out);
    for d in &sv.databases {
        for t in d
            .tables
            .iter()
            .filter(tables)
            .filter(|t| t.changed() || a.table.is_some())
        {
            print_table(d, t, a.rows, out);
        }
    }
    Ok(exit::OK)
}

/// The first `rows` changes of `t`, secret values masked.
fn sample(d: &DatabaseDelta, t: &TableDelta, rows: usize) -> Vec<Change> {
    t.changes
        .iter()
        .take(rows)
        .map(|c| Change {
            kind: c.kind,
            before: c.before.as_ref().map(|b| d.masked(t, &t.compared, b)),
            after: c.after.as_ref().map(|a| d.masked(t, &t.columns, a)),
            late: c.late,
        })
        .collect()
}

fn table_json(d: &DatabaseDelta, t: &TableDelta, rows: usize) -> serde_json::Value {
    json!({
        "table": t.label(), "status": t.status, "key": t.key, "columns": t.columns,
        "compared": t.compared, "carried": t.carried, "missing": t.missing,
        "inserted": t.inserted, "updated": t.updated, "deleted": t.deleted,
        "snapshot_rows": t.snapshot_rows, "rows_read": t.rows_read,
        "written_after_rollback": t.written_after_rollback,
        "sample": sample(d, t, rows),
    })
}

fn print_table(d: &DatabaseDelta, t: &TableDelta, rows: usize, out: Output) {
    let db = d.name.as_str();
    out.say(format!(
        "\n{db}:{} ({:?}; key {}): +{} ~{} -{}",
        t.label(),
        t.status,
        if t.key.is_empty() {
            "none, rows compared as a multiset".to_string()
        } else {
            t.key.join(", ")
        },
        t.inserted,
        t.updated,
        t.deleted
    ));
    if t.written_after_rollback > 0 {
        out.say(format!(
            "  warning: {} rows of the rolled-back database were written after the rollback: \
             not taken for the snapshot's (export reports the rows they touch as conflicts)",
            t.written_after_rollback
        ));
    }
    if !t.carried.is_empty() {
        out.say(format!(
            "  columns only in the replaced state (carried): {}",
            t.carried.join(", ")
        ));
    }
    if !t.missing.is_empty() {
        out.say(format!(
            "  columns only in the snapshot: {}",
            t.missing.join(", ")
        ));
    }
    let fmt = |cols: &[String], vals: &[Option<String>]| {
        cols.iter()
            .zip(vals)
            .map(|(c, v)| format!("{c}={}", v.as_deref().unwrap_or("NULL")))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for c in sample(d, t, rows) {
        match (&c.before, &c.after) {
            (Some(b), Some(a)) => out.say(format!(
                "  update  {}\n      ->  {}",
                fmt(&t.compared, b),
                fmt(&t.columns, a)
            )),
            (None, Some(a)) => out.say(format!("  insert  {}", fmt(&t.columns, a))),
            (Some(b), None) => out.say(format!("  delete  {}", fmt(&t.compared, b))),
            (None, None) => {}
        }
    }
    if t.changes.len() > rows {
        out.say(format!("  … {} more", t.changes.len() - rows));
    }
}

fn export(s: &Settings, a: ExportArgs, out: Output) -> Result<i32> {
    let repo = s.open()?;
    let (_, sv) = salvage::find(&repo, &a.rollback)?;
    let d = salvage::pick(&sv, a.component.as_deref())?;
    if a.format == Format::Csv {
        let files = salvage::write_csv(d, &a.output)?;
        if out.json {
            out.print_json(&json!({"files": files}));
        }
        out.say(format!(
            "{} CSV files written to {}",
            files.len(),
            a.output.display()
        ));
        return Ok(exit::OK);
    }
    let text = salvage::script(&salvage::export_sql(d, a.on_conflict.into()));
    std::fs::write(&a.output, text).with_context(|| format!("writing {}", a.output.display()))?;
    let (i, u, del) = sv.totals();
    if out.json {
        out.print_json(&json!({"file": a.output, "inserted": i, "updated": u, "deleted": del}));
    }
    out.say(format!(
        "{} written: {i} inserts, {u} updates, {del} deletes of database {} in one transaction; \
         run it against the rolled-back database with psql -v ON_ERROR_STOP=1 -f",
        a.output.display(),
        d.name
    ));
    Ok(exit::OK)
}

fn apply(s: &Settings, a: ApplyArgs, out: Output) -> Result<i32> {
    let system = super::rollback::system(s)?;
    let repo = s.open()?;
    let (_, sv) = salvage::find(&repo, &a.rollback)?;
    let d = salvage::pick(&sv, a.component.as_deref())?;
    let entry = system
        .postgres
        .iter()
        .find(|p| p.name == d.name)
        .ok_or_else(|| {
            backup_core::Error::usage(format!(
                "the system description has no [[postgres]] entry named {:?}",
                d.name
            ))
        })?;
    let target = ConnInfo::parse(&entry.connection)?;
    let r = salvage::apply(d, &target, a.on_conflict.into(), a.dry_run)?;
    if out.json {
        out.print_json(&serde_json::to_value(&r)?);
    } else {
        for c in &r.conflicts {
            println!("conflict: {} {} #{}: {}", c.table, c.kind, c.n, c.why);
        }
        let verb = if r.committed {
            "applied"
        } else if r.dry_run {
            "dry run, rolled back"
        } else {
            "NOT applied"
        };
        out.say(format!(
            "{verb} to {}: {} rows deleted, {} inserted or updated, {} sequences moved forward, {} conflicts",
            r.database,
            r.deleted,
            r.upserted,
            r.sequences,
            r.conflicts.len()
        ));
    }
    if !r.committed && !r.dry_run {
        eprintln!(
            "error: {} rows changed in the target since the rollback; nothing was applied \
             (--on-conflict skip or overwrite decides)",
            r.conflicts.len()
        );
        return Ok(exit::MOVED);
    }
    Ok(exit::OK)
}
