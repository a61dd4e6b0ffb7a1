//! The measurements: per database size, the setup, the anchors, the rollback and its plan;
//! then the report.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bench::Bench;
use crate::space;
use crate::support::process::{version, GNU_TIME};
use crate::support::report::{self, human, Row};
use crate::support::workdir::{du, remove, warm};
use crate::support::{cores, Result, MIB};
use crate::system::{deploy_database, deploy_trees, tree_components, SystemFile};
use crate::timed::{best, load_average, Timed};
use crate::tree::generate_tree;
use crate::{
    ANCHOR_DB, ANCHOR_JOBS, DB, DOWNTIME_TARGET_SECS, PLAN_RATIO_TARGET, TIME_RATIO_TARGET,
};

/// The sizes to measure.
pub struct Sizes {
    pub base_mib: u64,
    /// The large case, when it is not skipped.
    pub big_mib: Option<u64>,
    pub tree_mib: u64,
    /// Rounds of anchors and rollback per size.
    pub runs: usize,
}

/// The downtime of the large case may be this many times that of the base case...
const DOWNTIME_GROWTH_MAX: f64 = 2.0;
/// ... or this much longer, in seconds: at a few milliseconds the ratio is noise.
const DOWNTIME_GROWTH_SLACK_SECS: f64 = 0.05;

/// What one database size gave.
struct Case {
    mib: u64,
    db_bytes: u64,
    init: Timed,
    create: Timed,
    create_json: Value,
    dump: Timed,
    dump_bytes: u64,
    /// `createdb` + `pg_restore -j2`, the fastest round.
    pg_restore: Timed,
    /// `cp -a` of the trees, the fastest round.
    cp: Timed,
    /// `backup rollback plan`, the fastest round; `None` when it is not built.
    plan: Option<Timed>,
    /// `backup rollback`, the fastest round, and its JSON report.
    rollback: Timed,
    report: Value,
    /// The downtime of every round.
    downtimes: Vec<f64>,
    /// The last `rollback cleanup`, and how many kept copies it removed.
    cleanup: Timed,
    removed: usize,
}

pub fn measure(b: &Bench, s: &Sizes) -> Result<()> {
    let backup_version = version(&b.backup, "--version")?;
    let pg_dump_version = version(b.pg.bin("pg_dump"), "--version")?;
    let server_version = b.sql("postgres", "SHOW server_version")?;
    println!("backup binary : {} ({backup_version})", b.backup.display());
    println!("pg_dump       : {pg_dump_version}");
    println!("server        : PostgreSQL {server_version} (fsync=off, default settings otherwise)");
    println!("cluster       : {}", b.pg.data_dir().display());
    println!("work dir      : {}", b.work.path.display());
    println!("cores         : {}", cores());
    println!("load average  : {}", load_average());
    println!(
        "sizes         : database {} MiB{}, tree {} MiB",
        s.base_mib,
        s.big_mib
            .map_or(" (large case skipped)".into(), |m| format!(" and {m} MiB")),
        s.tree_mib
    );
    println!(
        "runs          : {} round(s) of anchors and rollback per size; the fastest counts",
        s.runs
    );
    if b.time_file.is_none() {
        println!("note          : {GNU_TIME} not found: memory and client CPU are not measured");
    }
    let largest = s.big_mib.unwrap_or(s.base_mib).max(s.base_mib);
    space::check(b.pg.data_dir(), &b.work.path, largest, s.tree_mib)?;

    // -- the tree, once for every size (untimed) --
    let root = b.work.join("tree");
    let t = Instant::now();
    let stats = generate_tree(&root, s.tree_mib * MIB)?;
    let trees = tree_components(&root)?;
    println!(
        "\ngenerated the tree: {} files, {} dirs, {} in {:.1} s; components {}",
        stats.files(),
        stats.dirs,
        human(stats.bytes()),
        t.elapsed().as_secs_f64(),
        trees
            .iter()
            .map(|(n, p)| format!("{n} ({})", du(p).map_or("?".into(), human)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let sys = SystemFile::write(b, &trees)?;

    let base = case(b, &sys, s.base_mib, s.runs)?;
    let big = match s.big_mib {
        Some(mib) => {
            reset(b)?;
            Some(case(b, &sys, mib, s.runs)?)
        }
        None => None,
    };

    // -- report --
    let mut rows = vec![Row::info(
        "tree",
        format!(
            "{} in {} files; components {}",
            human(stats.bytes()),
            stats.files(),
            trees
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )];
    case_rows(&mut rows, &base, true)?;
    if let Some(big) = &big {
        case_rows(&mut rows, big, false)?;
        let (d0, d1) = (downtime(&base)?, downtime(big)?);
        let r = d1 / d0.max(1e-6);
        rows.push(Row::new(
            &format!("downtime {} MiB / {} MiB database", big.mib, base.mib),
            format!("{d1:.3} s / {d0:.3} s = {r:.2}"),
            &format!(
                "<= {DOWNTIME_GROWTH_MAX:.2} or < +{:.0} ms",
                DOWNTIME_GROWTH_SLACK_SECS * 1000.0
            ),
            Some(r <= DOWNTIME_GROWTH_MAX || d1 - d0 < DOWNTIME_GROWTH_SLACK_SECS),
        ));
    } else {
        rows.push(Row::info(
            "downtime large / base database",
            "n/a (BENCH_ROLLBACK_BIG=0: the large case was skipped)".into(),
        ));
    }
    rows.push(Row::info(
        "load average (1/5/15 min)",
        format!("{} at the end", load_average()),
    ));
    let sizes = match &big {
        Some(big) => format!("{} and {}", human(base.db_bytes), human(big.db_bytes)),
        None => human(base.db_bytes),
    };
    report::print(
        &rows,
        &format!(
            "{sizes} database, {} tree, {} cores, hooks `true`",
            human(stats.bytes()),
            cores()
        ),
    );
    Ok(())
}

/// Between two sizes: the database, the repository and the rollback state go.
fn reset(b: &Bench) -> Result<()> {
    b.drop_database(DB)?;
    for name in ["backup-repo", "state", "plan.json"] {
        remove(&b.work.join(name))?;
    }
    Ok(())
}

fn case(b: &Bench, sys: &SystemFile, mib: u64, runs: usize) -> Result<Case> {
    let os = OsStr::new;
    println!("\n-- database of {mib} MiB --");
    let t = Instant::now();
    let scale = b.generate(DB, mib)?;
    let db_bytes = b.database_size(DB)?;
    println!(
        "generated database {DB}: {} in {:.1} s",
        human(db_bytes),
        t.elapsed().as_secs_f64()
    );
    let original = b.fingerprint(DB)?;
    let config = sys.path.as_os_str();
    let repo = b.work.join("backup-repo");

    // -- setup: repository, the snapshot to roll back to, the dump of the anchor --
    let (init, _) = b.backup("backup init (setup)", &[os("init"), os("--config"), config])?;
    b.checkpoint()?;
    let (create, create_json) = b.backup(
        "backup create --config --tag pre-deploy (setup)",
        &[
            os("create"),
            os("--config"),
            config,
            os("--tag"),
            os("pre-deploy"),
        ],
    )?;
    let fd = b.work.join("dump.d");
    let j = OsString::from(format!("-j{ANCHOR_JOBS}"));
    remove(&fd)?;
    b.checkpoint()?;
    let dump = b.run_timed(
        &format!("pg_dump -Fd -j{ANCHOR_JOBS} (setup)"),
        &b.pg.bin("pg_dump"),
        &[os("-Fd"), &j, os("-f"), fd.as_os_str(), os("-d"), os(DB)],
    )?;
    let dump_bytes = du(&fd)?;

    let (mut pg_restores, mut cps, mut plans, mut rollbacks) = (vec![], vec![], vec![], vec![]);
    let mut plan_built = true;
    let mut downtimes = Vec::new();
    let mut last_cleanup = None;
    for round in 1..=runs {
        if runs > 1 {
            println!("-- round {round} of {runs} --");
        }
        // -- anchors, on the state the snapshot holds --
        settle()?;
        b.checkpoint()?;
        warm(&fd)?;
        let createdb = b.run_timed("createdb", &b.pg.bin("createdb"), &[os(ANCHOR_DB)])?;
        let mut pg_restore = b.run_timed(
            &format!("pg_restore -j{ANCHOR_JOBS} (-Fd)"),
            &b.pg.bin("pg_restore"),
            &[&j, os("-d"), os(ANCHOR_DB), fd.as_os_str()],
        )?;
        pg_restore.add(&createdb);
        pg_restores.push(pg_restore);
        let restored = b.fingerprint(ANCHOR_DB)?;
        if restored != original {
            return Err(format!(
                "pg_restore gave another database:\n  original: {original}\n  restored: {restored}"
            )
            .into());
        }
        b.drop_database(ANCHOR_DB)?;
        let dest = b.work.join("cp-anchor");
        remove(&dest)?;
        fs::create_dir(&dest)?;
        let mut cp_args = vec![os("-a")];
        for (_, path) in &sys.trees {
            warm(path)?;
            cp_args.push(path.as_os_str());
        }
        cp_args.push(dest.as_os_str());
        b.checkpoint()?;
        cps.push(b.run_timed("cp -a (the trees)", Path::new("cp"), &cp_args)?);
        // The copy's write-back is the anchor's, not the rollback's: staging ends with a
        // `syncfs` of this file system, which would otherwise write the copy out too.
        sync()?;

        // -- the deployment the rollback undoes (untimed) --
        let t = Instant::now();
        deploy_database(b, &scale)?;
        let deployed = deploy_trees(&sys.trees)?;
        if b.fingerprint(DB)? == original {
            return Err("the deployment did not change the database".into());
        }
        println!(
            "deployed: audit log +5%, a migration, files changed in every tree ({:.1} s)",
            t.elapsed().as_secs_f64()
        );

        // -- the plan, then the rollback --
        b.checkpoint()?;
        warm(&repo)?;
        if plan_built {
            match time_plan(b, config)? {
                Some(t) => plans.push(t),
                None => plan_built = false,
            }
        }
        b.checkpoint()?;
        warm(&repo)?;
        let (rollback, json) = b.backup(
            "backup rollback",
            &[
                os("rollback"),
                os("--config"),
                config,
                os("latest"),
                os("--tag"),
                os("pre-deploy"),
                os("--yes"),
            ],
        )?;
        if json["result"] != "rolled-back" {
            return Err(format!("backup rollback did not roll back: {json}").into());
        }
        downtimes.push(
            json["downtime_secs"]
                .as_f64()
                .ok_or_else(|| format!("backup rollback --json: no downtime_secs: {json}"))?,
        );
        rollbacks.push(rollback);
        let now = b.fingerprint(DB)?;
        if now != original {
            return Err(format!(
                "after the rollback the database differs from the snapshot:\n  snapshot: \
                 {original}\n  now:      {now}"
            )
            .into());
        }
        deployed.check_rolled_back()?;
        println!("the database and the trees are back as in the snapshot");

        // -- the kept copies go (untimed) --
        let (cleanup, cj) = b.backup(
            "backup rollback cleanup (untimed)",
            &[os("rollback"), os("cleanup"), os("--config"), config],
        )?;
        let removed = cj["removed"].as_array().map_or(0, Vec::len);
        check_cleaned(b, sys)?;
        remove(&dest)?;
        last_cleanup = Some((cleanup, removed));
    }
    remove(&fd)?;
    let (cleanup, removed) = last_cleanup.ok_or("no round ran")?;
    let rollback = best(rollbacks);
    let report = serde_json::from_str(&rollback.stdout)?;
    Ok(Case {
        mib,
        db_bytes,
        init,
        create,
        create_json,
        dump,
        dump_bytes,
        pg_restore: best(pg_restores),
        cp: best(cps),
        plan: (plan_built && !plans.is_empty()).then(|| best(plans)),
        rollback,
        report,
        downtimes,
        cleanup,
        removed,
    })
}

/// Times `backup rollback plan ... -o plan.json`; `None` when the binary does not have it yet.
fn time_plan(b: &Bench, config: &OsStr) -> Result<Option<Timed>> {
    let os = OsStr::new;
    let out = b.work.join("plan.json");
    remove(&out)?;
    let args = [
        os("rollback"),
        os("plan"),
        os("--config"),
        config,
        os("latest"),
        os("--tag"),
        os("pre-deploy"),
        os("-o"),
        out.as_os_str(),
    ];
    match b.run_timed("backup rollback plan", &b.backup, &args) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.to_string().contains("not built yet") => {
            println!("`backup rollback plan` is not built yet in this binary: its time is n/a");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// How long ext4 without a journal may treat a deleted inode as recent: 60 s
/// once its inode table block is written (`RECENTCY_MIN` in
/// `fs/ext4/ialloc.c`), 360 s while that block is dirty (`RECENTCY_MIN` +
/// `RECENTCY_DIRTY`), as it is again as soon as a file is created in it;
/// plus a margin. Until then, creating a file scans past every recently
/// freed inode, so a tree copied after a large delete (the previous round's
/// cleanup, or an earlier run's) costs several times more, whoever copies
/// it.
const RECENT_DELETE: Duration = Duration::from_secs(365);

/// Lets the deletes of the previous round or case age before anything is
/// timed: `sync`, then a wait of [`RECENT_DELETE`]. The anchor's copy and
/// the kept copies are removed only after the rollback, so no timed step
/// follows a large delete.
fn settle() -> Result<()> {
    sync()?;
    std::thread::sleep(RECENT_DELETE);
    Ok(())
}

/// Writes everything cached to disk (`sync`).
fn sync() -> Result<()> {
    let status = std::process::Command::new("sync").status()?;
    if !status.success() {
        return Err("sync failed".into());
    }
    Ok(())
}

/// Fails when a kept or staged copy outlived `rollback cleanup`.
fn check_cleaned(b: &Bench, sys: &SystemFile) -> Result<()> {
    let dbs = b.sql(
        "postgres",
        &format!(
            "SELECT coalesce(string_agg(datname, ' '), '') FROM pg_database \
             WHERE datname LIKE '{DB}\\_\\_%'"
        ),
    )?;
    if !dbs.trim().is_empty() {
        return Err(format!("rollback cleanup left the databases {}", dbs.trim()).into());
    }
    let mut left = Vec::new();
    for (_, path) in &sys.trees {
        let parent = path.parent().ok_or("a tree without a parent")?;
        for entry in fs::read_dir(parent)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.contains(".before-rollback-") || name.contains(".rollback-") {
                left.push(name);
            }
        }
    }
    left.sort();
    left.dedup();
    if !left.is_empty() {
        return Err(format!("rollback cleanup left {}", left.join(", ")).into());
    }
    Ok(())
}

/// The rollback's steps: (name, seconds).
fn steps(c: &Case) -> Result<Vec<(String, f64)>> {
    c.report["steps"]
        .as_array()
        .ok_or_else(|| format!("backup rollback --json: no steps: {}", c.report))?
        .iter()
        .map(|s| {
            let name = s["name"].as_str().unwrap_or("?").to_string();
            let secs = s["duration_secs"].as_f64().unwrap_or(0.0);
            Ok((name, secs))
        })
        .collect()
}

/// Seconds from the first start to the last end of the steps after the health check (the
/// salvage and the safety snapshot, which run side by side), from their own start times.
fn after_health_check(c: &Case) -> Result<f64> {
    let bad = || {
        format!(
            "backup rollback --json: steps without start times: {}",
            c.report
        )
    };
    let mut span: Option<(f64, f64)> = None;
    for s in c.report["steps"].as_array().ok_or_else(bad)? {
        if !matches!(s["name"].as_str(), Some("salvage" | "safety snapshot")) {
            continue;
        }
        let started = s["started"].as_str().ok_or_else(bad)?;
        let started = chrono::DateTime::parse_from_rfc3339(started).map_err(|_| bad())?;
        let from = started.timestamp_micros() as f64 / 1e6;
        let to = from + s["duration_secs"].as_f64().ok_or_else(bad)?;
        span = Some(span.map_or((from, to), |(a, b)| (a.min(from), b.max(to))));
    }
    Ok(span.map_or(0.0, |(a, b)| b - a))
}

fn downtime(c: &Case) -> Result<f64> {
    c.report["downtime_secs"]
        .as_f64()
        .ok_or_else(|| format!("backup rollback --json: no downtime_secs: {}", c.report).into())
}

/// Seconds with three decimals under a second, two above.
fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{s:.3} s")
    } else {
        format!("{s:.2} s")
    }
}

fn case_rows(rows: &mut Vec<Row>, c: &Case, plan_target: bool) -> Result<()> {
    let l = format!("[{} MiB db]", c.mib);
    let steps = steps(c)?;
    let step = |name: &str| -> f64 {
        steps
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| s)
            .sum()
    };
    let switch: f64 = steps
        .iter()
        .filter(|(n, _)| n.starts_with("switch "))
        .map(|(_, s)| s)
        .sum();
    rows.push(Row::info(
        &format!("{l} database size"),
        format!(
            "{} (pg_database_size); rolled back with the tree",
            human(c.db_bytes)
        ),
    ));
    rows.push(Row::info(
        &format!("{l} backup init + create --config (setup)"),
        format!(
            "{:.2} s + {}; stored {}",
            c.init.secs,
            c.create.summary(),
            human(c.create_json["stored_bytes"].as_u64().unwrap_or(0))
        ),
    ));
    rows.push(Row::info(
        &format!("{l} pg_dump -Fd -j{ANCHOR_JOBS} (setup)"),
        format!("{}; {}", c.dump.summary(), human(c.dump_bytes)),
    ));
    rows.push(Row::info(
        &format!("{l} createdb + pg_restore -j{ANCHOR_JOBS}"),
        c.pg_restore.summary(),
    ));
    rows.push(Row::info(
        &format!("{l} cp -a of the trees"),
        c.cp.summary(),
    ));
    rows.push(Row::info(
        &format!("{l} backup rollback"),
        format!(
            "{}; duration_secs {:.2}",
            c.rollback.summary(),
            c.report["duration_secs"].as_f64().unwrap_or(f64::NAN)
        ),
    ));
    rows.push(Row::info(
        &format!("{l}   steps"),
        steps
            .iter()
            .map(|(n, s)| format!("{n} {}", secs(*s)))
            .collect::<Vec<_>>()
            .join(", "),
    ));
    rows.push(Row::info(
        &format!("{l}   phases"),
        c.rollback.phases.clone(),
    ));
    let d = downtime(c)?;
    let worst = c.downtimes.iter().copied().fold(0.0, f64::max);
    let best = c.downtimes.iter().copied().fold(f64::INFINITY, f64::min);
    let spread = if c.downtimes.len() > 1 {
        format!(
            "; {} rounds: {} to {}",
            c.downtimes.len(),
            secs(best),
            secs(worst)
        )
    } else {
        String::new()
    };
    rows.push(Row::new(
        &format!("{l} downtime (stop hook to health check passed)"),
        format!(
            "{} (stop {}, switch {}, start {}, health check {}{spread})",
            secs(d),
            secs(step("stop")),
            secs(switch),
            secs(step("start")),
            secs(step("health check"))
        ),
        &format!("< {DOWNTIME_TARGET_SECS:.0} s"),
        Some(d < DOWNTIME_TARGET_SECS),
    ));
    let (r, a, cp) = (c.rollback.secs, c.pg_restore.secs, c.cp.secs);
    let ratio = r / (a + cp);
    rows.push(Row::new(
        &format!("{l} rollback / (pg_restore -j{ANCHOR_JOBS} + cp -a)"),
        format!("{r:.2} s / ({a:.2} s + {cp:.2} s) = {ratio:.2}"),
        &format!("<= {TIME_RATIO_TARGET:.2}"),
        Some(ratio <= TIME_RATIO_TARGET),
    ));
    let after = after_health_check(c)?;
    rows.push(Row::info(
        &format!("{l}   the same until the health check passed"),
        format!(
            "{:.2} s / {:.2} s = {:.2} (then salvage {} and safety snapshot {} side by side, {} in all)",
            r - after,
            a + cp,
            (r - after) / (a + cp),
            secs(step("salvage")),
            secs(step("safety snapshot")),
            secs(after)
        ),
    ));
    let plan_name = format!("{l} rollback plan / rollback time");
    let plan_goal = format!("< {PLAN_RATIO_TARGET:.2}");
    let goal = if plan_target { plan_goal.as_str() } else { "" };
    rows.push(match &c.plan {
        Some(p) => {
            let q = p.secs / r;
            Row::new(
                &plan_name,
                format!("{:.2} s / {r:.2} s = {q:.3}", p.secs),
                goal,
                plan_target.then_some(q < PLAN_RATIO_TARGET),
            )
        }
        None => Row::new(
            &plan_name,
            "n/a (`backup rollback plan` is not built yet)".into(),
            goal,
            None,
        ),
    });
    if let Some(p) = &c.plan {
        rows.push(Row::info(
            &format!("{l}   backup rollback plan"),
            p.summary(),
        ));
    }
    rows.push(Row::rss(
        &format!("{l} max RSS backup rollback (info)"),
        c.rollback.max_rss_kib,
        None,
    ));
    rows.push(Row::info(
        &format!("{l} rollback cleanup (untimed)"),
        format!("{:.2} s, {} kept copies removed", c.cleanup.secs, c.removed),
    ));
    Ok(())
}
