//! The exact delta before a planned rollback (`rollback plan --exact`):
//! what rolling back now would throw away. The snapshot's database is
//! restored into a scratch database beside the live one (verified like any
//! restore), compared with the live database exactly as a rollback's delta
//! is computed (the live database playing the replaced state), and
//! dropped. Nothing live changes; the restore is the cost.

use super::compare::{compute_component, CompareStats};
use super::DatabaseDelta;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::restore::{derived_name, drop_database, maintenance, stage_database, StageOptions};
use crate::snapshot::Snapshot;
use crate::source::postgres::conninfo::ConnInfo;
use crate::system::System;

/// The delta of every database the system names between snapshot `snap`
/// and its live state. The caller holds a shared repository lock.
pub fn exact_against_live(
    repo: &Repository,
    system: &System,
    snap: &Snapshot,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<(Vec<DatabaseDelta>, CompareStats)> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string();
    let mut out = Vec::new();
    let mut stats = CompareStats::default();
    for entry in &system.postgres {
        let comp = snap
            .databases()
            .find(|d| d.name == entry.name)
            .ok_or_else(|| {
                Error::usage(format!(
                    "the snapshot has no database component {:?} that the system description names",
                    entry.name
                ))
            })?;
        let live = ConnInfo::parse(&entry.connection)?;
        let scratch = derived_name(live.dbname(), &format!("__salvage_plan_{stamp}"));
        let options = StageOptions {
            jobs: jobs.max(1),
            no_owner: false,
            globals: false,
        };
        stage_database(repo, comp, &live, &scratch, &options, progress).map_err(|e| {
            e.context(format!(
                "restoring the snapshot of {} to compare",
                entry.name
            ))
        })?;
        let result = compute_component(
            &entry.name,
            &live.with_dbname(&scratch),
            &live,
            comp,
            None,
            jobs.max(1),
        );
        drop_database(&mut maintenance(&live)?, &scratch)?;
        let (mut d, s) = result?;
        d.live = live.dbname().to_string();
        d.kept = live.dbname().to_string();
        d.secret = entry.secret;
        d.secret_columns = entry.secret_columns.clone();
        stats.skipped += s.skipped;
        stats.rows_read += s.rows_read;
        out.push(d);
    }
    Ok((out, stats))
}
