//! The daemon's part of the system description: `[daemon]` (where it
//! listens, its token, its time zone, how often every pack is re-read) and
//! `[[schedule]]` (named jobs with a cron expression). Parsed here, beside
//! the rest of the file, so that `backup config check` and `backupd`
//! accept and refuse the same files.

use super::{parse_duration, Problem};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Where the daemon listens when the file does not say: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9187";

/// The `[daemon]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSection {
    /// The HTTP address (loopback by default).
    pub listen: SocketAddr,
    /// The file holding the bearer token that state-changing requests
    /// need (`BACKUPD_TOKEN` overrides it).
    pub token_file: Option<PathBuf>,
    /// The daemon's state directory (default: the file's `state_dir`).
    pub state_dir: Option<PathBuf>,
    /// The time zone cron expressions are read in (default UTC).
    pub timezone: chrono_tz::Tz,
    /// Every pack is read back within this period by the verify jobs'
    /// rotating subsets.
    pub read_data_period: Option<Duration>,
}

impl Default for DaemonSection {
    fn default() -> Self {
        DaemonSection {
            listen: DEFAULT_LISTEN.parse().expect("a valid address"),
            token_file: None,
            state_dir: None,
            timezone: chrono_tz::UTC,
            read_data_period: None,
        }
    }
}

impl DaemonSection {
    /// The bearer token that state-changing requests to the daemon need:
    /// `BACKUPD_TOKEN`, else the contents of `token_file` (refused when
    /// world-readable), without surrounding whitespace; `None` when neither
    /// is set. The daemon and the command read it the same way, so a file
    /// ending in a newline is the same token for both.
    pub fn token(&self) -> crate::Result<Option<String>> {
        if let Ok(t) = std::env::var("BACKUPD_TOKEN") {
            if !t.trim().is_empty() {
                return Ok(Some(t.trim().to_string()));
            }
        }
        let Some(file) = &self.token_file else {
            return Ok(None);
        };
        let bytes = super::read_secret_file(file, "token file", crate::ErrorKind::Usage)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            crate::Error::usage(format!(
                "the token file {} is not UTF-8 text: write the token as one line",
                file.display()
            ))
        })?;
        match text.trim() {
            "" => Err(crate::Error::usage(format!(
                "the token file {} is empty: write the token in it",
                file.display()
            ))),
            t => Ok(Some(t.to_string())),
        }
    }
}

/// What a scheduled job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// `backup create` of every component.
    Create,
    /// `backup verify`, with a rotating read-data subset.
    Verify,
    /// The latest snapshot restored into scratch places, checked, dropped.
    RestoreDrill,
    /// `backup forget` by `[retention]`.
    Forget,
    /// `backup prune`.
    Prune,
}

impl JobKind {
    /// The word in the file (`create`, `restore-drill`, ...).
    pub fn word(self) -> &'static str {
        match self {
            JobKind::Create => "create",
            JobKind::Verify => "verify",
            JobKind::RestoreDrill => "restore-drill",
            JobKind::Forget => "forget",
            JobKind::Prune => "prune",
        }
    }

    fn parse(s: &str) -> Option<JobKind> {
        [
            JobKind::Create,
            JobKind::Verify,
            JobKind::RestoreDrill,
            JobKind::Forget,
            JobKind::Prune,
        ]
        .into_iter()
        .find(|k| k.word() == s)
    }
}

/// One `[[schedule]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The job's name, unique among schedules.
    pub name: String,
    /// What it does.
    pub job: JobKind,
    /// The cron expression as written.
    pub cron: String,
    /// The parsed expression (seconds field added when the file left it out).
    pub cron_schedule: cron::Schedule,
    /// Tags of the snapshots a create job takes.
    pub tags: Vec<String>,
    /// For verify: the fraction of packs read back per run.
    pub read_data_subset: Option<f64>,
    /// A healthchecks-type URL pinged at start (`/start`), success (the URL)
    /// and failure (`/fail`).
    pub ping_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    listen: Option<String>,
    token_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    timezone: Option<String>,
    read_data_period: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    name: Option<String>,
    job: Option<String>,
    cron: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    read_data_subset: Option<String>,
    ping_url: Option<String>,
}

/// The keys of `[daemon]`.
pub(super) const DAEMON_KEYS: &[&str] = &[
    "listen",
    "token_file",
    "state_dir",
    "timezone",
    "read_data_period",
];
/// The keys of `[[schedule]]`.
pub(super) const SCHEDULE_KEYS: &[&str] = &[
    "name",
    "job",
    "cron",
    "tags",
    "read_data_subset",
    "ping_url",
];

/// Validates `[daemon]`.
pub(super) fn daemon(raw: RawDaemon, problems: &mut Vec<Problem>) -> DaemonSection {
    let mut d = DaemonSection::default();
    if let Some(l) = raw.listen {
        match SocketAddr::from_str(&l) {
            Ok(a) => d.listen = a,
            Err(_) => problems.push(Problem::new(
                "daemon.listen",
                format!("{l:?} is not an address: write IP:PORT, e.g. \"{DEFAULT_LISTEN}\""),
            )),
        }
    }
    if let Some(tz) = raw.timezone {
        match chrono_tz::Tz::from_str(&tz) {
            Ok(t) => d.timezone = t,
            Err(_) => problems.push(Problem::new(
                "daemon.timezone",
                format!("{tz:?} is not a time zone: write an IANA name, e.g. \"Europe/Berlin\" or \"UTC\""),
            )),
        }
    }
    for (key, p) in [
        ("daemon.token_file", &raw.token_file),
        ("daemon.state_dir", &raw.state_dir),
    ] {
        if p.as_ref().is_some_and(|p| !p.is_absolute()) {
            problems.push(Problem::new(key, "must be an absolute path"));
        }
    }
    d.token_file = raw.token_file;
    d.state_dir = raw.state_dir;
    d.read_data_period = raw.read_data_period.and_then(|t| {
        parse_duration(&t)
            .map_err(|e| problems.push(Problem::new("daemon.read_data_period", e)))
            .ok()
    });
    d
}

/// Parses a cron expression with an optional seconds field (5 fields:
/// minute first; 6 or 7: seconds first, then an optional year).
pub fn parse_cron(text: &str) -> Result<cron::Schedule, String> {
    let fields = text.split_whitespace().count();
    let full = match fields {
        1 if text.trim().starts_with('@') => text.trim().to_string(),
        5 => format!("0 {text}"),
        6 | 7 => text.to_string(),
        n => {
            return Err(format!(
                "{text:?} has {n} fields: write 5 (minute hour day month weekday) or 6 with seconds first, e.g. \"0 0 2 * * *\""
            ))
        }
    };
    cron::Schedule::from_str(&full).map_err(|e| {
        // The parser's message draws a caret under the field; keep its words.
        let e = e.to_string();
        let why = e.lines().last().unwrap_or_default().trim().to_string();
        format!("{text:?} is not a cron expression: {why}")
    })
}

/// Parses `5%` or `0.05` into a fraction in (0, 1].
fn fraction(text: &str) -> Option<f64> {
    let v: f64 = match text.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => text.trim().parse().ok()?,
    };
    (v > 0.0 && v <= 1.0).then_some(v)
}

/// Validates the `[[schedule]]` entries.
pub(super) fn schedules(raw: Vec<RawSchedule>, problems: &mut Vec<Problem>) -> Vec<Schedule> {
    let mut out: Vec<Schedule> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("schedule[{i}].{k}");
        let name = match r.name {
            Some(n) if super::file::valid_name(&n) => n,
            Some(n) => {
                problems.push(Problem::new(
                    key("name"),
                    format!("{n:?}: use letters, digits, `.`, `_`, `-`"),
                ));
                continue;
            }
            None => {
                problems.push(Problem::new(
                    key("name"),
                    "missing: every schedule needs a name",
                ));
                continue;
            }
        };
        if out.iter().any(|s| s.name == name) {
            problems.push(Problem::new(
                key("name"),
                format!("{name:?} is used twice: names must be unique"),
            ));
        }
        let job = match r.job.as_deref().map(|j| (j, JobKind::parse(j))) {
            Some((_, Some(k))) => k,
            Some((j, None)) => {
                problems.push(Problem::new(
                    key("job"),
                    format!("{j:?}: write create, verify, restore-drill, forget or prune"),
                ));
                continue;
            }
            None => {
                problems.push(Problem::new(
                    key("job"),
                    "missing: say what the schedule runs",
                ));
                continue;
            }
        };
        let Some(cron_text) = r.cron else {
            problems.push(Problem::new(
                key("cron"),
                "missing: give a cron expression, e.g. \"0 0 2 * * *\"",
            ));
            continue;
        };
        let cron_schedule = match parse_cron(&cron_text) {
            Ok(s) => s,
            Err(e) => {
                problems.push(Problem::new(key("cron"), e));
                continue;
            }
        };
        let read_data_subset = r.read_data_subset.and_then(|t| {
            let f = fraction(&t);
            if f.is_none() {
                problems.push(Problem::new(
                    key("read_data_subset"),
                    format!("{t:?}: write a percentage, e.g. \"5%\""),
                ));
            }
            f
        });
        if read_data_subset.is_some() && job != JobKind::Verify {
            problems.push(Problem::new(
                key("read_data_subset"),
                "only verify jobs read data back",
            ));
        }
        if let Some(u) = &r.ping_url {
            super::notify::check_url(&key("ping_url"), u, problems);
        }
        out.push(Schedule {
            name,
            job,
            cron: cron_text,
            cron_schedule,
            tags: r.tags,
            read_data_subset,
            ping_url: r.ping_url,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::file::parse_text;
    use super::*;

    const DAEMON: &str = r#"
[daemon]
listen = "127.0.0.1:9187"
token_file = "/etc/backup/daemon-token"
timezone = "Europe/Berlin"
read_data_period = "30d"

[[schedule]]
name = "nightly"
job = "create"
cron = "0 0 2 * * *"
tags = ["nightly"]

[[schedule]]
name = "check"
job = "verify"
cron = "0 */6 * * *"
read_data_subset = "5%"
"#;

    #[test]
    fn the_daemon_example_parses() {
        let (sys, problems) = parse_text(DAEMON).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let d = sys.daemon.unwrap();
        assert_eq!(d.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(d.read_data_period, Some(Duration::from_secs(30 * 86400)));
        assert_eq!(sys.schedules.len(), 2);
        assert_eq!(sys.schedules[0].job, JobKind::Create);
        assert_eq!(sys.schedules[0].tags, ["nightly"]);
        assert_eq!(sys.schedules[1].read_data_subset, Some(0.05));
        // Five fields: minute first, the seconds field added.
        let next: Vec<_> = sys.schedules[1]
            .cron_schedule
            .after(
                &chrono::DateTime::parse_from_rfc3339("2026-12-01T05:59:59Z")
                    .unwrap()
                    .with_timezone(&chrono::Utc),
            )
            .take(2)
            .collect();
        assert_eq!(next[0].to_rfc3339(), "2026-12-01T06:00:00+00:00");
        assert_eq!(next[1].to_rfc3339(), "2026-12-01T12:00:00+00:00");
    }

    #[test]
    fn bad_daemon_values_name_their_keys() {
        let text = r#"
[daemon]
listen = "localhost"
timezone = "Mars/Olympus"

[[schedule]]
name = "a"
job = "backup"
cron = "0 2 * *"

[[schedule]]
name = "b"
job = "create"
cron = "@daily"

[[schedule]]
name = "b"
job = "prune"
cron = "0 0 3 * * Sun"
read_data_subset = "5%"

[[schedule]]
name = "c"
job = "verify"
cron = "0 0 25 * * *"
"#;
        let (_, problems) = parse_text(text).unwrap();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for want in [
            "daemon.listen",
            "daemon.timezone",
            "schedule[0].job",
            "schedule[2].name",
            "schedule[2].read_data_subset",
            "schedule[3].cron",
        ] {
            assert!(keys.contains(&want), "no problem for {want}: {problems:?}");
        }
        assert!(
            !keys.contains(&"schedule[1].cron"),
            "@daily is cron: {problems:?}"
        );
        let hours = problems
            .iter()
            .find(|p| p.key == "schedule[3].cron")
            .unwrap();
        assert!(hours.message.contains("Hours"), "{hours:?}");
    }

    #[test]
    fn the_token_file_is_read_without_its_newline_and_an_empty_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let d = DaemonSection {
            token_file: Some(file.clone()),
            ..DaemonSection::default()
        };
        if std::env::var("BACKUPD_TOKEN").is_err() {
            assert_eq!(d.token().unwrap().as_deref(), Some("s3cret"));
            std::fs::write(&file, "\n").unwrap();
            let e = d.token().unwrap_err();
            assert!(e.to_string().contains("is empty"), "{e}");
            assert_eq!(DaemonSection::default().token().unwrap(), None);
        }
    }

    #[test]
    fn unknown_daemon_keys_are_refused_with_the_allowed_ones() {
        let p = parse_text("[daemon]\nlisten_on = \"x\"\n").unwrap_err();
        assert!(p.message.contains("line 2"), "{p:?}");
        assert!(p.message.contains("token_file"), "{p:?}");
        let p = parse_text("[[schedule]]\nname = \"x\"\nevery = \"1h\"\n").unwrap_err();
        assert!(p.message.contains("read_data_subset"), "{p:?}");
    }
}
