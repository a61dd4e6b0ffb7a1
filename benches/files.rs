//! File-tree benchmark: `backup` against restic and against a `zstd -d | sha256sum` anchor.
//!
//! Run with `cargo bench --bench files`. The program
//!
//! 1. builds the release `backup` binary (`cargo build --release -p backup-cli`), or takes the
//!    binary named by `BACKUP_BIN`;
//! 2. generates a deterministic (seeded PRNG), mixed tree of `BENCH_SIZE_MB` MiB (default 1024):
//!    source-code-like text, large log and JSON files, already-compressed (random) assets and
//!    thousands of small files in nested directories;
//! 3. reads the tree once before every timed run (warm page cache: dropping the cache is not
//!    possible reliably), then times `backup init` + `backup create`, `restic init` +
//!    `restic backup`, a second unchanged `backup create`, `backup verify --read-data` and the
//!    anchor `zstd -d -c tree.tar.zst | sha256sum`, and reads peak memory (max RSS) through GNU
//!    `/usr/bin/time -f %M`;
//! 4. prints every figure with its target and PASS/MISS, then the same as a Markdown table.
//!
//! It exits 0 even when a target is missed (it is a report) and non-zero when a command fails.
//!
//! Environment:
//!
//! | variable        | meaning                                                              |
//! |-----------------|----------------------------------------------------------------------|
//! | `BENCH_SIZE_MB` | tree size in MiB (default 1024)                                      |
//! | `BENCH_DIR`     | work directory (default: a fresh temp dir under `/var/tmp`, on disk) |
//! | `BENCH_KEEP`    | `1` keeps the work directory (tree, repositories, anchor)            |
//! | `BACKUP_BIN`    | use this `backup` binary instead of building one                     |
//! | `RESTIC_BIN`    | restic binary (default `restic` on `PATH`)                           |
//!
//! Throughputs are tree bytes (file contents) per second of wall time, in MB/s (10^6 bytes).
//! Repository sizes are `du -sb` equivalents: the apparent size of every entry under the
//! repository directory.

#[path = "files/measure.rs"]
mod measure;
#[path = "files/rng.rs"]
mod rng;
mod support;
#[path = "files/text.rs"]
mod text;
#[path = "files/timed.rs"]
mod timed;
#[path = "files/tree.rs"]
mod tree;

use std::process::ExitCode;

use support::process::backup_binary;
use support::workdir::WorkDir;
use support::{env_number, Result};

/// Password of the throwaway repositories.
const PASSWORD: &str = "bench-files-password";

/// Names this program creates inside the work directory, and removes at the end.
const WORK_ENTRIES: &[&str] = &[
    "tree",
    "backup-repo",
    "restic-repo",
    "restic-cache",
    "anchor.tar.zst",
    "rss.txt",
];

fn main() -> ExitCode {
    support::main("files", run)
}

fn run() -> Result<()> {
    let size_mib = env_number("BENCH_SIZE_MB", 1024)?;
    let backup_bin = backup_binary()?;
    let restic_bin = std::env::var("RESTIC_BIN").unwrap_or_else(|_| "restic".to_string());
    let work = WorkDir::new("files", WORK_ENTRIES)?;
    let result = measure::measure(&work, size_mib, &backup_bin, &restic_bin);
    work.finish();
    result
}
