//! The delta of one database component, by SQL against the kept-aside
//! database (the replaced state) and the rolled-back one (the snapshot).
//!
//! Both are read in `REPEATABLE READ` transactions with the capture's
//! session settings, so that every value has one text form. Per table:
//! unchanged (no tuple newer than the capture's horizon, as many tuples as
//! the snapshot's rows: nothing read), keyed (the newer tuples, looked up
//! by key: [`super::keyed`]), or a multiset difference. Tables are taken
//! by several pairs of connections at once ([`super::workers`]).

use super::catalog::{self, Table};
use super::keyed::{candidates, few_candidates, gathered_scan, keyed, keyed_streamed};
use super::merge::{self, Multiset};
use super::sql::{each_row, row_text, text_array, values};
use super::workers;
use super::{Change, ChangeKind, DatabaseDelta, TableDelta, TableStatus};
use crate::error::{Error, ErrorKind, Result};
use crate::snapshot::{PostgresComponent, TableData, TableStats};
use crate::source::postgres::catalog::{self as pgcat, qualified, session_settings};
use crate::source::postgres::conninfo::{db_error, ConnInfo};
use crate::source::postgres::{stats, unchanged};
use postgres::Client;
use std::collections::{BTreeMap, HashMap};

/// Tuple ages are trusted only this close to the capture's horizon.
const MAX_XID_DISTANCE: u64 = 1 << 30;

/// What the comparison cost, for reports and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompareStats {
    /// Tables proved unchanged without reading a row.
    pub skipped: usize,
    /// Rows read from either database.
    pub rows_read: u64,
}

/// The two databases and what ties the kept one to the snapshot.
pub(super) struct Sides {
    pub(super) kept: Client,
    pub(super) live: Client,
    /// The capture's `xmin` horizon (low 32 bits), when the kept database
    /// is the captured one and its tuple ages can be trusted.
    pub(super) horizon: Option<u32>,
    /// The next transaction id once the rolled-back database was staged
    /// (low 32 bits): its tuples with a newer `xmin` are not the snapshot's.
    pub(super) staged: Option<u32>,
    /// The kept database's write counters now, by table oid: with those
    /// recorded at capture they estimate how many candidates a table has.
    pub(super) counters: HashMap<u32, TableStats>,
}

/// Computes the delta of component `name`: `live` is the rolled-back
/// database, `kept` the replaced one, `snap` the component restored;
/// `staged` the cluster's next transaction id once `live` was staged, if
/// the rollback noted it. Tables are compared on `jobs` pairs of
/// connections that share one snapshot of each database.
pub fn compute_component(
    name: &str,
    live: &ConnInfo,
    kept: &ConnInfo,
    snap: &PostgresComponent,
    staged: Option<u64>,
    jobs: usize,
) -> Result<(DatabaseDelta, CompareStats)> {
    let settings = session_settings(&snap.encoding, &snap.lc_monetary);
    let mut s = open(live, kept, snap, &settings)?;
    s.staged = staged_horizon(&mut s.live, staged)?;
    let work = table_jobs(&mut s, snap)?;
    let extra = jobs.clamp(1, work.len().max(1)) - 1;
    let mut helpers = Vec::new();
    if extra > 0 {
        let shared = export_snapshots(&mut s)?;
        // A pair that cannot connect (the server's connection limit) only
        // means fewer tables at once: the delta is the same.
        while helpers.len() < extra {
            match s.join(live, kept, &settings, &shared) {
                Ok(h) => helpers.push(h),
                Err(_) => break,
            }
        }
    }
    let (tables, stats) = workers::compare_all(&mut s, helpers, work)?;
    let sequences = catalog::sequences(&mut s.kept)?;
    let references = catalog::references(&mut s.kept)?;
    let identities_used = s.horizon.is_some();
    let _ = s.kept.batch_execute("COMMIT");
    let _ = s.live.batch_execute("ROLLBACK");
    Ok((
        DatabaseDelta {
            name: name.to_string(),
            live: live.dbname().to_string(),
            kept: kept.dbname().to_string(),
            identities_used,
            tables,
            sequences,
            references,
            settings,
            secret: false,
            secret_columns: Vec::new(),
        },
        stats,
    ))
}

/// One table to compare: its place in name order, how it is in each
/// state, and the snapshot's record of it.
pub(super) struct TableJob<'a> {
    pub index: usize,
    pub kept: Option<Table>,
    pub live: Option<Table>,
    pub snap: Option<&'a TableData>,
}

/// Every table of either state, in name order.
fn table_jobs<'a>(s: &mut Sides, snap: &'a PostgresComponent) -> Result<Vec<TableJob<'a>>> {
    let mut all: BTreeMap<(String, String), (Option<Table>, Option<Table>)> = BTreeMap::new();
    for t in catalog::tables(&mut s.kept)? {
        let key = (t.schema.clone(), t.name.clone());
        all.entry(key).or_default().0 = Some(t);
    }
    for t in catalog::tables(&mut s.live)? {
        let key = (t.schema.clone(), t.name.clone());
        all.entry(key).or_default().1 = Some(t);
    }
    Ok(all
        .into_iter()
        .enumerate()
        .map(|(index, ((schema, name), (kept, live)))| TableJob {
            index,
            kept,
            live,
            snap: snap
                .tables
                .iter()
                .find(|t| t.schema == schema && t.name == name),
        })
        .collect())
}

/// Compares one table: both states, added since, or dropped since.
pub(super) fn compare_table(
    s: &mut Sides,
    job: &TableJob<'_>,
    stats: &mut CompareStats,
) -> Result<TableDelta> {
    let d = match (&job.kept, &job.live) {
        (Some(k), Some(l)) => both(s, k, l, job.snap, stats),
        (Some(k), None) => added(s, k),
        (None, Some(l)) => dropped(s, l, job.snap),
        (None, None) => unreachable!("a table is in at least one state"),
    };
    let t = job.kept.as_ref().or(job.live.as_ref()).expect("a state");
    let d = d.map_err(|e| e.context(format!("comparing table {}.{}", t.schema, t.name)))?;
    stats.rows_read += d.rows_read;
    Ok(d)
}

/// The snapshots the other connections take on: `(kept, live)`.
fn export_snapshots(s: &mut Sides) -> Result<(String, String)> {
    let export = |c: &mut Client| -> Result<String> {
        let id: String = c
            .query_one("SELECT pg_export_snapshot()", &[])
            .map_err(|e| db_error("sharing the comparison's snapshot", e))?
            .get(0);
        // An id is hex digits and dashes: checked before it is quoted.
        if id.is_empty() || !id.chars().all(|ch| ch.is_ascii_hexdigit() || ch == '-') {
            return Err(Error::new(
                ErrorKind::Source,
                format!("the server exported a snapshot with an unexpected id {id:?}"),
            ));
        }
        Ok(id)
    };
    Ok((export(&mut s.kept)?, export(&mut s.live)?))
}

/// Connects to both, starts the transactions, and decides whether the
/// capture's tuple identities hold for the kept database.
fn open(
    live: &ConnInfo,
    kept: &ConnInfo,
    snap: &PostgresComponent,
    settings: &str,
) -> Result<Sides> {
    let mut k = kept.connect().map_err(|e| {
        e.context(format!(
            "the kept database {} cannot be opened",
            kept.dbname()
        ))
    })?;
    let mut l = live.connect()?;
    // Every query here is one scan: compiling it (JIT) only adds time.
    k.batch_execute(&format!(
        "{settings}; SET jit = off; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
    ))
    .map_err(|e| db_error("starting to read the kept database", e))?;
    l.batch_execute(&format!(
        "{settings}; SET jit = off; BEGIN ISOLATION LEVEL REPEATABLE READ"
    ))
    .map_err(|e| db_error("starting to read the rolled-back database", e))?;
    let server = pgcat::server_info(&mut k)?;
    let horizon = match (
        unchanged::identity(&mut k, &server, settings),
        &snap.identity,
        snap.xid,
    ) {
        (Some(now), Some(id), Some(xid))
            if &now.id == id && xid <= now.xid && now.xid - xid < MAX_XID_DISTANCE =>
        {
            Some((xid & 0xffff_ffff) as u32)
        }
        _ => None,
    };
    // Counters are only a hint for choosing how to read (never for what
    // the delta is): without them a table is read the two-scan way.
    let counters = match horizon {
        Some(_) => stats::try_write_counters(&mut k)
            .map(|c| c.tables)
            .unwrap_or_default(),
        None => HashMap::new(),
    };
    Ok(Sides {
        kept: k,
        live: l,
        horizon,
        staged: None,
        counters,
    })
}

impl Sides {
    /// Another pair of connections on the same snapshots (`shared`, as
    /// exported), with what this pair knows of the capture.
    fn join(
        &self,
        live: &ConnInfo,
        kept: &ConnInfo,
        settings: &str,
        shared: &(String, String),
    ) -> Result<Sides> {
        let mut k = kept.connect()?;
        k.batch_execute(&format!(
            "{settings}; SET jit = off; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             SET TRANSACTION SNAPSHOT '{}'",
            shared.0
        ))
        .map_err(|e| db_error("joining the kept database's snapshot", e))?;
        let mut l = live.connect()?;
        l.batch_execute(&format!(
            "{settings}; SET jit = off; BEGIN ISOLATION LEVEL REPEATABLE READ; \
             SET TRANSACTION SNAPSHOT '{}'",
            shared.1
        ))
        .map_err(|e| db_error("joining the rolled-back database's snapshot", e))?;
        Ok(Sides {
            kept: k,
            live: l,
            horizon: self.horizon,
            staged: self.staged,
            counters: self.counters.clone(),
        })
    }
}

/// Column bookkeeping of a table in both states.
fn frame(k: &Table, l: &Table, status: TableStatus) -> TableDelta {
    let compared: Vec<String> = l
        .columns
        .iter()
        .filter(|c| k.columns.contains(*c))
        .cloned()
        .collect();
    let within = |key: &[String]| !key.is_empty() && key.iter().all(|c| compared.contains(c));
    let key = if within(&l.key) {
        l.key.clone()
    } else if within(&k.key) {
        k.key.clone()
    } else {
        Vec::new()
    };
    TableDelta {
        schema: k.schema.clone(),
        name: k.name.clone(),
        status,
        key,
        columns: k.columns.clone(),
        types: k.types.clone(),
        carried: k
            .columns
            .iter()
            .filter(|c| !compared.contains(*c))
            .cloned()
            .collect(),
        missing: l
            .columns
            .iter()
            .filter(|c| !compared.contains(*c))
            .cloned()
            .collect(),
        compared,
        inserted: 0,
        updated: 0,
        deleted: 0,
        rows_read: 0,
        snapshot_rows: 0,
        written_after_rollback: 0,
        changes: Vec::new(),
    }
}

/// A table in both states.
fn both(
    s: &mut Sides,
    k: &Table,
    l: &Table,
    snap_table: Option<&TableData>,
    stats: &mut CompareStats,
) -> Result<TableDelta> {
    let mut d = frame(k, l, TableStatus::Unchanged);
    d.snapshot_rows = match snap_table {
        Some(t) => t.rows,
        None => count(&mut s.live, k, "true")?,
    };
    let gathered = if !d.key.is_empty() && few_candidates(s, snap_table) {
        gathered_scan(s, &d)?
    } else {
        None
    };
    if let Some(scan) = gathered {
        if scan.unchanged(snap_table) {
            stats.skipped += 1;
            return Ok(d);
        }
        let changes = keyed(s, &mut d, (k, l), scan)?;
        return finish(d, changes);
    }
    // Old tuples (older than the horizon) were all in the snapshot: with no
    // candidate and as many tuples as the snapshot had rows, they are it.
    let tally = horizon_tally(s, k)?;
    if let (Some((0, total)), Some(_)) = (tally, snap_table) {
        if total == d.snapshot_rows {
            stats.skipped += 1;
            return Ok(d);
        }
    }
    let changes = if d.key.is_empty() {
        multiset(s, &mut d)?
    } else if tally.is_none() {
        keyed_streamed(s, &mut d, (k, l))?
    } else {
        let scan = candidates(s, &d, tally)?;
        keyed(s, &mut d, (k, l), scan)?
    };
    finish(d, changes)
}

fn finish(mut d: TableDelta, changes: Vec<Change>) -> Result<TableDelta> {
    let (i, u, del) = merge::count(&changes);
    d.inserted = i;
    d.updated = u;
    d.deleted = del;
    if d.status == TableStatus::Unchanged && !changes.is_empty() {
        d.status = TableStatus::Changed;
    }
    d.changes = changes;
    Ok(d)
}

/// With the capture's horizon: the kept table's candidate tuples (not
/// older than the horizon) and all its tuples, in one scan that reads no
/// column. `None` without a horizon.
fn horizon_tally(s: &mut Sides, k: &Table) -> Result<Option<(u64, u64)>> {
    if s.horizon.is_none() {
        return Ok(None);
    }
    let sql = format!(
        "SELECT count(*) FILTER (WHERE {})::int8, count(*)::int8 FROM ONLY {} x",
        candidate_filter(s),
        qualified(&k.schema, &k.name)
    );
    let row = s
        .kept
        .query_one(&sql, &[])
        .map_err(|e| db_error("counting tuples", e))?;
    Ok(Some((
        row.get::<_, i64>(0) as u64,
        row.get::<_, i64>(1) as u64,
    )))
}

/// The staged horizon, when it is close enough to now to compare with.
fn staged_horizon(live: &mut Client, staged: Option<u64>) -> Result<Option<u32>> {
    let Some(x) = staged else { return Ok(None) };
    let row = live
        .query_one(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8",
            &[],
        )
        .map_err(|e| db_error("reading the next transaction id", e))?;
    let now = row.get::<_, i64>(0) as u64;
    Ok((x <= now && now - x < MAX_XID_DISTANCE).then_some((x & 0xffff_ffff) as u32))
}

/// `x` of the rolled-back database was written after the rollback.
pub(super) fn late_filter(s: &Sides) -> String {
    match s.staged {
        Some(x) => format!("age(x.xmin) <= age('{x}'::xid)"),
        None => "false".into(),
    }
}

/// `x` is a candidate for a change: every tuple when identities are not
/// usable, else those whose `xmin` is not older than the capture horizon.
pub(super) fn candidate_filter(s: &Sides) -> String {
    match s.horizon {
        Some(x) => format!("age(x.xmin) <= age('{x}'::xid)"),
        None => "true".into(),
    }
}

fn count(c: &mut Client, t: &Table, filter: &str) -> Result<u64> {
    let sql = format!(
        "SELECT count(*)::int8 FROM ONLY {} x WHERE {filter}",
        qualified(&t.schema, &t.name)
    );
    let row = c
        .query_one(&sql, &[])
        .map_err(|e| db_error("counting rows", e))?;
    Ok(row.get::<_, i64>(0) as u64)
}

impl Table {
    /// A table known by name only (for counting).
    fn bare(schema: &str, name: &str) -> Table {
        Table {
            schema: schema.to_string(),
            name: name.to_string(),
            columns: Vec::new(),
            types: Vec::new(),
            key: Vec::new(),
        }
    }
}

/// A table without a key: counts of every distinct row on both sides,
/// then the rows whose counts differ.
fn multiset(s: &mut Sides, d: &mut TableDelta) -> Result<Vec<Change>> {
    let table = qualified(&d.schema, &d.name);
    let text = row_text(&d.compared);
    let mut m = Multiset::default();
    let only = format!("SELECT {text} FROM ONLY {table} x");
    // Rows written after the rollback are not the snapshot's.
    let late = late_filter(s);
    let snap_only = format!("SELECT {text} FROM ONLY {table} x WHERE NOT ({late})");
    d.rows_read += each_row(&mut s.live, &snap_only, |r| {
        m.count_snapshot(r.get(0));
        Ok(())
    })?;
    d.written_after_rollback += count(&mut s.live, &Table::bare(&d.schema, &d.name), &late)?;
    d.rows_read += each_row(&mut s.kept, &only, |r| {
        m.count_kept(r.get(0));
        Ok(())
    })?;
    let mut out = Vec::new();
    if m.deleted() > 0 {
        let sql = format!(
            "SELECT {text}, {} FROM ONLY {table} x WHERE NOT ({late})",
            text_array(&d.compared)
        );
        each_row(&mut s.live, &sql, |r| {
            if m.take_deleted(r.get(0)) {
                out.push(Change {
                    kind: ChangeKind::Delete,
                    before: Some(values(r, 1)),
                    after: None,
                    late: false,
                });
            }
            Ok(())
        })?;
    }
    if m.inserted() > 0 {
        let sql = format!(
            "SELECT {text}, {} FROM ONLY {table} x",
            text_array(&d.columns)
        );
        each_row(&mut s.kept, &sql, |r| {
            if m.take_inserted(r.get(0)) {
                out.push(Change {
                    kind: ChangeKind::Insert,
                    before: None,
                    after: Some(values(r, 1)),
                    late: false,
                });
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// A table created since the snapshot: every row is carried.
fn added(s: &mut Sides, k: &Table) -> Result<TableDelta> {
    let mut d = frame(k, k, TableStatus::Added);
    d.key = k.key.clone();
    d.carried = Vec::new();
    let sql = format!(
        "SELECT {} FROM ONLY {} x",
        text_array(&d.columns),
        qualified(&k.schema, &k.name)
    );
    let mut changes = Vec::new();
    d.rows_read = each_row(&mut s.kept, &sql, |r| {
        changes.push(Change {
            kind: ChangeKind::Insert,
            before: None,
            after: Some(values(r, 0)),
            late: false,
        });
        Ok(())
    })?;
    finish(d, changes)
}

/// A table dropped since the snapshot: listed with the rows it had.
fn dropped(s: &mut Sides, l: &Table, snap_table: Option<&TableData>) -> Result<TableDelta> {
    let mut d = frame(l, l, TableStatus::Dropped);
    d.snapshot_rows = match snap_table {
        Some(t) => t.rows,
        None => count(&mut s.live, l, "true")?,
    };
    Ok(d)
}

/// The error when the kept database of a rollback is gone.
pub fn kept_gone(kept: &str, rollback: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!(
            "the database {kept} that rollback {rollback} kept aside is gone (cleaned up): \
             the delta can no longer be computed"
        ),
    )
}
