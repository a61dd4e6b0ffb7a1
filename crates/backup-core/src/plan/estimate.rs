//! Sizes and times of a rollback, estimated from component sizes.
//!
//! These are estimates from a simple model, not measurements: staging
//! restores every component beside the live one at about the rates the
//! benchmarks measure on a small machine (a database restores its `COPY`
//! text at about 50 MiB/s including index builds, files at about
//! 150 MiB/s), and the switch is renames. The hooks (stop, start, health
//! check) are not known in advance and come on top of the downtime.

use super::database::DatabasePlan;
use super::files::FilesPlan;

const MIB: f64 = 1024.0 * 1024.0;
/// Database restore rate, bytes of `COPY` text per second.
const DATABASE_RATE: f64 = 50.0 * MIB;
/// File restore rate (write, fsync, check), bytes per second.
const FILES_RATE: f64 = 150.0 * MIB;
/// Fixed cost of a database restore: create it, run pre- and post-data.
const DATABASE_FIXED_SECS: f64 = 1.0;
/// A restored database takes about this much more room than its `COPY`
/// text (tuple headers, pages, indexes).
const DATABASE_SPACE_FACTOR: f64 = 1.6;
/// The switch of one database: close it to new sessions, end its
/// sessions, two renames.
const DATABASE_SWITCH_SECS: f64 = 0.1;
/// The switch of one file tree: one atomic exchange.
const FILES_SWITCH_SECS: f64 = 0.01;

/// A rollback's sizes and times.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Estimate {
    /// Bytes restored.
    pub bytes: u64,
    /// Free space the staged copies need.
    pub space: u64,
    /// Seconds to stage everything.
    pub duration_secs: f64,
    /// Seconds of downtime for the switch (hooks excluded).
    pub downtime_secs: f64,
}

/// Estimates a rollback of these components.
pub fn estimate(databases: &[DatabasePlan], files: &[FilesPlan]) -> Estimate {
    let db_bytes: u64 = databases.iter().map(|d| d.bytes).sum();
    let file_bytes: u64 = files.iter().map(|f| f.bytes).sum();
    let duration = databases.len() as f64 * DATABASE_FIXED_SECS
        + db_bytes as f64 / DATABASE_RATE
        + file_bytes as f64 / FILES_RATE;
    let downtime =
        databases.len() as f64 * DATABASE_SWITCH_SECS + files.len() as f64 * FILES_SWITCH_SECS;
    Estimate {
        bytes: db_bytes + file_bytes,
        space: (db_bytes as f64 * DATABASE_SPACE_FACTOR) as u64 + file_bytes,
        duration_secs: round(duration),
        downtime_secs: round(downtime),
    }
}

/// Two decimals are all an estimate can claim.
fn round(secs: f64) -> f64 {
    (secs * 100.0).round() / 100.0
}
