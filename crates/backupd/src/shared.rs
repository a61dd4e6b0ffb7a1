//! What the scheduler and the HTTP side share: the configuration in force,
//! the state (saved after every change), the job running now, requested
//! runs, planned rollbacks, the repository figures, and the clock and
//! backend everything goes through.

use crate::backend::Backend;
use crate::clock::Clock;
use crate::jobs::RepoStats;
use crate::loaded::Loaded;
use crate::notify::{deliveries, Event, Notification};
use crate::planned::{PlannedRollback, PlannedState, PlannedStore};
use crate::schedule::at_start;
use crate::state::{DaemonState, StateFile};
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// What is due next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// A scheduled (or requested) job, by name.
    Job(String),
    /// A planned rollback, by id.
    Rollback(String),
}

/// What the scheduler and the HTTP side share.
#[derive(Debug)]
pub struct Shared {
    config: RwLock<Arc<Loaded>>,
    pub(crate) state: Mutex<DaemonState>,
    state_file: StateFile,
    pub(crate) running: Mutex<Option<String>>,
    pub(crate) requested: Mutex<Vec<String>>,
    pub(crate) stats: Mutex<RepoStats>,
    planned: Mutex<Vec<PlannedRollback>>,
    planned_store: PlannedStore,
    /// Wakes the scheduler (a job was requested, a rollback planned).
    pub wake: Notify,
    pub(crate) cancel: Arc<AtomicBool>,
    /// Where the time comes from.
    pub clock: Clock,
    /// What runs the jobs.
    pub backend: Arc<dyn Backend>,
}

impl Shared {
    /// Loads the state and sets every job's next run (catching up, once,
    /// a run missed while the daemon was down); settles planned rollbacks
    /// whose time passed while it was down.
    pub fn new(loaded: Loaded, clock: Clock, backend: Arc<dyn Backend>) -> Result<Shared> {
        let state_file = StateFile::new(&loaded.state_dir);
        let mut state = state_file.load()?;
        let now = clock.now();
        for s in &loaded.system.schedules {
            let job = state.jobs.entry(s.name.clone()).or_default();
            job.next_run = at_start(s, loaded.daemon.timezone, Some(job), now);
            if job.next_run == Some(now) {
                tracing::info!(job = %s.name, "a run was missed while the daemon was down: running it now, once");
            }
        }
        state_file.save(&state)?;
        let planned_store = PlannedStore::new(&loaded.state_dir);
        let mut planned = planned_store.list()?;
        for p in planned.iter_mut() {
            if let Some((st, why)) = crate::planned::at_start(p, now) {
                tracing::error!(rollback = %p.id, "planned rollback {}: {why}", st.word());
                p.state = st;
                p.detail = Some(why);
                p.finished = Some(now);
                planned_store.save(p)?;
            }
        }
        Ok(Shared {
            config: RwLock::new(Arc::new(loaded)),
            state: Mutex::new(state),
            state_file,
            running: Mutex::new(None),
            requested: Mutex::new(Vec::new()),
            stats: Mutex::new(RepoStats::default()),
            planned: Mutex::new(planned),
            planned_store,
            wake: Notify::new(),
            cancel: Arc::new(AtomicBool::new(false)),
            clock,
            backend,
        })
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Loaded> {
        self.config.read().expect("lock").clone()
    }

    pub(crate) fn set_config(&self, new: Loaded) {
        *self.config.write().expect("lock") = Arc::new(new);
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

    /// Every planned rollback, by time.
    pub fn planned(&self) -> Vec<PlannedRollback> {
        self.planned.lock().expect("lock").clone()
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
            self.now() - chrono::Duration::from_std(period).unwrap_or(chrono::Duration::MAX);
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

    /// Takes a reviewed plan to apply at `at`.
    pub fn plan_rollback(
        &self,
        plan: &serde_json::Value,
        at: DateTime<Utc>,
        no_safety_snapshot: bool,
    ) -> Result<PlannedRollback> {
        let mut planned = self.planned.lock().expect("lock");
        let pending: Vec<PlannedRollback> = planned
            .iter()
            .filter(|p| p.state == PlannedState::Pending)
            .cloned()
            .collect();
        let p = self
            .planned_store
            .submit(plan, at, no_safety_snapshot, self.now(), &pending)?;
        planned.retain(|q| q.id != p.id);
        planned.push(p.clone());
        planned.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
        drop(planned);
        self.wake.notify_one();
        Ok(p)
    }

    /// Withdraws a pending planned rollback: `Ok(false)` when there is no
    /// such one, an error when it is no longer pending.
    pub fn cancel_rollback(&self, id: &str) -> Result<bool> {
        let now = self.now();
        self.update_planned(id, |p| {
            if p.state != PlannedState::Pending {
                anyhow::bail!(
                    "the planned rollback {id} is {}: only a pending one can be cancelled",
                    p.state.word()
                );
            }
            p.state = PlannedState::Cancelled;
            p.detail = Some("cancelled before its time".into());
            p.finished = Some(now);
            Ok(())
        })
    }

    /// Changes a planned rollback and saves it; `Ok(false)` when there is
    /// no such one.
    pub(crate) fn update_planned(
        &self,
        id: &str,
        change: impl FnOnce(&mut PlannedRollback) -> Result<()>,
    ) -> Result<bool> {
        let mut planned = self.planned.lock().expect("lock");
        let Some(p) = planned.iter_mut().find(|p| p.id == id) else {
            return Ok(false);
        };
        change(p)?;
        self.planned_store.save(p)?;
        Ok(true)
    }

    /// Where a planned rollback's plan is kept.
    pub(crate) fn plan_path(&self, id: &str) -> std::path::PathBuf {
        self.planned_store.plan_path(id)
    }

    pub(crate) fn save(&self) {
        let state = self.state();
        if let Err(e) = self.state_file.save(&state) {
            tracing::error!(error = %format!("{e:#}"), "cannot write the daemon state");
        }
    }

    /// What is due next and when: a requested job now, else the earliest
    /// of the scheduled jobs and pending planned rollbacks.
    pub(crate) fn next(&self) -> Option<(Due, DateTime<Utc>)> {
        if let Some(name) = self.requested.lock().expect("lock").first() {
            return Some((Due::Job(name.clone()), self.now()));
        }
        let config = self.config();
        let state = self.state.lock().expect("lock");
        let jobs = config.system.schedules.iter().filter_map(|s| {
            state
                .jobs
                .get(&s.name)
                .and_then(|j| j.next_run)
                .map(|t| (Due::Job(s.name.clone()), t))
        });
        let planned = self.planned.lock().expect("lock");
        let rollbacks = planned
            .iter()
            .filter(|p| p.state == PlannedState::Pending)
            .map(|p| (Due::Rollback(p.id.clone()), p.at));
        jobs.chain(rollbacks).min_by_key(|(_, t)| *t)
    }

    /// Tells the targets of `[notify]` (unless `ping_only`) and the job's
    /// ping URL.
    pub(crate) fn notify(&self, t: Tell<'_>) {
        let config = self.config();
        let notify = config.system.notify.as_ref().filter(|_| !t.ping_only);
        let targets = deliveries(notify, t.ping_url, t.event);
        if targets.is_empty() {
            return;
        }
        let n = Notification {
            event: t.event,
            job: t.job.to_string(),
            kind: t.kind.to_string(),
            time: self.now(),
            detail: t.detail.to_string(),
            error: t.error.map(str::to_string),
            host: backup_core::repository::hostname(),
        };
        let timeout = config
            .system
            .notify
            .as_ref()
            .map_or(backup_core::system::DEFAULT_NOTIFY_TIMEOUT, |n| n.timeout);
        self.backend.notify(targets, n, timeout);
    }
}

/// One event to tell.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tell<'a> {
    /// What happened.
    pub event: Event,
    /// The job's name.
    pub job: &'a str,
    /// What it does.
    pub kind: &'a str,
    /// Its healthchecks-type URL.
    pub ping_url: Option<&'a str>,
    /// What it did.
    pub detail: &'a str,
    /// Why it failed.
    pub error: Option<&'a str>,
    /// Only the ping, not `[notify]` (a failure that will be retried).
    pub ping_only: bool,
}

impl<'a> Tell<'a> {
    /// An event of `job` with nothing more to say.
    pub fn new(event: Event, job: &'a str, kind: &'a str) -> Tell<'a> {
        Tell {
            event,
            job,
            kind,
            ping_url: None,
            detail: "",
            error: None,
            ping_only: false,
        }
    }
}
