//! Rollback plans: what rolling the system back to a snapshot would change,
//! written down for review before anything is touched.
//!
//! A plan compares every component the system description names with its
//! capture in the snapshot: for a database the schema (stored DDL against
//! the live `pg_dump`), the row counts and the rows written since the
//! snapshot (estimated from the statistics counters the capture recorded);
//! for a file tree the files added, removed and changed (from the listing
//! and live hashes, nothing is downloaded; a secret tree shows counts and a
//! hash only). It adds sizes and a time estimate, fingerprints of the
//! snapshot and of each component's live state, and a hash over itself.
//!
//! `rollback apply` then loads the plan ([`Plan::load`]), refuses an
//! edited one ([`Plan::check_hash`]) and refuses to act while
//! [`live_moved`] finds a component whose live state is no longer the one
//! the plan saw: a reviewed plan is only ever applied to what was reviewed.

mod ahead;
mod database;
mod document;
mod estimate;
mod files;
mod live_db;
mod moved;
mod render;
mod schema;

pub use ahead::LiveAhead;
pub use database::{
    DatabasePlan, LiveDatabaseState, LiveTable, RowSource, Statistics, TablePlan, Written,
};
pub use files::FilesPlan;
pub use moved::{check_plan, live_moved, CheckedPlan, Moved};
pub use render::{render_markdown, render_text};
pub use schema::{SchemaChange, SchemaDiff, SchemaObject};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::{Component, FilesComponent, PostgresComponent, Snapshot};
use crate::source::postgres::conninfo::ConnInfo;
use crate::system::{FilesEntry, PostgresEntry, System};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The plan format version.
pub const PLAN_VERSION: u32 = 1;

/// A rollback plan (see the module documentation and `docs/FORMAT.md`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    /// Plan format version, [`PLAN_VERSION`].
    pub version: u32,
    /// When the plan was made (UTC).
    pub created: DateTime<Utc>,
    /// The host it was made on.
    pub host: String,
    /// The snapshot to roll back to (full id, hex).
    pub snapshot: String,
    /// The snapshot's capture time.
    pub snapshot_time: DateTime<Utc>,
    /// The snapshot's tags.
    #[serde(default)]
    pub snapshot_tags: Vec<String>,
    /// The snapshot's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_label: Option<String>,
    /// The database components, in system description order.
    pub databases: Vec<DatabasePlan>,
    /// The file components, in system description order.
    pub files: Vec<FilesPlan>,
    /// Components of the snapshot that the system description does not
    /// name: they are not part of the rollback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_rolled_back: Vec<String>,
    /// Bytes the rollback restores (sum of the component sizes).
    pub bytes_to_restore: u64,
    /// Free space the staged copies need (an estimate, see `estimate.rs`).
    pub free_space_needed: u64,
    /// Estimated time to stage everything, in seconds (an estimate from
    /// sizes, not a measurement).
    pub estimated_duration_secs: f64,
    /// Estimated time the application is down, in seconds: the switch is
    /// renames; the stop, start and health-check hooks come on top.
    pub estimated_downtime_secs: f64,
    /// What the plan was made against.
    pub fingerprints: Fingerprints,
    /// SHA-256 (hex) of the canonical JSON of the plan without this field.
    #[serde(default)]
    pub hash: String,
    /// The JSON the plan was loaded from, for [`Plan::check_hash`].
    #[serde(skip)]
    loaded_from: Option<serde_json::Value>,
}

/// Fingerprints of what a plan was made against.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fingerprints {
    /// SHA-256 over the snapshot id and its component list.
    pub snapshot: String,
    /// Per component name: SHA-256 of its live state when the plan was made.
    pub components: BTreeMap<String, String>,
}

/// The system's components paired with their captures in the snapshot.
struct Pairs<'a> {
    databases: Vec<(&'a PostgresEntry, &'a PostgresComponent)>,
    files: Vec<(&'a FilesEntry, &'a FilesComponent)>,
    not_rolled_back: Vec<String>,
}

/// Makes the plan of rolling `system` back to snapshot `id`, taking the
/// live side from `ahead` where it was read ahead. Refuses
/// (kind [`crate::ErrorKind::Usage`]) when the snapshot lacks a component
/// the system description names, or captured a file component elsewhere.
pub fn make_plan(
    repo: &Repository,
    system: &System,
    id: Id,
    snap: &Snapshot,
    ahead: Option<&LiveAhead>,
    progress: &dyn Progress,
) -> Result<Plan> {
    let pairs = pair_components(system, id, snap)?;
    let (databases, files) = plan_components(repo, &pairs, ahead, progress)?;
    let mut components = BTreeMap::new();
    components.extend(databases.iter().map(|(d, f)| (d.name.clone(), f.clone())));
    components.extend(files.iter().map(|(f, fp)| (f.name.clone(), fp.clone())));
    let databases: Vec<DatabasePlan> = databases.into_iter().map(|(d, _)| d).collect();
    let files: Vec<FilesPlan> = files.into_iter().map(|(f, _)| f).collect();
    let sizes = estimate::estimate(&databases, &files);
    let mut plan = Plan {
        version: PLAN_VERSION,
        created: Utc::now(),
        host: crate::repository::hostname(),
        snapshot: id.to_hex(),
        snapshot_time: snap.time,
        snapshot_tags: snap.tags.clone(),
        snapshot_label: snap.label.clone(),
        databases,
        files,
        not_rolled_back: pairs.not_rolled_back,
        bytes_to_restore: sizes.bytes,
        free_space_needed: sizes.space,
        estimated_duration_secs: sizes.duration_secs,
        estimated_downtime_secs: sizes.downtime_secs,
        fingerprints: Fingerprints {
            snapshot: snapshot_fingerprint(id, snap),
            components,
        },
        hash: String::new(),
        loaded_from: None,
    };
    plan.hash = plan.compute_hash()?;
    Ok(plan)
}

/// Finds the capture of every component the system names.
fn pair_components<'a>(system: &'a System, id: Id, snap: &'a Snapshot) -> Result<Pairs<'a>> {
    let missing = |kind: &str, name: &str| {
        let held: Vec<String> = snap.components.iter().map(component_label).collect();
        Error::usage(format!(
            "snapshot {} has no {kind} component named {name:?}, which the system description \
             names (it holds: {}); roll back to a snapshot taken with `backup create --config FILE`",
            id.short(),
            if held.is_empty() { "nothing".to_string() } else { held.join(", ") }
        ))
    };
    let mut databases = Vec::new();
    for e in &system.postgres {
        let c = find_database(snap, e);
        databases.push((e, c.ok_or_else(|| missing("database", &e.name))?));
    }
    let mut files = Vec::new();
    for e in &system.files {
        let c = snap.file_components().find(|f| f.name() == e.name);
        let c = c.ok_or_else(|| missing("files", &e.name))?;
        if std::path::Path::new(&c.path) != e.path {
            return Err(Error::usage(format!(
                "files component {:?}: snapshot {} captured {}, the system description names {}; \
                 a rollback puts files back where they were captured, so fix the description or \
                 pick another snapshot",
                e.name,
                id.short(),
                c.path,
                e.path.display()
            )));
        }
        files.push((e, c));
    }
    let paired = |c: &Component| match c {
        Component::Postgres(p) => databases.iter().any(|(_, d)| std::ptr::eq(*d, &**p)),
        Component::Files(f) => files.iter().any(|(_, x)| std::ptr::eq(*x, f)),
    };
    let not_rolled_back = snap
        .components
        .iter()
        .filter(|c| !paired(c))
        .map(component_label)
        .collect();
    Ok(Pairs {
        databases,
        files,
        not_rolled_back,
    })
}

/// The capture of a `[[postgres]]` entry: the database component of that
/// name, else the one unnamed database component (`create --postgres`)
/// of the entry's database.
fn find_database<'a>(snap: &'a Snapshot, e: &PostgresEntry) -> Option<&'a PostgresComponent> {
    if let Some(d) = snap.databases().find(|d| d.name == e.name) {
        return Some(d);
    }
    let db = ConnInfo::parse(&e.connection).ok()?.dbname().to_string();
    let mut unnamed = snap
        .databases()
        .filter(|d| d.name.is_empty() && d.database == db);
    match (unnamed.next(), unnamed.next()) {
        (Some(d), None) => Some(d),
        _ => None,
    }
}

/// A component's name as the system description would give it.
fn component_label(c: &Component) -> String {
    match c {
        Component::Files(f) => f.name().to_string(),
        Component::Postgres(p) if !p.name.is_empty() => p.name.clone(),
        Component::Postgres(p) => p.database.clone(),
    }
}

type Planned<T> = Vec<(T, String)>;

/// File trees planned at once: walking a tree is mostly waiting on
/// `lstat`, so two trees at a time keep the cores busy.
const FILE_PLANNERS: usize = 2;

/// Plans the databases (one thread) and the file trees ([`FILE_PLANNERS`]
/// at a time) side by side, each on a progress lane of its own: each
/// component's plan with its live fingerprint.
fn plan_components(
    repo: &Repository,
    pairs: &Pairs<'_>,
    ahead: Option<&LiveAhead>,
    progress: &dyn Progress,
) -> Result<(Planned<DatabasePlan>, Planned<FilesPlan>)> {
    let lane = crate::progress::beside(progress);
    std::thread::scope(|s| {
        let dbs = s.spawn(|| {
            pairs
                .databases
                .iter()
                .map(|(e, c)| {
                    let live = ahead.and_then(|a| a.database(&e.name));
                    database::plan_database(repo, e, c, live, &*lane)
                })
                .collect::<Result<Vec<_>>>()
        });
        // Each tree on a line of its own: two are planned at once.
        let files = crate::parallel::map_parallel(&pairs.files, FILE_PLANNERS, |(e, c)| {
            let live = ahead.and_then(|a| a.tree(&e.name, &c.path, &c.excludes, !c.no_xattrs));
            files::plan_files(repo, e, c, live, &*crate::progress::beside(progress))
        });
        let dbs = dbs.join().unwrap_or_else(|_| {
            Err(Error::new(
                crate::error::ErrorKind::Source,
                "planning the databases panicked",
            ))
        });
        Ok((dbs?, files?))
    })
}

/// SHA-256 over the snapshot id and its components (kind and name, in
/// order): the id already names the manifest's exact bytes.
pub fn snapshot_fingerprint(id: Id, snap: &Snapshot) -> String {
    let mut text = format!("snapshot {}\n", id.to_hex());
    for c in &snap.components {
        let kind = match c {
            Component::Files(_) => "files",
            Component::Postgres(_) => "postgres",
        };
        text.push_str(&format!("{kind} {}\n", component_label(c)));
    }
    Id::sha256(text.as_bytes()).to_hex()
}

impl Plan {
    /// Refuses (kind [`crate::ErrorKind::Usage`]) a snapshot other than the
    /// one the plan was made for, or one whose components differ.
    pub fn check_snapshot(&self, id: Id, snap: &Snapshot) -> Result<()> {
        if self.snapshot != id.to_hex()
            || self.fingerprints.snapshot != snapshot_fingerprint(id, snap)
        {
            return Err(Error::usage(format!(
                "the plan was made for snapshot {}, not for {}: make a new plan",
                self.snapshot.get(..8).unwrap_or(&self.snapshot),
                id.short()
            )));
        }
        Ok(())
    }
}
