//! Planned rollbacks handed to the daemon (`backup rollback apply PLAN
//! --at TIME`): kept in `<state_dir>/daemon/planned/` (the plan exactly as
//! reviewed, `<id>.plan.json`, and its record, `<id>.json`), applied at
//! their time by the scheduler, refused when the live state moved since
//! the plan was made (as the command refuses), and recorded in the
//! repository's audit history either way.

use anyhow::{bail, Context, Result};
use backup_core::plan::{check_plan, Plan};
use backup_core::rollback::{self, audit, RollbackOptions, Session};
use backup_core::system::System;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A planned rollback whose time passed by more than this while the daemon
/// was down is not applied late: it is recorded as missed.
pub const MISSED_AFTER: Duration = Duration::from_secs(15 * 60);

/// Where a planned rollback stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlannedState {
    /// Waiting for its time.
    Pending,
    /// Being applied.
    Running,
    /// Applied: the system is at the plan's snapshot.
    RolledBack,
    /// Applied, failed, switched back: the system is as it was.
    Reverted,
    /// Not applied: the live state moved since the plan was made.
    Refused,
    /// Not applied, or not finished: an error (see `detail`).
    Failed,
    /// Not applied: the daemon was down when its time came.
    Missed,
    /// Withdrawn before its time.
    Cancelled,
}

impl PlannedState {
    /// The word in the status document and logs.
    pub fn word(self) -> &'static str {
        match self {
            PlannedState::Pending => "pending",
            PlannedState::Running => "running",
            PlannedState::RolledBack => "rolled-back",
            PlannedState::Reverted => "reverted",
            PlannedState::Refused => "refused",
            PlannedState::Failed => "failed",
            PlannedState::Missed => "missed",
            PlannedState::Cancelled => "cancelled",
        }
    }
}

/// One planned rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRollback {
    /// Its id: the first 16 hex digits of the plan's hash.
    pub id: String,
    /// The plan's hash.
    pub plan_hash: String,
    /// The snapshot it rolls back to.
    pub snapshot: String,
    /// When it is applied.
    pub at: DateTime<Utc>,
    /// When it was handed over.
    pub submitted: DateTime<Utc>,
    /// Whether the safety snapshot is skipped.
    pub no_safety_snapshot: bool,
    /// Where it stands.
    pub state: PlannedState,
    /// What happened, in a line.
    pub detail: Option<String>,
    /// The rollback's id in the audit history, once it ran.
    pub rollback_id: Option<String>,
    /// When it ended.
    pub finished: Option<DateTime<Utc>>,
}

/// How a planned rollback ended.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOutcome {
    /// The end state.
    pub state: PlannedState,
    /// What happened.
    pub detail: String,
    /// The rollback's id.
    pub rollback_id: Option<String>,
}

/// The directory of planned rollbacks.
#[derive(Debug, Clone)]
pub struct PlannedStore {
    dir: PathBuf,
}

impl PlannedStore {
    /// The store under `state_dir`.
    pub fn new(state_dir: &Path) -> PlannedStore {
        PlannedStore {
            dir: state_dir.join("daemon").join("planned"),
        }
    }

    /// Where the plan of `id` is kept.
    pub fn plan_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.plan.json"))
    }

    /// Takes a plan (its JSON, as reviewed) to apply at `at`: refuses one
    /// that is not a plan, was edited, or is already pending.
    pub fn submit(
        &self,
        plan_json: &serde_json::Value,
        at: DateTime<Utc>,
        no_safety_snapshot: bool,
        now: DateTime<Utc>,
        pending: &[PlannedRollback],
    ) -> Result<PlannedRollback> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let tmp = self.dir.join(".incoming.plan.json");
        write_durably(&tmp, &serde_json::to_vec_pretty(plan_json)?)?;
        let plan = Plan::load(&tmp).and_then(|p| p.check_hash().map(|_| p));
        let plan = match plan {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
        };
        let id = plan.hash.get(..16).unwrap_or(&plan.hash).to_string();
        if pending.iter().any(|p| p.id == id) {
            let _ = std::fs::remove_file(&tmp);
            bail!("the plan {id} is already planned: cancel it first to plan it again");
        }
        std::fs::rename(&tmp, self.plan_path(&id))
            .with_context(|| format!("keeping the plan in {}", self.dir.display()))?;
        let p = PlannedRollback {
            id,
            plan_hash: plan.hash.clone(),
            snapshot: plan.snapshot.clone(),
            at,
            submitted: now,
            no_safety_snapshot,
            state: PlannedState::Pending,
            detail: None,
            rollback_id: None,
            finished: None,
        };
        self.save(&p)?;
        Ok(p)
    }

    /// Every planned rollback, oldest time first.
    pub fn list(&self) -> Result<Vec<PlannedRollback>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".json") || name.ends_with(".plan.json") || name.starts_with('.') {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            out.push(
                serde_json::from_slice(&bytes).with_context(|| {
                    format!("the planned rollback {} is damaged", path.display())
                })?,
            );
        }
        out.sort_by(|a: &PlannedRollback, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Writes a record.
    pub fn save(&self, p: &PlannedRollback) -> Result<()> {
        write_durably(
            &self.dir.join(format!("{}.json", p.id)),
            &serde_json::to_vec_pretty(p)?,
        )
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("a parent");
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The state of a pending rollback found at start-up: one whose time passed
/// by more than [`MISSED_AFTER`] is missed; one that was running when the
/// daemon stopped failed (its journal says how to finish it).
pub fn at_start(p: &PlannedRollback, now: DateTime<Utc>) -> Option<(PlannedState, String)> {
    let late = chrono::Duration::from_std(MISSED_AFTER).unwrap_or_default();
    match p.state {
        PlannedState::Pending if now - p.at > late => Some((
            PlannedState::Missed,
            format!(
                "the daemon was not running at {}: not applied late; plan it again",
                p.at.to_rfc3339()
            ),
        )),
        PlannedState::Running => Some((
            PlannedState::Failed,
            "the daemon stopped while the rollback ran: `backup rollback status` shows it, \
             `backup rollback resume` finishes or reverts it"
                .into(),
        )),
        _ => None,
    }
}

/// Applies a planned rollback (blocking): the plan is checked again
/// against the repository and the live system; a plan whose live state
/// moved is refused and the refusal recorded in the audit history.
pub fn apply(system: &System, plan_path: &Path, no_safety_snapshot: bool) -> PlanOutcome {
    match try_apply(system, plan_path, no_safety_snapshot) {
        Ok(o) => o,
        Err(e) => PlanOutcome {
            state: PlannedState::Failed,
            detail: format!("{e:#}"),
            rollback_id: None,
        },
    }
}

fn try_apply(system: &System, plan_path: &Path, no_safety_snapshot: bool) -> Result<PlanOutcome> {
    let plan = Plan::load(plan_path)?;
    let repo = crate::jobs::open_repository(system)?;
    let checked = check_plan(&repo, system, &plan)?;
    if !checked.moved.is_empty() {
        let what: Vec<String> = checked
            .moved
            .iter()
            .map(|m| format!("{}: {}", m.component, m.what))
            .collect();
        let why = format!(
            "the live state moved since the plan was made: {}",
            what.join("; ")
        );
        audit::record_refusal(&repo, &plan.hash, &plan.snapshot, &why)?;
        return Ok(PlanOutcome {
            state: PlannedState::Refused,
            detail: why,
            rollback_id: None,
        });
    }
    let progress = backup_core::NoProgress;
    let session = Session::open(&repo, system, 2, &progress, "planned rollback (backupd)")?;
    let options = RollbackOptions {
        no_safety_snapshot,
        plan_hash: Some(plan.hash.clone()),
    };
    let r = rollback::rollback(&session, &checked.id, &checked.snapshot, &options)?;
    let state = if r.reverted() {
        PlannedState::Reverted
    } else {
        PlannedState::RolledBack
    };
    let detail = match (&r.failure, r.downtime_secs) {
        (Some(f), _) if r.reverted() => format!("reverted, the system is as it was: {f}"),
        (_, Some(d)) => format!("rolled back to {}, down {d:.2}s", short(&r.snapshot)),
        _ => format!("rolled back to {}", short(&r.snapshot)),
    };
    Ok(PlanOutcome {
        state,
        detail,
        rollback_id: Some(r.id),
    })
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}
