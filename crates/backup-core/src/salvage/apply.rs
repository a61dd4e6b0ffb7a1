//! Running the re-applying script against the rolled-back database, with
//! a summary: conflicts found, rows deleted and upserted, sequences moved.
//! A dry run does everything but move sequences (`setval` is not
//! transactional) and rolls back.

use super::export::{export_sql, Conflict, OnConflict, LIST_CONFLICTS};
use super::DatabaseDelta;
use crate::error::Result;
use crate::source::postgres::conninfo::{db_error, ConnInfo};
use serde::Serialize;

/// What applying the delta did (or would do).
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// The database applied to.
    pub database: String,
    /// Rows changed in the target since the rollback.
    pub conflicts: Vec<Conflict>,
    /// Rows deleted.
    pub deleted: u64,
    /// Rows inserted or updated.
    pub upserted: u64,
    /// Sequences moved forward (in a dry run: that would be).
    pub sequences: u64,
    /// Whether the transaction was committed.
    pub committed: bool,
    /// Whether this was a dry run (rolled back on purpose).
    pub dry_run: bool,
}

/// Applies `d` to the database `target`.
pub fn apply(
    d: &DatabaseDelta,
    target: &ConnInfo,
    on_conflict: OnConflict,
    dry_run: bool,
) -> Result<ApplyReport> {
    let mut c = target.connect()?;
    let mut report = ApplyReport {
        database: target.dbname().to_string(),
        conflicts: Vec::new(),
        deleted: 0,
        upserted: 0,
        sequences: 0,
        committed: false,
        dry_run,
    };
    for st in export_sql(d, on_conflict) {
        if st == "COMMIT" && dry_run {
            break;
        }
        if st == LIST_CONFLICTS {
            let rows = c
                .query(st.as_str(), &[])
                .map_err(|e| db_error("listing conflicts", e))?;
            report.conflicts = rows
                .iter()
                .map(|r| Conflict {
                    n: r.get(0),
                    table: r.get(1),
                    kind: r.get(2),
                    why: r.get(3),
                })
                .collect();
            if on_conflict == OnConflict::Fail && !report.conflicts.is_empty() {
                break;
            }
            continue;
        }
        let what = statement_kind(&st);
        if what == Kind::Sequence && dry_run {
            // setval is not transactional: a dry run only counts them.
            report.sequences += 1;
            continue;
        }
        if what == Kind::Batch {
            c.batch_execute(&st)
                .map_err(|e| db_error("applying the delta", e))?;
            continue;
        }
        let n = c
            .execute(st.as_str(), &[])
            .map_err(|e| db_error("applying the delta", e))?;
        match what {
            Kind::Delete => report.deleted += n,
            Kind::Upsert => report.upserted += n,
            Kind::Sequence => report.sequences += n,
            Kind::Other | Kind::Batch => {}
        }
    }
    let stopped = on_conflict == OnConflict::Fail && !report.conflicts.is_empty();
    if !dry_run && !stopped {
        report.committed = true;
    } else {
        c.batch_execute("ROLLBACK")
            .map_err(|e| db_error("rolling back", e))?;
    }
    Ok(report)
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Delete,
    Upsert,
    Sequence,
    Batch,
    Other,
}

fn statement_kind(st: &str) -> Kind {
    if st.starts_with("DELETE") {
        Kind::Delete
    } else if st.starts_with("INSERT INTO pg_temp.") {
        Kind::Other
    } else if st.starts_with("INSERT") {
        Kind::Upsert
    } else if st.starts_with("SELECT pg_catalog.setval") {
        Kind::Sequence
    } else {
        Kind::Batch
    }
}
