//! Telling people how jobs go: which targets hear of an event (a pure
//! function of the `[notify]` table and the job's `ping_url`), and the
//! deliveries themselves: a command run with the event in its environment,
//! a webhook POSTed a JSON document, a healthchecks-type ping. A delivery
//! that fails is logged and never fails the job.

use backup_core::process::run_hook;
use backup_core::system::{NotifyEvent, NotifySection};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// A job started (pinged only).
    Start,
    /// A job succeeded.
    Success,
    /// A job failed or was cancelled.
    Failure,
    /// A job did not run when it was due.
    Overdue,
}

impl Event {
    /// The word in messages and the environment.
    pub fn word(self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::Success => "success",
            Event::Failure => "failure",
            Event::Overdue => "overdue",
        }
    }

    fn as_notify(self) -> Option<NotifyEvent> {
        match self {
            Event::Start => None,
            Event::Success => Some(NotifyEvent::Success),
            Event::Failure => Some(NotifyEvent::Failure),
            Event::Overdue => Some(NotifyEvent::Overdue),
        }
    }
}

/// One event of one job (also the webhook's JSON document).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// What happened.
    pub event: Event,
    /// The job's name (or `rollback` for a planned rollback).
    pub job: String,
    /// What the job does (`create`, `verify`, ..., `rollback`).
    pub kind: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// What the job did, in a line.
    pub detail: String,
    /// Why it failed.
    pub error: Option<String>,
    /// The host the daemon runs on.
    pub host: String,
}

/// Where one notification goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// `sh -c COMMAND` with `BACKUP_EVENT`, `BACKUP_JOB`, ... set.
    Command(String),
    /// A POST of the notification as JSON.
    Webhook(String),
    /// A POST to a healthchecks-type URL (`/start`, the URL, `/fail`) with
    /// the detail or the error as the body.
    Ping(String),
}

/// The deliveries of `event`: the `[notify]` command and webhook for the
/// events in `on`, and the job's ping URL at start, success and failure.
pub fn deliveries(
    notify: Option<&NotifySection>,
    ping_url: Option<&str>,
    event: Event,
) -> Vec<Delivery> {
    let mut out = Vec::new();
    if let (Some(n), Some(e)) = (notify, event.as_notify()) {
        if n.on.contains(&e) {
            out.extend(n.command.clone().map(Delivery::Command));
            out.extend(n.webhook.clone().map(Delivery::Webhook));
        }
    }
    if let Some(url) = ping_url {
        let url = url.trim_end_matches('/');
        match event {
            Event::Start => out.push(Delivery::Ping(format!("{url}/start"))),
            Event::Success => out.push(Delivery::Ping(url.to_string())),
            Event::Failure => out.push(Delivery::Ping(format!("{url}/fail"))),
            Event::Overdue => {}
        }
    }
    out
}

/// Carries out one delivery (blocking; the caller runs it off the
/// scheduler). Failures are logged.
pub fn deliver(d: &Delivery, n: &Notification, timeout: Duration) {
    let result = match d {
        Delivery::Command(c) => command(c, n, timeout),
        Delivery::Webhook(url) => post(url, timeout, Body::Json(n)),
        Delivery::Ping(url) => {
            let body = n.error.clone().unwrap_or_else(|| n.detail.clone());
            post(url, timeout, Body::Text(&body))
        }
    };
    match result {
        Ok(()) => tracing::debug!(event = n.event.word(), job = %n.job, "notified: {d:?}"),
        Err(why) => tracing::warn!(
            event = n.event.word(),
            job = %n.job,
            "a notification was not delivered ({d:?}): {why}"
        ),
    }
}

fn command(c: &str, n: &Notification, timeout: Duration) -> Result<(), String> {
    let env = [
        ("BACKUP_EVENT", n.event.word().to_string()),
        ("BACKUP_JOB", n.job.clone()),
        ("BACKUP_JOB_KIND", n.kind.clone()),
        ("BACKUP_TIME", n.time.to_rfc3339()),
        ("BACKUP_DETAIL", n.detail.clone()),
        ("BACKUP_ERROR", n.error.clone().unwrap_or_default()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    let run = run_hook(c, &env, timeout).map_err(|e| e.to_string())?;
    if run.passed() {
        Ok(())
    } else if run.timed_out {
        Err(format!("the command timed out after {timeout:?}"))
    } else {
        Err(format!(
            "the command exited with {:?}: {}",
            run.exit_code, run.output
        ))
    }
}

/// What a POST carries.
enum Body<'a> {
    Json(&'a Notification),
    Text(&'a str),
}

fn post(url: &str, timeout: Duration, body: Body<'_>) -> Result<(), String> {
    let request = ureq::post(url)
        .timeout(timeout)
        .set("User-Agent", concat!("backupd/", env!("CARGO_PKG_VERSION")));
    let sent = match body {
        Body::Json(n) => request.send_json(n),
        Body::Text(t) => request.send_string(t),
    };
    match sent {
        Ok(_) => Ok(()),
        Err(ureq::Error::Status(code, _)) => Err(format!("{url} answered {code}")),
        Err(e) => Err(format!("{url}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(on: &[NotifyEvent]) -> NotifySection {
        NotifySection {
            command: Some("notify-send".into()),
            webhook: Some("http://127.0.0.1:1/hook".into()),
            on: on.to_vec(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn failures_and_overdue_are_told_by_default_successes_only_when_asked() {
        let quiet = section(&[NotifyEvent::Failure, NotifyEvent::Overdue]);
        assert!(deliveries(Some(&quiet), None, Event::Success).is_empty());
        assert!(deliveries(Some(&quiet), None, Event::Start).is_empty());
        assert_eq!(
            deliveries(Some(&quiet), None, Event::Failure),
            [
                Delivery::Command("notify-send".into()),
                Delivery::Webhook("http://127.0.0.1:1/hook".into())
            ]
        );
        assert_eq!(deliveries(Some(&quiet), None, Event::Overdue).len(), 2);
        let chatty = section(&[NotifyEvent::Success]);
        assert_eq!(deliveries(Some(&chatty), None, Event::Success).len(), 2);
        assert!(deliveries(Some(&chatty), None, Event::Failure).is_empty());
        assert!(deliveries(None, None, Event::Failure).is_empty());
    }

    #[test]
    fn pings_go_to_start_the_url_and_fail_never_for_overdue() {
        let url = Some("https://hc-ping.com/abc/");
        let ping = |e| deliveries(None, url, e);
        assert_eq!(
            ping(Event::Start),
            [Delivery::Ping("https://hc-ping.com/abc/start".into())]
        );
        assert_eq!(
            ping(Event::Success),
            [Delivery::Ping("https://hc-ping.com/abc".into())]
        );
        assert_eq!(
            ping(Event::Failure),
            [Delivery::Ping("https://hc-ping.com/abc/fail".into())]
        );
        assert!(ping(Event::Overdue).is_empty());
    }
}
