//! The journal of a rollback: one JSON file in the state directory,
//! written (to a temporary file, fsynced, renamed, the directory fsynced)
//! before every step acts, so that a rollback killed at any point can be
//! finished or reverted from it.

use super::switch::Switch;
use crate::durable;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The journal format version.
pub const JOURNAL_VERSION: u32 = 1;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Back to a snapshot: staged copies replace the live state.
    Rollback,
    /// Back to the state a rollback replaced: the kept copies replace the
    /// live state.
    Undo,
}

impl Operation {
    /// The word used in kept names and messages (`rollback`, `undo`).
    pub fn word(self) -> &'static str {
        match self {
            Operation::Rollback => "rollback",
            Operation::Undo => "undo",
        }
    }
}

/// Where an operation stands. The order matters: everything before
/// [`Phase::Switched`] is reverted on resume, everything from it on is
/// finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Staging copies beside the live ones; the application runs.
    Staging,
    /// Every copy is staged and verified.
    Staged,
    /// The stop hook runs (downtime starts).
    Stopping,
    /// Components are being switched. Not written (a resume treats it as
    /// [`Phase::Stopping`]): the downtime does not wait on the disk for it.
    Switching,
    /// Every component is switched.
    Switched,
    /// The start hook runs. Not written (resumed as [`Phase::Switched`]).
    Starting,
    /// The health check runs. Not written (resumed as [`Phase::Switched`]).
    Checking,
    /// Switching back after a failure (or a kill before the switch ended).
    Reverting,
    /// Healthy: what is left is the safety snapshot and the records.
    Done,
}

/// One step as it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step (`preflight`, `stage api`, `stop`, `switch dms`, ...).
    pub name: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// How long it took, in seconds.
    pub duration_secs: f64,
    /// Whether it succeeded.
    pub ok: bool,
    /// What it did or why it failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// The tail of a hook's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The journal of one operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    /// [`JOURNAL_VERSION`].
    pub version: u32,
    /// The operation's id (`<UTC time>-<random>`), also in kept names.
    pub id: String,
    /// Rollback or undo.
    pub operation: Operation,
    /// The snapshot rolled back to (for an undo: the one the undone
    /// rollback restored).
    pub snapshot: String,
    /// For an undo: the rollback it undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
    /// The hash of the plan carried out, for `rollback apply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// Who ran it.
    pub user: String,
    /// Where.
    pub host: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it ended (set with the last phase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime<Utc>>,
    /// Where it stands.
    pub phase: Phase,
    /// When the stop hook started, if it did (downtime runs from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_since: Option<DateTime<Utc>>,
    /// Whether the start hook ran on the switched state (a revert must then
    /// stop the application first).
    #[serde(default)]
    pub started_on_new: bool,
    /// How long the application was down, once it is up again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_secs: Option<f64>,
    /// The components and how each is switched.
    pub components: Vec<Switch>,
    /// Every step so far.
    pub steps: Vec<StepRecord>,
    /// Why it failed, when it did (the switch was then reverted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Whether it was reverted (the system is as it was before).
    #[serde(default)]
    pub reverted: bool,
    /// Skip the safety snapshot of the replaced state.
    #[serde(default)]
    pub no_safety_snapshot: bool,
    /// The safety snapshot of the replaced state, once taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_snapshot: Option<String>,
    /// Set on a finished rollback once an undo switched it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_by: Option<String>,
    /// Set once `cleanup` dropped its kept copies.
    #[serde(default)]
    pub cleaned: bool,
    /// The per-table counts of the data written since the snapshot, once
    /// computed after the switch (`salvage/<id>` holds the rows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salvage: Option<crate::salvage::SalvageSummary>,
    /// Per database component of a rollback: the next transaction id of
    /// the cluster once its staged copy was complete. A tuple of the
    /// rolled-back database with a newer `xmin` was written after the
    /// rollback, so it is no part of the snapshot.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub staged_xids: std::collections::BTreeMap<String, u64>,
}

/// The files of the state directory that rollbacks use.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The rollback state under `state_dir` (created on first use).
    pub fn new(state_dir: &Path) -> StateDir {
        StateDir {
            root: state_dir.join("rollback"),
        }
    }

    /// Creates the directories.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(self.history_dir()).map_err(|e| {
            Error::io(
                format!(
                    "cannot create the state directory {} (set state_dir in the system description)",
                    self.root.display()
                ),
                e,
            )
        })
    }

    /// The lock file.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// The journal of the unfinished operation.
    pub fn current_path(&self) -> PathBuf {
        self.root.join("current.json")
    }

    fn history_dir(&self) -> PathBuf {
        self.root.join("history")
    }

    /// The unfinished operation, if any.
    pub fn current(&self) -> Result<Option<Journal>> {
        read_journal(&self.current_path())
    }

    /// Writes the journal of the unfinished operation, durably.
    pub fn save(&self, j: &Journal) -> Result<()> {
        write_durably(&self.current_path(), &serde_json::to_vec_pretty(j)?)
    }

    /// Moves the finished operation into the history.
    pub fn archive(&self, j: &Journal) -> Result<()> {
        self.save_history(j)?;
        match std::fs::remove_file(self.current_path()) {
            Ok(()) => durable::sync_dir(&self.root)
                .map_err(|e| Error::io(format!("syncing {}", self.root.display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("removing the finished journal", e)),
        }
    }

    /// Writes one finished operation into the history.
    pub fn save_history(&self, j: &Journal) -> Result<()> {
        let path = self.history_dir().join(format!("{}.json", j.id));
        write_durably(&path, &serde_json::to_vec_pretty(j)?)
    }

    /// Every finished operation, oldest first.
    pub fn history(&self) -> Result<Vec<Journal>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(self.history_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("listing the rollback history", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("listing the rollback history", e))?;
            if entry.file_name().to_string_lossy().ends_with(".json") {
                if let Some(j) = read_journal(&entry.path())? {
                    out.push(j);
                }
            }
        }
        out.sort_by(|a, b| a.started.cmp(&b.started).then(a.id.cmp(&b.id)));
        Ok(out)
    }
}

fn read_journal(path: &Path) -> Result<Option<Journal>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let j: Journal = serde_json::from_slice(&bytes).map_err(|e| {
        Error::corrupt(format!(
            "the rollback journal {} cannot be read ({e}): it was edited or damaged",
            path.display()
        ))
    })?;
    if j.version != JOURNAL_VERSION {
        return Err(Error::new(
            crate::error::ErrorKind::UnsupportedFormat,
            format!(
                "the rollback journal {} has version {}, this tool knows {JOURNAL_VERSION}",
                path.display(),
                j.version
            ),
        ));
    }
    Ok(Some(j))
}

/// Writes `path` so that after a crash it holds either the old or the new
/// bytes, whole.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = durable::parent_of(path);
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let io = |e| Error::io(format!("writing {}", path.display()), e);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    durable::sync_dir(dir).map_err(io)
}
