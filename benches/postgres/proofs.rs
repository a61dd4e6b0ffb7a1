//! The daemon's proofs on the benchmark's repository: a full read-data
//! verification (every pack read back and checked), and a restore drill
//! (`backup verify --restore-test`: the snapshot restored into a scratch
//! database, every table compared with the manifest, dropped) against
//! `createdb` + `pg_restore -j2` of the same database.

use std::ffi::{OsStr, OsString};

use crate::bench::Bench;
use crate::support::report::{human, Row};
use crate::support::workdir::{du, warm};
use crate::support::Result;
use crate::timed::Timed;

impl Bench<'_> {
    /// Times the proofs; `pg_restore` is the anchor's best restore.
    pub fn proofs(&self, id: &str, pg_restore: &Timed) -> Result<Vec<Row>> {
        let os = OsStr::new;
        let repo = self.work.join("backup-repo");
        self.checkpoint()?;
        warm(&repo)?;
        let (verify, report) = self.backup(
            "backup verify --read-data",
            &[os("verify"), os("--read-data")],
        )?;
        let bytes = du(&repo)?;
        let packs = report["packs_read"].as_u64().unwrap_or(0);
        self.checkpoint()?;
        warm(&repo)?;
        let server = OsString::from(self.conninfo("postgres"));
        let jobs = OsString::from(self.jobs.max(2).to_string());
        let (drill, json) = self.backup(
            "backup verify --restore-test (drill)",
            &[
                os("verify"),
                os(id),
                os("--restore-test"),
                &server,
                os("--threads"),
                &jobs,
            ],
        )?;
        let test = &json["restore_tests"][0];
        if !test["mismatches"].as_array().is_some_and(|m| m.is_empty()) {
            return Err(format!("the restore drill found mismatches: {test}").into());
        }
        let drill_secs = test["duration_secs"]
            .as_f64()
            .ok_or("verify --restore-test --json: no restore_tests[0].duration_secs")?;
        let r = drill_secs / pg_restore.secs;
        Ok(vec![
            Row::info(
                "full read-data verify",
                format!(
                    "{} ({packs} packs, {}, {:.1} MB/s)",
                    verify.summary(),
                    human(bytes),
                    bytes as f64 / 1e6 / verify.secs
                ),
            ),
            Row::info(
                "restore drill / pg_restore -j2",
                format!(
                    "{drill_secs:.2} s / {:.2} s = {r:.2} (restore and check of {} tables, {} rows; the whole command {})",
                    pg_restore.secs,
                    test["tables"],
                    test["rows"],
                    drill.summary()
                ),
            ),
        ])
    }
}
