//! The measurements: the database, the timed rounds of both tools, `--replace`, and the
//! report.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::time::Instant;

use crate::bench::Bench;
use crate::data::audit_sql;
use crate::support::process::{version, GNU_TIME};
use crate::support::report::{self, human, pct, Row};
use crate::support::workdir::{du, remove, warm};
use crate::support::{cores, Result};
use crate::timed::{best, load_average};
use crate::{ANCHOR_JOBS, DB, DB_SMALL, DOWNTIME_TARGET_SECS, RSS_TARGET_MIB};

/// The peak memory target of `backup`, in MiB.
const RSS_TARGET: Option<u64> = Some(RSS_TARGET_MIB);

impl Bench<'_> {
    pub fn measure(&self, size_mib: u64) -> Result<()> {
        let os = OsStr::new;
        // The anchors run with -j2, as the issue states; backup with --jobs BENCH_PG_JOBS.
        let jobs = ANCHOR_JOBS;
        let backup_version = version(&self.backup, "--version")?;
        let pg_dump_version = version(self.pg.bin("pg_dump"), "--version")?;
        let server_version = self.sql("postgres", "SHOW server_version")?;
        println!(
            "backup binary : {} ({backup_version})",
            self.backup.display()
        );
        println!("pg_dump       : {pg_dump_version}");
        println!(
            "server        : PostgreSQL {server_version} (fsync=off, default settings otherwise)"
        );
        println!("work dir      : {}", self.work.path.display());
        println!("cores         : {}", cores());
        println!("load average  : {}", load_average());
        println!(
            "runs          : {} rounds of the timed comparisons; the best of each is reported",
            self.runs
        );
        println!(
            "jobs          : backup --jobs {}, pg_dump -Fd / pg_restore -j{jobs}",
            self.jobs
        );
        if self.time_file.is_none() {
            println!(
                "note          : {GNU_TIME} not found: memory and client CPU are not measured"
            );
        }
        if self.postmaster.is_none() {
            println!("note          : no postmaster.pid: server CPU is not measured");
        }

        // -- the database (untimed) --
        let t = Instant::now();
        let scale = self.generate(DB, size_mib)?;
        let db_bytes = self.database_size(DB)?;
        println!(
            "\ngenerated database {DB}: {} in {:.1} s",
            human(db_bytes),
            t.elapsed().as_secs_f64()
        );
        println!(
            "{}",
            self.sql(
                DB,
                "SELECT rpad(c.relname, 16) || lpad(c.reltuples::bigint::text, 10) || ' rows'
                   || lpad(pg_size_pretty(pg_table_size(c.oid)), 11) || ' table'
                   || lpad(pg_size_pretty(pg_indexes_size(c.oid)), 11) || ' indexes'
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relkind = 'r'
                 ORDER BY pg_total_relation_size(c.oid) DESC"
            )?
        );
        let original = self.fingerprint(DB)?;

        // -- rounds of pg_dump -Fc, pg_dump -Fd -j2, backup init + create (fresh repository) --
        let runs = self.runs;
        let fc = self.work.join("dump.fc");
        let fd = self.work.join("dump.d");
        let repo = self.work.join("backup-repo");
        let j = OsString::from(format!("-j{jobs}"));
        let level = self.compression.map(|l| OsString::from(l.to_string()));
        let mut init_args = vec![os("init")];
        if let Some(l) = &level {
            init_args.extend([os("--compression-level"), l.as_os_str()]);
        }
        let (mut dumps_fc, mut dumps_fd, mut inits, mut creates) = (vec![], vec![], vec![], vec![]);
        let mut first = serde_json::Value::Null;
        for round in 1..=runs {
            if runs > 1 {
                println!("-- round {round} of {runs}: dumps and first create --");
            }
            remove(&fc)?;
            remove(&fd)?;
            remove(&repo)?;
            self.checkpoint()?;
            dumps_fc.push(self.run_timed(
                "pg_dump -Fc",
                &self.pg.bin("pg_dump"),
                &[os("-Fc"), os("-f"), fc.as_os_str(), os("-d"), os(DB)],
            )?);
            self.checkpoint()?;
            dumps_fd.push(self.run_timed(
                &format!("pg_dump -Fd -j{jobs}"),
                &self.pg.bin("pg_dump"),
                &[os("-Fd"), &j, os("-f"), fd.as_os_str(), os("-d"), os(DB)],
            )?);
            inits.push(self.backup("backup init", &init_args)?.0);
            let (timed, json) = self.create("backup create", DB)?;
            creates.push(timed);
            first = json;
        }
        let (dump_fc, dump_fd, init, create1) =
            (best(dumps_fc), best(dumps_fd), best(inits), best(creates));
        let fc_bytes = fs::metadata(&fc)?.len();
        let fd_bytes = du(&fd)?;
        let repo_bytes = du(&repo)?;
        let first_id = json_str(&first, "id")?;
        let first_stored = json_u64(&first, "stored_bytes")?;
        let first_new = json_u64(&first, "new_bytes")?;
        let copy_bytes = first["databases"][0]["bytes"].as_u64().unwrap_or(0);

        // -- unchanged creates --
        let mut seconds = Vec::new();
        let mut second = serde_json::Value::Null;
        for _ in 0..runs {
            let (timed, json) = self.create("backup create (unchanged)", DB)?;
            seconds.push(timed);
            if second.is_null() {
                second = json;
            }
        }
        let create2 = best(seconds);
        let repo_bytes2 = du(&repo)?;

        // -- rounds of restores into new databases --
        let pgr_db = "restored_pg_restore";
        let bk_db = "restored_backup";
        let (mut pg_restores, mut restores) = (vec![], vec![]);
        for round in 1..=runs {
            if runs > 1 {
                println!("-- round {round} of {runs}: restores --");
            }
            self.checkpoint()?;
            warm(&fd)?;
            let createdb = self.run_timed("createdb", &self.pg.bin("createdb"), &[os(pgr_db)])?;
            let mut pg_restore = self.run_timed(
                &format!("pg_restore -j{jobs} (-Fd)"),
                &self.pg.bin("pg_restore"),
                &[&j, os("-d"), os(pgr_db), fd.as_os_str()],
            )?;
            // createdb is part of the restore, as `backup restore` creates its database.
            pg_restore.add(&createdb);
            pg_restores.push(pg_restore);
            restores.push(self.restore("backup restore", &first_id, bk_db, false)?.0);
            for db in [pgr_db, bk_db] {
                let got = self.fingerprint(db)?;
                if got != original {
                    return Err(format!(
                        "database {db} does not match the original:\n  original: {original}\n  restored: {got}"
                    )
                    .into());
                }
                self.drop_database(db)?;
            }
            println!("both restored databases match the original ({original})");
        }
        let (pg_restore, restore) = (best(pg_restores), best(restores));

        // -- rollback plans of the first snapshot against the live database --
        let mut plans = Vec::new();
        let mut plan = serde_json::Value::Null;
        for _ in 0..runs {
            let (timed, json) = self.plan("backup rollback plan", &first_id, DB)?;
            plans.push(timed);
            plan = json;
        }
        let plan_time = best(plans);
        let planned_tables = plan["databases"][0]["tables"]
            .as_array()
            .map_or(0, |t| t.len());

        // -- the daemon's proofs: full read-data verify, restore drill --
        let proofs = self.proofs(&first_id, &pg_restore)?;

        // -- the audit log grows by 5% --
        let grow = scale.audit / 20;
        let t = Instant::now();
        self.sql(
            DB,
            &audit_sql(0.61, scale.audit + 1, scale.audit + grow, scale.audit),
        )?;
        self.sql(
            DB,
            "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), (SELECT max(id) FROM audit_log));
             VACUUM (ANALYZE) audit_log",
        )?;
        println!(
            "appended {grow} rows to audit_log in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let (create3, third) = self.create("backup create (audit log +5%)", DB)?;
        let third_id = json_str(&third, "id")?;

        // -- --replace over the live database, at two sizes --
        let (replace_full, full_json) = self.replace("backup restore --replace", &third_id, DB)?;
        let small_mib = (size_mib / 4).max(1);
        let t = Instant::now();
        self.generate(DB_SMALL, small_mib)?;
        let small_bytes = self.database_size(DB_SMALL)?;
        println!(
            "\ngenerated database {DB_SMALL}: {} in {:.1} s",
            human(small_bytes),
            t.elapsed().as_secs_f64()
        );
        let (_, small) = self.create("backup create (small db)", DB_SMALL)?;
        let small_id = json_str(&small, "id")?;
        let (replace_small, small_json) =
            self.replace("backup restore --replace (small db)", &small_id, DB_SMALL)?;

        // -- report --
        let mut rows = Vec::new();
        rows.push(Row::info(
            "database size",
            format!(
                "{} (pg_database_size; {} as COPY text)",
                human(db_bytes),
                human(copy_bytes)
            ),
        ));
        rows.push(Row::info("pg_dump -Fc", dump_fc.summary()));
        rows.push(Row::info(
            &format!("pg_dump -Fd -j{jobs}"),
            dump_fd.summary(),
        ));
        rows.push(Row::info("backup create", create1.summary()));
        rows.push(Row::info("  phases backup create", create1.phases.clone()));
        rows.push(Row::info(
            &format!("  phases pg_dump -Fd -j{jobs}"),
            dump_fd.phases.clone(),
        ));
        rows.push(time_ratio(
            &format!("create time / pg_dump -Fd -j{jobs}"),
            create1.secs,
            dump_fd.secs,
            0.6,
        ));
        rows.push(time_ratio(
            "create time / pg_dump -Fc",
            create1.secs,
            dump_fc.secs,
            0.4,
        ));
        rows.push(Row::info(
            "  backup init (not included)",
            format!("{:.2} s", init.secs),
        ));
        rows.push(Row::info(
            "  dump sizes",
            format!(
                "-Fc {}, -Fd {} ({:.1}% of the database)",
                human(fc_bytes),
                human(fd_bytes),
                pct(fc_bytes, db_bytes)
            ),
        ));
        rows.push(Row::info(
            "  backup create --json",
            format!(
                "new_bytes {}, stored_bytes {}",
                human(first_new),
                human(first_stored)
            ),
        ));
        let r = repo_bytes as f64 / fc_bytes as f64;
        rows.push(Row::new(
            "repo size / pg_dump -Fc size",
            format!("{} / {} = {r:.3}", human(repo_bytes), human(fc_bytes)),
            "<= 1.000",
            Some(r <= 1.0),
        ));
        rows.push(Row::info(
            &format!("createdb + pg_restore -j{jobs}"),
            pg_restore.summary(),
        ));
        rows.push(Row::info("backup restore", restore.summary()));
        rows.push(Row::info("  phases backup restore", restore.phases.clone()));
        rows.push(Row::info(
            &format!("  phases pg_restore -j{jobs}"),
            pg_restore.phases.clone(),
        ));
        rows.push(time_ratio(
            &format!("restore time / pg_restore -j{jobs}"),
            restore.secs,
            pg_restore.secs,
            0.8,
        ));
        rows.push(time_ratio(
            "rollback plan / restore time",
            plan_time.secs,
            restore.secs,
            0.1,
        ));
        rows.push(Row::info(
            "  backup rollback plan",
            format!("{} ({planned_tables} tables)", plan_time.summary()),
        ));
        rows.extend(proofs);
        rows.push(time_ratio(
            "unchanged create: second / first time",
            create2.secs,
            create1.secs,
            0.3,
        ));
        rows.push(Row::info("  unchanged create", create2.summary()));
        let stored2 = json_u64(&second, "stored_bytes")?;
        let p = pct(stored2, first_stored);
        rows.push(Row::new(
            "unchanged create: stored_bytes",
            format!(
                "{} ({p:.3}% of the first; new_bytes {}, repo +{})",
                human(stored2),
                human(json_u64(&second, "new_bytes")?),
                human(repo_bytes2.saturating_sub(repo_bytes))
            ),
            "< 1%",
            Some(p < 1.0),
        ));
        let stored3 = json_u64(&third, "stored_bytes")?;
        let p = pct(stored3, first_stored);
        rows.push(Row::new(
            "audit log +5%: stored_bytes",
            format!(
                "{} ({p:.2}% of the first; new_bytes {})",
                human(stored3),
                human(json_u64(&third, "new_bytes")?)
            ),
            "< 8%",
            Some(p < 8.0),
        ));
        rows.push(Row::info("  audit log +5% create", create3.summary()));
        for (label, json, timed, bytes) in [
            (
                format!("--replace downtime ({})", human(db_bytes)),
                &full_json,
                &replace_full,
                db_bytes,
            ),
            (
                format!("--replace downtime ({})", human(small_bytes)),
                &small_json,
                &replace_small,
                small_bytes,
            ),
        ] {
            let d = json["database"]["downtime_secs"]
                .as_f64()
                .ok_or("restore --replace --json: no database.downtime_secs")?;
            rows.push(Row::new(
                &label,
                format!(
                    "{d:.3} s (whole restore {:.2} s, {:.1} MB/s)",
                    timed.secs,
                    bytes as f64 / 1e6 / timed.secs
                ),
                "< 2 s",
                Some(d < DOWNTIME_TARGET_SECS),
            ));
        }
        let dump_fd_rss = format!("max RSS pg_dump -Fd -j{jobs} (info)");
        for (name, kib, target) in [
            ("max RSS backup create", create1.max_rss_kib, RSS_TARGET),
            ("max RSS backup restore", restore.max_rss_kib, RSS_TARGET),
            (
                "max RSS backup restore --replace",
                replace_full.max_rss_kib,
                RSS_TARGET,
            ),
            (
                "max RSS backup create (unchanged, info)",
                create2.max_rss_kib,
                None,
            ),
            (&dump_fd_rss, dump_fd.max_rss_kib, None),
        ] {
            rows.push(Row::rss(name, kib, target));
        }
        rows.push(Row::info(
            "load average (1/5/15 min)",
            format!("{} at the end", load_average()),
        ));
        if let Some(l) = self.compression {
            rows.push(Row::info("backup init --compression-level", l.to_string()));
        }
        report::print(
            &rows,
            &format!(
                "{} database, {} cores, backup --jobs {}",
                human(db_bytes),
                cores(),
                self.jobs
            ),
        );
        Ok(())
    }
}

fn json_u64(v: &serde_json::Value, key: &str) -> Result<u64> {
    v[key]
        .as_u64()
        .ok_or_else(|| format!("--json output has no {key}: {v}").into())
}

fn json_str(v: &serde_json::Value, key: &str) -> Result<String> {
    v[key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("--json output has no {key}: {v}").into())
}

/// A time ratio `ours / anchor` with the target `<= max`.
fn time_ratio(name: &str, ours: f64, anchor: f64, max: f64) -> Row {
    let r = ours / anchor;
    Row::new(
        name,
        format!("{ours:.2} s / {anchor:.2} s = {r:.2}"),
        &format!("<= {max:.2}"),
        Some(r <= max),
    )
}
