//! Reading the system description: TOML syntax and unknown keys (refused,
//! naming the key, its line and the keys allowed there), then the values
//! (names, paths, durations, hook commands), every problem at once.
//!
//! Both stages are here so that a typo is reported the same way by every
//! program that reads the file: as a [`Problem`] for `config check`, and as
//! one usage error for commands that just need the file to be right.

use super::{
    parse_duration, FilesEntry, Hooks, PostgresEntry, Problem, S3Section, System, DEFAULT_STATE_DIR,
};
use crate::error::{Error, ErrorKind, Result};
use crate::retention::{Policy, Span};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The keys allowed in each table (`""` is the top level).
const KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "repository",
            "password_file",
            "s3",
            "state_dir",
            "postgres",
            "files",
            "hooks",
            "retention",
            "daemon",
            "schedule",
            "notify",
        ],
    ),
    (
        "s3",
        &[
            "endpoint",
            "region",
            "path_style",
            "access_key_id",
            "secret_access_key",
            "secret_access_key_file",
        ],
    ),
    (
        "postgres",
        &["name", "connection", "secret", "secret_columns"],
    ),
    ("files", &["name", "path", "exclude", "secret"]),
    (
        "hooks",
        &[
            "stop",
            "start",
            "health_check",
            "health_timeout",
            "hook_timeout",
        ],
    ),
    ("retention", RETENTION_KEYS),
    ("daemon", super::daemon::DAEMON_KEYS),
    ("schedule", super::daemon::SCHEDULE_KEYS),
    ("notify", super::notify::NOTIFY_KEYS),
];

/// The keys of `[retention]`.
const RETENTION_KEYS: &[&str] = &[
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
    "keep_within",
    "keep_within_hourly",
    "keep_within_daily",
    "keep_within_weekly",
    "keep_within_monthly",
    "keep_within_yearly",
    "keep_tag",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    repository: Option<String>,
    password_file: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    #[serde(default)]
    s3: RawS3,
    #[serde(default)]
    postgres: Vec<RawPostgres>,
    #[serde(default)]
    files: Vec<RawFiles>,
    #[serde(default)]
    hooks: RawHooks,
    retention: Option<RawRetention>,
    daemon: Option<super::daemon::RawDaemon>,
    #[serde(default)]
    schedule: Vec<super::daemon::RawSchedule>,
    notify: Option<super::notify::RawNotify>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    keep_last: Option<i64>,
    keep_hourly: Option<i64>,
    keep_daily: Option<i64>,
    keep_weekly: Option<i64>,
    keep_monthly: Option<i64>,
    keep_yearly: Option<i64>,
    keep_within: Option<String>,
    keep_within_hourly: Option<String>,
    keep_within_daily: Option<String>,
    keep_within_weekly: Option<String>,
    keep_within_monthly: Option<String>,
    keep_within_yearly: Option<String>,
    /// A list of tags, or a table of tag = duration.
    keep_tag: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawS3 {
    endpoint: Option<String>,
    region: Option<String>,
    path_style: Option<bool>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    secret_access_key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostgres {
    name: Option<String>,
    connection: Option<String>,
    #[serde(default)]
    secret: bool,
    #[serde(default)]
    secret_columns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    name: Option<String>,
    path: Option<PathBuf>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    secret: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHooks {
    stop: Option<String>,
    start: Option<String>,
    health_check: Option<String>,
    health_timeout: Option<String>,
    hook_timeout: Option<String>,
}

/// Where in the file a byte offset lies: its line number, the table it
/// belongs to (`s3`, `files[1]`, `""` for the top level) and that table's
/// name without the index (`files`).
struct Place {
    line_no: usize,
    line: String,
    table: String,
    table_name: String,
}

fn place(text: &str, offset: usize) -> Place {
    let start = offset.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let mut place = Place {
        line_no: text[..start].matches('\n').count() + 1,
        line: text[line_start..].lines().next().unwrap_or("").to_string(),
        table: String::new(),
        table_name: String::new(),
    };
    let mut counts: Vec<(String, usize)> = Vec::new();
    // The table the line belongs to: the last header above it.
    for l in text[..line_start].lines() {
        let Some((name, array)) = header(l) else {
            continue;
        };
        place.table_name = name.clone();
        place.table = if array {
            let n = match counts.iter_mut().find(|(k, _)| *k == name) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    counts.push((name.clone(), 0));
                    0
                }
            };
            format!("{name}[{n}]")
        } else {
            name
        };
    }
    place
}

/// The table a header line opens and whether it is `[[array]]`.
fn header(line: &str) -> Option<(String, bool)> {
    let l = line.trim();
    if let Some(rest) = l.strip_prefix("[[") {
        return Some((rest.split("]]").next()?.trim().to_string(), true));
    }
    let rest = l.strip_prefix('[')?;
    Some((rest.split(']').next()?.trim().to_string(), false))
}

/// The key an error at `p` is about, and the table whose keys apply.
fn error_key(p: &Place) -> (Option<String>, &str) {
    if let Some((name, _)) = header(&p.line) {
        // The error is about a table header: a key of the top level.
        return (Some(name), "");
    }
    let key = p.line.split_once('=').and_then(|(k, _)| {
        let k = k.trim().trim_matches('"');
        (!k.is_empty()).then(|| {
            if p.table.is_empty() {
                k.to_string()
            } else {
                format!("{}.{k}", p.table)
            }
        })
    });
    (key, &p.table_name)
}

/// Turns a TOML error into a problem naming the line and the key.
fn syntax_problem(text: &str, err: &toml::de::Error) -> Problem {
    let message = err.message().trim();
    let Some(span) = err.span() else {
        return Problem::new("", message);
    };
    let p = place(text, span.start);
    let (key, table) = error_key(&p);
    let detail = if message.starts_with("unknown field") {
        let allowed = KEYS
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(KEYS[0].1, |(_, k)| *k);
        let scope = if table.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in [{table}]")
        };
        format!(
            "unknown key{}; the keys allowed {scope} are {}",
            key.as_ref().map(|k| format!(" `{k}`")).unwrap_or_default(),
            allowed.join(", ")
        )
    } else {
        match &key {
            Some(k) => format!("key `{k}`: {message}"),
            None => message.to_string(),
        }
    };
    Problem::new(
        key.unwrap_or_default(),
        format!("line {}: {detail}", p.line_no),
    )
}

/// A component name: letters, digits, `.`, `_`, `-`, not starting with `.`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Checks names: present, well-formed, unique among all components.
fn check_names(names: &[(String, Option<&str>)], problems: &mut Vec<Problem>) {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (base, name) in names {
        let key = format!("{base}.name");
        match name {
            None => problems.push(Problem::new(
                key,
                "missing: give every component a name (letters, digits, `.`, `_`, `-`)",
            )),
            Some(n) if !valid_name(n) => problems.push(Problem::new(
                key,
                format!("{n:?} is not a valid name: use letters, digits, `.`, `_` and `-`, not starting with `.`"),
            )),
            Some(n) => match seen.iter().find(|(m, _)| m == n) {
                Some((_, other)) => problems.push(Problem::new(
                    &key,
                    format!("{n:?} is already the name of {other}: names must be unique among all components"),
                )),
                None => seen.push((*n, base.as_str())),
            },
        }
    }
}

fn absolute(key: &str, path: &Path, problems: &mut Vec<Problem>) {
    if !path.is_absolute() {
        problems.push(Problem::new(
            key,
            format!(
                "{} is not an absolute path: give it from the root, e.g. /{}",
                path.display(),
                path.display()
            ),
        ));
    }
}

fn files_entries(raw: Vec<RawFiles>, problems: &mut Vec<Problem>) -> Vec<FilesEntry> {
    let mut out = Vec::new();
    for (i, f) in raw.into_iter().enumerate() {
        let key = format!("files[{i}]");
        match &f.path {
            None => problems.push(Problem::new(
                format!("{key}.path"),
                "missing: give the absolute path of a directory, file or symlink",
            )),
            Some(p) => absolute(&format!("{key}.path"), p, problems),
        }
        for pattern in &f.exclude {
            if let Err(e) = globset::Glob::new(pattern) {
                problems.push(Problem::new(
                    format!("{key}.exclude"),
                    format!("bad pattern {pattern:?}: {e}"),
                ));
            }
        }
        out.push(FilesEntry {
            name: f.name.unwrap_or_default(),
            path: f.path.unwrap_or_default(),
            exclude: f.exclude,
            secret: f.secret,
        });
    }
    out
}

/// Checks that no file component lies inside another (it would be
/// captured twice).
fn check_nesting(files: &[FilesEntry], problems: &mut Vec<Problem>) {
    for (j, inner) in files.iter().enumerate() {
        let outer = files
            .iter()
            .enumerate()
            .find(|(i, o)| *i != j && o.path.is_absolute() && inner.path.starts_with(&o.path));
        if let Some((i, o)) = outer {
            problems.push(Problem::new(
                format!("files[{j}].path"),
                format!(
                    "{} lies inside files[{i}] ({:?}, {}): capture only the outer path, or exclude the inner one there",
                    inner.path.display(),
                    o.name,
                    o.path.display()
                ),
            ));
        }
    }
}

fn postgres_entries(raw: Vec<RawPostgres>, problems: &mut Vec<Problem>) -> Vec<PostgresEntry> {
    let mut out = Vec::new();
    for (i, p) in raw.into_iter().enumerate() {
        let connection = p.connection.unwrap_or_default();
        if connection.trim().is_empty() {
            problems.push(Problem::new(
                format!("postgres[{i}].connection"),
                "missing: give a libpq connection string, e.g. \"host=/var/run/postgresql dbname=dms user=postgres\"",
            ));
        }
        out.push(PostgresEntry {
            name: p.name.unwrap_or_default(),
            connection,
            secret: p.secret,
            secret_columns: p.secret_columns,
        });
    }
    out
}

fn hooks(raw: RawHooks, problems: &mut Vec<Problem>) -> Hooks {
    let mut command = |key: &str, v: Option<String>| {
        if v.as_deref().is_some_and(|c| c.trim().is_empty()) {
            problems.push(Problem::new(
                key,
                "empty: give a command, or leave the key out",
            ));
        }
        v
    };
    let stop = command("hooks.stop", raw.stop);
    let start = command("hooks.start", raw.start);
    let health_check = command("hooks.health_check", raw.health_check);
    let mut duration = |key: &str, v: Option<String>| {
        v.and_then(|t| {
            parse_duration(&t)
                .map_err(|e| problems.push(Problem::new(key, e)))
                .ok()
        })
    };
    Hooks {
        stop,
        start,
        health_check,
        health_timeout: duration("hooks.health_timeout", raw.health_timeout),
        hook_timeout: duration("hooks.hook_timeout", raw.hook_timeout),
    }
}

/// `keep_tag`: `["a", "b"]` (keep snapshots with any of these tags) or
/// `{ "pre-deploy" = "90d" }` (keep those within the duration of the newest).
fn keep_tags(v: toml::Value, policy: &mut Policy, problems: &mut Vec<Problem>) {
    let key = "retention.keep_tag";
    let shape = "give a list of tags, e.g. [\"pre-deploy\"], or a table of tag = duration, \
                 e.g. { \"pre-deploy\" = \"90d\" }";
    match v {
        toml::Value::Array(items) => {
            for item in items {
                match item {
                    toml::Value::String(t) if !t.is_empty() => policy.tags.push(t),
                    other => {
                        problems.push(Problem::new(key, format!("{other} is not a tag: {shape}")))
                    }
                }
            }
        }
        toml::Value::Table(table) => {
            for (tag, d) in table {
                let span = match d.as_str() {
                    Some(text) => Span::parse(text).map_err(|e| e.to_string()),
                    None => Err(format!("{d} is not a duration: {shape}")),
                };
                match span {
                    Ok(span) => policy.tags_within.push((tag, span)),
                    Err(e) => problems.push(Problem::new(format!("{key}.{tag}"), e)),
                }
            }
        }
        other => problems.push(Problem::new(key, format!("{other} is neither: {shape}"))),
    }
}

/// The `[retention]` table as a policy (an empty table is an empty policy,
/// which `forget` refuses).
fn retention(raw: RawRetention, problems: &mut Vec<Problem>) -> Policy {
    let mut count = |name: &str, v: Option<i64>| {
        let n = v.unwrap_or(0);
        if n < -1 {
            problems.push(Problem::new(
                format!("retention.{name}"),
                format!("{n}: give a count of 1 or more, or -1 for unlimited"),
            ));
        }
        n
    };
    let mut policy = Policy {
        last: count("keep_last", raw.keep_last),
        hourly: count("keep_hourly", raw.keep_hourly),
        daily: count("keep_daily", raw.keep_daily),
        weekly: count("keep_weekly", raw.keep_weekly),
        monthly: count("keep_monthly", raw.keep_monthly),
        yearly: count("keep_yearly", raw.keep_yearly),
        ..Policy::default()
    };
    let mut span = |name: &str, v: Option<String>| {
        v.and_then(|text| {
            Span::parse(&text)
                .map_err(|e| {
                    problems.push(Problem::new(format!("retention.{name}"), e.to_string()))
                })
                .ok()
        })
    };
    policy.within = span("keep_within", raw.keep_within);
    policy.within_hourly = span("keep_within_hourly", raw.keep_within_hourly);
    policy.within_daily = span("keep_within_daily", raw.keep_within_daily);
    policy.within_weekly = span("keep_within_weekly", raw.keep_within_weekly);
    policy.within_monthly = span("keep_within_monthly", raw.keep_within_monthly);
    policy.within_yearly = span("keep_within_yearly", raw.keep_within_yearly);
    if let Some(v) = raw.keep_tag {
        keep_tags(v, &mut policy, problems);
    }
    policy
}

/// Parses a system description. A syntax error or unknown key is the `Err`
/// (TOML stops at the first); otherwise the system and every problem its
/// values have (an empty list when it is valid).
pub fn parse_text(text: &str) -> std::result::Result<(System, Vec<Problem>), Problem> {
    let raw: RawSystem = toml::from_str(text).map_err(|e| syntax_problem(text, &e))?;
    let mut problems = Vec::new();
    let mut names: Vec<(String, Option<&str>)> = Vec::new();
    for (i, p) in raw.postgres.iter().enumerate() {
        names.push((format!("postgres[{i}]"), p.name.as_deref()));
    }
    for (i, f) in raw.files.iter().enumerate() {
        names.push((format!("files[{i}]"), f.name.as_deref()));
    }
    check_names(&names, &mut problems);
    let state_dir = raw
        .state_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    absolute("state_dir", &state_dir, &mut problems);
    let s3 = S3Section {
        endpoint: raw.s3.endpoint,
        region: raw.s3.region,
        path_style: raw.s3.path_style,
        access_key_id: raw.s3.access_key_id,
        secret_access_key: raw.s3.secret_access_key,
        secret_access_key_file: raw.s3.secret_access_key_file,
    };
    let system = System {
        repository: raw.repository,
        password_file: raw.password_file,
        state_dir,
        s3,
        postgres: postgres_entries(raw.postgres, &mut problems),
        files: files_entries(raw.files, &mut problems),
        hooks: hooks(raw.hooks, &mut problems),
        retention: raw.retention.map(|r| retention(r, &mut problems)),
        daemon: raw.daemon.map(|d| super::daemon::daemon(d, &mut problems)),
        schedules: super::daemon::schedules(raw.schedule, &mut problems),
        notify: raw.notify.map(|n| super::notify::notify(n, &mut problems)),
    };
    check_nesting(&system.files, &mut problems);
    Ok((system, problems))
}

impl System {
    /// Parses and validates a system description; `path` is only for
    /// messages. Every problem is a usage error naming the file, the key
    /// and (for syntax errors and unknown keys) the line.
    pub fn parse(path: &Path, text: &str) -> Result<System> {
        let file = path.display();
        match parse_text(text) {
            Err(p) => Err(Error::usage(format!(
                "the config file {file}, {}",
                p.message
            ))),
            Ok((system, problems)) if problems.is_empty() => Ok(system),
            Ok((_, problems)) => {
                let all: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                Err(Error::usage(format!(
                    "the config file {file}: {} (`backup config check` lists every problem)",
                    all.join("; ")
                )))
            }
        }
    }

    /// Reads, parses and validates the file at `path`. A file that cannot
    /// be read is a usage error too (the caller named it).
    pub fn load(path: &Path) -> Result<System> {
        let text = read(path)?;
        System::parse(path, &text)
    }
}

/// Reads the file, as a usage error when it cannot be read.
pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::io(format!("cannot read the config file {}", path.display()), e)
            .with_kind(ErrorKind::Usage)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const FULL: &str = r#"
repository = "/var/backups/dms"
password_file = "/etc/backup/password"

[s3]
endpoint = "http://127.0.0.1:3900"

[[postgres]]
name = "dms"
connection = "host=/var/run/postgresql dbname=dms user=postgres"

[[files]]
name = "api"
path = "/srv/dms/api"
exclude = ["*.log"]

[[files]]
name = "config"
path = "/etc/dms"
secret = true

[hooks]
stop = "systemctl stop dms-api"
health_timeout = "60s"
hook_timeout = "1h30m"
"#;

    fn problems(text: &str) -> Vec<Problem> {
        parse_text(text).expect("parses").1
    }

    #[test]
    fn the_full_example_parses() {
        let s = System::parse(Path::new("f.toml"), FULL).expect("valid");
        assert_eq!(s.repository.as_deref(), Some("/var/backups/dms"));
        assert_eq!(s.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(s.s3.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(s.postgres[0].name, "dms");
        assert_eq!(s.files.len(), 2);
        assert_eq!(s.files[0].exclude, ["*.log"]);
        assert!(!s.files[0].secret && s.files[1].secret);
        assert_eq!(s.hooks.health_timeout, Some(Duration::from_secs(60)));
        assert_eq!(s.hooks.hook_timeout, Some(Duration::from_secs(5400)));
        assert_eq!(
            s.hooks.commands(),
            [("hooks.stop", "systemctl stop dms-api")]
        );
        assert_eq!(s.component_count(), 3);
    }

    #[test]
    fn an_unknown_key_names_its_line_table_and_the_allowed_keys() {
        let text =
            "[[files]]\nname = \"a\"\npath = \"/a\"\n\n[[files]]\nname = \"b\"\npth = \"/b\"\n";
        let p = parse_text(text).unwrap_err();
        assert_eq!(p.key, "files[1].pth");
        assert!(
            p.message.starts_with("line 7: unknown key `files[1].pth`"),
            "{}",
            p.message
        );
        assert!(
            p.message
                .contains("in [files] are name, path, exclude, secret"),
            "{}",
            p.message
        );
        let p = parse_text("repository = \"/r\"\n[hook]\nstop = \"x\"\n").unwrap_err();
        assert_eq!(p.key, "hook");
        assert!(p.message.starts_with("line 2:"), "{}", p.message);
        let p = parse_text("[hooks]\nstop = 3\n").unwrap_err();
        assert_eq!(p.key, "hooks.stop");
    }

    #[test]
    fn names_are_required_well_formed_and_unique_across_kinds() {
        let text = "[[postgres]]\nname = \"app\"\nconnection = \"dbname=x\"\n\
                    [[files]]\nname = \"app\"\npath = \"/a\"\n\
                    [[files]]\npath = \"/b\"\n\
                    [[files]]\nname = \"no/slash\"\npath = \"/c\"\n";
        let got = problems(text);
        let keys: Vec<&str> = got.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["files[0].name", "files[1].name", "files[2].name"],
            "{got:?}"
        );
        assert!(
            got[0].message.contains("already the name of postgres[0]"),
            "{got:?}"
        );
        let err = System::parse(Path::new("f.toml"), text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert!(
            err.to_string().contains("key `files[1].name`: missing"),
            "{err}"
        );
    }

    #[test]
    fn relative_paths_bad_durations_and_empty_hooks_are_refused() {
        let text = "state_dir = \"var/lib\"\n[[files]]\nname = \"a\"\npath = \"srv/a\"\n\
                    [hooks]\nstart = \"  \"\nhealth_timeout = \"1 minute\"\nhook_timeout = \"0s\"\n";
        let got = problems(text);
        let keys: Vec<&str> = got.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "state_dir",
                "files[0].path",
                "hooks.start",
                "hooks.health_timeout",
                "hooks.hook_timeout"
            ],
            "{got:?}"
        );
        assert!(got[1].message.contains("not an absolute path"), "{got:?}");
    }

    #[test]
    fn a_file_component_inside_another_is_refused() {
        let got = problems(
            "[[files]]\nname = \"a\"\npath = \"/srv/dms\"\n\
             [[files]]\nname = \"b\"\npath = \"/srv/dms/api\"\n\
             [[files]]\nname = \"c\"\npath = \"/srv/dmsx\"\n",
        );
        let keys: Vec<&str> = got.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["files[1].path"], "{got:?}");
        assert!(got[0].message.contains("inside files[0]"), "{got:?}");
    }

    #[test]
    fn missing_path_and_connection_are_problems() {
        let got = problems("[[postgres]]\nname = \"db\"\n[[files]]\nname = \"f\"\n");
        let keys: Vec<&str> = got.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["postgres[0].connection", "files[0].path"], "{got:?}");
    }

    #[test]
    fn the_retention_table_is_a_policy() {
        let text = "[retention]\nkeep_last = 3\nkeep_daily = 7\nkeep_monthly = -1\n\
                    keep_within = \"1y2m\"\nkeep_tag = { \"pre-deploy\" = \"90d\" }\n";
        let s = System::parse(Path::new("f.toml"), text).expect("valid");
        let p = s.retention.expect("a policy");
        assert_eq!((p.last, p.daily, p.monthly, p.weekly), (3, 7, -1, 0));
        assert_eq!(p.within.map(|w| w.to_string()).as_deref(), Some("1y2m"));
        assert_eq!(p.tags_within.len(), 1);
        assert_eq!(p.tags_within[0].0, "pre-deploy");
        assert_eq!(p.tags_within[0].1.to_string(), "90d");
        let s = System::parse(
            Path::new("f.toml"),
            "[retention]\nkeep_tag = [\"a\", \"b\"]\n",
        )
        .expect("valid");
        assert_eq!(s.retention.expect("a policy").tags, ["a", "b"]);
        assert!(System::parse(Path::new("f.toml"), "")
            .expect("valid")
            .retention
            .is_none());
    }

    #[test]
    fn retention_unknown_keys_bad_counts_and_durations_are_refused() {
        let p = parse_text("[retention]\nkeep_last = 1\nkeep_dayly = 7\n").unwrap_err();
        assert_eq!(p.key, "retention.keep_dayly");
        assert!(
            p.message.starts_with("line 3: unknown key"),
            "{}",
            p.message
        );
        assert!(
            p.message
                .contains("in [retention] are keep_last, keep_hourly"),
            "{}",
            p.message
        );
        let got = problems(
            "[retention]\nkeep_weekly = -2\nkeep_within = \"2w\"\n\
             keep_tag = { \"pre-deploy\" = \"90\" }\n",
        );
        let keys: Vec<&str> = got.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "retention.keep_weekly",
                "retention.keep_within",
                "retention.keep_tag.pre-deploy"
            ],
            "{got:?}"
        );
        assert!(got[1].message.contains("y (years)"), "{got:?}");
        let got = problems("[retention]\nkeep_tag = 5\n");
        assert_eq!(got[0].key, "retention.keep_tag", "{got:?}");
    }
}
