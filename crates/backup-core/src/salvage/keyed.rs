//! The kept side of a keyed table and its pairing by key: the candidate
//! tuples (newer than the capture, or every tuple without identities), read
//! in one gathered scan or in two, looked up by key in the rolled-back
//! database (index probes for few keys, in batches without identities),
//! and the deleted keys found by hash buckets or by sending every key over.

use super::catalog::Table;
use super::compare::{candidate_filter, late_filter, Sides};
use super::gone;
use super::merge::{self, Candidate, Original};
use super::sql::{copy_field, each_row, key_join, select_list, text_array, values};
use super::{Change, TableDelta, Value};
use crate::error::{Error, ErrorKind, Result};
use crate::snapshot::{TableData, TableStats};
use crate::source::postgres::catalog::{ident, qualified};
use crate::source::postgres::conninfo::db_error;
use postgres::Client;
use std::io::Write;

/// What the kept side of a keyed table gave: its candidates (tuples not
/// older than the capture's horizon, or every tuple without one), and the
/// tuple counts when a horizon made them meaningful.
pub(super) struct KeptScan {
    pub(super) keys: Vec<Vec<Value>>,
    /// Each candidate's key hash ([`gone::key_hash`]).
    hashes: Vec<i64>,
    cands: Vec<Candidate>,
    /// `(candidates, all tuples)`.
    tally: Option<(u64, u64)>,
}

/// What the kept side reads of each candidate, in this order: its key
/// (`text[]`), its key hash, and every column (`text[]`).
fn candidate_list(d: &TableDelta) -> String {
    format!(
        "{}, {}, {}",
        text_array(&d.key),
        gone::key_hash(&d.key),
        text_array(&d.columns)
    )
}

/// Where each compared column is among all columns of the kept side.
fn compared_positions(d: &TableDelta) -> Vec<usize> {
    d.compared
        .iter()
        .map(|c| {
            d.columns
                .iter()
                .position(|x| x == c)
                .expect("compared columns are columns of the kept side")
        })
        .collect()
}

impl KeptScan {
    fn empty(tally: Option<(u64, u64)>) -> KeptScan {
        KeptScan {
            keys: Vec::new(),
            hashes: Vec::new(),
            cands: Vec::new(),
            tally,
        }
    }

    fn push(&mut self, key: Vec<Value>, hash: i64, cand: Candidate) {
        self.keys.push(key);
        self.hashes.push(hash);
        self.cands.push(cand);
    }

    /// No candidate and as many tuples as the snapshot had rows: the
    /// table is the snapshot's.
    pub(super) fn unchanged(&self, snap_table: Option<&TableData>) -> bool {
        matches!((self.tally, snap_table), (Some((0, total)), Some(t)) if total == t.rows)
    }
}

/// Whether a keyed table's candidates can be gathered in the scan that
/// counts its tuples: with a horizon, and when the write counters say few
/// rows were inserted or updated since the capture (they bound the
/// candidates, which are then held in one value on the server).
pub(super) fn few_candidates(s: &Sides, snap_table: Option<&TableData>) -> bool {
    let Some(t) = snap_table else { return false };
    let (Some(_), Some(oid), Some(then)) = (s.horizon, t.oid, t.stats) else {
        return false;
    };
    let Some(now) = s.counters.get(&oid) else {
        return false;
    };
    let written = |x: &TableStats| x.n_tup_ins + x.n_tup_upd;
    // Counters that went back were reset: they bound nothing.
    written(now) >= written(&then) && written(now) - written(&then) <= MAX_GATHERED
}

/// [`keyed_scan`] under a savepoint: `None` when the server could not
/// gather the candidates in one value (the counters were far off and the
/// value grew past the server's limit), so that the two scans still can.
pub(super) fn gathered_scan(s: &mut Sides, d: &TableDelta) -> Result<Option<KeptScan>> {
    let sp = |c: &mut Client, sql: &str| {
        c.batch_execute(sql)
            .map_err(|e| db_error("reading the candidate rows", e))
    };
    sp(&mut s.kept, "SAVEPOINT salvage_gather")?;
    match keyed_scan(s, d) {
        Ok(scan) => {
            sp(&mut s.kept, "RELEASE SAVEPOINT salvage_gather")?;
            Ok(Some(scan))
        }
        Err(_) => {
            sp(&mut s.kept, "ROLLBACK TO SAVEPOINT salvage_gather")?;
            Ok(None)
        }
    }
}

/// Candidates gathered in one value by the counting scan, at most.
const MAX_GATHERED: u64 = 100_000;

/// One scan of a keyed table on the kept side: its tuples counted and its
/// candidates gathered (`json_agg … FILTER`), without reading any column
/// of the other tuples.
fn keyed_scan(s: &mut Sides, d: &TableDelta) -> Result<KeptScan> {
    if crate::failpoint::armed("salvage-gather") {
        // As a value past the server's limit would: an error that aborts
        // the transaction up to the savepoint.
        s.kept
            .batch_execute("SELECT 1 / 0")
            .map_err(|e| db_error("reading the candidate rows", e))?;
    }
    let sql = format!(
        "SELECT count(*)::int8, coalesce(json_agg(json_build_array({})) FILTER (WHERE {}), '[]')::text \
         FROM ONLY {} x",
        candidate_list(d),
        candidate_filter(s),
        qualified(&d.schema, &d.name)
    );
    let row = s
        .kept
        .query_one(&sql, &[])
        .map_err(|e| db_error("reading the candidate rows", e))?;
    let total = row.get::<_, i64>(0) as u64;
    let gathered: Vec<(Vec<Value>, i64, Vec<Value>)> = serde_json::from_str(row.get::<_, &str>(1))
        .map_err(|e| {
            Error::new(
                ErrorKind::Source,
                format!("the server sent candidate rows that are not valid JSON: {e}"),
            )
        })?;
    let mut scan = KeptScan::empty(Some((gathered.len() as u64, total)));
    let positions = compared_positions(d);
    for (key, hash, after) in gathered {
        scan.push(key, hash, Candidate::new(after, &positions));
    }
    Ok(scan)
}

/// The candidates of a keyed table by their own scan, after `tally` (if
/// any) counted them; none read when it counted none.
pub(super) fn candidates(
    s: &mut Sides,
    d: &TableDelta,
    tally: Option<(u64, u64)>,
) -> Result<KeptScan> {
    let mut scan = KeptScan::empty(tally);
    // No candidate (only deletes): nothing to read on the kept side.
    if tally.is_some_and(|(cand, _)| cand == 0) {
        return Ok(scan);
    }
    let sql = format!(
        "SELECT {} FROM ONLY {} x WHERE {}",
        candidate_list(d),
        qualified(&d.schema, &d.name),
        candidate_filter(s)
    );
    let positions = compared_positions(d);
    each_row(&mut s.kept, &sql, |r| {
        let cand = Candidate::new(values(r, 2), &positions);
        scan.push(values(r, 0), r.get(1), cand);
        Ok(())
    })?;
    Ok(scan)
}

/// A keyed table: candidates from the kept side, looked up by key in the
/// rolled-back one; deleted rows found only when their count says so.
pub(super) fn keyed(
    s: &mut Sides,
    d: &mut TableDelta,
    (k, l): (&Table, &Table),
    scan: KeptScan,
) -> Result<Vec<Change>> {
    let old = scan
        .tally
        .map_or(0, |(cand, total)| total.saturating_sub(cand));
    let late = late_filter(s);
    let mut pairing = Pairing::default();
    pairing.add(&mut s.live, d, l, scan, &late)?;
    pairing.finish(s, d, (k, l), old)
}

/// Candidates are looked up this many at a time when every kept row is
/// one (no identities): memory then holds a batch of rows and the
/// changes, not the table.
const LOOKUP_BATCH: usize = 20_000;

/// A keyed table without identities: every kept row is a candidate, read
/// in one pass and looked up in batches.
pub(super) fn keyed_streamed(
    s: &mut Sides,
    d: &mut TableDelta,
    (k, l): (&Table, &Table),
) -> Result<Vec<Change>> {
    let sql = format!(
        "SELECT {} FROM ONLY {} x",
        candidate_list(d),
        qualified(&d.schema, &d.name)
    );
    let late = late_filter(s);
    let mut pairing = Pairing::default();
    let mut batch = KeptScan::empty(None);
    let positions = compared_positions(d);
    let Sides { kept, live, .. } = s;
    each_row(kept, &sql, |r| {
        let cand = Candidate::new(values(r, 2), &positions);
        batch.push(values(r, 0), r.get(1), cand);
        if batch.keys.len() >= LOOKUP_BATCH {
            let full = std::mem::replace(&mut batch, KeptScan::empty(None));
            pairing.add(live, d, l, full, &late)?;
        }
        Ok(())
    })?;
    pairing.add(&mut s.live, d, l, batch, &late)?;
    pairing.finish(s, d, (k, l), 0)
}

/// The changes of a keyed table's candidates so far, batch by batch.
#[derive(Default)]
struct Pairing {
    changes: Vec<Change>,
    /// Candidates whose key the snapshot has.
    found: u64,
    /// The key hashes of the candidates whose key it lacks (inserted).
    added: Vec<i64>,
}

impl Pairing {
    /// Looks a batch of candidates up in the rolled-back database and
    /// keeps what changed.
    fn add(
        &mut self,
        live: &mut Client,
        d: &mut TableDelta,
        l: &Table,
        scan: KeptScan,
        late: &str,
    ) -> Result<()> {
        let (found, late_rows) = look_up(live, d, l, &scan.keys, late)?;
        d.written_after_rollback += late_rows;
        let found_n = found.iter().filter(|f| f.is_some()).count() as u64;
        d.rows_read += scan.cands.len() as u64 + found_n;
        self.found += found_n;
        self.added.extend(
            found
                .iter()
                .zip(&scan.hashes)
                .filter(|(f, _)| f.is_none())
                .map(|(_, h)| *h),
        );
        self.changes
            .extend(merge::pair_by_key(scan.cands, found, Vec::new()));
        Ok(())
    }

    /// Adds the deleted rows, when the count (`old` kept tuples older than
    /// the horizon) says there are any.
    fn finish(
        mut self,
        s: &mut Sides,
        d: &mut TableDelta,
        (k, l): (&Table, &Table),
        old: u64,
    ) -> Result<Vec<Change>> {
        let gone = match merge::deleted_count(d.snapshot_rows, old, self.found) {
            Some(0) => Vec::new(),
            expected => match missing_by_buckets(s, d, (k, l), &self.added, expected)? {
                Some(gone) => gone,
                None => gone_rows(s, d, l)?,
            },
        };
        d.rows_read += gone.len() as u64;
        self.changes
            .extend(merge::pair_by_key(Vec::new(), Vec::new(), gone));
        Ok(self.changes)
    }
}

/// A temporary table of `d.key` columns (typed as in `l`) in the
/// rolled-back database's session.
fn key_table(
    live: &mut Client,
    d: &TableDelta,
    l: &Table,
    name: &str,
    numbered: bool,
) -> Result<()> {
    let mut cols: Vec<String> = Vec::new();
    if numbered {
        cols.push("salvage_n int8".into());
    }
    for k in &d.key {
        cols.push(format!("{} {}", ident(k), l.type_of(k).unwrap_or("text")));
    }
    live.batch_execute(&format!(
        "DROP TABLE IF EXISTS pg_temp.{name}; CREATE TEMP TABLE {name} ({})",
        cols.join(", ")
    ))
    .map_err(|e| db_error("creating a temporary key table", e))
}

/// The snapshot's row for each key, if it has one.
fn look_up(
    live: &mut Client,
    d: &TableDelta,
    l: &Table,
    keys: &[Vec<Value>],
    late: &str,
) -> Result<(Vec<Option<Original>>, u64)> {
    let mut found = vec![None; keys.len()];
    let mut late_rows = 0;
    if keys.is_empty() {
        return Ok((found, 0));
    }
    key_table(live, d, l, "salvage_keys", true)?;
    {
        let mut w = live
            .copy_in("COPY pg_temp.salvage_keys FROM STDIN")
            .map_err(|e| db_error("sending keys", e))?;
        for (n, k) in keys.iter().enumerate() {
            let fields: Vec<String> = k.iter().map(copy_field).collect();
            writeln!(w, "{n}\t{}", fields.join("\t")).map_err(|e| Error::io("sending keys", e))?;
        }
        w.finish().map_err(|e| db_error("sending keys", e))?;
    }
    live.batch_execute("ANALYZE pg_temp.salvage_keys")
        .map_err(|e| db_error("analyzing keys", e))?;
    let sql = format!(
        "SELECT s.salvage_n, {}, {late} FROM pg_temp.salvage_keys s JOIN ONLY {} x ON {}",
        text_array(&d.compared),
        qualified(&d.schema, &d.name),
        key_join(&d.key, "s")
    );
    // Only the rolled-back table's own key is sure to have an index there.
    let probe = d.key == l.key && few_keys(keys.len(), d.snapshot_rows);
    if probe {
        set_probing(live, true)?;
    }
    each_row(live, &sql, |r| {
        let n: i64 = r.get(0);
        let late = r.get::<_, bool>(2);
        late_rows += u64::from(late);
        found[n as usize] = Some(Original::new(values(r, 1), late));
        Ok(())
    })?;
    if probe {
        set_probing(live, false)?;
    }
    Ok((found, late_rows))
}

/// Keys are looked up one by one (through the key's index) when they are
/// fewer than this share of the table's rows and the key is the
/// rolled-back table's own; a hash join, which reads the whole table, is
/// left to the planner otherwise.
const PROBE_SHARE: u64 = 20;

/// Whether `keys` keys are few enough to probe a table of `rows` rows.
fn few_keys(keys: usize, rows: u64) -> bool {
    (keys as u64).saturating_mul(PROBE_SHARE) < rows
}

/// Steers the rolled-back side's planner to index probes (`on`) or back
/// to its own choice. Its costs assume pages read from disk at random,
/// which makes a table scan look cheaper than a few thousand probes of a
/// database that was just restored and is in memory.
fn set_probing(live: &mut Client, on: bool) -> Result<()> {
    let sql = if on {
        "SET enable_hashjoin = off; SET enable_mergejoin = off"
    } else {
        "RESET enable_hashjoin; RESET enable_mergejoin"
    };
    live.batch_execute(sql)
        .map_err(|e| db_error("choosing how keys are looked up", e))
}

/// The snapshot's rows whose key the kept table no longer has, found by
/// key hash buckets ([`gone`]); `None` when the key's types differ between
/// the states or too many buckets differ (then the keys are sent over).
/// `expected` is how many the counts say are missing, when they know.
fn missing_by_buckets(
    s: &mut Sides,
    d: &mut TableDelta,
    (k, l): (&Table, &Table),
    added: &[i64],
    expected: Option<u64>,
) -> Result<Option<Vec<Original>>> {
    // Without a horizon the server may be older than 14 (no bit_xor).
    if s.horizon.is_none() || d.key.iter().any(|c| k.type_of(c) != l.type_of(c)) {
        return Ok(None);
    }
    let Some(keys) = gone::missing_keys(&mut s.kept, &mut s.live, d, added, expected)? else {
        return Ok(None);
    };
    let late = late_filter(s);
    let (rows, late_rows) = look_up(&mut s.live, d, l, &keys, &late)?;
    // Inserted after the rollback: not a row the snapshot had.
    d.written_after_rollback += late_rows;
    Ok(Some(
        rows.into_iter().flatten().filter(|o| !o.late).collect(),
    ))
}

/// The snapshot's rows whose key the kept table no longer has: the kept
/// keys are copied into the rolled-back database's session and anti-joined.
fn gone_rows(s: &mut Sides, d: &mut TableDelta, l: &Table) -> Result<Vec<Original>> {
    key_table(&mut s.live, d, l, "salvage_all", false)?;
    let out_sql = format!(
        "COPY (SELECT {} FROM ONLY {} x) TO STDOUT",
        select_list(&d.key),
        qualified(&d.schema, &d.name)
    );
    {
        let mut r = s
            .kept
            .copy_out(&out_sql)
            .map_err(|e| db_error("reading keys", e))?;
        let mut w = s
            .live
            .copy_in("COPY pg_temp.salvage_all FROM STDIN")
            .map_err(|e| db_error("sending keys", e))?;
        std::io::copy(&mut r, &mut w).map_err(|e| Error::io("copying keys", e))?;
        w.finish().map_err(|e| db_error("sending keys", e))?;
    }
    s.live
        .batch_execute("ANALYZE pg_temp.salvage_all")
        .map_err(|e| db_error("analyzing keys", e))?;
    let sql = format!(
        "SELECT {}, {} FROM ONLY {} x WHERE NOT EXISTS (SELECT 1 FROM pg_temp.salvage_all a WHERE {})",
        text_array(&d.compared),
        late_filter(s),
        qualified(&d.schema, &d.name),
        key_join(&d.key, "a")
    );
    let mut gone = Vec::new();
    let mut late_rows = 0;
    each_row(&mut s.live, &sql, |r| {
        // Inserted after the rollback: not a row the snapshot had.
        if r.get::<_, bool>(1) {
            late_rows += 1;
            return Ok(());
        }
        gone.push(Original::new(values(r, 0), false));
        Ok(())
    })?;
    d.written_after_rollback += late_rows;
    Ok(gone)
}
