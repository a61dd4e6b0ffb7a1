//! Schema differences: the DDL a snapshot stored against the live one.
//!
//! Both sides are SQL text written by PostgreSQL's own tools (the stored
//! archive through `pg_restore --schema-only -f -`, the live database
//! through `pg_dump --schema-only`), so they are compared as what those
//! tools print: one entry per object, introduced by a `-- Name: …; Type:
//! …; Schema: …` header. Objects are keyed by type, schema and name and
//! their statements compared after dropping what does not describe the
//! schema (comments, `SET` lines, blank lines, the random `\restrict`
//! keys). The result reads as objects added, removed and changed, the
//! changed ones with a line diff.

use crate::error::{Error, ErrorKind, Result};
use crate::repository::{Repository, StreamReader};
use crate::snapshot::PostgresComponent;
use crate::source::postgres::conninfo::ConnInfo;
use crate::source::postgres::tools;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;

/// How the live schema differs from the snapshot's: what changed since
/// the snapshot, which the rollback undoes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SchemaDiff {
    /// Objects that exist live but not in the snapshot (the rollback drops them).
    pub added: Vec<SchemaObject>,
    /// Objects of the snapshot that no longer exist live (the rollback brings them back).
    pub removed: Vec<SchemaObject>,
    /// Objects whose statements differ.
    pub changed: Vec<SchemaChange>,
}

impl SchemaDiff {
    /// Whether the schemas are the same.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// One schema object and its statements.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SchemaObject {
    /// Type, schema and name, e.g. `TABLE public.orders`, `INDEX public.orders_item_idx`.
    pub object: String,
    /// Its statements, one line each.
    pub sql: Vec<String>,
}

/// One object whose statements changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SchemaChange {
    /// Type, schema and name.
    pub object: String,
    /// A line diff from the snapshot to the live statements: lines starting
    /// with `-` are only in the snapshot, `+` only live, ` ` in both.
    pub diff: Vec<String>,
}

/// A schema as objects: key → statement lines.
pub type Objects = BTreeMap<String, Vec<String>>;

/// Splits `pg_dump`/`pg_restore` SQL output into objects.
pub fn objects(sql: &str) -> Objects {
    let mut out = Objects::new();
    let mut current: Option<String> = None;
    for line in sql.lines() {
        if let Some(key) = header_key(line) {
            out.entry(key.clone()).or_default();
            current = Some(key);
            continue;
        }
        let Some(key) = &current else { continue };
        if ignored(line) {
            continue;
        }
        out.entry(key.clone()).or_default().push(line.to_string());
    }
    out
}

/// The object key of a `-- Name: N; Type: T; Schema: S; Owner: O` header.
fn header_key(line: &str) -> Option<String> {
    let rest = line.strip_prefix("-- Name: ")?;
    let (name, rest) = rest.rsplit_once("; Type: ")?;
    let mut fields = rest.split("; ");
    let kind = fields.next()?;
    let schema = fields
        .find_map(|f| f.strip_prefix("Schema: "))
        .unwrap_or("-");
    Some(if schema == "-" {
        format!("{kind} {name}")
    } else {
        format!("{kind} {schema}.{name}")
    })
}

/// Lines that do not describe the schema.
fn ignored(line: &str) -> bool {
    line.trim().is_empty()
        || line.starts_with("--")
        || line.starts_with("SET ")
        || line.starts_with("SELECT pg_catalog.set_config(")
        || line.starts_with("\\restrict")
        || line.starts_with("\\unrestrict")
}

/// The normalised text of a schema: every object's key and lines, in key
/// order (what the live fingerprint hashes).
pub fn normalised(objects: &Objects) -> String {
    let mut s = String::new();
    for (k, lines) in objects {
        s.push_str("-- ");
        s.push_str(k);
        s.push('\n');
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
    }
    s
}

/// Compares the snapshot's schema with the live one.
pub fn diff(stored: &Objects, live: &Objects) -> SchemaDiff {
    let mut d = SchemaDiff::default();
    for (k, old) in stored {
        match live.get(k) {
            None => d.removed.push(SchemaObject {
                object: k.clone(),
                sql: old.clone(),
            }),
            Some(new) if new != old => d.changed.push(SchemaChange {
                object: k.clone(),
                diff: line_diff(old, new),
            }),
            Some(_) => {}
        }
    }
    for (k, new) in live {
        if !stored.contains_key(k) {
            d.added.push(SchemaObject {
                object: k.clone(),
                sql: new.clone(),
            });
        }
    }
    d
}

/// Context lines kept around each change.
const CONTEXT: usize = 2;

/// Above this many line pairs the diff is not searched for common lines:
/// every old line is shown removed and every new one added.
const MAX_DIFF_CELLS: usize = 4_000_000;

/// A line diff (longest common subsequence) with a little context; runs
/// of unchanged lines further away are shown as ` …`.
fn line_diff(old: &[String], new: &[String]) -> Vec<String> {
    let ops = if old.len().saturating_mul(new.len()) > MAX_DIFF_CELLS {
        old.iter()
            .map(|l| ('-', l))
            .chain(new.iter().map(|l| ('+', l)))
            .collect()
    } else {
        lcs_ops(old, new)
    };
    let near_change = |i: usize| {
        let lo = i.saturating_sub(CONTEXT);
        let hi = (i + CONTEXT).min(ops.len() - 1);
        (lo..=hi).any(|j| ops[j].0 != ' ')
    };
    let mut out = Vec::new();
    let mut elided = false;
    for (i, (op, line)) in ops.iter().enumerate() {
        if *op == ' ' && !near_change(i) {
            if !elided {
                out.push(" …".to_string());
                elided = true;
            }
            continue;
        }
        elided = false;
        out.push(format!("{op}{line}"));
    }
    out
}

/// The edit script of `old` → `new`: (`' '`, `'-'` or `'+'`, line).
fn lcs_ops<'a>(old: &'a [String], new: &'a [String]) -> Vec<(char, &'a String)> {
    let (n, m) = (old.len(), new.len());
    // common[i][j]: length of the LCS of old[i..] and new[j..].
    let mut common = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if old[i] == new[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            ops.push((' ', &old[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            ops.push(('-', &old[i]));
            i += 1;
        } else {
            ops.push(('+', &new[j]));
            j += 1;
        }
    }
    ops
}

/// The snapshot's DDL as SQL text: its schema archive, read from the
/// repository and checked against its SHA-256, through
/// `pg_restore --schema-only -f -`.
pub fn stored_sql(repo: &Repository, comp: &PostgresComponent) -> Result<String> {
    let mut archive = tempfile::Builder::new()
        .prefix("backup-plan-schema-")
        .tempfile()
        .map_err(|e| Error::io("creating a temporary file", e))?;
    let mut s = StreamReader::new(
        repo,
        &comp.schema.blobs,
        comp.schema.size,
        &comp.schema.sha256,
        format!("the schema of database {}", comp.database),
    );
    std::io::copy(&mut s, archive.as_file_mut())
        .map_err(|e| Error::corrupt(format!("reading the schema archive: {e}")))?;
    s.check()?;
    archive
        .as_file_mut()
        .flush()
        .map_err(|e| Error::io("writing a temporary file", e))?;
    // The archive needs a pg_restore at least as new as the pg_dump that wrote it.
    let major = tools::major(comp.server_version_num).max(dump_major(&comp.pg_dump_version));
    let pg_restore = tools::find_tool("pg_restore", major)?;
    let mut cmd = Command::new(&pg_restore);
    cmd.args(["--schema-only", "-f", "-"]).arg(archive.path());
    let out = tools::run(cmd, "pg_restore --schema-only", ErrorKind::Source)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The major version in a `pg_dump --version` line (0 when unknown).
fn dump_major(version_line: &str) -> u32 {
    version_line
        .split(") ")
        .nth(1)
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The live DDL: `pg_dump --schema-only` in the exported snapshot
/// `snapshot_id` (so that it shows the database at the instant the counts
/// were read), run with a `pg_dump` fit for the server.
pub fn live_sql(info: &ConnInfo, server_version_num: u32, snapshot_id: &str) -> Result<String> {
    let pg_dump = tools::find_tool("pg_dump", tools::major(server_version_num))?;
    let mut cmd = Command::new(&pg_dump);
    cmd.args(["--schema-only", "--lock-wait-timeout=10000"])
        .arg(format!("--snapshot={snapshot_id}"))
        .arg(format!("--dbname={}", info.libpq_string()))
        .envs(info.tool_env());
    let out = tools::run(cmd, "pg_dump --schema-only", ErrorKind::Source)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "--
-- PostgreSQL database dump
--
\\restrict abc123

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: orders; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.orders (
    id integer NOT NULL,
    item text NOT NULL
);


ALTER TABLE public.orders OWNER TO postgres;

--
-- Name: shop; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA shop;

\\unrestrict abc123
";

    #[test]
    fn objects_are_keyed_by_type_schema_and_name_without_noise() {
        let o = objects(DUMP);
        assert_eq!(
            o.keys().collect::<Vec<_>>(),
            ["SCHEMA shop", "TABLE public.orders"]
        );
        assert_eq!(o["SCHEMA shop"], ["CREATE SCHEMA shop;"]);
        assert_eq!(o["TABLE public.orders"].len(), 5);
        assert!(!normalised(&o).contains("abc123"));
    }

    #[test]
    fn a_new_column_a_new_table_and_a_dropped_schema_are_told_apart() {
        let old = objects(DUMP);
        let live = DUMP
            .replace(
                "    item text NOT NULL\n",
                "    item text NOT NULL,\n    note text\n",
            )
            .replace("CREATE SCHEMA shop;", "")
            .replace("-- Name: shop; Type: SCHEMA", "-- Name: audit; Type: TABLE")
            .replace("Schema: -;", "Schema: public;")
            + "CREATE TABLE public.audit (x int);\n";
        let d = diff(&old, &objects(&live));
        assert_eq!(d.removed.len(), 1);
        assert_eq!(d.removed[0].object, "SCHEMA shop");
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.added[0].object, "TABLE public.audit");
        assert_eq!(d.changed.len(), 1);
        let lines = &d.changed[0].diff;
        assert!(
            lines.contains(&"-    item text NOT NULL".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"+    item text NOT NULL,".to_string()),
            "{lines:?}"
        );
        assert!(lines.contains(&"+    note text".to_string()), "{lines:?}");
        assert!(
            lines.contains(&" CREATE TABLE public.orders (".to_string()),
            "{lines:?}"
        );
    }

    #[test]
    fn far_unchanged_lines_are_elided() {
        let old: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
        let mut new = old.clone();
        new[10] = "changed".into();
        let d = line_diff(&old, &new);
        assert_eq!(
            d,
            [" …", " l8", " l9", "-l10", "+changed", " l11", " l12", " …"]
        );
    }
}
