//! Timed child processes, and pipelines.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Child;
use std::time::Instant;

use crate::support::process::{announce, check, timed_command, TimeOutput};
use crate::support::Result;
use crate::PASSWORD;

/// Runs timed children, under GNU time when `rss` (its output file) is set.
pub struct Timer<'a> {
    pub rss: Option<&'a Path>,
}

/// The outcome of one timed child process.
pub struct Timed {
    pub secs: f64,
    pub stdout: String,
    pub max_rss_kib: Option<u64>,
}

impl Timer<'_> {
    /// Runs `program args` with the repositories' passwords set and `envs`, timed; fails when
    /// the child fails.
    pub fn run(
        &self,
        name: &str,
        program: &Path,
        args: &[&OsStr],
        envs: &[(&str, &Path)],
    ) -> Result<Timed> {
        let unset = [
            "RESTIC_REPOSITORY",
            "RESTIC_PASSWORD_FILE",
            "RESTIC_PASSWORD_COMMAND",
        ];
        let mut cmd = timed_command(program, self.rss, "%M", &unset, PASSWORD);
        cmd.args(args).env("RESTIC_PASSWORD", PASSWORD);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        announce(name)?;
        let t = Instant::now();
        let out = cmd.output()?;
        let secs = t.elapsed().as_secs_f64();
        check(name, &out)?;
        let max_rss_kib = match self.rss {
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

/// Waits for every process of a pipeline; fails if any of them failed.
pub fn wait_all(name: &str, children: Vec<Child>) -> Result<()> {
    let mut failed = Vec::new();
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            failed.push(status.to_string());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("{name} failed: {}", failed.join(", ")).into())
    }
}
