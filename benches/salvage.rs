//! Salvage benchmark: the exact delta a rollback computes (`backup salvage compute`) against
//! a full capture (`backup create`) of the same database.
//!
//! Run with `cargo bench --bench salvage`. The program
//!
//! 1. builds the release `backup` binary, or takes the one `BACKUP_BIN` names;
//! 2. starts a throwaway PostgreSQL cluster and generates the dealer-management database of
//!    the `postgres` benchmark (`BENCH_SALVAGE_MB` MiB);
//! 3. for each fraction of rows changed (1%, then 0.1%): takes a snapshot with `backup create
//!    --config` (timed: the full capture), changes that fraction of the rows of every table
//!    (updates of one column; the audit log, append-only, grows by that fraction; a tenth as
//!    many repair order lines are deleted), rolls back to
//!    the snapshot (`--no-safety-snapshot`), checks that the delta counts exactly the rows
//!    changed, then times `backup salvage compute` (with its peak memory) and drops the kept
//!    database;
//! 4. prints every figure with its target and PASS/MISS.
//!
//! It exits 0 even when a target is missed (it is a report) and non-zero when a command fails.
//!
//! | variable           | meaning                                                    |
//! |--------------------|------------------------------------------------------------|
//! | `BENCH_SALVAGE_MB` | database size in MiB (default 350)                         |
//! | `BENCH_DIR`        | work directory (default: a fresh temp dir under `/var/tmp`) |
//! | `BENCH_KEEP`       | `1` keeps the work directory                               |
//! | `BACKUP_BIN`       | use this `backup` binary instead of building one           |
//! | `PG_BIN`           | PostgreSQL binaries (default: newest `/usr/lib/postgresql/*`) |

#[allow(dead_code)]
#[path = "postgres/bench.rs"]
mod bench;
#[allow(dead_code)]
#[path = "postgres/data.rs"]
mod data;
#[allow(dead_code)]
#[path = "postgres/sampler.rs"]
mod sampler;
#[allow(dead_code)]
#[path = "postgres/schema.rs"]
mod schema;
#[allow(dead_code)]
mod support;
#[allow(dead_code)]
#[path = "rollback/system.rs"]
mod system;
#[allow(dead_code)]
#[path = "postgres/timed.rs"]
mod timed;

use std::ffi::OsStr;
use std::process::ExitCode;

use testkit::Postgres;

use bench::Bench;
use support::process::backup_binary;
use support::report::{self, human, Row};
use support::workdir::WorkDir;
use support::{env_number, Result};
use system::SystemFile;

/// Password of the throwaway repository (also in its password file).
const PASSWORD: &str = "bench-salvage-password";
/// The live database the system description names.
const DB: &str = "dms";
/// Targets of the issue: delta time over full-capture time, and peak memory.
const RATIO_1PCT: f64 = 0.20;
const RATIO_01PCT: f64 = 0.05;
const RSS_TARGET_MIB: u64 = 300;

const WORK_ENTRIES: &[&str] = &[
    "backup-repo",
    "state",
    "password",
    "system.toml",
    "time.txt",
];

/// The column each table's business update changes.
const UPDATES: &[(&str, &str)] = &[
    ("customers", "email = 'changed-' || id"),
    ("vehicles", "color = 'changed'"),
    ("deals", "status = 'changed'"),
    ("parts", "qty_on_hand = qty_on_hand + 1"),
    ("repair_orders", "technician = 'changed'"),
    ("ro_lines", "description = 'changed'"),
];

fn main() -> ExitCode {
    support::main("salvage", run)
}

fn run() -> Result<()> {
    let mib = env_number("BENCH_SALVAGE_MB", 350)?;
    let backup_bin = backup_binary()?;
    let work = WorkDir::new("salvage", WORK_ENTRIES)?;
    println!("starting a throwaway PostgreSQL cluster ...");
    let pg = Postgres::start();
    let b = Bench::new(pg, &work, backup_bin, 2, 1, None)?;
    let result = measure(&b, mib);
    drop(b);
    work.finish();
    result
}

/// One fraction's figures.
struct Round {
    percent: f64,
    capture_secs: f64,
    rollback_step_secs: f64,
    compute: timed::Timed,
    rows_changed: u64,
    rows_read: u64,
}

fn measure(b: &Bench, mib: u64) -> Result<()> {
    let t = std::time::Instant::now();
    let scale = b.generate(DB, mib)?;
    let bytes = b.database_size(DB)?;
    println!(
        "generated {DB}: {} in {:.1} s",
        human(bytes),
        t.elapsed().as_secs_f64()
    );
    let sys = SystemFile::write(b, &[])?;
    let config = sys.path.as_os_str();
    b.backup(
        "backup init (setup)",
        &[OsStr::new("init"), OsStr::new("--config"), config],
    )?;
    let rounds = [
        round(b, config, &scale, 100)?,
        round(b, config, &scale, 1000)?,
    ];
    let mut rows = vec![Row::info("database", human(bytes))];
    for (r, target) in rounds.iter().zip([RATIO_1PCT, RATIO_01PCT]) {
        let ratio = r.compute.secs / r.capture_secs;
        rows.push(Row::info(
            &format!("{}% changed: rows changed, rows read", r.percent),
            format!("{}, {}", r.rows_changed, r.rows_read),
        ));
        rows.push(Row::info(
            &format!("{}% changed: full capture", r.percent),
            format!("{:.2} s", r.capture_secs),
        ));
        rows.push(Row::info(
            &format!("{}% changed: salvage step of the rollback", r.percent),
            format!("{:.2} s", r.rollback_step_secs),
        ));
        rows.push(Row::new(
            &format!("{}% changed: salvage compute / capture", r.percent),
            format!("{:.2} s, {ratio:.3}", r.compute.secs),
            &format!("< {target:.2}"),
            Some(ratio < target),
        ));
        rows.push(Row::rss(
            &format!("{}% changed: max RSS salvage compute", r.percent),
            r.compute.max_rss_kib,
            Some(RSS_TARGET_MIB),
        ));
    }
    report::print(&rows, &format!("{mib} MiB database, fsync=off"));
    Ok(())
}

/// A snapshot, `1/modulo` of the rows changed, the rollback, the delta timed.
fn round(b: &Bench, config: &OsStr, scale: &schema::Scale, modulo: u64) -> Result<Round> {
    let os = OsStr::new;
    b.checkpoint()?;
    let (create, _) = b.backup(
        "backup create --config (the full capture)",
        &[os("create"), os("--config"), config],
    )?;
    let changed = business_writes(b, scale, modulo)?;
    b.checkpoint()?;
    let (_, rb) = b.backup(
        "backup rollback --no-safety-snapshot",
        &[
            os("rollback"),
            os("--config"),
            config,
            os("latest"),
            os("--yes"),
            os("--no-safety-snapshot"),
        ],
    )?;
    let step = rb["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "salvage"))
        .ok_or_else(|| format!("no salvage step in the rollback report: {rb}"))?;
    if step["ok"] != true {
        return Err(format!("the salvage step failed: {step}").into());
    }
    let id = rb["id"].as_str().ok_or("no rollback id")?.to_string();
    let (compute, cj) = b.backup(
        "backup salvage compute",
        &[
            os("salvage"),
            os("compute"),
            os("--config"),
            config,
            os(&id),
        ],
    )?;
    let counted: u64 = cj["tables"]
        .as_array()
        .ok_or("no tables")?
        .iter()
        .map(|t| {
            t["inserted"].as_u64().unwrap_or(0)
                + t["updated"].as_u64().unwrap_or(0)
                + t["deleted"].as_u64().unwrap_or(0)
        })
        .sum();
    if counted != changed {
        return Err(
            format!("the delta counts {counted} rows, {changed} were changed: {cj}").into(),
        );
    }
    b.backup(
        "backup rollback cleanup (untimed)",
        &[os("rollback"), os("cleanup"), os("--config"), config],
    )?;
    Ok(Round {
        percent: 100.0 / modulo as f64,
        capture_secs: create.secs,
        rollback_step_secs: step["duration_secs"].as_f64().unwrap_or(0.0),
        rows_read: cj["rows_read"].as_u64().unwrap_or(0),
        compute,
        rows_changed: changed,
    })
}

/// Changes `1/modulo` of the rows; returns how many rows were written.
fn business_writes(b: &Bench, scale: &schema::Scale, modulo: u64) -> Result<u64> {
    let mut changed = 0;
    for (table, set) in UPDATES {
        let n = b.sql(DB, &format!("WITH u AS (UPDATE {table} SET {set} WHERE id % {modulo} = 0 RETURNING 1) SELECT count(*) FROM u"))?;
        changed += n.trim().parse::<u64>()?;
    }
    let n = b.sql(
        DB,
        &format!(
            "WITH d AS (DELETE FROM ro_lines WHERE id % {} = 1 RETURNING 1) SELECT count(*) FROM d",
            modulo * 10
        ),
    )?;
    changed += n.trim().parse::<u64>()?;
    let grow = (scale.audit / modulo).max(1);
    b.sql(
        DB,
        &data::audit_sql(0.61, scale.audit + 1, scale.audit + grow, scale.audit),
    )?;
    changed += grow;
    Ok(changed)
}
