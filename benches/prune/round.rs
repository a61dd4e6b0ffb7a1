//! One timed round: forget, then prune, in each tool, on fresh copies of the repositories as
//! the setup left them.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::process::capture;
use crate::support::workdir::{du, remove, warm};
use crate::support::Result;
use crate::tools::{Timed, Tool, Tools};
use crate::KEEP;

/// What one round measured.
pub struct Round {
    pub b_forget: Timed,
    pub r_forget: Timed,
    pub b_prune: Timed,
    pub r_prune: Timed,
    /// The times of the snapshots each tool kept, sorted.
    pub b_kept: Vec<String>,
    pub r_kept: Vec<String>,
    /// `backup prune --json`.
    pub pruned: Value,
    /// restic prune's summary lines (without its progress lines).
    pub r_summary: Vec<String>,
    /// The repositories' sizes after prune (`du -sb`).
    pub b_after: u64,
    pub r_after: u64,
}

impl Round {
    pub fn b_secs(&self) -> f64 {
        self.b_forget.secs + self.b_prune.secs
    }

    pub fn r_secs(&self) -> f64 {
        self.r_forget.secs + self.r_prune.secs
    }

    /// The value after `key` in restic prune's summary ("?" when it is not there).
    pub fn r_figure(&self, key: &str) -> String {
        self.r_summary
            .iter()
            .find_map(|l| l.strip_prefix(key))
            .map_or("?".into(), |v| v.trim().to_string())
    }
}

/// Where the setup's repositories (and restic's cache) are kept for the rounds: each round
/// starts from copies of them.
pub fn saved(path: &Path) -> PathBuf {
    let mut name = path.file_name().expect("a named entry").to_os_string();
    name.push(".setup");
    path.with_file_name(name)
}

/// The entries a round changes: both repositories and restic's cache.
fn entries(tools: &Tools) -> [&Path; 3] {
    [&tools.backup_repo, &tools.restic_repo, &tools.restic_cache]
}

/// Keeps the setup's repositories and cache aside (`cp -a`), for the rounds.
pub fn save(tools: &Tools) -> Result<()> {
    for path in entries(tools) {
        copy(path, &saved(path))?;
    }
    Ok(())
}

/// Replaces the repositories and cache by fresh copies of the setup's.
pub fn restore(tools: &Tools) -> Result<()> {
    for path in entries(tools) {
        remove(path)?;
        copy(&saved(path), path)?;
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    capture(Command::new("cp").arg("-a").arg(from).arg(to))?;
    Ok(())
}

/// Runs one round: `backup forget` and `restic forget` with `KEEP`, a check that both kept
/// the same number of snapshots (it fails otherwise, naming the times only one kept), then
/// `backup prune` and `restic prune`. Each repository is read once before each step.
pub fn run(tools: &Tools) -> Result<Round> {
    let mut forget: Vec<&str> = vec!["forget"];
    forget.extend_from_slice(KEEP);
    let b_args: Vec<&str> = forget
        .iter()
        .copied()
        .chain(["--json", "--quiet"])
        .collect();
    let r_args: Vec<&str> = forget.iter().copied().chain(["--quiet"]).collect();
    warm(&tools.backup_repo)?;
    let b_forget = tools.timed("backup forget", Tool::Backup, &b_args)?;
    warm_restic(tools)?;
    let r_forget = tools.timed("restic forget", Tool::Restic, &r_args)?;

    let b_kept = snapshot_times(tools, Tool::Backup)?;
    let r_kept = snapshot_times(tools, Tool::Restic)?;
    println!(
        "kept after forget: backup {}, restic {}",
        b_kept.len(),
        r_kept.len()
    );
    if b_kept != r_kept {
        println!("  kept only by backup: {}", only(&b_kept, &r_kept));
        println!("  kept only by restic: {}", only(&r_kept, &b_kept));
    }
    if b_kept.len() != r_kept.len() {
        return Err(format!(
            "forget kept {} snapshots in backup but {} in restic",
            b_kept.len(),
            r_kept.len()
        )
        .into());
    }

    warm(&tools.backup_repo)?;
    let b_prune = tools.timed(
        "backup prune",
        Tool::Backup,
        &["prune", "--json", "--quiet"],
    )?;
    let pruned: Value = serde_json::from_str(&b_prune.stdout)?;
    warm_restic(tools)?;
    let r_prune = tools.timed("restic prune", Tool::Restic, &["prune"])?;
    let r_summary = r_prune
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('['))
        .map(str::to_string)
        .collect();
    Ok(Round {
        b_after: du(&tools.backup_repo)?,
        r_after: du(&tools.restic_repo)?,
        b_forget,
        r_forget,
        b_prune,
        r_prune,
        b_kept,
        r_kept,
        pruned,
        r_summary,
    })
}

fn warm_restic(tools: &Tools) -> Result<()> {
    warm(&tools.restic_repo)?;
    warm(&tools.restic_cache)
}

/// The times in `a` that are not in `b`, comma-separated.
fn only(a: &[String], b: &[String]) -> String {
    let v: Vec<&str> = a
        .iter()
        .filter(|t| !b.contains(t))
        .map(String::as_str)
        .collect();
    v.join(", ")
}

/// The sorted times of `tool`'s snapshots, as "YYYY-MM-DD HH:MM:SS" (UTC).
pub fn snapshot_times(tools: &Tools, tool: Tool) -> Result<Vec<String>> {
    let out = tools.run(tool, &["snapshots", "--json", "--quiet"])?;
    let list: Value = serde_json::from_str(&out)?;
    let mut times = Vec::new();
    for s in list.as_array().ok_or("snapshots --json: not a list")? {
        let time = s["time"].as_str().ok_or("snapshots --json: no time")?;
        // Both write UTC; restic may add fractions of a second.
        let t = chrono::DateTime::parse_from_rfc3339(time)?;
        times.push(crate::measure::utc(t.timestamp()));
    }
    times.sort();
    Ok(times)
}
