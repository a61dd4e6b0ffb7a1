//! Manifest types of a captured PostgreSQL database.

use crate::id::Id;
use serde::{Deserialize, Serialize};

/// A stream stored as blobs, with its length and SHA-256.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamRef {
    /// Length in bytes.
    pub size: u64,
    /// SHA-256 of the stream (hex).
    pub sha256: String,
    /// Blobs in order.
    pub blobs: Vec<Id>,
}

/// One part of a table's rows: the whole table, or a range of pages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableStream {
    /// First page of the range (`ctid >= (first_page,0)`), if split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_page: Option<u32>,
    /// Page where the range ends (exclusive), if bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_page: Option<u32>,
    /// Rows in this part.
    pub rows: u64,
    /// Order-independent row digest of this part (hex).
    pub digest: String,
    /// Summary of the part's tuple identities (`rows:sum`), which proves
    /// the part unchanged at the next capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuples: Option<String>,
    /// The text COPY stream.
    pub data: StreamRef,
}

/// A table's data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableData {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Columns in the COPY stream, in order.
    pub columns: Vec<String>,
    /// The table's oid at capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<u32>,
    /// Hash of the table's column definitions at capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// Rows in all parts.
    pub rows: u64,
    /// Bytes of COPY text in all parts.
    pub bytes: u64,
    /// Order-independent digest over all rows (hex).
    pub digest: String,
    /// The parts.
    pub streams: Vec<TableStream>,
    /// The table's cumulative write counters at capture (from
    /// `pg_stat_user_tables`), so that a later plan can estimate the rows
    /// written since; absent in captures that could not read them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<TableStats>,
}

/// Cumulative write counters of a table as the statistics system reports
/// them (`pg_stat_user_tables`). They count every row inserted, updated
/// or deleted since the statistics were last reset, aborted transactions
/// included, and a backend reports its counts when a transaction ends and
/// it goes idle (at the latest when it exits), so they estimate writes;
/// they do not prove them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableStats {
    /// `n_tup_ins`: rows inserted.
    pub n_tup_ins: u64,
    /// `n_tup_upd`: rows updated (HOT updates included).
    pub n_tup_upd: u64,
    /// `n_tup_del`: rows deleted.
    pub n_tup_del: u64,
}

/// A sequence's state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SequenceValue {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// `last_value`.
    pub last_value: i64,
    /// `is_called`.
    pub is_called: bool,
}

/// A large object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LargeObject {
    /// Its oid.
    pub oid: u32,
    /// Its owner.
    pub owner: String,
    /// Its privileges (`None`: the default, owner only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<Grant>>,
    /// Its comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Its content.
    pub data: StreamRef,
}

/// One privilege granted on an object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Grant {
    /// The role it is granted to; `None` for PUBLIC.
    pub grantee: Option<String>,
    /// The privilege (`CONNECT`, `SELECT`, ...).
    pub privilege: String,
    /// Whether it was granted WITH GRANT OPTION.
    pub grantable: bool,
}

/// Database-level properties that live outside the database's own
/// catalog: owner, privileges, settings, comment, connection limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatabaseProperties {
    /// The owner.
    pub owner: String,
    /// Privileges (`None`: the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Vec<Grant>>,
    /// `ALTER DATABASE ... SET` (role `None`) and `ALTER ROLE ... IN DATABASE ... SET` settings, as `name=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<DatabaseSetting>,
    /// The comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The connection limit (-1: none).
    pub connection_limit: i32,
}

/// One per-database setting.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatabaseSetting {
    /// The role it applies to, or `None` for every role.
    pub role: Option<String>,
    /// `name=value` as PostgreSQL stores it.
    pub setting: String,
}

/// A materialized view.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MatView {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Whether it held data (it is refreshed after a restore).
    pub populated: bool,
}

/// An installed extension.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Extension {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// A captured database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostgresComponent {
    /// The component's name (`name` of a `[[postgres]]` entry of the
    /// system description); empty when none was given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Database name.
    pub database: String,
    /// Where it was read from (no password).
    pub connection: String,
    /// `server_version`.
    pub server_version: String,
    /// `server_version_num`.
    pub server_version_num: u32,
    /// Database encoding.
    pub encoding: String,
    /// LC_COLLATE.
    pub collate: String,
    /// LC_CTYPE.
    pub ctype: String,
    /// lc_monetary of the capture session.
    pub lc_monetary: String,
    /// Installed extensions.
    pub extensions: Vec<Extension>,
    /// The `pg_dump --version` line used for the DDL.
    pub pg_dump_version: String,
    /// `pg_dump --format=custom --schema-only` archive (pre- and post-data).
    pub schema: StreamRef,
    /// `pg_dumpall --globals-only` output, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globals: Option<StreamRef>,
    /// Table data.
    pub tables: Vec<TableData>,
    /// Sequence values.
    pub sequences: Vec<SequenceValue>,
    /// Large objects.
    pub large_objects: Vec<LargeObject>,
    /// Materialized views.
    pub matviews: Vec<MatView>,
    /// Owner, privileges, settings and comment of the database itself.
    #[serde(default)]
    pub properties: DatabaseProperties,
    /// What ties tuple identities to content (cluster, timeline, database,
    /// versions, settings, enum labels), when the server could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// 64-bit transaction id horizon of the capture's snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xid: Option<u64>,
    /// Table parts reused unread from the parent capture.
    #[serde(default)]
    pub reused_parts: u64,
    /// `pg_stat_database.stats_reset` of the database at capture (text
    /// form): when the statistics counters were last reset. Absent when
    /// they never were, or when the capture could not read them (then no
    /// table has `stats` either).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_reset: Option<String>,
}

impl PostgresComponent {
    /// Total rows.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// Table parts (whole tables, or page ranges of large ones).
    pub fn parts(&self) -> u64 {
        self.tables.iter().map(|t| t.streams.len() as u64).sum()
    }

    /// Total bytes of table data and large objects.
    pub fn bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes).sum::<u64>()
            + self.large_objects.iter().map(|l| l.data.size).sum::<u64>()
    }

    /// Every stored stream, with a label for messages.
    pub fn streams(&self) -> Vec<(String, &StreamRef)> {
        let mut v = vec![(format!("database {}: schema", self.database), &self.schema)];
        if let Some(g) = &self.globals {
            v.push((format!("database {}: globals", self.database), g));
        }
        for t in &self.tables {
            for s in &t.streams {
                v.push((
                    format!("database {}: table {}.{}", self.database, t.schema, t.name),
                    &s.data,
                ));
            }
        }
        for l in &self.large_objects {
            v.push((
                format!("database {}: large object {}", self.database, l.oid),
                &l.data,
            ));
        }
        v
    }
}
