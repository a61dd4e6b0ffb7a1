//! What a rollback leaves in the repository: the safety snapshot of the
//! state it replaced, and an audit record (`audit/<id>`, sealed like every
//! other object) of who rolled back what, when, with which result.

use super::journal::{Journal, Operation};
use super::switch::Switch;
use super::Session;
use crate::create::{create_snapshot, CreateOptions, FileSource, PostgresSource};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repository::Repository;
use crate::store::Kind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The audit record format version.
pub const AUDIT_VERSION: u32 = 1;

/// The tag of safety snapshots.
pub const PRE_ROLLBACK_TAG: &str = "pre-rollback";

/// One component of an audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditComponent {
    /// The component name.
    pub name: String,
    /// `files` or `postgres`.
    pub kind: String,
    /// The live path or database.
    pub live: String,
    /// Where the replaced copy was kept.
    pub kept: String,
}

/// One rollback or undo, as recorded in the repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// [`AUDIT_VERSION`].
    pub version: u32,
    /// The operation's id.
    pub id: String,
    /// Rollback or undo.
    pub operation: Operation,
    /// Who ran it.
    pub user: String,
    /// On which host.
    pub host: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it ended.
    pub finished: Option<DateTime<Utc>>,
    /// The snapshot rolled back to.
    pub snapshot: String,
    /// The state it replaced, as a snapshot (the safety snapshot).
    pub safety_snapshot: Option<String>,
    /// For an undo: the rollback undone.
    pub undoes: Option<String>,
    /// The hash of the plan carried out, if one was.
    pub plan_hash: Option<String>,
    /// `rolled-back`, `undone` or `reverted`.
    pub result: String,
    /// Why it was reverted.
    pub failure: Option<String>,
    /// Seconds the application was down.
    pub downtime_secs: Option<f64>,
    /// The components.
    pub components: Vec<AuditComponent>,
    /// Every step, timed.
    pub steps: Vec<super::StepRecord>,
    /// Per-table counts of the data written since the snapshot, when
    /// computed during the rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salvage: Option<crate::salvage::SalvageSummary>,
}

impl AuditRecord {
    /// The record of a finished journal.
    pub fn of(j: &Journal) -> AuditRecord {
        let report = super::RollbackReport::of(j);
        AuditRecord {
            version: AUDIT_VERSION,
            id: j.id.clone(),
            operation: j.operation,
            user: j.user.clone(),
            host: j.host.clone(),
            started: j.started,
            finished: j.finished,
            snapshot: j.snapshot.clone(),
            safety_snapshot: j.safety_snapshot.clone(),
            undoes: j.undoes.clone(),
            plan_hash: j.plan_hash.clone(),
            result: report.result.to_string(),
            failure: j.failure.clone(),
            downtime_secs: j.downtime_secs,
            components: j.components.iter().map(component).collect(),
            steps: j.steps.clone(),
            salvage: j.salvage.clone(),
        }
    }
}

fn component(c: &Switch) -> AuditComponent {
    match c {
        Switch::Files(f) => AuditComponent {
            name: f.name.clone(),
            kind: "files".into(),
            live: f.live.display().to_string(),
            kept: f.kept.display().to_string(),
        },
        Switch::Postgres(d) => AuditComponent {
            name: d.name.clone(),
            kind: "postgres".into(),
            live: d.live.clone(),
            kept: d.kept.clone(),
        },
    }
}

/// Stores the audit record of a finished operation.
pub fn record(repo: &Repository, j: &Journal) -> Result<Id> {
    let bytes = serde_json::to_vec(&AuditRecord::of(j))?;
    repo.put_sealed(Kind::Audit, &bytes)
}

/// Records a reviewed plan that was refused before anything was touched
/// (the live state moved since it was made): result `refused`, the reason
/// in `failure`, no components and no steps.
pub fn record_refusal(repo: &Repository, plan_hash: &str, snapshot: &str, why: &str) -> Result<Id> {
    let options = super::RollbackOptions {
        no_safety_snapshot: true,
        plan_hash: Some(plan_hash.to_string()),
    };
    let mut j = super::run::new_journal(Operation::Rollback, snapshot.to_string(), &options);
    j.finished = Some(Utc::now());
    j.failure = Some(why.to_string());
    let mut rec = AuditRecord::of(&j);
    rec.result = REFUSED.to_string();
    repo.put_sealed(Kind::Audit, &serde_json::to_vec(&rec)?)
}

/// The result of a plan refused before anything was touched.
pub const REFUSED: &str = "refused";

/// Every audit record, oldest first. A damaged record is an error naming it.
pub fn history(repo: &Repository) -> Result<Vec<AuditRecord>> {
    let mut out = Vec::new();
    for obj in repo.store().list(Kind::Audit)? {
        let plain = repo.get_sealed(Kind::Audit, &obj.name)?;
        let rec: AuditRecord = serde_json::from_slice(&plain).map_err(|e| {
            Error::corrupt(format!("audit record {} cannot be read: {e}", obj.name))
        })?;
        out.push(rec);
    }
    out.sort_by(|a, b| a.started.cmp(&b.started).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// Captures the replaced state (the kept copies, no longer live) as a
/// snapshot tagged [`PRE_ROLLBACK_TAG`], each component recorded under its
/// live path or database name.
pub fn safety_snapshot(session: &Session, j: &Journal) -> Result<Id> {
    let mut options = CreateOptions {
        tags: vec![PRE_ROLLBACK_TAG.to_string()],
        label: Some(format!("state replaced by rollback {}", j.id)),
        workers: session.jobs,
        parents: session.staged_listings(),
        ..CreateOptions::default()
    };
    options.postgres_options.jobs = session.jobs;
    for c in &j.components {
        match c {
            Switch::Files(f) => {
                let entry = session.system.files.iter().find(|e| e.name == f.name);
                options.files.push(FileSource {
                    name: f.name.clone(),
                    path: f.kept.clone(),
                    excludes: entry.map(|e| e.exclude.clone()).unwrap_or_default(),
                    secret: f.secret,
                    record_as: Some(f.live.clone()),
                });
            }
            Switch::Postgres(d) => {
                let conn = session.connection(&d.name)?.with_dbname(&d.kept);
                options.postgres.push(PostgresSource {
                    name: d.name.clone(),
                    connection: conn.libpq_string_with_password(),
                    record_as: Some(d.live.clone()),
                });
            }
        }
    }
    Ok(create_snapshot(session.repo, &options, session.progress)?.id)
}
