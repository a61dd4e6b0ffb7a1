//! One runner for shell commands that the system description names: the
//! stop and start hooks and the health check of a rollback.
//!
//! A hook runs as `sh -c COMMAND` in a process group of its own, with the
//! environment it is given, under a timeout: when the timeout runs out the
//! whole group is killed (a hook that started a daemon in the foreground,
//! or `sleep` behind a pipe, cannot hold a rollback hostage). Its output is
//! kept as a short tail for the report. A health check is a hook run again
//! and again until it passes or its overall time runs out.

use crate::error::{Error, ErrorKind, Result};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How many lines of a hook's output a report keeps.
const TAIL_LINES: usize = 20;

/// What one run of a hook did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HookRun {
    /// The command line.
    pub command: String,
    /// Its exit code; `None` when it was killed (by the timeout or a signal).
    pub exit_code: Option<i32>,
    /// Whether the timeout ran out and the process group was killed.
    pub timed_out: bool,
    /// Wall time in seconds.
    pub duration_secs: f64,
    /// The last lines of its standard output, then of its standard error.
    pub output: String,
}

impl HookRun {
    /// Whether it exited with 0 in time.
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// The last non-empty lines of a program's output, joined with ` | `.
pub fn tail(output: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let kept: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = kept.len().saturating_sub(lines);
    kept[start..].join(" | ")
}

/// Runs `command` with `sh -c`, the extra environment `env`, and no input.
/// A command that cannot be started is an error; one that fails or times
/// out is a [`HookRun`] that did not pass.
pub fn run_hook(command: &str, env: &[(String, String)], timeout: Duration) -> Result<HookRun> {
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io(format!("cannot run the hook {command:?}"), e))?;
    let stdout = child
        .stdout
        .take()
        .map(|r| std::thread::spawn(move || collect(r)));
    let stderr = child
        .stderr
        .take()
        .map(|r| std::thread::spawn(move || collect(r)));
    let deadline = start + timeout;
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (Some(status), false),
            Ok(None) if Instant::now() >= deadline => break (None, true),
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(Error::io(format!("waiting for the hook {command:?}"), e)),
        }
    };
    // Whatever it left behind in its group goes too (also after a normal
    // exit: a background child would keep the output pipe open).
    kill_group(child.id());
    let status = match status {
        Some(s) => Some(s),
        None => child.wait().ok(),
    };
    let mut output = Vec::new();
    for reader in [stdout, stderr].into_iter().flatten() {
        output.extend(reader.join().unwrap_or_default());
        output.push(b'\n');
    }
    Ok(HookRun {
        command: command.to_string(),
        exit_code: if timed_out {
            None
        } else {
            status.and_then(|s| s.code())
        },
        timed_out,
        duration_secs: start.elapsed().as_secs_f64(),
        output: tail(&output, TAIL_LINES),
    })
}

/// Runs a health check until it passes or `total` runs out, each try under
/// `per_try` (never beyond the overall deadline), `interval` apart.
/// Returns every try; the last one tells whether it passed.
pub fn run_health_check(
    command: &str,
    env: &[(String, String)],
    per_try: Duration,
    total: Duration,
    interval: Duration,
) -> Result<Vec<HookRun>> {
    let deadline = Instant::now() + total;
    let mut runs = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let run = run_hook(
            command,
            env,
            per_try.min(left).max(Duration::from_millis(10)),
        )?;
        let passed = run.passed();
        runs.push(run);
        if passed || Instant::now() + interval >= deadline {
            return Ok(runs);
        }
        std::thread::sleep(interval);
    }
}

/// Reads a pipe to its end, keeping at most the last 64 KiB.
fn collect(mut reader: impl Read) -> Vec<u8> {
    const KEEP: usize = 64 * 1024;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > 2 * KEEP {
            out.drain(..out.len() - KEEP);
        }
    }
    out
}

fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        // Already gone is fine.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::Kill);
    }
}

/// A hook that did not pass, as an error of `kind` naming what it printed.
pub fn hook_failure(step: &str, run: &HookRun, kind: ErrorKind) -> Error {
    let why = if run.timed_out {
        format!(
            "did not finish within {:.0}s and was killed",
            run.duration_secs
        )
    } else {
        match run.exit_code {
            Some(c) => format!("exited with {c}"),
            None => "was killed by a signal".to_string(),
        }
    };
    let output = if run.output.is_empty() {
        String::new()
    } else {
        format!("; its output ends: {}", run.output)
    };
    Error::new(
        kind,
        format!("the {step} hook `{}` {why}{output}", run.command),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![("BACKUP_STEP".into(), "stop".into())]
    }

    #[test]
    fn a_hook_sees_its_environment_and_its_output_is_kept() {
        let r = run_hook(
            "echo step=$BACKUP_STEP; echo oops >&2",
            &env(),
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(r.passed(), "{r:?}");
        assert_eq!(r.output, "step=stop | oops");
    }

    #[test]
    fn a_failing_hook_reports_its_exit_code() {
        let r = run_hook("echo broken; exit 3", &[], Duration::from_secs(5)).unwrap();
        assert!(!r.passed());
        assert_eq!(r.exit_code, Some(3));
        let e = hook_failure("start", &r, ErrorKind::Target).to_string();
        assert!(e.contains("exited with 3") && e.contains("broken"), "{e}");
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed_with_its_children() {
        let start = Instant::now();
        let r = run_hook("sleep 30 & sleep 30", &[], Duration::from_millis(300)).unwrap();
        assert!(r.timed_out && !r.passed(), "{r:?}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(hook_failure("stop", &r, ErrorKind::Target)
            .to_string()
            .contains("was killed"));
    }

    #[test]
    fn a_background_child_does_not_hold_a_finished_hook() {
        let start = Instant::now();
        let r = run_hook("sleep 30 & echo started", &[], Duration::from_secs(10)).unwrap();
        assert!(r.passed(), "{r:?}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_health_check_is_retried_until_it_passes_or_time_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("up");
        let cmd = format!("test -e {}", flag.display());
        let f = flag.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(f, b"").unwrap();
        });
        let ms = Duration::from_millis;
        let runs = run_health_check(&cmd, &[], ms(500), Duration::from_secs(5), ms(50)).unwrap();
        t.join().unwrap();
        assert!(runs.len() > 1 && runs.last().unwrap().passed(), "{runs:?}");
        std::fs::remove_file(&flag).unwrap();
        let runs = run_health_check(&cmd, &[], ms(100), ms(400), ms(50)).unwrap();
        assert!(!runs.last().unwrap().passed());
        assert!(runs.len() >= 2, "{runs:?}");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail(b"a\n\nb\nc\n", 2), "b | c");
    }
}
