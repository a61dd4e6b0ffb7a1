//! The live state of a database, read at one instant and cheaply: what a
//! plan compares with the snapshot and what its fingerprint hashes.
//!
//! One `REPEATABLE READ` transaction reads the statistics counters first
//! (so that they are read as its snapshot is taken), exports that
//! snapshot for `pg_dump --schema-only`, and reads the tables. Small
//! tables are counted exactly, together with a summary of their visible
//! `(ctid, xmin)` pairs that changes with any row written (MVCC gives
//! every new row version a new pair). Large tables are not scanned: their
//! row counts are estimates and only their write counters enter the
//! fingerprint, and those counters show a write once its backend has
//! reported it (at the end of its transaction, when it goes idle, at the
//! latest when it exits).

use super::schema::{self, Objects};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::repository::canonical_json;
use crate::snapshot::TableStats;
use crate::source::postgres::catalog::{self, qualified, TableInfo};
use crate::source::postgres::conninfo::{db_error, ConnInfo};
use crate::source::postgres::stats::{self, WriteCounters};
use crate::source::postgres::unchanged;
use postgres::Client;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Tables up to this size (main fork) are counted exactly and their tuple
/// identities summarised; larger ones are left to the statistics.
pub const EXACT_COUNT_BYTES: i64 = 8 * 1024 * 1024;

/// What a database's live fingerprint is computed from, kept in the plan
/// so that a later check can say what moved.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LiveDatabaseState {
    /// SHA-256 of the normalised live schema (see `schema.rs`).
    pub schema_sha256: String,
    /// Every table with rows, by `schema.name`.
    pub tables: BTreeMap<String, LiveTable>,
    /// Every sequence's `last_value` (`None`: never called, or not readable).
    pub sequences: BTreeMap<String, Option<i64>>,
    /// Large objects: `count:oid sum:inserts:updates:deletes` of `pg_largeobject`.
    pub large_objects: String,
}

/// One live table as the fingerprint sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LiveTable {
    /// Its oid (a table dropped and created again has another).
    pub oid: u32,
    /// Its write counters (`pg_stat_user_tables`).
    pub counters: TableStats,
    /// For tables up to [`EXACT_COUNT_BYTES`]: `rows:sum` of the visible
    /// `(ctid, xmin)` pairs (only `rows` before PostgreSQL 14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuples: Option<String>,
}

impl LiveTable {
    /// The exact row count, for tables that were counted.
    pub fn counted_rows(&self) -> Option<u64> {
        self.tuples.as_deref()?.split(':').next()?.parse().ok()
    }
}

/// Everything read from the live database.
pub struct LiveDatabase {
    /// The database name.
    pub database: String,
    /// The live schema, as objects.
    pub objects: Objects,
    /// What the fingerprint hashes.
    pub state: LiveDatabaseState,
    /// Per table: the planner's `reltuples` (`-1`: never analysed).
    pub reltuples: BTreeMap<String, f64>,
    /// `pg_stat_database.stats_reset`.
    pub stats_reset: Option<String>,
    /// The server counts writes (`track_counts`).
    pub tracked: bool,
}

/// The fingerprint of a live database: SHA-256 of the canonical JSON of
/// its state.
pub fn fingerprint(state: &LiveDatabaseState) -> Result<String> {
    let v = serde_json::to_value(state)?;
    Ok(Id::sha256(canonical_json(&v).as_bytes()).to_hex())
}

/// Reads the live database `connection` names.
pub fn probe(connection: &str) -> Result<LiveDatabase> {
    let info = ConnInfo::parse(connection)?;
    let mut c = info.connect()?;
    let server = catalog::server_info(&mut c)?;
    c.batch_execute(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET statement_timeout = 0; \
         SET lock_timeout = '10s'",
    )
    .map_err(|e| db_error("starting the plan transaction", e))?;
    let counters = stats::write_counters(&mut c)?;
    let snapshot_id: String = c
        .query_one("SELECT pg_export_snapshot()", &[])
        .map_err(|e| db_error("exporting the snapshot", e))?
        .get(0);
    let (sql, read) = std::thread::scope(|s| {
        let dump = s.spawn(|| schema::live_sql(&info, server.version_num, &snapshot_id));
        let read = read_state(&mut c, server.version_num, &counters);
        let sql = dump
            .join()
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::Source, "pg_dump reader panicked")));
        (sql, read)
    });
    let (mut state, reltuples) = read?;
    let objects = schema::objects(&sql?);
    c.batch_execute("COMMIT")
        .map_err(|e| db_error("finishing the plan transaction", e))?;
    state.schema_sha256 = Id::sha256(schema::normalised(&objects).as_bytes()).to_hex();
    Ok(LiveDatabase {
        database: info.dbname().to_string(),
        objects,
        state,
        reltuples,
        stats_reset: counters.stats_reset,
        tracked: counters.tracked,
    })
}

/// Tables, sequences and large objects, in the open transaction.
fn read_state(
    c: &mut Client,
    version_num: u32,
    counters: &WriteCounters,
) -> Result<(LiveDatabaseState, BTreeMap<String, f64>)> {
    let mut tables = catalog::tables(c)?;
    catalog::fill_sizes(c, &mut tables)?;
    let planner = reltuples(c, &tables)?;
    let mut state = LiveDatabaseState::default();
    let mut estimates = BTreeMap::new();
    for t in &tables {
        let key = format!("{}.{}", t.schema, t.name);
        let tuples = if t.bytes <= EXACT_COUNT_BYTES {
            Some(summary(c, t, version_num)?)
        } else {
            None
        };
        let counters = counters.tables.get(&t.oid).copied().unwrap_or_default();
        estimates.insert(key.clone(), planner.get(&t.oid).copied().unwrap_or(-1.0));
        state.tables.insert(
            key,
            LiveTable {
                oid: t.oid,
                counters,
                tuples,
            },
        );
    }
    state.sequences = sequences(c)?;
    state.large_objects = large_objects(c)?;
    Ok((state, estimates))
}

/// The planner's row estimates (`-1`: never analysed).
fn reltuples(c: &mut Client, tables: &[TableInfo]) -> Result<HashMap<u32, f64>> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let rows = c
        .query(
            "SELECT oid, reltuples::float8 FROM pg_class WHERE oid = ANY($1)",
            &[&oids],
        )
        .map_err(|e| db_error("reading the planner statistics", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// `rows:sum` of a table's tuple identities, or `rows` on a server
/// without `hashtidextended`.
fn summary(c: &mut Client, t: &TableInfo, version_num: u32) -> Result<String> {
    if version_num >= 140000 {
        return unchanged::tuple_summary(c, t, None, None);
    }
    let n: i64 = c
        .query_one(
            &format!(
                "SELECT count(*)::int8 FROM ONLY {}",
                qualified(&t.schema, &t.name)
            ),
            &[],
        )
        .map_err(|e| db_error(format!("counting table {}.{}", t.schema, t.name), e))?
        .get(0);
    Ok(n.to_string())
}

/// Every sequence's `last_value`.
fn sequences(c: &mut Client) -> Result<BTreeMap<String, Option<i64>>> {
    let rows = c
        .query(
            "SELECT schemaname::text || '.' || sequencename::text, last_value FROM pg_sequences",
            &[],
        )
        .map_err(|e| db_error("reading sequences", e))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Large objects: their number, the sum of their oids and the write
/// counters of `pg_largeobject`, which change with any content written.
fn large_objects(c: &mut Client) -> Result<String> {
    let r = c
        .query_one(
            "SELECT (SELECT count(*)::int8 FROM pg_largeobject_metadata), \
                    (SELECT coalesce(sum(oid::int8), 0)::int8 FROM pg_largeobject_metadata), \
                    coalesce((SELECT n_tup_ins::int8 FROM pg_stat_sys_tables WHERE relid = 'pg_catalog.pg_largeobject'::regclass), 0), \
                    coalesce((SELECT n_tup_upd::int8 FROM pg_stat_sys_tables WHERE relid = 'pg_catalog.pg_largeobject'::regclass), 0), \
                    coalesce((SELECT n_tup_del::int8 FROM pg_stat_sys_tables WHERE relid = 'pg_catalog.pg_largeobject'::regclass), 0)",
            &[],
        )
        .map_err(|e| db_error("reading large objects", e))?;
    let v: Vec<i64> = (0..5).map(|i| r.get(i)).collect();
    Ok(format!("{}:{}:{}:{}:{}", v[0], v[1], v[2], v[3], v[4]))
}
