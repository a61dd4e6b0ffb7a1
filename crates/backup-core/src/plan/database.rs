//! The plan of one database: its schema difference, row counts at the
//! snapshot and now, and the rows written since, estimated from the
//! statistics counters the capture recorded.

use super::live_db::{self, LiveDatabase};
use super::schema::{self, SchemaDiff};
use crate::error::{Error, ErrorKind, Result};
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::{PostgresComponent, TableData, TableStats};
use crate::system::PostgresEntry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use super::live_db::{LiveDatabaseState, LiveTable};

/// What rolling one database back would change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatabasePlan {
    /// The component name (`[[postgres]]` `name`).
    pub name: String,
    /// The live database (from the system description's connection).
    pub database: String,
    /// The database name in the snapshot.
    pub snapshot_database: String,
    /// How the live schema differs from the snapshot's.
    pub schema: SchemaDiff,
    /// Every table of the snapshot or of the live database, by `schema.name`.
    pub tables: Vec<TablePlan>,
    /// Whether the written-rows estimates can be made, and why not.
    pub statistics: Statistics,
    /// Bytes the snapshot holds for it: schema, table data, large objects.
    pub bytes: u64,
    /// What the live fingerprint was computed from.
    pub live: LiveDatabaseState,
}

/// One table: rows then and now, rows written since.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TablePlan {
    /// `schema.name`.
    pub table: String,
    /// Rows in the snapshot (`None`: the table is not in it).
    pub snapshot_rows: Option<u64>,
    /// Rows now (`None`: the table no longer exists, or nothing tells).
    pub live_rows: Option<u64>,
    /// Where `live_rows` comes from.
    pub live_rows_from: RowSource,
    /// Rows written since the snapshot, estimated from the counters
    /// (`None`: they cannot be estimated, `note` says why).
    pub written: Option<Written>,
    /// What the reader should know about this table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where a live row count comes from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RowSource {
    /// `count(*)`: exact (tables up to 8 MiB).
    Count,
    /// The snapshot's rows plus inserts minus deletes since (statistics
    /// counters): an estimate, for large tables.
    Counters,
    /// The planner's `reltuples` (as of the last `VACUUM` or `ANALYZE`):
    /// an estimate, for large tables when the counters cannot be used.
    Reltuples,
    /// Nothing tells (the table is gone, or was never analysed).
    Unknown,
}

/// Rows written to a table since the snapshot (an estimate: the counters
/// include aborted transactions and lag behind open sessions).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Written {
    /// Rows inserted.
    pub inserted: u64,
    /// Rows updated.
    pub updated: u64,
    /// Rows deleted.
    pub deleted: u64,
}

impl Written {
    /// Rows written in all.
    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.deleted
    }
}

/// Whether the statistics counters of the snapshot and of the live
/// database can be compared.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Statistics {
    /// The capture recorded counters.
    pub recorded: bool,
    /// `pg_stat_database.stats_reset` at the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_stats_reset: Option<String>,
    /// `pg_stat_database.stats_reset` now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_stats_reset: Option<String>,
    /// The counters were reset since the snapshot: no estimate is made.
    pub reset_since: bool,
    /// Rows written since the snapshot are estimated: the capture recorded
    /// counters, they were not reset since, and the server counts writes.
    pub estimated: bool,
    /// Why the estimates are missing or not to be trusted, if they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Plans one database: the stored DDL (from the repository) and the live
/// state (from the server, unless `probed` ahead) are read side by side.
/// Returns the plan and the live fingerprint.
pub fn plan_database(
    repo: &Repository,
    entry: &PostgresEntry,
    comp: &PostgresComponent,
    probed: Option<Result<LiveDatabase>>,
    progress: &dyn Progress,
) -> Result<(DatabasePlan, String)> {
    progress.phase(&format!("planning database {}", entry.name), None);
    let (stored, live) = std::thread::scope(|s| {
        let stored = s.spawn(|| schema::stored_sql(repo, comp));
        let live = probed.unwrap_or_else(|| live_db::probe(&entry.connection));
        let stored = stored
            .join()
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::Source, "pg_restore reader panicked")));
        (stored, live)
    });
    let live = live.map_err(|e| e.context(format!("database {}", entry.name)))?;
    let stored = schema::objects(&stored?);
    let statistics = statistics(comp, &live);
    let plan = DatabasePlan {
        name: entry.name.clone(),
        database: live.database.clone(),
        snapshot_database: comp.database.clone(),
        schema: schema::diff(&stored, &live.objects),
        tables: table_plans(comp, &live, &statistics),
        statistics,
        bytes: comp.schema.size + comp.bytes(),
        live: live.state.clone(),
    };
    let fingerprint = live_db::fingerprint(&plan.live)?;
    Ok((plan, fingerprint))
}

/// Whether the counters compare, and a note when they do not.
fn statistics(comp: &PostgresComponent, live: &LiveDatabase) -> Statistics {
    let recorded = comp.tables.iter().any(|t| t.stats.is_some());
    let reset_since = recorded && comp.stats_reset != live.stats_reset;
    let note = if !live.tracked {
        Some(
            "the server does not count writes (track_counts is off): rows written since \
             cannot be estimated, and writes to tables over 8 MiB go unseen by the fingerprint"
                .to_string(),
        )
    } else if !recorded && !comp.tables.is_empty() {
        Some(
            "the snapshot holds no statistics counters (it was taken by an older version): \
             rows written since cannot be estimated"
                .to_string(),
        )
    } else if reset_since {
        Some(format!(
            "the statistics counters were reset since the snapshot (stats_reset {} then, {} now): \
             rows written since cannot be estimated; compare the row counts instead",
            comp.stats_reset.as_deref().unwrap_or("never"),
            live.stats_reset.as_deref().unwrap_or("never")
        ))
    } else {
        None
    };
    Statistics {
        recorded,
        snapshot_stats_reset: comp.stats_reset.clone(),
        live_stats_reset: live.stats_reset.clone(),
        reset_since,
        estimated: recorded && !reset_since && live.tracked,
        note,
    }
}

/// Every table of either side, by name.
fn table_plans(comp: &PostgresComponent, live: &LiveDatabase, st: &Statistics) -> Vec<TablePlan> {
    let stored: BTreeMap<String, &TableData> = comp
        .tables
        .iter()
        .map(|t| (format!("{}.{}", t.schema, t.name), t))
        .collect();
    let mut names: Vec<&String> = stored.keys().chain(live.state.tables.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let (t, l) = (stored.get(name).copied(), live.state.tables.get(name));
            let reltuples = live.reltuples.get(name).copied().unwrap_or(-1.0);
            table_plan(name, t, l, reltuples, st)
        })
        .collect()
}

/// One table's plan from its capture (if any) and live state (if any).
fn table_plan(
    name: &str,
    stored: Option<&TableData>,
    live: Option<&LiveTable>,
    reltuples: f64,
    st: &Statistics,
) -> TablePlan {
    let mut plan = TablePlan {
        table: name.to_string(),
        snapshot_rows: stored.map(|t| t.rows),
        live_rows: None,
        live_rows_from: RowSource::Unknown,
        written: None,
        note: None,
    };
    let Some(live) = live else {
        plan.note = Some("dropped since the snapshot: the rollback brings it back".into());
        return plan;
    };
    let Some(stored) = stored else {
        // Created after the snapshot: every write it counts came since.
        plan.written = st
            .estimated
            .then(|| delta(&TableStats::default(), &live.counters).unwrap_or_default());
        plan.note = Some("created since the snapshot: the rollback drops it".into());
        (plan.live_rows, plan.live_rows_from) = match live.counted_rows() {
            Some(n) => (Some(n), RowSource::Count),
            None => estimated_by_planner(reltuples),
        };
        return plan;
    };
    let (written, why) = written_since(stored, live, st);
    plan.written = written;
    plan.note = why;
    (plan.live_rows, plan.live_rows_from) = match (live.counted_rows(), written) {
        (Some(n), _) => (Some(n), RowSource::Count),
        (None, Some(w)) => (
            Some((stored.rows + w.inserted).saturating_sub(w.deleted)),
            RowSource::Counters,
        ),
        (None, None) => estimated_by_planner(reltuples),
    };
    plan
}

/// The planner's estimate, when it has one.
fn estimated_by_planner(reltuples: f64) -> (Option<u64>, RowSource) {
    if reltuples >= 0.0 {
        (Some(reltuples.round() as u64), RowSource::Reltuples)
    } else {
        (None, RowSource::Unknown)
    }
}

/// Rows written since the capture, or why that cannot be told.
fn written_since(
    stored: &TableData,
    live: &LiveTable,
    st: &Statistics,
) -> (Option<Written>, Option<String>) {
    let Some(then) = stored.stats.as_ref().filter(|_| st.estimated) else {
        return (None, None); // said once, for the whole database
    };
    if stored.oid.is_some_and(|o| o != live.oid) {
        return (
            None,
            Some("dropped and created again since the snapshot: rows written since unknown".into()),
        );
    }
    match delta(then, &live.counters) {
        Some(w) => (Some(w), None),
        None => (
            None,
            Some("its counters went down: statistics were reset since the snapshot".into()),
        ),
    }
}

/// `now - then` per counter; `None` when a counter went down (a reset).
pub fn delta(then: &TableStats, now: &TableStats) -> Option<Written> {
    Some(Written {
        inserted: now.n_tup_ins.checked_sub(then.n_tup_ins)?,
        updated: now.n_tup_upd.checked_sub(then.n_tup_upd)?,
        deleted: now.n_tup_del.checked_sub(then.n_tup_del)?,
    })
}
