//! Rollback: the databases and file trees of a system back to a snapshot
//! as one unit, with the application down only for the switch.
//!
//! A rollback runs in steps, each written to a journal in the state
//! directory before it acts ([`journal`]): *preflight* (every name decided,
//! every check made), *stage* (each component restored beside its live
//! copy and verified, the application still running), *stop* (the stop
//! hook: downtime starts), *switch* (renames, [`switch`]), *start* and
//! *health check* (downtime ends when it passes). A failure from the stop
//! hook on switches everything back; a killed run is finished (when every
//! component was switched) or reverted (otherwise) by running it again or
//! by [`resume`]. After success the replaced state is captured as a
//! safety snapshot tagged `pre-rollback`, and the run is recorded in the
//! repository's audit history ([`audit`]).

pub mod audit;
mod guard;
pub mod journal;
mod run;
mod stage;
pub mod switch;
mod undo;

pub use guard::SystemLock;
pub use journal::{Journal, Operation, Phase, StateDir, StepRecord};
pub use undo::{cleanup, undo, CleanupReport};

use crate::create::KnownParents;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::progress::Progress;
use crate::repository::{Lock, Repository};
use crate::snapshot::{Node, Snapshot};
use crate::source::postgres::conninfo::ConnInfo;
use crate::system::System;
use serde::Serialize;
use std::sync::Mutex;

/// Everything a rollback step needs, with the locks held across all steps:
/// the system lock (one rollback, undo or restore at a time) and a shared
/// repository lock (no prune removes what is being restored).
pub struct Session<'a> {
    /// The repository.
    pub repo: &'a Repository,
    /// The system description.
    pub system: &'a System,
    /// Parallel connections and pack readers.
    pub jobs: usize,
    /// Progress of staging.
    pub progress: &'a dyn Progress,
    /// The rollback state in the system's state directory.
    pub state: StateDir,
    /// The listings the trees were staged from, kept for the safety
    /// snapshot (the kept trees' parents, most often).
    staged_listings: Mutex<KnownParents>,
    _system_lock: SystemLock,
    _repo_lock: Lock,
}

impl<'a> Session<'a> {
    /// Takes the locks for `operation`.
    pub fn open(
        repo: &'a Repository,
        system: &'a System,
        jobs: usize,
        progress: &'a dyn Progress,
        operation: &str,
    ) -> Result<Session<'a>> {
        let state = StateDir::new(&system.state_dir);
        let system_lock = lock_system(system, operation)?;
        let repo_lock = Lock::acquire(repo, false, operation)?;
        Ok(Session {
            repo,
            system,
            jobs: jobs.max(1),
            progress,
            state,
            staged_listings: Mutex::default(),
            _system_lock: system_lock,
            _repo_lock: repo_lock,
        })
    }

    /// Keeps the listing a tree was staged from (stored as `tree`).
    /// Its path map is built before the lock is taken, so that trees
    /// staged at once do not wait on each other for it.
    pub(crate) fn keep_listing(&self, tree: &[Id], nodes: &[Node]) {
        let listing = KnownParents::ready(nodes.iter().cloned());
        let mut kept = self
            .staged_listings
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        kept.insert(tree, listing);
    }

    /// The listings kept by [`Session::keep_listing`].
    pub(crate) fn staged_listings(&self) -> KnownParents {
        let kept = self
            .staged_listings
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        kept.clone()
    }

    /// The connection of the database component `name`.
    pub fn connection(&self, name: &str) -> Result<ConnInfo> {
        let entry = self
            .system
            .postgres
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                Error::usage(format!(
                    "the system description has no [[postgres]] entry named {name:?}, which the \
                     rollback journal names: use the file the rollback was started with"
                ))
            })?;
        ConnInfo::parse(&entry.connection)
    }
}

/// Takes the system lock of `system` (in its state directory) for
/// `operation`: a restore with the system description takes it too, so
/// that it never runs beside a rollback of the same system.
pub fn lock_system(system: &System, operation: &str) -> Result<SystemLock> {
    let state = StateDir::new(&system.state_dir);
    state.create()?;
    SystemLock::acquire(&state.lock_path(), operation)
}

/// Options of a rollback.
#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    /// Do not capture the replaced state as a safety snapshot.
    pub no_safety_snapshot: bool,
    /// The hash of the reviewed plan being carried out.
    pub plan_hash: Option<String>,
}

/// Where a component's replaced copy is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    /// The component name.
    pub component: String,
    /// `files` or `postgres`.
    pub kind: &'static str,
    /// The kept path or database name.
    pub kept: String,
}

/// What a rollback, undo or resume did.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    /// The operation's id.
    pub id: String,
    /// `rollback` or `undo`.
    pub operation: Operation,
    /// `rolled-back`, `undone`, or `reverted` (the system is as before).
    pub result: &'static str,
    /// The snapshot rolled back to.
    pub snapshot: String,
    /// The safety snapshot of the replaced state.
    pub safety_snapshot: Option<String>,
    /// How long the application was down (stop hook to passed health
    /// check), in seconds.
    pub downtime_secs: Option<f64>,
    /// Wall time from the start of the operation, in seconds.
    pub duration_secs: f64,
    /// Every step, timed.
    pub steps: Vec<StepRecord>,
    /// Where the replaced copies are kept.
    pub kept: Vec<Kept>,
    /// Why it was reverted.
    pub failure: Option<String>,
    /// Per-table counts of the data written since the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub salvage: Option<crate::salvage::SalvageSummary>,
}

impl RollbackReport {
    /// The report of a journal.
    pub fn of(j: &Journal) -> RollbackReport {
        let result = match (j.reverted, j.operation) {
            (true, _) => "reverted",
            (false, Operation::Rollback) => "rolled-back",
            (false, Operation::Undo) => "undone",
        };
        let end = j.finished.unwrap_or_else(chrono::Utc::now);
        RollbackReport {
            id: j.id.clone(),
            operation: j.operation,
            result,
            snapshot: j.snapshot.clone(),
            safety_snapshot: j.safety_snapshot.clone(),
            downtime_secs: j.downtime_secs,
            duration_secs: (end - j.started).num_milliseconds() as f64 / 1000.0,
            steps: j.steps.clone(),
            kept: if j.reverted { Vec::new() } else { kept_of(j) },
            failure: j.failure.clone(),
            salvage: j.salvage.clone(),
        }
    }

    /// Whether the operation was reverted.
    pub fn reverted(&self) -> bool {
        self.result == "reverted"
    }
}

fn kept_of(j: &Journal) -> Vec<Kept> {
    j.components
        .iter()
        .map(|c| Kept {
            component: c.name().to_string(),
            kind: match c {
                switch::Switch::Files(_) => "files",
                switch::Switch::Postgres(_) => "postgres",
            },
            kept: c.kept(),
        })
        .collect()
}

/// Rolls the system back to snapshot `id`. An unfinished earlier operation
/// is first finished or reverted ([`resume`]); when it was a rollback to
/// the same snapshot and it finished, that is the result.
pub fn rollback(
    session: &Session,
    id: &Id,
    snap: &Snapshot,
    options: &RollbackOptions,
) -> Result<RollbackReport> {
    if let Some(report) = resume(session)? {
        // The same rollback, finished: done. Reverted, or another one: go on.
        if !report.reverted() && report.snapshot == id.to_hex() {
            return Ok(report);
        }
    }
    let mut j = run::new_journal(Operation::Rollback, id.to_hex(), options);
    stage::preflight(session, snap, &mut j)?;
    let started = j.started;
    run::record_ok(
        &mut j,
        "preflight",
        started,
        "every component found, names decided, space and filesystems checked",
    );
    session.state.save(&j)?;
    run::failpoint("staging");
    if let Err(e) = stage::stage_all(session, snap, &session.state, &mut j) {
        run::abandon(session, &mut j, &e)?;
        return Err(e.context("nothing was changed (the staged copies were removed)"));
    }
    run::execute(session, j)
}

/// Finishes or reverts an unfinished operation; `None` when there is none.
pub fn resume(session: &Session) -> Result<Option<RollbackReport>> {
    let Some(j) = session.state.current()? else {
        return Ok(None);
    };
    run::recover(session, j).map(Some)
}

/// The unfinished operation in `state_dir`, if any (without taking locks).
pub fn status(system: &System) -> Result<Option<Journal>> {
    StateDir::new(&system.state_dir).current()
}

/// The snapshots that rollback state in `state_dir` refers to, with why:
/// the target of an unfinished operation, and the target and safety
/// snapshot of every finished rollback whose kept copies are still there.
/// `forget` never removes them.
pub fn pinned_snapshots(system: &System) -> Result<Vec<(Id, String)>> {
    let state = StateDir::new(&system.state_dir);
    let mut out = Vec::new();
    let mut pin = |hex: &str, why: String| {
        if let Ok(id) = Id::from_hex(hex) {
            out.push((id, why));
        }
    };
    if let Some(j) = state.current()? {
        pin(
            &j.snapshot,
            format!("unfinished {} {}", j.operation.word(), j.id),
        );
    }
    for j in state.history()? {
        if j.reverted || j.cleaned {
            continue;
        }
        let why = format!("kept state of {} {}", j.operation.word(), j.id);
        pin(&j.snapshot, why.clone());
        if let Some(s) = &j.safety_snapshot {
            pin(s, why);
        }
    }
    Ok(out)
}
