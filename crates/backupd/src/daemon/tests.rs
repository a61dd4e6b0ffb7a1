//! The scheduler's loop on tokio's paused time, with a backend that
//! records when each job started: catch-up of a missed run, time zones,
//! a job due while another runs, back-off of retryable failures, overdue
//! and failure notifications.

use super::*;
use crate::backend::{Backend, BoxFuture, PlanWork, Work};
use crate::clock::Clock;
use crate::jobs::{JobResult, RepoStats};
use crate::notify::{Delivery, Notification};
use crate::planned::PlanOutcome;
use crate::state::{JobState, RunRecord, StateFile};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// How each job behaves.
#[derive(Debug, Clone, Copy, Default)]
struct Behaviour {
    takes: Duration,
    fails: bool,
    retryable: bool,
}

#[derive(Debug)]
struct Fake {
    clock: Clock,
    behaviour: BTreeMap<String, Behaviour>,
    runs: Mutex<Vec<(String, DateTime<Utc>)>>,
    told: Mutex<Vec<(Event, String, Vec<Delivery>)>>,
}

impl Backend for Fake {
    fn run(&self, w: Work) -> BoxFuture<JobResult> {
        let name = w.schedule.name.clone();
        let start = self.clock.now();
        self.runs.lock().unwrap().push((name.clone(), start));
        let b = self.behaviour.get(&name).copied().unwrap_or_default();
        let clock = self.clock;
        Box::pin(async move {
            tokio::time::sleep(b.takes).await;
            JobResult {
                record: RunRecord {
                    start,
                    end: clock.now(),
                    result: if b.fails {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    },
                    bytes: None,
                    detail: "done".into(),
                    error: b.fails.then(|| "it broke".to_string()),
                    retryable: b.retryable,
                },
                verify: None,
                drill_secs: None,
            }
        })
    }

    fn stats(&self, _: backup_core::system::System) -> BoxFuture<Option<RepoStats>> {
        Box::pin(async { None })
    }

    fn apply(&self, _: PlanWork) -> BoxFuture<PlanOutcome> {
        unreachable!("no rollback is planned in these tests")
    }

    fn notify(&self, deliveries: Vec<Delivery>, n: Notification, _: Duration) {
        self.told.lock().unwrap().push((n.event, n.job, deliveries));
    }
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct Harness {
    _dir: tempfile::TempDir,
    shared: Arc<Shared>,
    fake: Arc<Fake>,
}

/// A daemon at `base` with `schedules` (TOML), the given job behaviours,
/// and job state written before it starts.
fn harness(
    base: &str,
    schedules: &str,
    behaviour: &[(&str, Behaviour)],
    before: &[(&str, JobState)],
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let file = dir.path().join("backup.toml");
    std::fs::write(
        &file,
        format!(
            "state_dir = {:?}\n\n[notify]\ncommand = \"true\"\n\n{schedules}",
            state_dir.display().to_string()
        ),
    )
    .unwrap();
    let mut state = crate::state::DaemonState::default();
    for (name, job) in before {
        state.jobs.insert(name.to_string(), job.clone());
    }
    StateFile::new(&state_dir).save(&state).unwrap();
    let clock = Clock::starting_at(t(base));
    let fake = Arc::new(Fake {
        clock,
        behaviour: behaviour.iter().map(|(n, b)| (n.to_string(), *b)).collect(),
        runs: Mutex::new(Vec::new()),
        told: Mutex::new(Vec::new()),
    });
    let loaded = Loaded::load(&file).unwrap();
    let shared = Arc::new(Shared::new(loaded, clock, fake.clone()).unwrap());
    Harness {
        _dir: dir,
        shared,
        fake,
    }
}

impl Harness {
    /// Runs the loop for `secs` of (paused) time, then stops it.
    async fn run_for(&self, secs: u64) {
        let (tx, rx) = mpsc::channel(1);
        let h = tokio::spawn(schedule_loop(self.shared.clone(), rx));
        tokio::time::sleep(Duration::from_secs(secs)).await;
        tx.send(Control::Shutdown).await.unwrap();
        h.await.unwrap().unwrap();
    }

    fn starts(&self, job: &str) -> Vec<String> {
        self.fake
            .runs
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == job)
            .map(|(_, at)| at.format("%H:%M:%S").to_string())
            .collect()
    }

    fn told(&self, event: Event, job: &str) -> Vec<Vec<Delivery>> {
        self.fake
            .told
            .lock()
            .unwrap()
            .iter()
            .filter(|(e, j, _)| *e == event && j == job)
            .map(|(_, _, d)| d.clone())
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_missed_while_down_is_caught_up_once_then_the_schedule_goes_on() {
    let missed = JobState {
        next_run: Some(t("2026-12-01T07:00:00Z")),
        ..JobState::default()
    };
    let h = harness(
        "2026-12-01T10:30:00Z",
        "[[schedule]]\nname = \"hourly\"\njob = \"create\"\ncron = \"0 0 * * * *\"\n",
        &[],
        &[("hourly", missed)],
    );
    h.run_for(2 * 3600).await;
    // Three runs were missed (07:00 to 10:00): one catch-up, not three.
    assert_eq!(h.starts("hourly"), ["10:30:00", "11:00:00", "12:00:00"]);
}

#[tokio::test(start_paused = true)]
async fn cron_is_read_in_the_daemons_time_zone() {
    let h = harness(
        "2026-12-01T00:30:00Z",
        "[daemon]\ntimezone = \"Europe/Berlin\"\n\n[[schedule]]\nname = \"nightly\"\njob = \"create\"\ncron = \"0 0 2 * * *\"\n",
        &[],
        &[],
    );
    h.run_for(26 * 3600).await;
    // 02:00 in Berlin is 01:00 UTC in December.
    assert_eq!(h.starts("nightly"), ["01:00:00", "01:00:00"]);
    let runs = h.fake.runs.lock().unwrap().clone();
    assert_eq!(runs[1].1 - runs[0].1, chrono::Duration::hours(24));
}

#[tokio::test(start_paused = true)]
async fn a_job_due_while_another_runs_waits_runs_once_and_is_reported_overdue() {
    let long = Behaviour {
        takes: Duration::from_secs(300),
        ..Behaviour::default()
    };
    let h = harness(
        "2026-12-01T10:59:30Z",
        "[[schedule]]\nname = \"long\"\njob = \"prune\"\ncron = \"0 0 * * * *\"\n\n\
         [[schedule]]\nname = \"short\"\njob = \"create\"\ncron = \"0 * * * * *\"\n",
        &[("long", long)],
        &[],
    );
    h.run_for(480).await;
    assert_eq!(h.starts("long"), ["11:00:00"]);
    // Due at 11:00 (and 11:01 ... 11:04) while the prune ran: once at
    // 11:05, when it ended, then on its schedule. Never beside it.
    assert_eq!(
        h.starts("short"),
        ["11:05:00", "11:06:00", "11:07:00"],
        "{:?}",
        h.fake.runs.lock().unwrap()
    );
    // Late by more than its grace (a minute): reported once, to [notify].
    let overdue = h.told(Event::Overdue, "short");
    assert_eq!(overdue.len(), 1, "{:?}", h.fake.told.lock().unwrap());
    assert_eq!(overdue[0], [Delivery::Command("true".into())]);
    assert!(h.told(Event::Overdue, "long").is_empty());
    // Successes are not announced unless asked.
    assert!(h.told(Event::Success, "short").is_empty());
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_back_off_and_are_reported_when_the_retries_run_out() {
    let flaky = Behaviour {
        fails: true,
        retryable: true,
        ..Behaviour::default()
    };
    let broken = Behaviour {
        fails: true,
        retryable: false,
        ..Behaviour::default()
    };
    let h = harness(
        "2026-12-01T10:59:59Z",
        "[[schedule]]\nname = \"flaky\"\njob = \"create\"\ncron = \"0 0 * * * *\"\nping_url = \"http://127.0.0.1:1/ping/flaky\"\n\n\
         [[schedule]]\nname = \"broken\"\njob = \"verify\"\ncron = \"30 0 * * * *\"\n",
        &[("flaky", flaky), ("broken", broken)],
        &[],
    );
    h.run_for(3600 + 60).await;
    // 30 s, then doubling, five retries; then the next scheduled run.
    assert_eq!(
        h.starts("flaky"),
        ["11:00:00", "11:00:30", "11:01:30", "11:03:30", "11:07:30", "11:15:30", "12:00:00"]
    );
    // Every failure is pinged; [notify] hears once the retries ran out.
    let fails = h.told(Event::Failure, "flaky");
    let pings = fails
        .iter()
        .filter(|d| d.contains(&Delivery::Ping("http://127.0.0.1:1/ping/flaky/fail".into())))
        .count();
    assert_eq!(pings, 7);
    let told = fails
        .iter()
        .filter(|d| d.contains(&Delivery::Command("true".into())))
        .count();
    // Once the retries ran out (11:15:30), and again when the next
    // scheduled run fails too (12:00: no retries until a success).
    assert_eq!(told, 2, "{fails:?}");
    assert_eq!(h.told(Event::Start, "flaky").len(), 7);
    // A permanent failure is not retried and is reported at once.
    assert_eq!(h.starts("broken"), ["11:00:30", "12:00:30"]);
    assert_eq!(h.told(Event::Failure, "broken").len(), 2);
    let state = h.shared.state();
    assert_eq!(state.jobs["flaky"].totals["failure"], 7);
}
