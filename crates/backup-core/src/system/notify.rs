//! `[notify]`: who hears of the daemon's jobs. A command (run with `sh -c`
//! and the event in its environment) and a webhook (POSTed a JSON
//! document), each told of the events listed in `on` (failures and overdue
//! jobs by default: no message on every success unless asked). Each
//! `[[schedule]]` may also name a `ping_url`, pinged at start, success and
//! failure the way healthchecks-type services expect.

use super::{parse_duration, Problem};
use serde::Deserialize;
use std::time::Duration;

/// How long a notification command or request may take by default.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// An event a `[notify]` target can be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    /// A job ran and did what it should.
    Success,
    /// A job failed (or was cancelled).
    Failure,
    /// A job did not run when it was due.
    Overdue,
}

impl NotifyEvent {
    /// The word in the file and in messages.
    pub fn word(self) -> &'static str {
        match self {
            NotifyEvent::Success => "success",
            NotifyEvent::Failure => "failure",
            NotifyEvent::Overdue => "overdue",
        }
    }

    fn parse(s: &str) -> Option<NotifyEvent> {
        [
            NotifyEvent::Success,
            NotifyEvent::Failure,
            NotifyEvent::Overdue,
        ]
        .into_iter()
        .find(|e| e.word() == s)
    }
}

/// The `[notify]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifySection {
    /// A shell command run for each event in `on`.
    pub command: Option<String>,
    /// An `http://` or `https://` URL POSTed a JSON document for each event in `on`.
    pub webhook: Option<String>,
    /// The events the command and the webhook are told of.
    pub on: Vec<NotifyEvent>,
    /// How long the command or the request may take.
    pub timeout: Duration,
}

impl Default for NotifySection {
    fn default() -> Self {
        NotifySection {
            command: None,
            webhook: None,
            on: vec![NotifyEvent::Failure, NotifyEvent::Overdue],
            timeout: DEFAULT_NOTIFY_TIMEOUT,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    command: Option<String>,
    webhook: Option<String>,
    on: Option<Vec<String>>,
    timeout: Option<String>,
}

/// The keys of `[notify]`.
pub(super) const NOTIFY_KEYS: &[&str] = &["command", "webhook", "on", "timeout"];

/// Checks that `url` is one the daemon can call.
pub(super) fn check_url(key: &str, url: &str, problems: &mut Vec<Problem>) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
        problems.push(Problem::new(
            key,
            format!("{url:?} is not a URL: write http://HOST/PATH or https://HOST/PATH"),
        ));
    }
}

/// Validates `[notify]`.
pub(super) fn notify(raw: RawNotify, problems: &mut Vec<Problem>) -> NotifySection {
    let mut n = NotifySection::default();
    if let Some(c) = raw.command {
        if c.trim().is_empty() {
            problems.push(Problem::new(
                "notify.command",
                "is empty: name a command, or leave the key out",
            ));
        }
        n.command = Some(c);
    }
    if let Some(w) = raw.webhook {
        check_url("notify.webhook", &w, problems);
        n.webhook = Some(w);
    }
    if let Some(on) = raw.on {
        n.on.clear();
        for word in on {
            match NotifyEvent::parse(&word) {
                Some(e) if !n.on.contains(&e) => n.on.push(e),
                Some(_) => {}
                None => problems.push(Problem::new(
                    "notify.on",
                    format!("{word:?}: write success, failure or overdue"),
                )),
            }
        }
    }
    if let Some(t) = raw.timeout {
        match parse_duration(&t) {
            Ok(d) if !d.is_zero() => n.timeout = d,
            Ok(_) => problems.push(Problem::new("notify.timeout", "must be more than zero")),
            Err(e) => problems.push(Problem::new("notify.timeout", e)),
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::super::file::parse_text;
    use super::*;

    #[test]
    fn the_notify_table_parses_with_failure_and_overdue_by_default() {
        let (sys, problems) = parse_text(
            "[notify]\ncommand = \"logger backup\"\nwebhook = \"https://hooks.example.com/b\"\n\n\
             [[schedule]]\nname = \"n\"\njob = \"create\"\ncron = \"0 2 * * *\"\nping_url = \"https://hc-ping.com/abc\"\n",
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let n = sys.notify.unwrap();
        assert_eq!(n.on, [NotifyEvent::Failure, NotifyEvent::Overdue]);
        assert_eq!(n.timeout, DEFAULT_NOTIFY_TIMEOUT);
        assert_eq!(
            sys.schedules[0].ping_url.as_deref(),
            Some("https://hc-ping.com/abc")
        );
        let (sys, _) = parse_text("[notify]\non = [\"success\"]\ntimeout = \"5s\"\n").unwrap();
        let n = sys.notify.unwrap();
        assert_eq!(n.on, [NotifyEvent::Success]);
        assert_eq!(n.timeout, Duration::from_secs(5));
    }

    #[test]
    fn bad_notify_values_name_their_keys() {
        let (_, problems) = parse_text(
            "[notify]\ncommand = \" \"\nwebhook = \"hooks.example.com\"\non = [\"sucess\"]\ntimeout = \"0s\"\n\n\
             [[schedule]]\nname = \"n\"\njob = \"create\"\ncron = \"0 2 * * *\"\nping_url = \"ftp://x\"\n",
        )
        .unwrap();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for want in [
            "notify.command",
            "notify.webhook",
            "notify.on",
            "notify.timeout",
            "schedule[0].ping_url",
        ] {
            assert!(keys.contains(&want), "no problem for {want}: {problems:?}");
        }
        let p = parse_text("[notify]\nemail = \"x\"\n").unwrap_err();
        assert!(p.message.contains("webhook"), "{p:?}");
    }
}
