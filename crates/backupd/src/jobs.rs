//! Running one scheduled job against the repository, synchronously (the
//! scheduler calls it on a blocking thread): create, verify, restore drill,
//! forget and prune, each through the library, as the command does.

use crate::state::{Outcome, RunRecord};
use backup_core::restore::{restore_files, restore_test, RestoreOptions};
use backup_core::snapshot::{list_snapshots, resolve_snapshot};
use backup_core::system::{Access, JobKind, Overrides, Schedule, System};
use backup_core::{
    create_snapshot, forget, prune, verify, CreateOptions, ErrorKind, ForgetOptions, Progress,
    PruneOptions, ReadData, Repository, VerifyOptions,
};
use chrono::Utc;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Progress of a daemon job: nothing drawn; cancelled when the daemon stops.
#[derive(Debug, Default, Clone)]
pub struct JobProgress {
    /// Set to stop the job at its next check.
    pub cancel: Arc<AtomicBool>,
}

impl Progress for JobProgress {
    fn warn(&self, message: &str) {
        tracing::warn!(%message, "job warning");
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// What a verify run found, for the verification record.
#[derive(Debug, Clone, Default)]
pub struct VerifyResult {
    /// Whether it read data back (else structure only).
    pub read_data: bool,
    /// Whether it found no problem.
    pub ok: bool,
    /// Packs read back and found good.
    pub packs_read: Vec<String>,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// The run.
    pub record: RunRecord,
    /// For verify jobs.
    pub verify: Option<VerifyResult>,
    /// For restore drills: seconds the restore took.
    pub drill_secs: Option<f64>,
}

/// Opens the system's repository (password from `BACKUP_PASSWORD` or the
/// password file: a daemon has no terminal).
pub fn open_repository(system: &System) -> backup_core::Result<Repository> {
    Access::resolve(Some(system), &Overrides::default())?.open(true, || Ok(None))
}

/// Runs `schedule` once.
pub fn run_job(
    system: &System,
    schedule: &Schedule,
    state_dir: &Path,
    progress: &JobProgress,
) -> JobResult {
    let start = Utc::now();
    let mut verify_result = None;
    let mut drill_secs = None;
    let result = open_repository(system).and_then(|repo| match schedule.job {
        JobKind::Create => run_create(&repo, system, schedule, progress),
        JobKind::Verify => {
            let (detail, bytes, v) = run_verify(&repo, schedule, state_dir, progress)?;
            let ok = v.ok;
            verify_result = Some(v);
            if !ok {
                return Err(backup_core::Error::corrupt(detail));
            }
            Ok((detail, Some(bytes)))
        }
        JobKind::RestoreDrill => {
            let (detail, secs) = run_drill(&repo, system, state_dir, progress)?;
            drill_secs = Some(secs);
            Ok((detail, None))
        }
        JobKind::Forget => run_forget(&repo, system),
        JobKind::Prune => run_prune(&repo, progress),
    });
    let end = Utc::now();
    let record = match result {
        Ok((detail, bytes)) => RunRecord {
            start,
            end,
            result: Outcome::Success,
            bytes,
            detail,
            error: None,
            retryable: false,
        },
        Err(e) => RunRecord {
            start,
            end,
            result: if e.kind() == ErrorKind::Interrupted {
                Outcome::Cancelled
            } else {
                Outcome::Failure
            },
            bytes: None,
            detail: String::new(),
            retryable: e.is_retryable()
                || e.kind() == ErrorKind::Storage
                || e.kind() == ErrorKind::Locked,
            error: Some(e.to_string()),
        },
    };
    JobResult {
        record,
        verify: verify_result,
        drill_secs,
    }
}

impl JobResult {
    /// A run that failed before it could start (retryable: the next try may work).
    pub fn failed(error: String) -> JobResult {
        let now = Utc::now();
        JobResult {
            record: RunRecord {
                start: now,
                end: now,
                result: Outcome::Failure,
                bytes: None,
                detail: String::new(),
                error: Some(error),
                retryable: true,
            },
            verify: None,
            drill_secs: None,
        }
    }
}

type Done = backup_core::Result<(String, Option<u64>)>;

fn run_create(
    repo: &Repository,
    system: &System,
    schedule: &Schedule,
    progress: &JobProgress,
) -> Done {
    let options = CreateOptions {
        files: system.file_sources(),
        postgres: system.postgres_sources(),
        tags: schedule.tags.clone(),
        ..CreateOptions::default()
    };
    let r = create_snapshot(repo, &options, progress)?;
    let s = &r.snapshot.summary;
    Ok((
        format!(
            "snapshot {} saved: {} read, {} new, {} stored",
            r.id.short(),
            s.bytes_read,
            s.new_bytes,
            s.stored_bytes
        ),
        Some(s.stored_bytes),
    ))
}

fn run_verify(
    repo: &Repository,
    schedule: &Schedule,
    state_dir: &Path,
    progress: &JobProgress,
) -> backup_core::Result<(String, u64, VerifyResult)> {
    let read_data = match schedule.read_data_subset {
        Some(f) if f >= 1.0 => ReadData::All,
        Some(f) => ReadData::Fraction(f),
        None => ReadData::None,
    };
    let options = VerifyOptions {
        snapshots: Vec::new(),
        read_data: read_data.clone(),
        cursor_file: Some(
            state_dir
                .join("daemon")
                .join(format!("verify-cursor-{}", schedule.name)),
        ),
        workers: 2,
    };
    let r = verify(repo, &options, progress)?;
    let detail = if r.ok() {
        format!(
            "{} snapshots, {} packs checked; {} packs read back, no problems",
            r.snapshots, r.packs, r.packs_read
        )
    } else {
        let first = &r.problems[0];
        format!(
            "{} problem(s), the first: {}: {}",
            r.problems.len(),
            first.object,
            first.problem
        )
    };
    let damaged: Vec<&str> = r.problems.iter().map(|p| p.object.as_str()).collect();
    let packs_read = r
        .read_pack_ids
        .iter()
        .filter(|id| !damaged.iter().any(|d| d.ends_with(id.as_str())))
        .cloned()
        .collect();
    let v = VerifyResult {
        read_data: read_data != ReadData::None,
        ok: r.ok(),
        packs_read,
    };
    Ok((detail, r.bytes_read, v))
}

/// Restores the latest snapshot into scratch places (a database named
/// `backup_restore_test_<random>` on each server, which no live database
/// can be named, and a directory under the state directory), checks it
/// against the manifest, and drops it.
fn run_drill(
    repo: &Repository,
    system: &System,
    state_dir: &Path,
    progress: &JobProgress,
) -> backup_core::Result<(String, f64)> {
    let (id, snap) = resolve_snapshot(repo, "latest", &[])?;
    let t0 = std::time::Instant::now();
    let mut checked = Vec::new();
    for db in snap.databases() {
        let server = system
            .postgres
            .iter()
            .find(|p| p.name == db.name)
            .map(|p| p.connection.clone())
            .ok_or_else(|| {
                backup_core::Error::usage(format!(
                    "no [[postgres]] entry named {:?} for the drill",
                    db.name
                ))
            })?;
        let r = restore_test(repo, db, &server, 2, progress)?;
        if !r.mismatches.is_empty() {
            return Err(backup_core::Error::corrupt(format!(
                "restore drill of {}: {} table(s) differ from the snapshot",
                db.database,
                r.mismatches.len()
            )));
        }
        checked.push(format!(
            "database {}: {} tables, {} rows",
            db.database, r.tables, r.rows
        ));
    }
    if snap.file_components().next().is_some() {
        let scratch = state_dir
            .join("daemon")
            .join(format!("drill-{}", id.short()));
        let _ = std::fs::remove_dir_all(&scratch);
        let options = RestoreOptions {
            target: scratch.clone(),
            workers: 2,
            scratch: true,
            ..RestoreOptions::default()
        };
        let r = restore_files(repo, &snap, &options, progress);
        let _ = std::fs::remove_dir_all(&scratch);
        let r = r?;
        checked.push(format!(
            "{} files, every one checked against its SHA-256",
            r.files
        ));
    }
    let secs = t0.elapsed().as_secs_f64();
    Ok((
        format!(
            "snapshot {} restored in {secs:.1}s: {}",
            id.short(),
            checked.join("; ")
        ),
        secs,
    ))
}

fn run_forget(repo: &Repository, system: &System) -> Done {
    let policy = system.retention.clone().ok_or_else(|| {
        backup_core::Error::usage(
            "a forget job needs a [retention] table in the system description",
        )
    })?;
    let options = ForgetOptions {
        policy,
        pinned: backup_core::rollback::pinned_snapshots(system)?,
        ..ForgetOptions::default()
    };
    let r = forget(repo, &options)?;
    let kept: usize = r.groups.iter().map(|g| g.keep.len()).sum();
    Ok((
        format!("{} snapshots removed, {kept} kept", r.removed),
        None,
    ))
}

fn run_prune(repo: &Repository, progress: &JobProgress) -> Done {
    let r = prune(repo, &PruneOptions::default(), progress)?;
    Ok((
        format!(
            "{} bytes freed ({} packs deleted, {} repacked)",
            r.bytes_freed, r.packs_deleted, r.packs_repacked
        ),
        Some(r.bytes_freed),
    ))
}

/// What the metrics read from the repository: its size and snapshots.
#[derive(Debug, Clone, Copy, Default)]
pub struct RepoStats {
    /// Bytes of packs.
    pub size_bytes: u64,
    /// Readable snapshots.
    pub snapshots: u64,
    /// Packs stored.
    pub packs: u64,
}

/// Reads the repository's size and snapshot count.
pub fn repo_stats(system: &System) -> backup_core::Result<RepoStats> {
    let repo = open_repository(system)?;
    let packs = repo.store().list(backup_core::store::Kind::Pack)?;
    Ok(RepoStats {
        size_bytes: packs.iter().map(|p| p.size).sum(),
        packs: packs.len() as u64,
        snapshots: list_snapshots(&repo)?
            .iter()
            .filter(|(_, s)| s.is_ok())
            .count() as u64,
    })
}
