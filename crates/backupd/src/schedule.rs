//! When jobs run: the next time a cron expression gives in the daemon's
//! time zone, catch-up of a run missed while the daemon was down (once,
//! however many were missed), the back-off of retries, and when a job is
//! overdue. Pure functions of the times they are given, so that tests can
//! check them without waiting.

use crate::state::JobState;
use backup_core::system::Schedule;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::time::Duration;

/// Retries of a retryable failure before waiting for the next scheduled run.
pub const MAX_RETRIES: u32 = 5;
/// The first retry's delay; each next one doubles, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(30);
/// The longest delay between retries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The first time after `after` that `s` gives, read in `tz`.
pub fn next_after(s: &Schedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    s.cron_schedule
        .after(&after.with_timezone(&tz))
        .next()
        .map(|t| t.with_timezone(&Utc))
}

/// The next run of a job at start-up: a run that was due while the daemon
/// was down runs now, once; otherwise the stored or the next scheduled time.
pub fn at_start(
    s: &Schedule,
    tz: Tz,
    job: Option<&JobState>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match job.and_then(|j| j.next_run) {
        Some(t) if t <= now => Some(now),
        Some(t) => Some(t.min(next_after(s, tz, now).unwrap_or(t))),
        None => next_after(s, tz, now),
    }
}

/// The delay before retry number `n` (1-based).
pub fn backoff(n: u32) -> Duration {
    let factor = 2u32.saturating_pow(n.saturating_sub(1));
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// The next run after a run that ended at `now`: a retry with back-off
/// after a retryable failure (never later than the next scheduled run),
/// else the next scheduled time.
pub fn after_run(
    s: &Schedule,
    tz: Tz,
    job: &JobState,
    now: DateTime<Utc>,
    retry: bool,
) -> Option<DateTime<Utc>> {
    let scheduled = next_after(s, tz, now);
    if !retry || job.failures_in_row == 0 || job.failures_in_row > MAX_RETRIES {
        return scheduled;
    }
    let retry_at =
        now + chrono::Duration::from_std(backoff(job.failures_in_row)).unwrap_or_default();
    Some(scheduled.map_or(retry_at, |t| t.min(retry_at)))
}

/// Whether a job is overdue: its run is late by more than a grace of a
/// tenth of its interval (at least a minute) and it is not running.
pub fn overdue(s: &Schedule, tz: Tz, job: &JobState, now: DateTime<Utc>, running: bool) -> bool {
    let Some(due) = job.next_run else {
        return false;
    };
    if running {
        return false;
    }
    let interval = next_after(s, tz, due)
        .map(|n| (n - due).num_seconds())
        .unwrap_or(600);
    let grace = (interval / 10).max(60);
    (now - due).num_seconds() > grace
}

#[cfg(test)]
mod tests {
    use super::*;
    use backup_core::system::{parse_cron, JobKind};

    fn schedule(cron: &str) -> Schedule {
        Schedule {
            name: "t".into(),
            job: JobKind::Create,
            cron: cron.into(),
            cron_schedule: parse_cron(cron).unwrap(),
            tags: Vec::new(),
            read_data_subset: None,
            ping_url: None,
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn cron_is_read_in_the_daemons_time_zone() {
        let s = schedule("0 0 2 * * *");
        // 02:00 in Berlin is 01:00 UTC in winter, 00:00 UTC in summer.
        assert_eq!(
            next_after(&s, chrono_tz::Europe::Berlin, t("2026-12-01T12:00:00Z")),
            Some(t("2026-12-02T01:00:00Z"))
        );
        assert_eq!(
            next_after(&s, chrono_tz::Europe::Berlin, t("2026-07-01T12:00:00Z")),
            Some(t("2026-07-02T00:00:00Z"))
        );
        assert_eq!(
            next_after(&s, chrono_tz::UTC, t("2026-12-01T12:00:00Z")),
            Some(t("2026-12-02T02:00:00Z"))
        );
    }

    #[test]
    fn a_missed_run_is_caught_up_once() {
        let s = schedule("0 0 * * * *");
        let now = t("2026-12-01T12:30:00Z");
        // Down since 03:00: nine runs missed, one run now.
        let job = JobState {
            next_run: Some(t("2026-12-01T03:00:00Z")),
            ..JobState::default()
        };
        assert_eq!(at_start(&s, chrono_tz::UTC, Some(&job), now), Some(now));
        // After that run, the next is the next scheduled one, not 04:00.
        assert_eq!(
            after_run(&s, chrono_tz::UTC, &job, now, false),
            Some(t("2026-12-01T13:00:00Z"))
        );
        // Nothing stored: the next scheduled time.
        assert_eq!(
            at_start(&s, chrono_tz::UTC, None, now),
            Some(t("2026-12-01T13:00:00Z"))
        );
    }

    #[test]
    fn retries_back_off_and_never_pass_the_next_scheduled_run() {
        let s = schedule("0 0 */6 * * *");
        let now = t("2026-12-01T00:00:10Z");
        let mut job = JobState {
            failures_in_row: 1,
            ..JobState::default()
        };
        assert_eq!(
            after_run(&s, chrono_tz::UTC, &job, now, true),
            Some(t("2026-12-01T00:00:40Z"))
        );
        job.failures_in_row = 3;
        assert_eq!(
            after_run(&s, chrono_tz::UTC, &job, now, true),
            Some(t("2026-12-01T00:02:10Z"))
        );
        job.failures_in_row = 5;
        // 30 s * 16 = 8 min.
        assert_eq!(
            after_run(&s, chrono_tz::UTC, &job, now, true),
            Some(t("2026-12-01T00:08:10Z"))
        );
        // Past the retries: the next scheduled run.
        job.failures_in_row = 6;
        assert_eq!(
            after_run(&s, chrono_tz::UTC, &job, now, true),
            Some(t("2026-12-01T06:00:00Z"))
        );
        // A permanent failure waits for the schedule.
        job.failures_in_row = 1;
        assert_eq!(
            after_run(&s, chrono_tz::UTC, &job, now, false),
            Some(t("2026-12-01T06:00:00Z"))
        );
        assert_eq!(backoff(20), MAX_BACKOFF);
        // Hourly back-off capped by the next scheduled run.
        let s = schedule("0 */1 * * * *");
        assert_eq!(
            after_run(&s, chrono_tz::UTC, &job, now, true),
            Some(t("2026-12-01T00:00:40Z"))
        );
        job.failures_in_row = 4;
        assert_eq!(
            after_run(&s, chrono_tz::UTC, &job, now, true),
            Some(t("2026-12-01T00:01:00Z"))
        );
    }

    #[test]
    fn overdue_after_a_tenth_of_the_interval_and_never_while_running() {
        let s = schedule("0 0 * * * *");
        let job = JobState {
            next_run: Some(t("2026-12-01T12:00:00Z")),
            ..JobState::default()
        };
        assert!(!overdue(
            &s,
            chrono_tz::UTC,
            &job,
            t("2026-12-01T12:05:00Z"),
            false
        ));
        assert!(overdue(
            &s,
            chrono_tz::UTC,
            &job,
            t("2026-12-01T12:07:00Z"),
            false
        ));
        assert!(!overdue(
            &s,
            chrono_tz::UTC,
            &job,
            t("2026-12-01T12:07:00Z"),
            true
        ));
        let every_second = schedule("* * * * * *");
        let job = JobState {
            next_run: Some(t("2026-12-01T12:00:00Z")),
            ..JobState::default()
        };
        assert!(!overdue(
            &every_second,
            chrono_tz::UTC,
            &job,
            t("2026-12-01T12:00:59Z"),
            false
        ));
        assert!(overdue(
            &every_second,
            chrono_tz::UTC,
            &job,
            t("2026-12-01T12:01:01Z"),
            false
        ));
    }
}
