//! Child processes: the `backup` binary, short untimed commands, and timed steps run under GNU
//! time.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::str::FromStr;

use super::Result;

/// GNU time, for the peak memory (max RSS) and CPU time of a child.
pub const GNU_TIME: &str = "/usr/bin/time";

/// The `backup` binary: `BACKUP_BIN`, else built with `cargo build --release -p backup-cli`.
pub fn backup_binary() -> Result<PathBuf> {
    if let Ok(bin) = std::env::var("BACKUP_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            return Err(format!("BACKUP_BIN={} is not a file", bin.display()).into());
        }
        return Ok(bin);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    println!(
        "building: cargo build --release -p backup-cli (in {})",
        root.display()
    );
    let out = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "-p",
            "backup-cli",
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "cargo build --release -p backup-cli failed ({})",
            out.status
        )
        .into());
    }
    let stdout = String::from_utf8(out.stdout)?;
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "backup" {
            if let Some(exe) = msg["executable"].as_str() {
                return Ok(PathBuf::from(exe));
            }
        }
    }
    Err("cargo build did not report a `backup` executable".into())
}

/// Runs a short untimed command and returns its stdout.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The trimmed stdout of `program arg`, such as its version.
pub fn version(program: impl AsRef<OsStr>, arg: &str) -> Result<String> {
    Ok(capture(Command::new(program).arg(arg))?.trim().to_string())
}

/// The command of a timed step: `program` with stdin closed, under GNU time writing `format`
/// to `time_file` when that is given; without the variables that would point `backup`
/// elsewhere and those in `unset`; with `BACKUP_PASSWORD` set to `password`. The caller adds
/// the arguments.
pub fn timed_command(
    program: &Path,
    time_file: Option<&Path>,
    format: &str,
    unset: &[&str],
    password: &str,
) -> Command {
    let mut cmd = match time_file {
        Some(file) => {
            let mut c = Command::new(GNU_TIME);
            c.args(["-f", format, "-o"]).arg(file).arg(program);
            c
        }
        None => Command::new(program),
    };
    for var in ["BACKUP_REPOSITORY", "BACKUP_PASSWORD_FILE", "BACKUP_CONFIG"]
        .iter()
        .chain(unset)
    {
        cmd.env_remove(var);
    }
    cmd.env("BACKUP_PASSWORD", password).stdin(Stdio::null());
    cmd
}

/// Prints that step `name` is being timed; its outcome follows on the same line.
pub fn announce(name: &str) -> Result<()> {
    print!("timing {name} ... ");
    io::stdout().flush()?;
    Ok(())
}

/// Fails, with the child's output, when step `name` failed.
pub fn check(name: &str, out: &Output) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    println!("failed");
    Err(format!(
        "{name} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .into())
}

/// What GNU time wrote: the fields of its last non-empty line.
pub struct TimeOutput {
    text: String,
    fields: Vec<String>,
}

impl TimeOutput {
    /// Reads `file`, which must hold `n` fields.
    pub fn read(file: &Path, n: usize) -> Result<Self> {
        let text = fs::read_to_string(file)?;
        let last = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
        let fields: Vec<String> = last.split_whitespace().map(str::to_string).collect();
        let out = Self { text, fields };
        if out.fields.len() != n {
            return Err(out.bad().into());
        }
        Ok(out)
    }

    /// Field `i`, parsed.
    pub fn field<T: FromStr>(&self, i: usize) -> Result<T> {
        Ok(self.fields[i].parse().map_err(|_| self.bad())?)
    }

    fn bad(&self) -> String {
        format!("{GNU_TIME} wrote {:?}", self.text)
    }
}
