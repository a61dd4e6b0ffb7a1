//! PostgreSQL benchmark: `backup create` / `backup restore` against `pg_dump` / `pg_restore`.
//!
//! Run with `cargo bench --bench postgres`. The program
//!
//! 1. builds the release `backup` binary (`cargo build --release -p backup-cli`), or takes the
//!    binary named by `BACKUP_BIN`;
//! 2. starts a throwaway PostgreSQL cluster (`testkit::Postgres`: `initdb` + `pg_ctl`, default
//!    settings except `fsync = off`) and generates, server-side (`generate_series`, `random()`
//!    after a fixed `setseed`), a dealer-management database of about `BENCH_PG_MB` MiB:
//!    customers, vehicles, deals, repair orders and their part lines, parts, and an append-only
//!    audit log, with primary keys, foreign keys, unique and secondary indexes, a view and a
//!    trigger;
//! 3. times, on the same server in the same run, in `BENCH_PG_RUNS` interleaved rounds (the
//!    fastest of each is reported, the slowest shown): `pg_dump -Fc`, `pg_dump -Fd -j2`,
//!    `backup init` + `backup create` into a fresh repository, then unchanged `backup create`s;
//!    `createdb` + `pg_restore -j2` from the directory dump and `backup restore
//!    --postgres-target` into new databases (both checked against the original: row counts,
//!    indexes, constraints, triggers, views); `backup rollback plan` of the first snapshot
//!    against the live database (compared with the restore time); a full
//!    `backup verify --read-data` and a restore drill (`backup verify --restore-test`, the
//!    daemon's proof, compared with `pg_restore -j2`); then, once, `backup create` after the audit log
//!    grew by 5%, and `backup restore --replace` over the live database at two sizes (the full
//!    one and a quarter of it) while a session is connected to it;
//! 4. reads, for every timed run, peak memory (max RSS) and user+sys CPU of the client through
//!    GNU `/usr/bin/time`, the CPU the PostgreSQL server processes used (from `/proc`), and the
//!    phases seen in `pg_stat_activity` (sampled every 0.2 s: reading with `COPY TO`, loading
//!    with `COPY FROM`, building indexes, validating foreign keys);
//! 5. prints every figure with its target and PASS/MISS, then the same as a Markdown table.
//!
//! It exits 0 even when a target is missed (it is a report) and non-zero when a command fails.
//!
//! Environment:
//!
//! | variable               | meaning                                                       |
//! |------------------------|---------------------------------------------------------------|
//! | `BENCH_PG_MB`          | database size in MiB, as `pg_database_size` (default 350)     |
//! | `BENCH_PG_RUNS`        | rounds of the timed comparisons, best of each (default 5)     |
//! | `BENCH_PG_JOBS`        | `backup --jobs` (default 2; the anchors always run `-j2`)     |
//! | `BENCH_PG_COMPRESSION` | `backup init --compression-level` (default: the tool's own)   |
//! | `BENCH_DIR`            | work directory (default: a fresh temp dir under `/var/tmp`)   |
//! | `BENCH_KEEP`           | `1` keeps the work directory (dumps, repository)              |
//! | `BACKUP_BIN`           | use this `backup` binary instead of building one              |
//! | `PG_BIN`               | PostgreSQL binaries (default: newest `/usr/lib/postgresql/*`) |
//!
//! Both tools talk to the server over its Unix socket. Restore times include creating the
//! database for both tools: `backup restore` creates it itself, `pg_restore` is timed together
//! with the `createdb` before it. Dumps and repository are read once before each restore
//! (warm page cache), and a `CHECKPOINT` precedes every timed run.

#[path = "postgres/bench.rs"]
mod bench;
#[path = "postgres/data.rs"]
mod data;
#[path = "postgres/measure.rs"]
mod measure;
#[path = "postgres/proofs.rs"]
mod proofs;
#[path = "postgres/sampler.rs"]
mod sampler;
#[path = "postgres/schema.rs"]
mod schema;
mod support;
#[path = "postgres/timed.rs"]
mod timed;

use std::process::ExitCode;

use testkit::Postgres;

use bench::Bench;
use support::process::backup_binary;
use support::workdir::WorkDir;
use support::{env_number, Result};

/// Password of the throwaway repository.
const PASSWORD: &str = "bench-postgres-password";
/// The live database and the smaller one for the second `--replace`.
const DB: &str = "dms";
const DB_SMALL: &str = "dms_small";
/// Targets of the issue.
const RSS_TARGET_MIB: u64 = 300;
const DOWNTIME_TARGET_SECS: f64 = 2.0;
/// `-j` of `pg_dump -Fd` and `pg_restore`.
const ANCHOR_JOBS: u64 = 2;

/// Names this program creates inside the work directory, and removes at the end.
const WORK_ENTRIES: &[&str] = &[
    "dump.fc",
    "dump.d",
    "backup-repo",
    "time.txt",
    "system.toml",
];

fn main() -> ExitCode {
    support::main("postgres", run)
}

fn run() -> Result<()> {
    let size_mib = env_number("BENCH_PG_MB", 350)?;
    let jobs = env_number("BENCH_PG_JOBS", 2)?;
    let runs = env_number("BENCH_PG_RUNS", 5)?;
    let compression = match std::env::var("BENCH_PG_COMPRESSION") {
        Ok(_) => Some(env_number("BENCH_PG_COMPRESSION", 3)?),
        Err(_) => None,
    };
    let backup_bin = backup_binary()?;
    let work = WorkDir::new("postgres", WORK_ENTRIES)?;
    println!("starting a throwaway PostgreSQL cluster ...");
    let pg = Postgres::start();
    let bench = Bench::new(pg, &work, backup_bin, jobs, runs as usize, compression)?;
    let result = bench.measure(size_mib);
    drop(bench);
    work.finish();
    result
}
