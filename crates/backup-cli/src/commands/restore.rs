//! `backup restore`.

use crate::exit;
use crate::output::{human_bytes, Output};
use crate::settings::Settings;
use anyhow::{bail, Result};
use backup_core::restore::{
    restore_database, restore_files, DatabaseRestoreOptions, RestoreOptions,
};
use backup_core::snapshot::Snapshot;
use backup_core::Id;
use std::path::PathBuf;

/// Flags of `restore`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Snapshot id, unique prefix, or `latest`; ID:/PATH restores one captured path with its content at the top of the target.
    snapshot: String,
    /// Where to restore the files: captured paths are recreated under it, or with ID:/PATH or --component that content is put at it (default then: the captured path itself).
    #[arg(long, short = 't')]
    target: Option<PathBuf>,
    /// Restore one file component, by name (`backup show` lists them), with its content at the top of the target.
    #[arg(long, value_name = "NAME")]
    component: Option<String>,
    /// Leave extended attributes out (for a filesystem or user that cannot set them).
    #[arg(long)]
    no_xattrs: bool,
    /// Restore only this captured path and what lies below it (repeatable; absolute, as `show` lists).
    #[arg(long = "include", value_name = "PATH")]
    include: Vec<String>,
    /// With `latest`: the newest snapshot carrying these tags.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Replace a non-empty file target atomically; its current content is kept next to it.
    #[arg(long)]
    overwrite: bool,
    /// Restore the captured database to this database (libpq connection string; created if absent, must be empty).
    #[arg(long, value_name = "CONNINFO")]
    postgres_target: Option<String>,
    /// Which captured database to restore, when the snapshot holds several.
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
    /// Restore beside the target database, verify, then swap names (the old one is kept as <db>__before_restore_<time>).
    #[arg(long)]
    replace: bool,
    /// Parallel database connections (data load and index builds).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// Skip ownership and privileges (for a server without the same roles).
    #[arg(long)]
    no_owner: bool,
    /// Replay captured roles and tablespaces first.
    #[arg(long)]
    globals: bool,
    /// Parallel pack readers for files (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Runs `restore`.
pub fn run(s: &Settings, mut a: Args, out: Output) -> Result<i32> {
    let (spec, path) = split_spec(&a.snapshot);
    if path.is_some() && a.component.is_some() {
        bail!(backup_core::Error::usage(
            "give either ID:/PATH or --component, not both"
        ));
    }
    let selects = path.is_some() || a.component.is_some();
    if a.target.is_none() && a.postgres_target.is_none() && !selects {
        bail!(backup_core::Error::usage("say where to restore: --target DIR for files (or ID:/PATH, --component NAME to restore in place), --postgres-target CONNINFO for the database"));
    }
    let repo = s.open()?;
    // With the system description, never beside a rollback of that system.
    let _system_lock = s
        .system()
        .map(|sys| backup_core::rollback::lock_system(sys, "restore"))
        .transpose()?;
    let (id, snap) = super::pick(&repo, spec, &a.tags)?;
    let source = match (&path, &a.component) {
        (Some(p), _) => Some(p.to_string()),
        (None, Some(name)) => Some(component_path(&snap, &id, name)?),
        (None, None) => None,
    };
    if a.target.is_none() {
        a.target = source.as_ref().map(PathBuf::from);
    }
    let mut json = serde_json::json!({"snapshot": id.to_hex()});
    if let Some(conn) = &a.postgres_target {
        let dbs: Vec<_> = snap
            .databases()
            .filter(|d| a.database.as_ref().is_none_or(|n| &d.database == n))
            .collect();
        let comp = match dbs.as_slice() {
            [one] => *one,
            [] => bail!(backup_core::Error::usage(format!(
                "snapshot {} holds no database{}",
                id.short(),
                a.database
                    .as_ref()
                    .map(|n| format!(" named {n}"))
                    .unwrap_or_default()
            ))),
            many => bail!(backup_core::Error::usage(format!(
                "snapshot {} holds several databases ({}): choose one with --database",
                id.short(),
                many.iter()
                    .map(|d| d.database.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        };
        let options = DatabaseRestoreOptions {
            target: conn.clone(),
            replace: a.replace,
            jobs: a.jobs.into(),
            no_owner: a.no_owner,
            globals: a.globals,
        };
        let bars = out.progress();
        let r = restore_database(&repo, comp, &options, &bars);
        bars.finish();
        let r = r?;
        out.say(format!(
            "restored database {} of snapshot {} into {}: {} tables, {} rows, {}, verified, in {:.1}s",
            comp.database,
            id.short(),
            r.database,
            r.tables,
            r.rows,
            human_bytes(r.bytes),
            r.duration_secs
        ));
        if let (Some(prev), Some(d)) = (&r.previous, r.downtime_secs) {
            out.say(format!(
                "swapped in with {:.3}s of downtime; the previous database is kept as {prev}",
                d
            ));
        }
        json["database"] = serde_json::to_value(&r)?;
    } else if a.replace {
        bail!(backup_core::Error::usage(
            "--replace applies to --postgres-target; for files use --overwrite"
        ));
    }
    if let Some(target) = a.target {
        if snap.file_components().next().is_none() {
            bail!(backup_core::Error::usage(format!(
                "snapshot {} holds no files to restore to --target",
                id.short()
            )));
        }
        let options = RestoreOptions {
            target,
            source,
            include: a.include,
            overwrite: a.overwrite,
            workers: a.threads,
            no_xattrs: a.no_xattrs,
            scratch: false,
        };
        let bars = out.progress();
        let r = restore_files(&repo, &snap, &options, &bars);
        bars.finish();
        let r = r?;
        out.say(format!(
            "restored {}snapshot {} to {}: {} files, {} other entries, {}, verified, in {:.1}s",
            r.source
                .as_ref()
                .map(|p| format!("{p} of "))
                .unwrap_or_default(),
            id.short(),
            r.target.display(),
            r.files,
            r.other,
            human_bytes(r.bytes),
            r.duration_secs
        ));
        if r.copied > 0 {
            out.say(format!(
                "{} unchanged files were copied from the target's current content and checked",
                r.copied
            ));
        }
        if let Some(p) = &r.previous {
            out.say(format!(
                "the previous content of the target is kept at {}",
                p.display()
            ));
        }
        let files = serde_json::to_value(&r)?;
        for (k, v) in files.as_object().cloned().unwrap_or_default() {
            json[k] = v;
        }
    }
    if out.json {
        out.print_json(&json);
    }
    Ok(exit::OK)
}

/// Splits `ID:/PATH` into the snapshot and the captured path.
fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((id, path)) if path.starts_with('/') => (id, Some(path)),
        _ => (spec, None),
    }
}

/// The captured path of the file component called `name`.
fn component_path(snap: &Snapshot, id: &Id, name: &str) -> Result<String> {
    let found = snap.file_components().find(|fc| fc.name() == name);
    match found {
        Some(fc) => Ok(fc.path.clone()),
        None => bail!(backup_core::Error::usage(format!(
            "snapshot {} has no file component named {name:?}; it has: {}",
            id.short(),
            snap.file_components()
                .map(|fc| format!("{} ({})", fc.name(), fc.path))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
