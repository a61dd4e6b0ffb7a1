//! Proof that a table (or a page range of it) is unchanged since a parent
//! snapshot, so that its stored `COPY` stream can be reused unread.
//!
//! Under MVCC a row is never changed in place: every insert or update
//! writes a new tuple version stamped with its transaction id (`xmin`) at a
//! new or reused position (`ctid`), and a delete hides the old version. A
//! tuple's content is therefore fixed by the pair `(ctid, xmin)`: the same
//! slot can only hold another tuple after the old one is dead to everyone,
//! and the new one carries a newer transaction id. So if the set of
//! visible `(ctid, xmin)` pairs of a range is the same as at the parent,
//! its rows are the same. That set is summarised server-side, without
//! reading any column, as its size and the sum of a 64-bit hash of every
//! pair (`hashtidextended(ctid, xmin)`), about a tenth of the cost of the
//! `COPY`.
//!
//! The pairs only mean the same thing on the same history of the same
//! database, and the text a `COPY` produces also depends on the column
//! layout, enum labels, the session settings and the server and extension
//! versions. All of those go into an identity that must match as well; a
//! transaction id horizon guards against ids wrapping around. When
//! anything is unknown (an older server, no access to the control data)
//! nothing is reused and the table is read as usual.

use super::catalog::{qualified, ServerInfo, TableInfo};
use super::conninfo::db_error;
use crate::error::Result;
use crate::snapshot::{PostgresComponent, TableData, TableStream};
use postgres::Client;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// `hashtidextended` and TID range scans arrived in PostgreSQL 14.
const MIN_VERSION: u32 = 140000;

/// Transaction ids are 32 bits: pairs are only compared within half that
/// distance of the parent, far inside PostgreSQL's own wraparound limit.
const MAX_XID_DISTANCE: u64 = 1 << 30;

/// What ties tuple identities to their content, for one capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Hash of cluster, timeline, database, versions, settings and enum labels.
    pub id: String,
    /// 64-bit transaction id horizon (`xmin` of the capture's snapshot).
    pub xid: u64,
}

/// Reads the identity inside the capture transaction; `None` when this
/// server cannot prove anything (then every table is read).
pub fn identity(c: &mut Client, server: &ServerInfo, settings: &str) -> Option<Identity> {
    if server.version_num < MIN_VERSION {
        return None;
    }
    // pg_control_* may be revoked from the role: then nothing is reused. A
    // failed query would abort the capture transaction, hence the savepoint.
    c.batch_execute("SAVEPOINT backup_identity").ok()?;
    let row = c.query_one(
        "SELECT s.system_identifier::text, k.timeline_id::int8, d.oid::int8, \
                pg_snapshot_xmin(pg_current_snapshot())::text::int8, \
                (SELECT coalesce(string_agg(e.enumtypid::text || ':' || e.enumsortorder::text || ':' || e.enumlabel, ',' \
                                            ORDER BY e.enumtypid, e.enumsortorder), '') FROM pg_enum e), \
                to_regprocedure('pg_catalog.hashtidextended(tid,bigint)') IS NOT NULL \
         FROM pg_control_system() s, pg_control_checkpoint() k, pg_database d \
         WHERE d.datname = current_database()",
        &[],
    );
    let row = match row {
        Ok(row) => {
            c.batch_execute("RELEASE SAVEPOINT backup_identity").ok()?;
            row
        }
        Err(_) => {
            c.batch_execute("ROLLBACK TO SAVEPOINT backup_identity")
                .ok()?;
            return None;
        }
    };
    if !row.get::<_, bool>(5) {
        return None;
    }
    let mut h = Sha256::new();
    for part in [
        row.get::<_, String>(0),
        row.get::<_, i64>(1).to_string(),
        row.get::<_, i64>(2).to_string(),
        server.version_num.to_string(),
        server.encoding.clone(),
        settings.to_string(),
        row.get::<_, String>(4),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for (name, version) in &server.extensions {
        h.update(format!("{name}={version}\0").as_bytes());
    }
    Some(Identity {
        id: hex::encode(h.finalize()),
        xid: row.get::<_, i64>(3) as u64,
    })
}

/// The newest parent whose tuple identities can be compared with this
/// capture's: same identity, same or older transaction horizon, not too far.
pub fn pick_parent<'a>(
    candidates: &[&'a PostgresComponent],
    now: &Identity,
) -> Option<&'a PostgresComponent> {
    candidates.iter().copied().find(|p| {
        p.identity.as_deref() == Some(now.id.as_str())
            && p.xid
                .is_some_and(|x| x <= now.xid && now.xid - x < MAX_XID_DISTANCE)
    })
}

/// Summarises the visible `(ctid, xmin)` pairs of a table or range as
/// `rows:sum`, in the worker's snapshot.
pub fn tuple_summary(
    c: &mut Client,
    t: &TableInfo,
    first: Option<u32>,
    end: Option<u32>,
) -> Result<String> {
    let what = format!("summarising table {}.{}", t.schema, t.name);
    // age() counts back from a reference that is fixed for the
    // transaction; the reference itself is age('3') + 3, so the raw xmin is
    // (reference - age(xmin)) modulo 2^32, with no text conversion per row.
    let reference: i64 = c
        .query_one("SELECT age('3'::xid)::int8 + 3", &[])
        .map_err(|e| db_error(what.clone(), e))?
        .get(0);
    let mut range = Vec::new();
    if let Some(a) = first {
        range.push(format!("ctid >= '({a},0)'::tid"));
    }
    if let Some(b) = end {
        range.push(format!("ctid < '({b},0)'::tid"));
    }
    let filter = if range.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", range.join(" AND "))
    };
    let sql = format!(
        "SELECT count(*)::int8, coalesce(sum(hashtidextended(ctid, ({reference}::int8 - age(xmin)) & 4294967295)), 0)::text \
         FROM ONLY {}{filter}",
        qualified(&t.schema, &t.name)
    );
    let row = c.query_one(&sql, &[]).map_err(|e| db_error(what, e))?;
    Ok(format!(
        "{}:{}",
        row.get::<_, i64>(0),
        row.get::<_, String>(1)
    ))
}

/// The parent's tables by schema and name, for look-ups per table part.
pub type ParentTables<'a> = HashMap<(&'a str, &'a str), &'a TableData>;

/// Indexes the parent's tables (empty without a parent).
pub fn parent_tables(parent: Option<&PostgresComponent>) -> ParentTables<'_> {
    parent
        .map(|p| {
            p.tables
                .iter()
                .map(|t| ((t.schema.as_str(), t.name.as_str()), t))
                .collect()
        })
        .unwrap_or_default()
}

/// The parent's stream for the same range of the same table, if its tuple
/// summary matches `summary`.
pub fn reusable<'a>(
    parent: &ParentTables<'a>,
    t: &TableInfo,
    first: Option<u32>,
    end: Option<u32>,
    summary: &str,
) -> Option<&'a TableStream> {
    let table = parent.get(&(t.schema.as_str(), t.name.as_str()))?;
    if table.oid != Some(t.oid) || table.layout.as_deref() != Some(t.layout.as_str()) {
        return None;
    }
    table.streams.iter().find(|s| {
        s.first_page == first && s.end_page == end && s.tuples.as_deref() == Some(summary)
    })
}
