//! What the daemon remembers across restarts, in `<state_dir>/daemon/state.json`
//! (written to a temporary file and renamed): per job the next run (written
//! before each run, so that a run missed while the daemon was down is
//! caught up once), the recent runs and counters; the verification record
//! and read-data coverage; the last restore drill.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Runs kept per job for `backup status`.
const KEPT_RUNS: usize = 20;

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// It did what it should.
    Success,
    /// It failed.
    Failure,
    /// It was stopped (shutdown) before it committed anything.
    Cancelled,
}

impl Outcome {
    /// The label value in metrics.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// When it started.
    pub start: DateTime<Utc>,
    /// When it ended.
    pub end: DateTime<Utc>,
    /// How it ended.
    pub result: Outcome,
    /// Bytes added to the repository (create) or read back (verify).
    pub bytes: Option<u64>,
    /// What it did, in a line.
    pub detail: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether trying again later may help.
    #[serde(default)]
    pub retryable: bool,
}

impl RunRecord {
    /// Seconds it took.
    pub fn duration_secs(&self) -> f64 {
        (self.end - self.start).num_milliseconds() as f64 / 1000.0
    }
}

/// One job's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// When it runs next.
    pub next_run: Option<DateTime<Utc>>,
    /// The time the schedule gave for the pending run, when `next_run` is
    /// an earlier retry.
    pub scheduled: Option<DateTime<Utc>>,
    /// The newest runs, newest last.
    pub runs: Vec<RunRecord>,
    /// When it last succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// Runs by outcome word.
    pub totals: BTreeMap<String, u64>,
    /// Failures in a row (for the back-off).
    pub failures_in_row: u32,
    /// The due time that was last reported overdue (reported once).
    #[serde(default)]
    pub overdue_notified: Option<DateTime<Utc>>,
}

impl JobState {
    /// Records a run.
    pub fn record(&mut self, run: RunRecord) {
        *self
            .totals
            .entry(run.result.word().to_string())
            .or_insert(0) += 1;
        match run.result {
            Outcome::Success => {
                self.last_success = Some(run.end);
                self.failures_in_row = 0;
            }
            Outcome::Failure => self.failures_in_row += 1,
            Outcome::Cancelled => {}
        }
        self.runs.push(run);
        if self.runs.len() > KEPT_RUNS {
            self.runs.remove(0);
        }
    }

    /// The newest run.
    pub fn last(&self) -> Option<&RunRecord> {
        self.runs.last()
    }
}

/// What verification found, by kind (`structure`, `read-data`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyState {
    /// When each kind last passed.
    pub last_success: BTreeMap<String, DateTime<Utc>>,
    /// Failed runs by kind.
    pub failures: BTreeMap<String, u64>,
    /// Whether the newest verification failed (then `/healthz` is unhealthy
    /// until one passes).
    pub last_failed: bool,
    /// When each pack was last read back and found good.
    pub pack_read: BTreeMap<String, DateTime<Utc>>,
}

/// The whole state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonState {
    /// Per job name.
    pub jobs: BTreeMap<String, JobState>,
    /// Verification.
    pub verify: VerifyState,
    /// Seconds the last successful restore drill's restore took.
    pub drill_secs: Option<f64>,
}

/// Where the state lives.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state file under `state_dir`.
    pub fn new(state_dir: &Path) -> StateFile {
        StateFile {
            path: state_dir.join("daemon").join("state.json"),
        }
    }

    /// The directory it lives in (for the verify cursor too).
    pub fn dir(&self) -> &Path {
        self.path.parent().expect("a parent")
    }

    /// Reads it; an absent file is an empty state.
    pub fn load(&self) -> Result<DaemonState> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| {
                format!("the daemon state {} cannot be read", self.path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DaemonState::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.path.display())),
        }
    }

    /// Writes it whole, durably.
    pub fn save(&self, state: &DaemonState) -> Result<()> {
        let dir = self.dir();
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(".state.json.tmp");
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(state)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}
