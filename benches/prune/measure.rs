//! The measurements: the history of snapshots in both tools (untimed), the timed forget and
//! prune of each, the checks afterwards, and the report.

use std::fs;
use std::path::Path;
use std::time::Instant;

use chrono::DateTime;
use serde_json::Value;

use crate::history::{compare, Tree};
use crate::round::{self, restore, save, snapshot_times, Round};
use crate::support::process::{version, GNU_TIME};
use crate::support::report::{self, human, pct, Row};
use crate::support::workdir::{du, WorkDir};
use crate::support::{cores, Result};
use crate::tools::{Tool, Tools};
use crate::{KEEP, PRUNE_RSS_TARGET, SIZE_TOLERANCE, TIME_RATIO_TARGET};

/// The oldest snapshot's time (Unix seconds): 2024-05-31 23:00:00 UTC; the others follow one
/// hour apart. The oldest is thus the newest snapshot of its day and of its month, which the
/// daily and monthly rules of both tools keep. `backup` follows restic 0.16 and later, whose
/// rules also keep the oldest snapshot while a rule has count left (restic 0.14, which is
/// compared here, does not): any other oldest snapshot would be kept by `backup` alone.
const OLDEST: i64 = 1_717_196_400;

pub fn measure(
    work: &WorkDir,
    snapshots: u64,
    runs: u64,
    backup: &Path,
    restic: &Path,
) -> Result<()> {
    let backup_version = version(backup, "--version")?;
    let restic_version = version(restic, "version")?;
    let tools = Tools {
        backup: backup.to_path_buf(),
        restic: restic.to_path_buf(),
        backup_repo: work.join("backup-repo"),
        restic_repo: work.join("restic-repo"),
        restic_cache: work.join("restic-cache"),
        time_file: Path::new(GNU_TIME).exists().then(|| work.join("time.txt")),
    };
    let times: Vec<i64> = (0..snapshots as i64).map(|i| OLDEST + i * 3600).collect();
    let newest = times[times.len() - 1];
    println!("backup binary : {} ({backup_version})", backup.display());
    println!("restic        : {restic_version}");
    println!("work dir      : {}", work.path.display());
    println!("cores         : {}", cores());
    println!("load average  : {}", load_average());
    println!(
        "snapshots     : {snapshots}, one per hour, {} to {} (UTC)",
        utc(times[0]),
        utc(newest)
    );
    println!("policy        : {}", KEEP.join(" "));
    if tools.time_file.is_none() {
        println!("note          : {GNU_TIME} not found: peak memory is not measured");
    }

    // -- setup (untimed): the repositories, the tree, and per change a snapshot in each --
    let t = Instant::now();
    tools.run(Tool::Backup, &["init", "--quiet"])?;
    tools.run(Tool::Restic, &["init", "--quiet"])?;
    let root = work.join("tree");
    let mut tree = Tree::generate(&root, times[0])?;
    let (first_files, first_bytes) = tree.size()?;
    println!(
        "\ngenerated the tree: {first_files} files, {}",
        human(first_bytes)
    );
    let every = (snapshots / 10).max(1);
    let mut next_report = every;
    for (i, &time) in times.iter().enumerate() {
        if i > 0 {
            tree.change(time)?;
        }
        tools.snapshot(&root, &utc(time))?;
        let done = i as u64 + 1;
        if done == next_report || done == snapshots {
            next_report += every;
            let (files, bytes) = tree.size()?;
            println!(
                "  {done:>5} / {snapshots} snapshots in each tool, {:.0} s; tree {files} files, {}",
                t.elapsed().as_secs_f64(),
                human(bytes)
            );
        }
    }
    let setup_secs = t.elapsed().as_secs_f64();
    let (last_files, last_bytes) = tree.size()?;
    let b_before = du(&tools.backup_repo)?;
    let r_before = du(&tools.restic_repo)?;
    let b_count = snapshot_times(&tools, Tool::Backup)?.len();
    let r_count = snapshot_times(&tools, Tool::Restic)?.len();
    if b_count != snapshots as usize || r_count != snapshots as usize {
        return Err(format!(
            "expected {snapshots} snapshots, found {b_count} (backup) and {r_count} (restic)"
        )
        .into());
    }
    println!(
        "setup {setup_secs:.0} s; repositories: backup {}, restic {}\n",
        human(b_before),
        human(r_before)
    );

    // -- timed: forget, then prune, in each tool; `runs` rounds, each on fresh copies --
    save(&tools)?;
    let mut done: Vec<Round> = Vec::new();
    for n in 1..=runs {
        if n > 1 {
            restore(&tools)?;
        }
        println!("round {n} of {runs}:");
        done.push(round::run(&tools)?);
    }
    let last = done.last().expect("at least one round");
    for line in &last.r_summary {
        println!("  restic prune: {line}");
    }

    // -- checks (untimed) --
    let t = Instant::now();
    let verified: Value = serde_json::from_str(&tools.run(
        Tool::Backup,
        &["verify", "--read-data", "--json", "--quiet"],
    )?)?;
    let verify_secs = t.elapsed().as_secs_f64();
    let problems = verified["problems"].as_array().map_or(0, Vec::len);
    if problems > 0 {
        return Err(format!("backup verify reported problems: {}", verified["problems"]).into());
    }
    println!(
        "backup verify --read-data: no problems ({verify_secs:.2} s, {} packs read)",
        verified["packs_read"]
    );
    let restored = work.join("restore");
    let target = restored.to_string_lossy();
    tools.run(
        Tool::Backup,
        &[
            "restore",
            "latest",
            "--component",
            "tree",
            "--target",
            &target,
            "--quiet",
        ],
    )?;
    let compared = compare(&root, &restored)?;
    println!("backup restore latest: {compared} files, identical to the tree");
    fs::remove_dir_all(&restored)?;
    let t = Instant::now();
    tools.run(Tool::Restic, &["check", "--read-data", "--quiet"])?;
    let check_secs = t.elapsed().as_secs_f64();
    println!("restic check --read-data: no errors ({check_secs:.2} s)");

    // -- report --
    let churn = &tree.churn;
    let changes = (snapshots - 1).max(1) as f64;
    let b_best = best(&done, Round::b_secs);
    let r_best = best(&done, Round::r_secs);
    let of_runs = |f: fn(&Round) -> f64| match runs {
        1 => String::new(),
        _ => {
            let worst = done.iter().map(f).fold(0.0, f64::max);
            format!(" (best of {runs}; worst {worst:.2} s)")
        }
    };
    let peak = |f: fn(&Round) -> Option<u64>| done.iter().map(f).max().flatten();
    let mut rows = vec![
        Row::info(
            "snapshots",
            format!(
                "{snapshots} per tool, one per hour, {} to {}",
                utc(times[0]),
                utc(newest)
            ),
        ),
        Row::info(
            "tree",
            format!(
                "{first_files} files, {} at first; {last_files} files, {} at the end",
                human(first_bytes),
                human(last_bytes)
            ),
        ),
        Row::info(
            "churn per snapshot (mean)",
            format!(
                "{:.1} files rewritten, {:.1} edited, {:.1} added, {:.1} removed; {} new bytes",
                churn.rewritten as f64 / changes,
                churn.edited as f64 / changes,
                churn.added as f64 / changes,
                churn.removed as f64 / changes,
                human((churn.bytes as f64 / changes) as u64)
            ),
        ),
        Row::info(
            "setup (untimed, both tools side by side)",
            format!(
                "{setup_secs:.0} s, {:.2} s per snapshot",
                setup_secs / snapshots as f64
            ),
        ),
        Row::info("restic", restic_version.clone()),
        Row::info(
            "repo size before: backup / restic",
            format!("{} / {}", human(b_before), human(r_before)),
        ),
        Row::new(
            "snapshots kept by forget: backup / restic",
            format!(
                "{} / {}{}",
                last.b_kept.len(),
                last.r_kept.len(),
                if last.b_kept == last.r_kept {
                    ", the same times"
                } else {
                    ", other times"
                }
            ),
            "equal",
            Some(last.b_kept.len() == last.r_kept.len()),
        ),
        Row::info(
            "backup forget + prune",
            format!(
                "{:.2} s + {:.2} s = {:.2} s{}",
                b_best.b_forget.secs,
                b_best.b_prune.secs,
                b_best.b_secs(),
                of_runs(Round::b_secs)
            ),
        ),
        Row::info(
            "restic forget + prune",
            format!(
                "{:.2} s + {:.2} s = {:.2} s{}",
                r_best.r_forget.secs,
                r_best.r_prune.secs,
                r_best.r_secs(),
                of_runs(Round::r_secs)
            ),
        ),
        Row::info(
            "  forget backup / restic",
            format!("{:.2}", b_best.b_forget.secs / r_best.r_forget.secs),
        ),
        Row::info(
            "  prune backup / restic",
            format!("{:.2}", b_best.b_prune.secs / r_best.r_prune.secs),
        ),
    ];
    let (b_total, r_total) = (b_best.b_secs(), r_best.r_secs());
    let ratio = b_total / r_total;
    rows.push(Row::new(
        "forget + prune time backup / restic",
        format!("{b_total:.2} s / {r_total:.2} s = {ratio:.2}"),
        &format!("<= {TIME_RATIO_TARGET:.2}"),
        Some(ratio <= TIME_RATIO_TARGET),
    ));
    let rss_target = format!("<= {PRUNE_RSS_TARGET:.2}");
    match (
        peak(|r| r.b_prune.max_rss_kib),
        peak(|r| r.r_prune.max_rss_kib),
    ) {
        (Some(b), Some(r)) => {
            let ratio = b as f64 / r as f64;
            rows.push(Row::new(
                "max RSS prune backup / restic",
                format!("{} / {} = {ratio:.2}", rss(Some(b)), rss(Some(r))),
                &rss_target,
                Some(ratio <= PRUNE_RSS_TARGET),
            ));
        }
        _ => rows.push(Row::new(
            "max RSS prune backup / restic",
            "n/a".into(),
            &rss_target,
            None,
        )),
    }
    rows.push(Row::info(
        "max RSS forget backup / restic",
        format!(
            "{} / {}",
            rss(peak(|r| r.b_forget.max_rss_kib)),
            rss(peak(|r| r.r_forget.max_rss_kib))
        ),
    ));
    let pruned = &last.pruned;
    let n = |k: &str| pruned[k].as_u64().unwrap_or(0);
    rows.push(Row::info(
        "  backup prune --json",
        format!(
            "packs {} before: {} deleted, {} repacked into {} ({} copied); {} unused left",
            n("packs_before"),
            n("packs_deleted"),
            n("packs_repacked"),
            n("packs_written"),
            human(n("bytes_repacked")),
            human(n("unused_bytes_after"))
        ),
    ));
    rows.push(Row::info(
        "  restic prune",
        format!(
            "to repack {}; total prune {}; remaining {}",
            last.r_figure("to repack:"),
            last.r_figure("total prune:"),
            last.r_figure("remaining:")
        ),
    ));
    rows.push(Row::info(
        "repo size after: backup",
        format!(
            "{} ({:.1}% of before)",
            human(last.b_after),
            pct(last.b_after, b_before)
        ),
    ));
    rows.push(Row::info(
        "repo size after: restic",
        format!(
            "{} ({:.1}% of before)",
            human(last.r_after),
            pct(last.r_after, r_before)
        ),
    ));
    let size_ratio = last.b_after as f64 / last.r_after as f64;
    rows.push(Row::new(
        "repo size after: backup / restic",
        format!("{size_ratio:.3}"),
        &format!("{:.2}-{:.2}", 1.0 - SIZE_TOLERANCE, 1.0 + SIZE_TOLERANCE),
        Some((size_ratio - 1.0).abs() <= SIZE_TOLERANCE),
    ));
    rows.push(Row::new(
        "backup verify --read-data (untimed)",
        format!("no problems, {verify_secs:.2} s"),
        "passes",
        Some(true),
    ));
    rows.push(Row::new(
        "backup restore latest = tree",
        format!("{compared} files identical (content, mtime)"),
        "identical",
        Some(true),
    ));
    rows.push(Row::info(
        "restic check --read-data (untimed)",
        format!("no errors, {check_secs:.2} s"),
    ));
    rows.push(Row::info(
        "load average (1/5/15 min)",
        format!("{} at the end", load_average()),
    ));
    report::print(
        &rows,
        &format!("{snapshots} snapshots, {runs} round(s), {} cores", cores()),
    );
    Ok(())
}

/// Unix seconds as "YYYY-MM-DD HH:MM:SS" (UTC), the form `--time` takes in both tools.
pub fn utc(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .expect("times are in range")
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn rss(kib: Option<u64>) -> String {
    kib.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// The first three fields of `/proc/loadavg`: other work on the machine skews the timings.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

/// The round where `secs` (one tool's forget + prune) was least.
fn best(rounds: &[Round], secs: fn(&Round) -> f64) -> &Round {
    rounds
        .iter()
        .min_by(|a, b| secs(a).total_cmp(&secs(b)))
        .expect("at least one round")
}
