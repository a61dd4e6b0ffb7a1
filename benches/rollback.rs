//! Rollback benchmark: `backup rollback` of a database and a release tree against
//! `pg_restore -j2` + `cp -a`.
//!
//! Run with `cargo bench --bench rollback`. The program
//!
//! 1. builds the release `backup` binary (`cargo build --release -p backup-cli`), or takes the
//!    binary named by `BACKUP_BIN`;
//! 2. starts a throwaway PostgreSQL cluster (`testkit::Postgres`, as the `postgres` benchmark
//!    does) and checks that there is room for the largest case: the database twice (live and
//!    staged) with WAL on the cluster's file system, the tree twice, the repository and the
//!    dump in the work directory;
//! 3. generates, once, the seeded release tree of the `files` benchmark (`BENCH_ROLLBACK_TREE_MB`
//!    MiB); its top-level directories (`app`, `data`, `var`) are the `[[files]]` components;
//! 4. for each size (`BENCH_ROLLBACK_MB`, then `BENCH_ROLLBACK_BIG` times that): generates the
//!    dealer-management database of the `postgres` benchmark, writes a system description
//!    (hooks `true`), runs `backup init` and `backup create --config FILE --tag pre-deploy`
//!    (untimed setup, its time shown as info) and `pg_dump -Fd -j2` (untimed setup); then, in
//!    each of `BENCH_ROLLBACK_RUNS` rounds, times the anchors `createdb` + `pg_restore -j2` and
//!    `cp -a` of the trees into a fresh directory (then `sync`, untimed, so that the copy's
//!    write-back does not fall in the rollback's time), "deploys" (audit log +5%, a
//!    migration, a few files of every tree changed, added and removed), times `backup
//!    rollback plan`, times `backup rollback latest --tag pre-deploy --yes --json`, checks
//!    that the database and the trees are back, and drops the kept copies with `backup
//!    rollback cleanup` (untimed);
//! 5. prints every figure with its target and PASS/MISS, then the same as a Markdown table.
//!
//! It exits 0 even when a target is missed (it is a report) and non-zero when a command fails.
//!
//! Environment:
//!
//! | variable                 | meaning                                                       |
//! |--------------------------|---------------------------------------------------------------|
//! | `BENCH_ROLLBACK_MB`      | database size in MiB, as `pg_database_size` (default 350)     |
//! | `BENCH_ROLLBACK_TREE_MB` | release tree size in MiB (default 1024)                       |
//! | `BENCH_ROLLBACK_BIG`     | the large case's database is this many times larger (default 10; 0 skips it) |
//! | `BENCH_ROLLBACK_RUNS`    | rounds of anchors and rollback per size, best of each (default 1) |
//! | `BENCH_DIR`              | work directory (default: a fresh temp dir under `/var/tmp`)   |
//! | `BENCH_KEEP`             | `1` keeps the work directory (tree, repository)               |
//! | `BACKUP_BIN`             | use this `backup` binary instead of building one              |
//! | `PG_BIN`                 | PostgreSQL binaries (default: newest `/usr/lib/postgresql/*`) |

// The modules of the other benchmarks are shared as they are; what this program does not
// call of them is not dead code there.
#[allow(dead_code)]
#[path = "postgres/bench.rs"]
mod bench;
#[allow(dead_code)]
#[path = "postgres/data.rs"]
mod data;
#[path = "rollback/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "files/rng.rs"]
mod rng;
#[allow(dead_code)]
#[path = "postgres/sampler.rs"]
mod sampler;
#[allow(dead_code)]
#[path = "postgres/schema.rs"]
mod schema;
#[path = "rollback/space.rs"]
mod space;
#[allow(dead_code)]
mod support;
#[path = "rollback/system.rs"]
mod system;
#[allow(dead_code)]
#[path = "files/text.rs"]
mod text;
#[allow(dead_code)]
#[path = "postgres/timed.rs"]
mod timed;
#[allow(dead_code)]
#[path = "files/tree.rs"]
mod tree;

use std::process::ExitCode;

use testkit::Postgres;

use bench::Bench;
use measure::Sizes;
use support::process::backup_binary;
use support::workdir::WorkDir;
use support::{env_number, Result};

/// Password of the throwaway repository (also in its password file).
const PASSWORD: &str = "bench-rollback-password";
/// The live database the system description names.
const DB: &str = "dms";
/// The database `pg_restore` restores into.
const ANCHOR_DB: &str = "dms_pg_restore";
/// `-j` of `pg_dump -Fd` and `pg_restore`.
const ANCHOR_JOBS: u64 = 2;
/// Targets of the issue.
const DOWNTIME_TARGET_SECS: f64 = 1.0;
const TIME_RATIO_TARGET: f64 = 1.0;
const PLAN_RATIO_TARGET: f64 = 0.10;

/// Names this program creates inside the work directory, and removes at the end.
const WORK_ENTRIES: &[&str] = &[
    "tree",
    "backup-repo",
    "state",
    "password",
    "system.toml",
    "dump.d",
    "cp-anchor",
    "plan.json",
    "time.txt",
];

fn main() -> ExitCode {
    support::main("rollback", run)
}

fn run() -> Result<()> {
    let base_mib = env_number("BENCH_ROLLBACK_MB", 350)?;
    let tree_mib = env_number("BENCH_ROLLBACK_TREE_MB", 1024)?;
    let big = env_count("BENCH_ROLLBACK_BIG", 10)?;
    let runs = env_number("BENCH_ROLLBACK_RUNS", 1)?;
    let sizes = Sizes {
        base_mib,
        big_mib: (big > 0).then(|| base_mib * big),
        tree_mib,
        runs: runs as usize,
    };
    let backup_bin = backup_binary()?;
    let work = WorkDir::new("rollback", WORK_ENTRIES)?;
    println!("starting a throwaway PostgreSQL cluster ...");
    let pg = Postgres::start();
    let bench = Bench::new(pg, &work, backup_bin, ANCHOR_JOBS, runs as usize, None)?;
    let result = measure::measure(&bench, &sizes);
    drop(bench);
    work.finish();
    result
}

/// The number in environment variable `name`, 0 allowed; `default` when it is not set.
fn env_count(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => Ok(v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a number"))?),
        Err(_) => Ok(default),
    }
}
