//! Salvage: the data written since the snapshot a rollback restored, exact,
//! per table, stored with the rollback and re-appliable.
//!
//! A rollback keeps the database it replaced aside
//! (`<db>__before_rollback_<time>`), and nothing writes to it any more. Right
//! after the switch, the rolled-back database holds exactly the snapshot.
//! So the delta is computed between those two databases of one cluster, by
//! SQL ([`compare`]): rows paired by primary key (or a unique key of
//! not-null columns) give inserted, updated and deleted rows; a table
//! without such a key gets a multiset difference ([`merge`]).
//!
//! The cost follows the change, not the size. The kept database is the
//! captured one, renamed (its identity, as the capture recorded it for
//! tuple identities, matches), so a tuple whose `xmin` is older than the
//! capture's horizon was in the snapshot as it is. A table with no newer
//! tuple and as many tuples as the snapshot had rows is unchanged: one
//! column-free count, and none of its rows is read on either side. In a
//! changed table only the newer tuples can differ; those are read, and
//! looked up by key in the rolled-back database. Deleted rows are found by
//! their count (the snapshot's rows minus the old tuples still there and
//! the keys found again); only when some were deleted are the keys hashed
//! into buckets on both sides, and the keys of the buckets that differ
//! compared ([`gone`]).
//!
//! The result ([`Salvage`]) is stored sealed in the repository
//! (`salvage/<id>`, [`store`]), shown with sample rows, and exported as
//! SQL that re-applies it with conflict checks ([`export`]) or as CSV.

pub mod apply;
mod catalog;
pub mod compare;
pub mod csv;
mod exact;
pub mod export;
mod gone;
mod keyed;
mod locate;
pub mod merge;
mod sql;
pub mod store;
mod workers;

pub use apply::{apply, ApplyReport};
pub use compare::{compute_component, CompareStats};
pub use csv::write_csv;
pub use exact::exact_against_live;
pub use export::{export_sql, pick, script, Conflict, OnConflict};
pub use locate::{compute_for, find_rollback, RollbackRef};
pub use store::{find, latest_for, load, save, summaries};

use serde::{Deserialize, Serialize};

/// The salvage object format version.
pub const SALVAGE_VERSION: u32 = 1;

/// The delta of one rollback: every database component it switched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Salvage {
    /// [`SALVAGE_VERSION`].
    pub version: u32,
    /// The rollback's id.
    pub rollback: String,
    /// The snapshot the rollback restored.
    pub snapshot: String,
    /// When the delta was computed.
    pub computed: chrono::DateTime<chrono::Utc>,
    /// Wall time of the computation, in seconds.
    pub duration_secs: f64,
    /// One per database component.
    pub databases: Vec<DatabaseDelta>,
}

/// The delta of one database component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseDelta {
    /// The component name.
    pub name: String,
    /// The live (rolled-back) database.
    pub live: String,
    /// The kept-aside database holding the replaced state.
    pub kept: String,
    /// Whether the capture's tuple identities applied to the kept database
    /// (then unchanged tables were skipped unread and only tuples newer
    /// than the capture were read).
    pub identities_used: bool,
    /// Every table of either state, by schema and name.
    pub tables: Vec<TableDelta>,
    /// Sequences of the replaced state with their `last_value`.
    pub sequences: Vec<SequenceValue>,
    /// Foreign keys of the replaced state, `(child, parent)` as
    /// `schema.name`: the order re-applying must follow.
    #[serde(default)]
    pub references: Vec<(String, String)>,
    /// The session settings the values' text forms were read under (`SET`
    /// statements); re-applying runs them first.
    pub settings: String,
    /// The component is marked secret: no row value is shown.
    #[serde(default)]
    pub secret: bool,
    /// Columns marked secret (`table.column` or `schema.table.column`):
    /// their values are masked when shown.
    #[serde(default)]
    pub secret_columns: Vec<String>,
}

impl DatabaseDelta {
    /// Whether values of column `c` of table `t` may not be shown.
    pub fn is_secret(&self, t: &TableDelta, c: &str) -> bool {
        self.secret
            || self.secret_columns.iter().any(|s| {
                *s == format!("{}.{}.{c}", t.schema, t.name) || *s == format!("{}.{c}", t.name)
            })
    }

    /// `values` of `cols` of table `t`, secret ones replaced by `***`.
    pub fn masked(&self, t: &TableDelta, cols: &[String], values: &[Value]) -> Vec<Value> {
        cols.iter()
            .zip(values)
            .map(|(c, v)| match (v, self.is_secret(t, c)) {
                (Some(_), true) => Some("***".to_string()),
                _ => v.clone(),
            })
            .collect()
    }
}

/// A sequence's value in the replaced state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceValue {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// `last_value`, `None` when never called.
    pub last_value: Option<i64>,
}

/// How a table differs between the snapshot and the replaced state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableStatus {
    /// In both, rows the same (proved by tuple identities or by comparison).
    Unchanged,
    /// In both, rows differ.
    Changed,
    /// Only in the replaced state: created since the snapshot, carried whole.
    Added,
    /// Only in the snapshot: dropped since.
    Dropped,
}

/// The delta of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDelta {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// How it differs.
    pub status: TableStatus,
    /// The columns rows are paired by; empty for a multiset difference.
    pub key: Vec<String>,
    /// The replaced state's columns, in order: what `after` holds.
    pub columns: Vec<String>,
    /// Their types in the replaced state (`format_type`).
    pub types: Vec<String>,
    /// The columns both states have, in the snapshot's order: what rows are
    /// compared on and what `before` holds.
    pub compared: Vec<String>,
    /// Columns only in the replaced state (carried in `after`).
    pub carried: Vec<String>,
    /// Columns only in the snapshot.
    pub missing: Vec<String>,
    /// Rows inserted since the snapshot.
    pub inserted: u64,
    /// Rows updated since the snapshot.
    pub updated: u64,
    /// Rows deleted since the snapshot.
    pub deleted: u64,
    /// Rows the computation read from the kept and the rolled-back database.
    pub rows_read: u64,
    /// Rows of the snapshot's table (for a dropped table: what was lost).
    pub snapshot_rows: u64,
    /// Rows of the rolled-back database written after the rollback (newer
    /// than its staged copy): not taken for the snapshot's. A keyed row so
    /// found may have its `before` from after the rollback; the export's
    /// conflict check then holds it against the target as it is.
    #[serde(default)]
    pub written_after_rollback: u64,
    /// Every changed row.
    #[serde(default)]
    pub changes: Vec<Change>,
}

impl TableDelta {
    /// `schema.name`.
    pub fn label(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Whether any row differs.
    pub fn changed(&self) -> bool {
        self.inserted + self.updated + self.deleted > 0
    }
}

/// The kind of a changed row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Only in the replaced state.
    Insert,
    /// In both, with other values.
    Update,
    /// Only in the snapshot.
    Delete,
}

impl ChangeKind {
    /// `insert`, `update` or `delete`.
    pub fn word(self) -> &'static str {
        match self {
            ChangeKind::Insert => "insert",
            ChangeKind::Update => "update",
            ChangeKind::Delete => "delete",
        }
    }
}

/// A column value in PostgreSQL's text form (`None` is NULL).
pub type Value = Option<String>;

/// One changed row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Insert, update or delete.
    pub kind: ChangeKind,
    /// The row as the snapshot had it, on the `compared` columns (update,
    /// delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Vec<Value>>,
    /// The row as the replaced state has it, on `columns` (insert, update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<Value>>,
    /// The rolled-back database's row was written after the rollback, so
    /// `before` is not the snapshot's: re-applying reports it as a conflict.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

/// Per-table counts, as the rollback report and history show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    /// `component:schema.name`.
    pub table: String,
    /// How it differs.
    pub status: TableStatus,
    /// Rows inserted.
    pub inserted: u64,
    /// Rows updated.
    pub updated: u64,
    /// Rows deleted.
    pub deleted: u64,
}

/// What a stored salvage says in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalvageSummary {
    /// The rollback's id.
    pub rollback: String,
    /// The `salvage/<id>` object.
    pub object: String,
    /// Tables that are not unchanged.
    pub tables: Vec<TableCounts>,
}

impl Salvage {
    /// The per-table counts of every table that is not unchanged.
    pub fn counts(&self) -> Vec<TableCounts> {
        let mut out = Vec::new();
        for db in &self.databases {
            for t in db
                .tables
                .iter()
                .filter(|t| t.status != TableStatus::Unchanged)
            {
                out.push(TableCounts {
                    table: format!("{}:{}", db.name, t.label()),
                    status: t.status,
                    inserted: t.inserted,
                    updated: t.updated,
                    deleted: t.deleted,
                });
            }
        }
        out
    }

    /// Inserted, updated and deleted rows over all tables.
    pub fn totals(&self) -> (u64, u64, u64) {
        let mut sum = (0, 0, 0);
        for t in self.databases.iter().flat_map(|d| &d.tables) {
            sum.0 += t.inserted;
            sum.1 += t.updated;
            sum.2 += t.deleted;
        }
        sum
    }
}

impl SalvageSummary {
    /// One line: `+I ~U -D in N tables`.
    pub fn line(&self) -> String {
        let (mut i, mut u, mut d) = (0, 0, 0);
        for t in &self.tables {
            i += t.inserted;
            u += t.updated;
            d += t.deleted;
        }
        format!(
            "{i} inserted, {u} updated, {d} deleted in {} tables",
            self.tables.len()
        )
    }
}
