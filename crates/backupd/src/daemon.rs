//! The daemon's heart: the loop that runs due jobs and planned rollbacks
//! one at a time (they share one repository and one system, so they never
//! overlap: a job due while another runs waits for it, and the log says
//! so), records each run, notifies, and watches for overdue jobs.

use crate::backend::{PlanWork, Work};
use crate::jobs::{JobProgress, JobResult};
use crate::loaded::Loaded;
use crate::notify::Event;
use crate::planned::PlannedState;
use crate::schedule::{after_run, next_after, overdue, MAX_RETRIES};
use crate::shared::{Due, Shared, Tell};
use crate::state::{DaemonState, Outcome};
use anyhow::Result;
use backup_core::system::JobKind;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the loop looks for overdue jobs.
pub const OVERDUE_CHECK: Duration = Duration::from_secs(30);

/// What the process tells a running daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop: cancel a running job cleanly, then return.
    Shutdown,
    /// Read the system description again; keep the old one if the new one
    /// is invalid.
    Reload,
}

/// Runs the scheduler until told to stop.
pub async fn schedule_loop(
    shared: Arc<Shared>,
    mut control: mpsc::Receiver<Control>,
) -> Result<()> {
    refresh_stats(&shared).await;
    let mut tick = tokio::time::interval(OVERDUE_CHECK);
    loop {
        let wait = match shared.next() {
            Some((_, t)) => (t - shared.now()).to_std().unwrap_or(Duration::ZERO),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            c = control.recv() => match c {
                Some(Control::Reload) => { reload(&shared); continue; }
                Some(Control::Shutdown) | None => return Ok(()),
            },
            _ = shared.wake.notified() => {}
            _ = tick.tick() => check_overdue(&shared),
            _ = tokio::time::sleep(wait) => {}
        }
        while let Some((due, t)) = shared.next() {
            if t > shared.now() {
                break;
            }
            let go_on = match due {
                Due::Job(name) => run_one(&shared, &name, &mut control, &mut tick).await,
                Due::Rollback(id) => run_planned(&shared, &id, &mut control).await,
            };
            if !go_on {
                return Ok(());
            }
        }
    }
}

/// Notifies, once per due time, of jobs that did not run when due.
pub fn check_overdue(shared: &Shared) {
    let config = shared.config();
    let running = shared.running();
    let now = shared.now();
    let mut late = Vec::new();
    {
        let mut state = shared.state.lock().expect("lock");
        for s in &config.system.schedules {
            let Some(job) = state.jobs.get_mut(&s.name) else {
                continue;
            };
            let is_running = running.as_deref() == Some(s.name.as_str());
            if overdue(s, config.daemon.timezone, job, now, is_running)
                && job.overdue_notified != job.next_run
            {
                job.overdue_notified = job.next_run;
                late.push((s.clone(), job.next_run));
            }
        }
    }
    if late.is_empty() {
        return;
    }
    shared.save();
    for (s, due) in late {
        let why = match (&running, due) {
            (Some(r), Some(d)) => format!("due {}, waiting for {r} to end", d.to_rfc3339()),
            (None, Some(d)) => format!("due {}", d.to_rfc3339()),
            _ => "overdue".into(),
        };
        tracing::error!(job = %s.name, "job overdue: {why}");
        shared.notify(Tell {
            detail: &why,
            ..Tell::new(Event::Overdue, &s.name, s.job.word())
        });
    }
}

/// Runs one job; false when a shutdown came meanwhile.
async fn run_one(
    shared: &Arc<Shared>,
    name: &str,
    control: &mut mpsc::Receiver<Control>,
    tick: &mut tokio::time::Interval,
) -> bool {
    let config = shared.config();
    shared.requested.lock().expect("lock").retain(|n| n != name);
    let Some(schedule) = config
        .system
        .schedules
        .iter()
        .find(|s| s.name == name)
        .cloned()
    else {
        return true;
    };
    let tz = config.daemon.timezone;
    {
        // The next run is written before this one starts.
        let mut state = shared.state.lock().expect("lock");
        let job = state.jobs.entry(name.to_string()).or_default();
        job.next_run = next_after(&schedule, tz, shared.now());
    }
    shared.save();
    *shared.running.lock().expect("lock") = Some(name.to_string());
    tracing::info!(job = name, kind = schedule.job.word(), "job started");
    shared.notify(Tell {
        ping_url: schedule.ping_url.as_deref(),
        ..Tell::new(Event::Start, name, schedule.job.word())
    });
    shared.cancel.store(false, Ordering::Relaxed);
    let work = Work {
        system: config.system.clone(),
        schedule: schedule.clone(),
        state_dir: config.state_dir.clone(),
        progress: JobProgress {
            cancel: shared.cancel.clone(),
        },
    };
    let mut task = shared.backend.run(work);
    let mut stopping = false;
    let mut reload_after = false;
    let result = loop {
        tokio::select! {
            r = &mut task => break r,
            _ = tick.tick() => check_overdue(shared),
            c = control.recv(), if !stopping => match c {
                Some(Control::Reload) => {
                    tracing::info!(job = name, "reload deferred until the running job ends");
                    reload_after = true;
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
    finish(shared, &schedule, tz, result);
    refresh_stats(shared).await;
    if reload_after {
        reload(shared);
    }
    !stopping
}

/// Applies a planned rollback at its time; false when a shutdown came
/// meanwhile (a rollback is never cancelled half-way: it finishes first).
async fn run_planned(
    shared: &Arc<Shared>,
    id: &str,
    control: &mut mpsc::Receiver<Control>,
) -> bool {
    let config = shared.config();
    let Some(p) = shared.planned().into_iter().find(|p| p.id == id) else {
        return true;
    };
    let mark = shared.update_planned(id, |p| {
        p.state = PlannedState::Running;
        Ok(())
    });
    if let Err(e) = mark {
        tracing::error!(rollback = id, error = %format!("{e:#}"), "cannot record the planned rollback");
    }
    let job = format!("rollback-{id}");
    *shared.running.lock().expect("lock") = Some(job.clone());
    tracing::info!(rollback = id, snapshot = %p.snapshot, "planned rollback started");
    shared.notify(Tell::new(Event::Start, &job, "rollback"));
    let work = PlanWork {
        system: config.system.clone(),
        plan_path: shared.plan_path(id),
        no_safety_snapshot: p.no_safety_snapshot,
    };
    let mut task = shared.backend.apply(work);
    let mut stopping = false;
    let outcome = loop {
        tokio::select! {
            r = &mut task => break r,
            c = control.recv(), if !stopping => if matches!(c, Some(Control::Shutdown) | None) {
                tracing::info!(rollback = id, "stopping once the planned rollback ends");
                stopping = true;
            },
        }
    };
    *shared.running.lock().expect("lock") = None;
    let now = shared.now();
    let saved = shared.update_planned(id, |p| {
        p.state = outcome.state;
        p.detail = Some(outcome.detail.clone());
        p.rollback_id = outcome.rollback_id.clone();
        p.finished = Some(now);
        Ok(())
    });
    if let Err(e) = saved {
        tracing::error!(rollback = id, error = %format!("{e:#}"), "cannot record the planned rollback");
    }
    if outcome.state == PlannedState::RolledBack {
        tracing::info!(rollback = id, detail = %outcome.detail, "planned rollback done");
        shared.notify(Tell {
            detail: &outcome.detail,
            ..Tell::new(Event::Success, &job, "rollback")
        });
    } else {
        tracing::error!(rollback = id, result = outcome.state.word(), detail = %outcome.detail, "planned rollback not applied");
        let error = format!("{}: {}", outcome.state.word(), outcome.detail);
        shared.notify(Tell {
            error: Some(&error),
            ..Tell::new(Event::Failure, &job, "rollback")
        });
    }
    refresh_stats(shared).await;
    !stopping
}

/// Reads the configuration again; on error keeps the old one.
pub fn reload(shared: &Shared) {
    let path = shared.config().path.clone();
    match Loaded::load(&path) {
        Ok(new) => {
            let now = shared.now();
            {
                let mut state = shared.state.lock().expect("lock");
                for s in &new.system.schedules {
                    let job = state.jobs.entry(s.name.clone()).or_default();
                    job.next_run = next_after(s, new.daemon.timezone, now);
                }
            }
            shared.set_config(new);
            shared.save();
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
async fn refresh_stats(shared: &Shared) {
    let system = shared.config().system.clone();
    if let Some(s) = shared.backend.stats(system).await {
        *shared.stats.lock().expect("lock") = s;
    }
}

/// Records a finished run and decides the next one.
fn finish(
    shared: &Shared,
    schedule: &backup_core::system::Schedule,
    tz: chrono_tz::Tz,
    r: JobResult,
) {
    let now = shared.now();
    let name = schedule.name.as_str();
    let rec = r.record.clone();
    let exhausted;
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
        exhausted = job.failures_in_row > MAX_RETRIES;
    }
    shared.save();
    tell_outcome(shared, schedule, &rec, exhausted);
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

/// Tells how a run ended: successes and failures to the ping URL always;
/// to `[notify]` a permanent failure at once, a retryable one once its
/// retries ran out.
fn tell_outcome(
    shared: &Shared,
    schedule: &backup_core::system::Schedule,
    rec: &crate::state::RunRecord,
    exhausted: bool,
) {
    let event = match rec.result {
        Outcome::Success => Event::Success,
        Outcome::Failure | Outcome::Cancelled => Event::Failure,
    };
    let cancelled = "cancelled: the daemon is stopping";
    let error = match rec.result {
        Outcome::Success => None,
        Outcome::Cancelled => Some(cancelled),
        Outcome::Failure => rec.error.as_deref(),
    };
    shared.notify(Tell {
        ping_url: schedule.ping_url.as_deref(),
        detail: &rec.detail,
        error,
        ping_only: rec.result == Outcome::Cancelled
            || (rec.result == Outcome::Failure && rec.retryable && !exhausted),
        ..Tell::new(event, &schedule.name, schedule.job.word())
    });
}

fn record_verify(
    state: &mut DaemonState,
    r: &JobResult,
    outcome: Outcome,
    now: chrono::DateTime<chrono::Utc>,
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

#[cfg(test)]
mod tests;
