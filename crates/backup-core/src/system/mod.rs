//! The system description: one TOML file that says what makes up the
//! application (its databases and file trees), where its backups go, and
//! how to stop, start and health-check it.
//!
//! It lives in the library, not in the command, because more than one
//! program reads it: the `backup` command today (`--config FILE`), a
//! daemon later. Both must accept and refuse exactly the same files, with
//! the same messages, so the parsing ([`System::parse`]) and the checks
//! against the live machine ([`check_file`]) are here.

mod access;
mod check;
mod daemon;
mod duration;
mod file;
mod notify;

pub use access::{read_secret_file, Access, Overrides};
pub use check::{check_file, check_system, CheckReport};
pub use daemon::{parse_cron, DaemonSection, JobKind, Schedule, DEFAULT_LISTEN};
pub use duration::parse_duration;
pub use notify::{NotifyEvent, NotifySection, DEFAULT_NOTIFY_TIMEOUT};

use crate::create::{FileSource, PostgresSource};
use crate::retention::Policy;
use std::path::PathBuf;
use std::time::Duration;

/// The state directory used when the file names none.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/backup";

/// A parsed and validated system description.
#[derive(Debug, Clone, PartialEq)]
pub struct System {
    /// The repository URL (a directory, `file://PATH` or `s3://BUCKET/PREFIX`).
    pub repository: Option<String>,
    /// The file holding the repository password (or a key file).
    pub password_file: Option<PathBuf>,
    /// Where a daemon keeps its state (default [`DEFAULT_STATE_DIR`]).
    pub state_dir: PathBuf,
    /// S3 settings (`[s3]`).
    pub s3: S3Section,
    /// The databases (`[[postgres]]`), in file order.
    pub postgres: Vec<PostgresEntry>,
    /// The file trees (`[[files]]`), in file order.
    pub files: Vec<FilesEntry>,
    /// How to stop, start and health-check the application (`[hooks]`).
    pub hooks: Hooks,
    /// The retention policy of `forget` (`[retention]`), when the file has
    /// that table.
    pub retention: Option<Policy>,
    /// The daemon's settings (`[daemon]`), when the file has that table.
    pub daemon: Option<DaemonSection>,
    /// The daemon's scheduled jobs (`[[schedule]]`).
    pub schedules: Vec<Schedule>,
    /// Who hears of the daemon's jobs (`[notify]`), when the file has that table.
    pub notify: Option<NotifySection>,
}

/// The `[s3]` table: settings of an S3 repository.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Section {
    /// The endpoint of an S3-compatible store.
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// Path-style addressing.
    pub path_style: Option<bool>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key, inline.
    pub secret_access_key: Option<String>,
    /// A file holding the secret access key.
    pub secret_access_key_file: Option<PathBuf>,
}

/// One `[[postgres]]` entry: a database component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresEntry {
    /// The component name, unique among all components.
    pub name: String,
    /// The libpq connection string or URI.
    pub connection: String,
    /// Row values are secret: `salvage show` prints none of them.
    pub secret: bool,
    /// Columns whose values are secret (`table.column` or
    /// `schema.table.column`): `salvage show` masks them.
    pub secret_columns: Vec<String>,
}

/// One `[[files]]` entry: a file component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesEntry {
    /// The component name, unique among all components.
    pub name: String,
    /// The absolute path of a directory, a single file or a symlink.
    pub path: PathBuf,
    /// Glob patterns left out of this component (added to `--exclude`).
    pub exclude: Vec<String>,
    /// The contents are secret: never printed in plans, diffs or logs.
    pub secret: bool,
}

/// The `[hooks]` table. Read and checked now; used by rollback (not yet
/// built).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Shell command that stops the application.
    pub stop: Option<String>,
    /// Shell command that starts the application.
    pub start: Option<String>,
    /// Shell command that succeeds once the application is healthy.
    pub health_check: Option<String>,
    /// How long to wait for the health check to pass.
    pub health_timeout: Option<Duration>,
    /// How long any one hook may run.
    pub hook_timeout: Option<Duration>,
}

impl Hooks {
    /// The hook commands that are set, with their keys (`hooks.stop`, ...).
    pub fn commands(&self) -> Vec<(&'static str, &str)> {
        [
            ("hooks.stop", &self.stop),
            ("hooks.start", &self.start),
            ("hooks.health_check", &self.health_check),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// One thing wrong with a system description: the key it concerns
/// (`files[0].path`, `hooks.stop`, or empty for the file as a whole) and
/// what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The key, e.g. `files[1].path`.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A syntax problem's message already names its key (and line).
        if self.key.is_empty() || self.message.contains(&format!("`{}`", self.key)) {
            f.write_str(&self.message)
        } else {
            write!(f, "key `{}`: {}", self.key, self.message)
        }
    }
}

impl Default for System {
    /// An empty description: no repository, no components, the default
    /// state directory.
    fn default() -> Self {
        System {
            repository: None,
            password_file: None,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            s3: S3Section::default(),
            postgres: Vec::new(),
            files: Vec::new(),
            hooks: Hooks::default(),
            retention: None,
            daemon: None,
            schedules: Vec::new(),
            notify: None,
        }
    }
}

impl System {
    /// How many components (databases and file trees) the file declares.
    pub fn component_count(&self) -> usize {
        self.postgres.len() + self.files.len()
    }

    /// The `[[files]]` entries as sources of `create`.
    pub fn file_sources(&self) -> Vec<FileSource> {
        self.files
            .iter()
            .map(|f| FileSource {
                name: f.name.clone(),
                path: f.path.clone(),
                excludes: f.exclude.clone(),
                secret: f.secret,
                record_as: None,
            })
            .collect()
    }

    /// The `[[postgres]]` entries as sources of `create`.
    pub fn postgres_sources(&self) -> Vec<PostgresSource> {
        self.postgres
            .iter()
            .map(|p| PostgresSource {
                name: p.name.clone(),
                connection: p.connection.clone(),
                record_as: None,
            })
            .collect()
    }
}
