//! What the scheduler asks of the world: run a job, read the repository's
//! figures, apply a planned rollback, deliver notifications. The daemon
//! uses [`RealBackend`] (the library, on blocking threads); the
//! scheduler's tests use one that answers at once and records what it was
//! asked, so that the loop itself (catch-up, overlap, back-off, overdue)
//! is tested on tokio's paused time.

use crate::jobs::{repo_stats, run_job, JobProgress, JobResult, RepoStats};
use crate::notify::{deliver, Delivery, Notification};
use crate::planned::PlanOutcome;
use backup_core::system::{Schedule, System};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future the scheduler awaits.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One job to run, with owned copies of what it needs.
#[derive(Debug, Clone)]
pub struct Work {
    /// The system description in force.
    pub system: System,
    /// The job.
    pub schedule: Schedule,
    /// The daemon's state directory.
    pub state_dir: PathBuf,
    /// Its cancellation flag.
    pub progress: JobProgress,
}

/// One planned rollback to apply.
#[derive(Debug, Clone)]
pub struct PlanWork {
    /// The system description in force.
    pub system: System,
    /// The reviewed plan.
    pub plan_path: PathBuf,
    /// Skip the safety snapshot.
    pub no_safety_snapshot: bool,
}

/// What the scheduler needs done.
pub trait Backend: Send + Sync + std::fmt::Debug + 'static {
    /// Runs a job to its end.
    fn run(&self, work: Work) -> BoxFuture<JobResult>;
    /// Reads the repository's size and snapshots; `None` when it cannot.
    fn stats(&self, system: System) -> BoxFuture<Option<RepoStats>>;
    /// Applies a planned rollback.
    fn apply(&self, work: PlanWork) -> BoxFuture<PlanOutcome>;
    /// Delivers a notification, without holding the scheduler up.
    fn notify(&self, deliveries: Vec<Delivery>, n: Notification, timeout: Duration);
}

/// The library, on tokio's blocking threads.
#[derive(Debug, Default)]
pub struct RealBackend;

impl Backend for RealBackend {
    fn run(&self, w: Work) -> BoxFuture<JobResult> {
        let name = w.schedule.name.clone();
        Box::pin(async move {
            let task = tokio::task::spawn_blocking(move || {
                run_job(&w.system, &w.schedule, &w.state_dir, &w.progress)
            });
            match task.await {
                Ok(r) => r,
                Err(e) => JobResult::failed(format!("the job {name} panicked: {e}")),
            }
        })
    }

    fn stats(&self, system: System) -> BoxFuture<Option<RepoStats>> {
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || repo_stats(&system)).await {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read the repository's size");
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the size reader panicked");
                    None
                }
            }
        })
    }

    fn apply(&self, w: PlanWork) -> BoxFuture<PlanOutcome> {
        Box::pin(async move {
            let task = tokio::task::spawn_blocking(move || {
                crate::planned::apply(&w.system, &w.plan_path, w.no_safety_snapshot)
            });
            task.await.unwrap_or_else(|e| PlanOutcome {
                state: crate::planned::PlannedState::Failed,
                detail: format!("the planned rollback panicked: {e}"),
                rollback_id: None,
            })
        })
    }

    fn notify(&self, deliveries: Vec<Delivery>, n: Notification, timeout: Duration) {
        if deliveries.is_empty() {
            return;
        }
        tokio::task::spawn_blocking(move || {
            for d in &deliveries {
                deliver(d, &n, timeout);
            }
        });
    }
}
