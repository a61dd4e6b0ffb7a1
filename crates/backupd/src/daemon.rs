//! The daemon's heart: the loaded configuration, the shared state the HTTP
//! side reads, and the loop that runs due jobs one at a time (they share
//! one repository, so they never overlap: a job due while another runs
//! waits for it, and the log says so).

use crate::jobs::{repo_stats, run_job, JobProgress, JobResult, RepoStats};
use crate::schedule::{after_run, at_start};
use crate::state::{DaemonState, Outcome, StateFile};
use anyhow::{Context, Result};
use backup_core::system::{read_secret_file, DaemonSection, JobKind, System};
use backup_core::ErrorKind;
use chrono::Utc;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// What the process tells a running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop: cancel a running job cleanly, then return.
    Shutdown,
    /// Read the system description again; keep the old one if the new one
    /// is invalid.
    Reload,
}

/// A loaded, checked configuration.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file it came from.
    pub path: PathBuf,
    /// The system description.
    pub system: System,
    /// Its `[daemon]` table (defaults when absent).
    pub daemon: DaemonSection,
    /// Where the daemon keeps its state.
    pub state_dir: PathBuf,
    /// The bearer token state-changing requests need, if one is set.
    pub token: Option<String>,
}

impl Loaded {
    /// Reads and checks the file, and the token (`BACKUPD_TOKEN`, else
    /// `daemon.token_file`, which must not be world-readable).
    pub fn load(path: &Path) -> Result<Loaded> {
        let system = System::load(path)?;
        let daemon = system.daemon.clone().unwrap_or_default();
        let state_dir = daemon
            .state_dir
            .clone()
            .unwrap_or_else(|| system.state_dir.clone());
        let token = match std::env::var("BACKUPD_TOKEN") {
            Ok(t) if !t.is_empty() => Some(t),
            _ => match &daemon.token_file {
                Some(f) => Some(
                    String::from_utf8(read_secret_file(f, "token file", ErrorKind::Usage)?)
                        .context("the token file is not UTF-8")?,
                ),
                None => None,
            },
        };
        Ok(Loaded {
            path: path.to_path_buf(),
            system,
            daemon,
            state_dir,
            token,
        })
    }
}

/// What the scheduler and the HTTP side share.
#[derive(Debug)]
pub struct Shared {
    config: RwLock<Arc<Loaded>>,
    state: Mutex<DaemonState>,
    state_file: StateFile,
    running: Mutex<Option<String>>,
    requested: Mutex<Vec<String>>,
    stats: Mutex<RepoStats>,
    /// Wakes the scheduler (a job was requested).
    pub wake: Notify,
    cancel: Arc<AtomicBool>,
}

impl Shared {
    /// Loads the state and sets every job's next run (catching up, once,
    /// a run missed while the daemon was down).
    pub fn new(loaded: Loaded) -> Result<Shared> {
        let state_file = StateFile::new(&loaded.state_dir);
        let mut state = state_file.load()?;
        let now = Utc::now();
        for s in &loaded.system.schedules {
            let job = state.jobs.entry(s.name.clone()).or_default();
            job.next_run = at_start(s, loaded.daemon.timezone, Some(job), now);
            if job.next_run == Some(now) {
                tracing::info!(job = %s.name, "a run was missed while the daemon was down: running it now, once");
            }
        }
        state_file.save(&state)?;
        Ok(Shared {
            config: RwLock::new(Arc::new(loaded)),
            state: Mutex::new(state),
            state_file,
            running: Mutex::new(None),
            requested: Mutex::new(Vec::new()),
            stats: Mutex::new(RepoStats::default()),
            wake: Notify::new(),
            cancel: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Loaded> {
        self.config.read().expect("lock").clone()
    }

    /// A copy of the state.
    pub fn state(&self) -> DaemonState {
        self.state.lock().expect("lock").clone()
    }

    /// The job running now.
    pub fn running(&self) -> Option<String> {
        self.running.lock().expect("lock").clone()
    }

    /// The repository figures.
    pub fn repo_stats(&self) -> RepoStats {
        *self.stats.lock().expect("lock")
    }

    /// Share of packs read back and found good within the read-data period
    /// (default 30 days).
    pub fn coverage(&self) -> f64 {
        let period = self
            .config()
            .daemon
            .read_data_period
            .unwrap_or(Duration::from_secs(30 * 86400));
        let since =
            Utc::now() - chrono::Duration::from_std(period).unwrap_or(chrono::Duration::MAX);
        let packs = self.repo_stats().packs;
        if packs == 0 {
            return 1.0;
        }
        let fresh = self
            .state
            .lock()
            .expect("lock")
            .verify
            .pack_read
            .values()
            .filter(|t| **t >= since)
            .count();
        (fresh as f64 / packs as f64).min(1.0)
    }

    /// Asks for a run of `name` now; false when there is no such job.
    pub fn request(&self, name: &str) -> bool {
        if !self
            .config()
            .system
            .schedules
            .iter()
            .any(|s| s.name == name)
        {
            return false;
        }
        self.requested.lock().expect("lock").push(name.to_string());
        self.wake.notify_one();
        true
    }

    fn save(&self) {
        let state = self.state();
        if let Err(e) = self.state_file.save(&state) {
            tracing::error!(error = %format!("{e:#}"), "cannot write the daemon state");
        }
    }

    /// The next job to run and when: a requested one now, else the
    /// earliest due.
    fn next(&self) -> Option<(String, chrono::DateTime<Utc>)> {
        if let Some(name) = self.requested.lock().expect("lock").first() {
            return Some((name.clone(), Utc::now()));
        }
        let config = self.config();
        let state = self.state.lock().expect("lock");
        config
            .system
            .schedules
            .iter()
            .filter_map(|s| {
                state
                    .jobs
                    .get(&s.name)
                    .and_then(|j| j.next_run)
                    .map(|t| (s.name.clone(), t))
            })
            .min_by_key(|(_, t)| *t)
    }

    /// Reads the configuration again; on error keeps the old one.
    fn reload(&self) {
        let path = self.config().path.clone();
        match Loaded::load(&path) {
            Ok(new) => {
                let now = Utc::now();
                {
                    let mut state = self.state.lock().expect("lock");
                    for s in &new.system.schedules {
                        let job = state.jobs.entry(s.name.clone()).or_default();
                        job.next_run = crate::schedule::next_after(s, new.daemon.timezone, now);
                    }
                }
                *self.config.write().expect("lock") = Arc::new(new);
                self.save();
                tracing::info!(config = %path.display(), "configuration reloaded");
            }
            Err(e) => tracing::error!(
                config = %path.display(),
                error = %format!("{e:#}"),
                "the new configuration is invalid: the old one stays in force"
            ),
        }
    }

    /// Refreshes the repository figures.
    async fn refresh_stats(self: &Arc<Self>) {
        let system = self.config().system.clone();
        match tokio::task::spawn_blocking(move || repo_stats(&system)).await {
            Ok(Ok(s)) => *self.stats.lock().expect("lock") = s,
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the repository's size"),
            Err(e) => tracing::warn!(error = %e, "the size reader panicked"),
        }
    }
}

/// Runs the scheduler until told to stop.
pub async fn schedule_loop(
    shared: Arc<Shared>,
    mut control: mpsc::Receiver<Control>,
) -> Result<()> {
    shared.refresh_stats().await;
    loop {
        let wait = match shared.next() {
            Some((_, t)) => (t - Utc::now()).to_std().unwrap_or(Duration::ZERO),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            c = control.recv() => match c {
                Some(Control::Reload) => { shared.reload(); continue; }
                Some(Control::Shutdown) | None => return Ok(()),
            },
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        while let Some((name, t)) = shared.next() {
            if t > Utc::now() {
                break;
            }
            if !run_one(&shared, &name, &mut control).await {
                return Ok(());
            }
        }
    }
}

/// Runs one job; false when a shutdown came meanwhile.
async fn run_one(shared: &Arc<Shared>, name: &str, control: &mut mpsc::Receiver<Control>) -> bool {
    let config = shared.config();
    let Some(schedule) = config
        .system
        .schedules
        .iter()
        .find(|s| s.name == name)
        .cloned()
    else {
        shared.requested.lock().expect("lock").retain(|n| n != name);
        return true;
    };
    let tz = config.daemon.timezone;
    {
        // The next run is written before this one starts.
        shared.requested.lock().expect("lock").retain(|n| n != name);
        let mut state = shared.state.lock().expect("lock");
        let job = state.jobs.entry(name.to_string()).or_default();
        job.next_run = crate::schedule::next_after(&schedule, tz, Utc::now());
    }
    shared.save();
    *shared.running.lock().expect("lock") = Some(name.to_string());
    tracing::info!(job = name, kind = schedule.job.word(), "job started");
    shared.cancel.store(false, Ordering::Relaxed);
    let progress = JobProgress {
        cancel: shared.cancel.clone(),
    };
    let (system, state_dir, sched) = (
        config.system.clone(),
        config.state_dir.clone(),
        schedule.clone(),
    );
    let mut task =
        tokio::task::spawn_blocking(move || run_job(&system, &sched, &state_dir, &progress));
    let mut stopping = false;
    let mut reload = false;
    let result = loop {
        tokio::select! {
            r = &mut task => break r,
            c = control.recv(), if !stopping => match c {
                Some(Control::Reload) => {
                    tracing::info!(job = name, "reload deferred until the running job ends");
                    reload = true;
                }
                Some(Control::Shutdown) | None => {
                    tracing::info!(job = name, "stopping: cancelling the running job");
                    shared.cancel.store(true, Ordering::Relaxed);
                    stopping = true;
                }
            },
        }
    };
    *shared.running.lock().expect("lock") = None;
    match result {
        Ok(r) => finish(shared, &schedule, tz, r),
        Err(e) => tracing::error!(job = name, error = %e, "the job panicked"),
    }
    shared.refresh_stats().await;
    if reload {
        shared.reload();
    }
    !stopping
}

/// Records a finished run and decides the next one.
fn finish(
    shared: &Shared,
    schedule: &backup_core::system::Schedule,
    tz: chrono_tz::Tz,
    r: JobResult,
) {
    let now = Utc::now();
    let name = schedule.name.as_str();
    let rec = r.record.clone();
    {
        let mut state = shared.state.lock().expect("lock");
        if schedule.job == JobKind::Verify {
            record_verify(&mut state, &r, rec.result, now);
        }
        if let Some(secs) = r.drill_secs {
            state.drill_secs = Some(secs);
        }
        let job = state.jobs.entry(name.to_string()).or_default();
        job.record(rec.clone());
        let retry = rec.result == Outcome::Failure && rec.retryable;
        job.next_run = after_run(schedule, tz, job, now, retry);
    }
    shared.save();
    match rec.result {
        Outcome::Success => {
            tracing::info!(job = name, secs = rec.duration_secs(), detail = %rec.detail, "job succeeded")
        }
        Outcome::Cancelled => {
            tracing::warn!(job = name, "job cancelled before it committed anything")
        }
        Outcome::Failure => tracing::error!(
            job = name,
            retryable = rec.retryable,
            error = rec.error.as_deref().unwrap_or(""),
            "job failed"
        ),
    }
}

fn record_verify(
    state: &mut DaemonState,
    r: &JobResult,
    outcome: Outcome,
    now: chrono::DateTime<Utc>,
) {
    let Some(v) = &r.verify else {
        if outcome == Outcome::Failure {
            state.verify.last_failed = true;
            *state.verify.failures.entry("structure".into()).or_insert(0) += 1;
        }
        return;
    };
    let kinds: &[&str] = if v.read_data {
        &["structure", "read-data"]
    } else {
        &["structure"]
    };
    for kind in kinds {
        if v.ok {
            state.verify.last_success.insert(kind.to_string(), now);
        } else {
            *state.verify.failures.entry(kind.to_string()).or_insert(0) += 1;
        }
    }
    state.verify.last_failed = !v.ok;
    for p in &v.packs_read {
        state.verify.pack_read.insert(p.clone(), now);
    }
}
