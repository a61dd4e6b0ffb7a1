//! The statistics system's write counters: how many rows each table has
//! had inserted, updated and deleted (`pg_stat_user_tables`), and when the
//! database's counters were last reset (`pg_stat_database.stats_reset`).
//!
//! A capture records them so that a rollback plan can estimate the rows
//! written since, by subtraction, without reading any table. They are
//! estimates: aborted transactions count too, and a backend reports its
//! counts only when a transaction ends and it goes idle (at the latest
//! when it exits). A reset (`pg_stat_reset()`, a crash) sets them back to
//! zero, which `stats_reset` (or a counter that went down) reveals.

use super::conninfo::db_error;
use crate::error::Result;
use crate::snapshot::TableStats;
use postgres::Client;
use std::collections::HashMap;

/// The write counters of a database at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteCounters {
    /// The server counts writes (`track_counts` is on); when it does not,
    /// the counters stand still and tell nothing.
    pub tracked: bool,
    /// `pg_stat_database.stats_reset` as text; `None` when never reset.
    pub stats_reset: Option<String>,
    /// Counters by table oid (ordinary tables, partitions, matviews).
    pub tables: HashMap<u32, TableStats>,
}

/// Reads the counters. `pg_stat_clear_snapshot()` first, so that counters
/// cached earlier in the transaction are not reused.
pub fn write_counters(c: &mut Client) -> Result<WriteCounters> {
    c.batch_execute("SELECT pg_stat_clear_snapshot()")
        .map_err(|e| db_error("clearing the statistics snapshot", e))?;
    let row = c
        .query_one(
            "SELECT current_setting('track_counts')::bool, \
                    (SELECT stats_reset::text FROM pg_stat_database WHERE datname = current_database())",
            &[],
        )
        .map_err(|e| db_error("reading pg_stat_database", e))?;
    let (tracked, reset): (bool, Option<String>) = (row.get(0), row.get(1));
    let rows = c
        .query(
            "SELECT relid, n_tup_ins::int8, n_tup_upd::int8, n_tup_del::int8 FROM pg_stat_user_tables",
            &[],
        )
        .map_err(|e| db_error("reading pg_stat_user_tables", e))?;
    let tables = rows
        .iter()
        .map(|r| {
            let n = |i: usize| r.get::<_, Option<i64>>(i).unwrap_or(0).max(0) as u64;
            (
                r.get::<_, u32>(0),
                TableStats {
                    n_tup_ins: n(1),
                    n_tup_upd: n(2),
                    n_tup_del: n(3),
                },
            )
        })
        .collect();
    Ok(WriteCounters {
        tracked,
        stats_reset: reset,
        tables,
    })
}

/// [`write_counters`] inside a transaction that must survive a failure
/// (a capture's): under a savepoint, `None` when they cannot be read or
/// the server does not count.
pub fn try_write_counters(c: &mut Client) -> Option<WriteCounters> {
    c.batch_execute("SAVEPOINT backup_stats").ok()?;
    match write_counters(c) {
        Ok(w) => {
            c.batch_execute("RELEASE SAVEPOINT backup_stats").ok()?;
            w.tracked.then_some(w)
        }
        Err(_) => {
            c.batch_execute("ROLLBACK TO SAVEPOINT backup_stats").ok()?;
            None
        }
    }
}
