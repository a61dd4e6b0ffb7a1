//! The two tools and their repositories: untimed commands, the snapshots of a setup round
//! (both tools at once), and timed steps under GNU time.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Instant;

use crate::support::process::{announce, capture, check, timed_command, TimeOutput};
use crate::support::Result;
use crate::PASSWORD;

/// Variables that would point restic at another repository or password.
const RESTIC_UNSET: &[&str] = &[
    "RESTIC_REPOSITORY",
    "RESTIC_REPOSITORY_FILE",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
];

/// Which tool a command is for.
#[derive(Clone, Copy)]
pub enum Tool {
    Backup,
    Restic,
}

/// The outcome of one timed step.
pub struct Timed {
    pub secs: f64,
    pub stdout: String,
    pub max_rss_kib: Option<u64>,
}

/// Both binaries, their repositories, restic's cache, and GNU time's output file (`None`
/// when GNU time is missing).
pub struct Tools {
    pub backup: PathBuf,
    pub restic: PathBuf,
    pub backup_repo: PathBuf,
    pub restic_repo: PathBuf,
    pub restic_cache: PathBuf,
    pub time_file: Option<PathBuf>,
}

impl Tools {
    /// The command of `tool` with its repository and password set, under GNU time when
    /// `timed`; the caller adds the arguments (for `backup`, `--repo` comes last).
    fn command(&self, tool: Tool, timed: bool) -> Command {
        let time_file = self.time_file.as_deref().filter(|_| timed);
        match tool {
            Tool::Backup => timed_command(&self.backup, time_file, "%M", RESTIC_UNSET, PASSWORD),
            Tool::Restic => {
                let mut cmd = timed_command(&self.restic, time_file, "%M", RESTIC_UNSET, PASSWORD);
                // restic reads `--time` as local time and files its keep buckets by the
                // snapshot's zone: UTC for both tools.
                cmd.env("RESTIC_PASSWORD", PASSWORD)
                    .env("RESTIC_REPOSITORY", &self.restic_repo)
                    .env("RESTIC_CACHE_DIR", &self.restic_cache)
                    .env("TZ", "UTC");
                cmd
            }
        }
    }

    /// `tool args`, completed for the tool: `backup` gets `--repo`.
    fn with_args(&self, tool: Tool, timed: bool, args: &[&OsStr]) -> Command {
        let mut cmd = self.command(tool, timed);
        cmd.args(args);
        if let Tool::Backup = tool {
            cmd.arg("--repo").arg(&self.backup_repo);
        }
        cmd
    }

    /// Runs `tool args` untimed; returns its stdout.
    pub fn run(&self, tool: Tool, args: &[&str]) -> Result<String> {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        capture(&mut self.with_args(tool, false, &args))
    }

    /// The snapshots of one setup round: `backup create` and `restic backup` of `tree` dated
    /// `time` ("YYYY-MM-DD HH:MM:SS", UTC), run side by side; fails when either fails.
    pub fn snapshot(&self, tree: &Path, time: &str) -> Result<()> {
        let os = OsStr::new;
        let backup = self
            .with_args(
                Tool::Backup,
                false,
                &[
                    os("create"),
                    os("--quiet"),
                    os("--files"),
                    tree.as_os_str(),
                    os("--time"),
                    os(time),
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let restic = self
            .with_args(
                Tool::Restic,
                false,
                &[
                    os("backup"),
                    os("--quiet"),
                    os("--time"),
                    os(time),
                    tree.as_os_str(),
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let finished = |name: &str, child: Child| -> Result<()> {
            let out = child.wait_with_output()?;
            check_quiet(&format!("{name} ({time})"), &out)
        };
        let b = finished("backup create", backup);
        let r = finished("restic backup", restic);
        b.and(r)
    }

    /// Runs step `name`, `tool args`, timed (wall time; max RSS when GNU time is there);
    /// fails when it fails.
    pub fn timed(&self, name: &str, tool: Tool, args: &[&str]) -> Result<Timed> {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let mut cmd = self.with_args(tool, true, &args);
        announce(name)?;
        let t = Instant::now();
        let out = cmd.output()?;
        let secs = t.elapsed().as_secs_f64();
        check(name, &out)?;
        let max_rss_kib = match &self.time_file {
            Some(file) => Some(TimeOutput::read(file, 1)?.field(0)?),
            None => None,
        };
        match max_rss_kib {
            Some(k) => println!("{secs:.2} s, max RSS {:.1} MiB", k as f64 / 1024.0),
            None => println!("{secs:.2} s"),
        }
        Ok(Timed {
            secs,
            stdout: String::from_utf8(out.stdout)?,
            max_rss_kib,
        })
    }
}

/// Fails, with the child's output, when `name` failed (without `check`'s "failed" on the
/// progress line).
fn check_quiet(name: &str, out: &Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{name} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .into())
}
