//! Forget + prune benchmark: `backup forget` + `backup prune` against `restic forget` +
//! `restic prune` on the same history of snapshots.
//!
//! Run with `cargo bench --bench prune`. The program
//!
//! 1. builds the release `backup` binary (`cargo build --release -p backup-cli`), or takes the
//!    binary named by `BACKUP_BIN`;
//! 2. generates a small seeded tree (200 files of 1-64 KiB: source-like text, logs, JSON lines
//!    and random bytes; about 6 MiB) and, in `BENCH_PRUNE_SNAPSHOTS` rounds (default 1000),
//!    changes a few percent of its files (rewritten, edited, added, removed; seeded, dated with
//!    the round's time) and takes a snapshot of it in each tool, `backup create --time` and
//!    `restic backup --time`, both at the same synthetic time, one hour apart from
//!    2024-05-31 23:00 UTC on (untimed setup, both tools side by side; its time is shown);
//! 3. keeps the repositories aside (`cp -a`), then in each of `BENCH_PRUNE_RUNS` rounds
//!    (default 3), on fresh copies of them, times, each under GNU time (`/usr/bin/time -f %M`,
//!    for max RSS) after reading the repository once: `backup forget` with the policy `KEEP`,
//!    `restic forget` with the same flags, checks that both kept the same snapshots (stops if
//!    the numbers differ), then `backup prune` and `restic prune` (both with their default
//!    `--max-unused 5%`); each tool's fastest round counts (forget + prune);
//! 4. checks, untimed, after the last round: `backup verify --read-data`, a restore of the
//!    newest snapshot compared file by file with the tree, and `restic check --read-data`;
//! 5. prints every figure with its target and PASS/MISS, then the same as a Markdown table.
//!
//! It exits 0 even when a target is missed (it is a report) and non-zero when a command or a
//! check fails.
//!
//! Environment:
//!
//! | variable                | meaning                                                      |
//! |-------------------------|--------------------------------------------------------------|
//! | `BENCH_PRUNE_SNAPSHOTS` | snapshots in each repository, one per hour (default 1000)    |
//! | `BENCH_PRUNE_RUNS`      | timed rounds on copies of the repositories, best counts (default 3) |
//! | `BENCH_DIR`             | work directory (default: a fresh temp dir under `/var/tmp`)  |
//! | `BENCH_KEEP`            | `1` keeps the work directory (tree, repositories)            |
//! | `BACKUP_BIN`            | use this `backup` binary instead of building one             |
//! | `RESTIC_BIN`            | restic binary (default `restic` on `PATH`)                   |

#[path = "prune/history.rs"]
mod history;
#[path = "prune/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "files/rng.rs"]
mod rng;
#[path = "prune/round.rs"]
mod round;
#[allow(dead_code)]
mod support;
#[allow(dead_code)]
#[path = "files/text.rs"]
mod text;
#[path = "prune/tools.rs"]
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

use support::process::backup_binary;
use support::workdir::WorkDir;
use support::{env_number, Result};

/// Password of the throwaway repositories.
const PASSWORD: &str = "bench-prune-password";
/// The retention policy, the same flags for both tools.
const KEEP: &[&str] = &[
    "--keep-last",
    "10",
    "--keep-daily",
    "7",
    "--keep-weekly",
    "4",
    "--keep-monthly",
    "12",
];
/// Targets of the issue: forget + prune wall time at most half of restic's, prune's peak
/// memory at most restic's, the repository size after prune within 5% of restic's.
const TIME_RATIO_TARGET: f64 = 0.50;
const PRUNE_RSS_TARGET: f64 = 1.00;
const SIZE_TOLERANCE: f64 = 0.05;

/// Names this program creates inside the work directory, and removes at the end.
const WORK_ENTRIES: &[&str] = &[
    "tree",
    "backup-repo",
    "restic-repo",
    "restic-cache",
    "backup-repo.setup",
    "restic-repo.setup",
    "restic-cache.setup",
    "restore",
    "time.txt",
];

fn main() -> ExitCode {
    support::main("prune", run)
}

fn run() -> Result<()> {
    let snapshots = env_number("BENCH_PRUNE_SNAPSHOTS", 1000)?;
    let runs = env_number("BENCH_PRUNE_RUNS", 3)?;
    let backup_bin = backup_binary()?;
    let restic_bin = PathBuf::from(std::env::var("RESTIC_BIN").unwrap_or_else(|_| "restic".into()));
    let work = WorkDir::new("prune", WORK_ENTRIES)?;
    let result = measure::measure(&work, snapshots, runs, &backup_bin, &restic_bin);
    work.finish();
    result
}
