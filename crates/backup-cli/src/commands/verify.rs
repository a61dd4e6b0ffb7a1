//! `backup verify`.

use crate::exit;
use crate::output::{human_bytes, Output};
use crate::settings::Settings;
use anyhow::{bail, Result};
use backup_core::{verify, ReadData, VerifyOptions};

/// Flags of `verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these snapshots (ids, prefixes or `latest`); default: the whole repository.
    snapshots: Vec<String>,
    /// Also download and check every byte of data.
    #[arg(long, conflicts_with = "read_data_subset")]
    read_data: bool,
    /// Check a subset of the data: `10%` (rotating: repeated runs cover everything) or `n/t`.
    #[arg(long, value_name = "SUBSET")]
    read_data_subset: Option<String>,
    /// Also restore each captured database into a scratch database on this server
    /// (libpq connection string), compare it with the snapshot, and drop it.
    #[arg(long, value_name = "CONNINFO")]
    restore_test: Option<String>,
    /// Parallel pack readers.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// Runs `verify`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let repo = s.open_lenient()?;
    let mut ids = Vec::new();
    for spec in &a.snapshots {
        ids.push(super::pick(&repo, spec, &[])?.0);
    }
    let read_data = match (&a.read_data, &a.read_data_subset) {
        (true, _) => ReadData::All,
        (false, Some(sub)) => ReadData::parse_subset(sub)?,
        (false, None) => ReadData::None,
    };
    if a.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let options = VerifyOptions {
        snapshots: ids,
        read_data,
        cursor_file: Some(s.cache_dir(&repo.config().id).join("verify-cursor")),
        workers: a.threads,
    };
    let bars = out.progress();
    let report = verify(&repo, &options, &bars);
    bars.finish();
    let report = report?;
    let mut tests = Vec::new();
    if let Some(server) = &a.restore_test {
        let targets: Vec<(backup_core::Id, backup_core::snapshot::Snapshot)> =
            if options.snapshots.is_empty() {
                vec![super::pick(&repo, "latest", &[])?]
            } else {
                options
                    .snapshots
                    .iter()
                    .map(|id| Ok((*id, backup_core::snapshot::load_snapshot(&repo, id)?)))
                    .collect::<Result<_>>()?
            };
        for (id, snap) in &targets {
            if snap.databases().next().is_none() {
                anyhow::bail!(backup_core::Error::usage(format!(
                    "snapshot {} holds no database to test-restore",
                    id.short()
                )));
            }
            for db in snap.databases() {
                let bars = out.progress();
                let r =
                    backup_core::restore::restore_test(&repo, db, server, a.threads.max(2), &bars);
                bars.finish();
                tests.push((*id, r?));
            }
        }
    }
    let tests_ok = tests.iter().all(|(_, t)| t.mismatches.is_empty());
    if out.json {
        let mut v = serde_json::to_value(&report)?;
        v["restore_tests"] = serde_json::to_value(
            tests
                .iter()
                .map(|(id, t)| {
                    let mut j = serde_json::to_value(t).unwrap_or_default();
                    j["snapshot"] = serde_json::Value::String(id.to_hex());
                    j
                })
                .collect::<Vec<_>>(),
        )?;
        out.print_json(&v);
    } else {
        for (id, t) in &tests {
            if t.mismatches.is_empty() {
                out.say(format!(
                    "restore test of snapshot {} database {}: {} tables, {} rows restored into {} and matched, in {:.1}s (scratch database dropped)",
                    id.short(), t.database, t.tables, t.rows, t.scratch, t.duration_secs
                ));
            } else {
                println!(
                    "RESTORE TEST FAILED for snapshot {} database {}:",
                    id.short(),
                    t.database
                );
                for m in &t.mismatches {
                    println!("  {}: {}", m.object, m.problem);
                }
            }
        }
        out.say(format!(
            "checked {} snapshot(s), {} index object(s), {} pack(s); read back {} pack(s), {} blob(s), {}",
            report.snapshots,
            report.index_objects,
            report.packs,
            report.packs_read,
            report.blobs_read,
            human_bytes(report.bytes_read)
        ));
        if report.unindexed_packs > 0 {
            out.say(format!(
                "{} pack(s) are in no index (left by an interrupted run; the next create reuses them)",
                report.unindexed_packs
            ));
        }
        for p in &report.problems {
            println!("DAMAGED {}: {}", p.object, p.problem);
            for a in &p.affected {
                println!("  affects {a}");
            }
        }
        if report.ok() {
            out.say("no problems found");
        } else {
            eprintln!("error: {} problem(s) found", report.problems.len());
        }
    }
    Ok(if report.ok() && tests_ok {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
