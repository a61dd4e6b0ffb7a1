//! The delta as SQL that re-applies it to the rolled-back database once
//! the fix is deployed: one transaction; first a check of every row
//! against the target (a row updated or deleted since the snapshot must
//! still be as the snapshot had it; an inserted row's key must be free or
//! hold the same values), the conflicts listed; then deletes (children
//! before parents), then `INSERT … ON CONFLICT (key) DO UPDATE` (parents
//! before children), then sequences moved forward.

use super::merge::fk_order;
use super::{Change, ChangeKind, DatabaseDelta, Salvage, TableDelta, TableStatus, Value};
use crate::error::{Error, Result};
use crate::source::postgres::catalog::{ident, literal, qualified};
use serde::Serialize;

/// Rows per statement.
const BATCH: usize = 500;

/// The first line of the statement that lists the conflicts.
pub const LIST_CONFLICTS: &str =
    "SELECT n, tbl, kind, why FROM pg_temp.salvage_conflicts ORDER BY n";

/// Why a row the rolled-back database changed after the rollback conflicts.
const LATE: &str = "the row was changed in the rolled-back database after the rollback";

/// What to do with a row that changed in the target since the rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnConflict {
    /// Leave such rows as the target has them; apply the rest.
    Skip,
    /// Apply the delta over them.
    Overwrite,
    /// Apply nothing when there is any (the default).
    Fail,
}

/// A row the target changed since the rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The change's number in the script.
    pub n: i64,
    /// `schema.name`.
    pub table: String,
    /// `insert`, `update` or `delete`.
    pub kind: String,
    /// What the check found.
    pub why: String,
}

/// The database delta of `s` named `component` (the only one when `None`).
pub fn pick<'a>(s: &'a Salvage, component: Option<&str>) -> Result<&'a DatabaseDelta> {
    match component {
        Some(c) => s.databases.iter().find(|d| d.name == c).ok_or_else(|| {
            Error::usage(format!(
                "rollback {} switched no database named {c:?}",
                s.rollback
            ))
        }),
        None if s.databases.len() == 1 => Ok(&s.databases[0]),
        None if s.databases.is_empty() => Err(Error::usage(format!(
            "rollback {} switched no database: there is nothing to export",
            s.rollback
        ))),
        None => Err(Error::usage(
            "the rollback switched several databases: name one with --component",
        )),
    }
}

/// The statements of the script, in order (without `;`).
pub fn export_sql(d: &DatabaseDelta, on_conflict: OnConflict) -> Vec<String> {
    let tables = ordered(d);
    let mut out = vec!["BEGIN".to_string(), d.settings.clone()];
    out.push(
        "CREATE TEMP TABLE salvage_conflicts (n int8 PRIMARY KEY, tbl text, kind text, why text) ON COMMIT DROP"
            .into(),
    );
    let numbered = number(&tables);
    for (t, rows) in &numbered {
        out.extend(checks(t, rows));
    }
    out.push(LIST_CONFLICTS.into());
    if on_conflict == OnConflict::Fail {
        out.push(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_temp.salvage_conflicts) THEN \
             RAISE EXCEPTION 'salvage: % rows changed in the target since the rollback; nothing was applied \
             (--on-conflict skip or overwrite decides)', (SELECT count(*) FROM pg_temp.salvage_conflicts); \
             END IF; END $$"
                .into(),
        );
    }
    let guard = on_conflict == OnConflict::Skip;
    for (t, rows) in numbered.iter().rev() {
        out.extend(deletes(t, rows, guard));
    }
    for (t, rows) in &numbered {
        out.extend(upserts(t, rows, guard));
    }
    out.extend(sequences(d));
    out.push("COMMIT".into());
    out
}

/// The script as one text.
pub fn script(statements: &[String]) -> String {
    let mut s = String::from(
        "-- Re-applies the data written since the snapshot (backup salvage export).\n\
         -- Run with: psql --single-transaction=off -v ON_ERROR_STOP=1 -f THIS_FILE\n",
    );
    for st in statements {
        s.push_str(st);
        s.push_str(";\n");
    }
    s
}

/// The tables with changes, parents before children.
fn ordered(d: &DatabaseDelta) -> Vec<&TableDelta> {
    let tables: Vec<&TableDelta> = d
        .tables
        .iter()
        .filter(|t| {
            matches!(t.status, TableStatus::Changed | TableStatus::Added) && !t.changes.is_empty()
        })
        .collect();
    let pos = |label: &str| tables.iter().position(|t| t.label() == label);
    let edges: Vec<(usize, usize)> = d
        .references
        .iter()
        .filter_map(|(c, p)| Some((pos(c)?, pos(p)?)))
        .collect();
    fk_order(tables.len(), &edges)
        .into_iter()
        .map(|i| tables[i])
        .collect()
}

/// Every change with its number in the script.
fn number<'a>(tables: &[&'a TableDelta]) -> Vec<(&'a TableDelta, Vec<(i64, &'a Change)>)> {
    let mut n = 0;
    tables
        .iter()
        .map(|t| {
            let rows = t
                .changes
                .iter()
                .map(|c| {
                    n += 1;
                    (n, c)
                })
                .collect();
            (*t, rows)
        })
        .collect()
}

fn lit(v: &Value) -> String {
    match v {
        None => "NULL".into(),
        Some(s) => literal(s),
    }
}

fn typed(v: &Value, ty: &str) -> String {
    format!("{}::{ty}", lit(v))
}

/// The key values of a change, typed.
fn key_of(t: &TableDelta, c: &Change) -> Vec<String> {
    t.key
        .iter()
        .map(|k| {
            let ty = type_of(t, k);
            let v = match (&c.before, &c.after) {
                (Some(b), _) => t
                    .compared
                    .iter()
                    .position(|x| x == k)
                    .and_then(|i| b[i].clone()),
                (None, Some(a)) => t
                    .columns
                    .iter()
                    .position(|x| x == k)
                    .and_then(|i| a[i].clone()),
                (None, None) => None,
            };
            typed(&v, ty)
        })
        .collect()
}

fn type_of<'a>(t: &'a TableDelta, c: &str) -> &'a str {
    t.columns
        .iter()
        .position(|x| x == c)
        .map(|i| t.types[i].as_str())
        .unwrap_or("text")
}

/// The after values on the compared columns.
fn after_compared(t: &TableDelta, a: &[Value]) -> Vec<Value> {
    t.compared
        .iter()
        .map(|c| {
            t.columns
                .iter()
                .position(|x| x == c)
                .and_then(|i| a[i].clone())
        })
        .collect()
}

fn row_of(prefix: &str, cols: &[String]) -> String {
    let items: Vec<String> = cols
        .iter()
        .map(|c| format!("{prefix}.{}::text", ident(c)))
        .collect();
    format!("ROW({})", items.join(", "))
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// `ROW(v.b0, v.b1, …)`.
fn vrow(prefix: &str, n: usize) -> String {
    let items: Vec<String> = names(prefix, n).iter().map(|c| format!("v.{c}")).collect();
    format!("ROW({})", items.join(", "))
}

/// `x."k" = v.k0 AND …`.
fn key_match(t: &TableDelta) -> String {
    t.key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("x.{} = v.k{i}", ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The conflict checks of one table's changes.
fn checks(t: &TableDelta, rows: &[(i64, &Change)]) -> Vec<String> {
    let table = qualified(&t.schema, &t.name);
    let label = literal(&t.label());
    let target = row_of("x", &t.compared);
    let m = t.compared.len();
    let mut out = Vec::new();
    let late: Vec<String> = rows
        .iter()
        .filter(|(_, c)| c.late)
        .map(|(n, c)| {
            format!(
                "({n}, {label}, {}, {})",
                literal(c.kind.word()),
                literal(LATE)
            )
        })
        .collect();
    if !late.is_empty() {
        out.push(format!(
            "INSERT INTO pg_temp.salvage_conflicts VALUES {} ON CONFLICT (n) DO NOTHING",
            late.join(", ")
        ));
    }
    for kind in [ChangeKind::Update, ChangeKind::Delete, ChangeKind::Insert] {
        let of_kind: Vec<&(i64, &Change)> = rows.iter().filter(|(_, c)| c.kind == kind).collect();
        if t.key.is_empty() && kind != ChangeKind::Delete {
            continue;
        }
        for chunk in of_kind.chunks(BATCH) {
            let vals: Vec<String> = chunk
                .iter()
                .map(|(n, c)| {
                    let mut items = vec![n.to_string()];
                    items.extend(key_of(t, c));
                    let cmp = match kind {
                        ChangeKind::Insert => after_compared(t, c.after.as_deref().unwrap_or(&[])),
                        _ => c.before.clone().unwrap_or_default(),
                    };
                    items.extend(cmp.iter().map(|v| typed(v, "text")));
                    format!("({})", items.join(", "))
                })
                .collect();
            let mut cols = vec!["n".to_string()];
            cols.extend(names("k", t.key.len()));
            cols.extend(names("b", m));
            let same = format!("{target} IS NOT DISTINCT FROM {}", vrow("b", m));
            let cond = match (kind, t.key.is_empty()) {
                (ChangeKind::Insert, _) => format!(
                    "EXISTS (SELECT 1 FROM ONLY {table} x WHERE {} AND NOT ({same}))",
                    key_match(t)
                ),
                (_, false) => format!(
                    "NOT EXISTS (SELECT 1 FROM ONLY {table} x WHERE {} AND {same})",
                    key_match(t)
                ),
                (_, true) => format!("NOT EXISTS (SELECT 1 FROM ONLY {table} x WHERE {same})"),
            };
            let why = match kind {
                ChangeKind::Insert => {
                    "the key was taken in the target since the rollback, with other values"
                }
                _ => "the row was changed or deleted in the target since the rollback",
            };
            out.push(format!(
                "INSERT INTO pg_temp.salvage_conflicts SELECT v.n, {label}, {}, {} FROM (VALUES {}) v({}) WHERE {cond} \
                 ON CONFLICT (n) DO NOTHING",
                literal(kind.word()),
                literal(why),
                vals.join(", "),
                cols.join(", ")
            ));
        }
    }
    out
}

fn not_conflicting(guard: bool, n: &str) -> String {
    if guard {
        format!(" AND NOT EXISTS (SELECT 1 FROM pg_temp.salvage_conflicts c WHERE c.n = {n})")
    } else {
        String::new()
    }
}

/// The deletes of one table.
fn deletes(t: &TableDelta, rows: &[(i64, &Change)], guard: bool) -> Vec<String> {
    let table = qualified(&t.schema, &t.name);
    let dels: Vec<&(i64, &Change)> = rows
        .iter()
        .filter(|(_, c)| c.kind == ChangeKind::Delete)
        .collect();
    let mut out = Vec::new();
    if t.key.is_empty() {
        for (n, c) in dels {
            let before: Vec<String> = c
                .before
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .map(|v| typed(v, "text"))
                .collect();
            out.push(format!(
                "DELETE FROM ONLY {table} x WHERE x.ctid = (SELECT y.ctid FROM ONLY {table} y WHERE {} IS NOT DISTINCT FROM ROW({}) LIMIT 1){}",
                row_of("y", &t.compared),
                before.join(", "),
                not_conflicting(guard, &n.to_string())
            ));
        }
        return out;
    }
    for chunk in dels.chunks(BATCH) {
        let vals: Vec<String> = chunk
            .iter()
            .map(|(n, c)| {
                let mut items = vec![n.to_string()];
                items.extend(key_of(t, c));
                format!("({})", items.join(", "))
            })
            .collect();
        let mut cols = vec!["n".to_string()];
        cols.extend(names("k", t.key.len()));
        out.push(format!(
            "DELETE FROM ONLY {table} x USING (VALUES {}) v({}) WHERE {}{}",
            vals.join(", "),
            cols.join(", "),
            key_match(t),
            not_conflicting(guard, "v.n")
        ));
    }
    out
}

/// The inserts and updates of one table.
fn upserts(t: &TableDelta, rows: &[(i64, &Change)], guard: bool) -> Vec<String> {
    let table = qualified(&t.schema, &t.name);
    let ups: Vec<&(i64, &Change)> = rows
        .iter()
        .filter(|(_, c)| c.kind != ChangeKind::Delete)
        .collect();
    let cols: Vec<String> = t.columns.iter().map(|c| ident(c)).collect();
    let on_conflict = if t.key.is_empty() {
        String::new()
    } else {
        let keys: Vec<String> = t.key.iter().map(|k| ident(k)).collect();
        let set: Vec<String> = t
            .columns
            .iter()
            .filter(|c| !t.key.contains(c))
            .map(|c| format!("{0} = EXCLUDED.{0}", ident(c)))
            .collect();
        if set.is_empty() {
            format!(" ON CONFLICT ({}) DO NOTHING", keys.join(", "))
        } else {
            format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                keys.join(", "),
                set.join(", ")
            )
        }
    };
    let mut out = Vec::new();
    for chunk in ups.chunks(BATCH) {
        let vals: Vec<String> = chunk
            .iter()
            .map(|(n, c)| {
                let mut items = vec![n.to_string()];
                let after = c.after.as_deref().unwrap_or(&[]);
                items.extend(after.iter().zip(&t.types).map(|(v, ty)| typed(v, ty)));
                format!("({})", items.join(", "))
            })
            .collect();
        let mut vcols = vec!["salvage_n".to_string()];
        vcols.extend(cols.iter().cloned());
        let select: Vec<String> = cols.iter().map(|c| format!("v.{c}")).collect();
        out.push(format!(
            "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM (VALUES {}) v({}) WHERE true{}{on_conflict}",
            cols.join(", "),
            select.join(", "),
            vals.join(", "),
            vcols.join(", "),
            not_conflicting(guard, "v.salvage_n")
        ));
    }
    out
}

/// Every sequence moved forward to at least the replaced state's value.
fn sequences(d: &DatabaseDelta) -> Vec<String> {
    d.sequences
        .iter()
        .filter_map(|s| {
            let v = s.last_value?;
            let name = literal(&qualified(&s.schema, &s.name));
            Some(format!(
                "SELECT pg_catalog.setval(q.c, greatest(coalesce(pg_catalog.pg_sequence_last_value(q.c), {v}), {v})) \
                 FROM (SELECT pg_catalog.to_regclass({name}) AS c) q WHERE q.c IS NOT NULL"
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salvage::SequenceValue;

    fn table(name: &str, changes: Vec<Change>) -> TableDelta {
        TableDelta {
            schema: "public".into(),
            name: name.into(),
            status: TableStatus::Changed,
            key: vec!["id".into()],
            columns: vec!["id".into(), "v".into()],
            types: vec!["integer".into(), "text".into()],
            compared: vec!["id".into(), "v".into()],
            carried: vec![],
            missing: vec![],
            inserted: 0,
            updated: 0,
            deleted: 0,
            rows_read: 0,
            snapshot_rows: 0,
            written_after_rollback: 0,
            changes,
        }
    }

    fn change(kind: ChangeKind, v: &str) -> Change {
        let row = Some(vec![Some("1".to_string()), Some(v.to_string())]);
        Change {
            kind,
            before: (kind != ChangeKind::Insert).then(|| row.clone()).flatten(),
            after: (kind != ChangeKind::Delete).then_some(row).flatten(),
            late: false,
        }
    }

    fn delta() -> DatabaseDelta {
        DatabaseDelta {
            name: "dms".into(),
            live: "dms".into(),
            kept: "dms__before".into(),
            identities_used: true,
            // The child is listed first: the order must come from the keys.
            tables: vec![
                table(
                    "child",
                    vec![
                        change(ChangeKind::Insert, "c"),
                        change(ChangeKind::Delete, "d"),
                    ],
                ),
                table("parent", vec![change(ChangeKind::Update, "it's")]),
            ],
            sequences: vec![SequenceValue {
                schema: "public".into(),
                name: "parent_id_seq".into(),
                last_value: Some(42),
            }],
            references: vec![("public.child".into(), "public.parent".into())],
            settings: "SET timezone = 'UTC'".into(),
            secret: false,
            secret_columns: vec![],
        }
    }

    fn position(st: &[String], needle: &str) -> usize {
        st.iter()
            .position(|s| s.contains(needle))
            .unwrap_or_else(|| panic!("no statement with {needle}: {st:#?}"))
    }

    #[test]
    fn parents_are_upserted_first_and_children_deleted_first() {
        let st = export_sql(&delta(), OnConflict::Fail);
        assert_eq!(st.first().map(String::as_str), Some("BEGIN"));
        assert_eq!(st.last().map(String::as_str), Some("COMMIT"));
        let list = position(&st, LIST_CONFLICTS);
        let check = position(&st, "RAISE EXCEPTION");
        let del_child = position(&st, "DELETE FROM ONLY \"public\".\"child\"");
        let up_parent = position(&st, "INSERT INTO \"public\".\"parent\"");
        let up_child = position(&st, "INSERT INTO \"public\".\"child\"");
        let seq = position(&st, "setval");
        assert!(list < check && check < del_child && del_child < up_parent);
        assert!(up_parent < up_child && up_child < seq);
        assert!(st[up_parent].contains("'it''s'::text"), "{}", st[up_parent]);
        assert!(st[up_parent].contains("ON CONFLICT (\"id\") DO UPDATE SET \"v\" = EXCLUDED.\"v\""));
    }

    #[test]
    fn skip_guards_every_change_and_overwrite_none() {
        let skip = export_sql(&delta(), OnConflict::Skip);
        let guarded = |st: &[String]| st.iter().filter(|s| s.contains("c.n = v.")).count();
        assert_eq!(guarded(&skip), 3, "{skip:#?}");
        assert!(!skip.iter().any(|s| s.contains("RAISE EXCEPTION")));
        let over = export_sql(&delta(), OnConflict::Overwrite);
        assert_eq!(guarded(&over), 0);
        // The checks run (and list conflicts) whatever the choice.
        assert!(over
            .iter()
            .any(|s| s.starts_with("INSERT INTO pg_temp.salvage_conflicts")));
    }
}
