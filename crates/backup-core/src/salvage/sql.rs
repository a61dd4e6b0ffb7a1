//! SQL text and row access shared by the comparison: column expressions
//! over a table aliased `x`, COPY text escaping, and a cursor loop that
//! keeps client memory bounded on large tables.

use super::Value;
use crate::error::Result;
use crate::source::postgres::catalog::ident;
use crate::source::postgres::conninfo::db_error;
use postgres::{Client, Row};

/// Rows fetched per round trip of a cursor.
const FETCH: usize = 5000;

/// `ARRAY[x."a"::text, …]::text[]`: the columns as text values.
pub fn text_array(cols: &[String]) -> String {
    if cols.is_empty() {
        return "'{}'::text[]".into();
    }
    let items: Vec<String> = cols
        .iter()
        .map(|c| format!("x.{}::text", ident(c)))
        .collect();
    format!("ARRAY[{}]::text[]", items.join(", "))
}

/// `json_build_array(x."a"::text, …)::text`: the columns as one text that
/// is equal exactly when every value's text form is.
pub fn row_text(cols: &[String]) -> String {
    let items: Vec<String> = cols
        .iter()
        .map(|c| format!("x.{}::text", ident(c)))
        .collect();
    format!("json_build_array({})::text", items.join(", "))
}

/// `x."a" = s."a" AND …`: the key columns of `x` and `s` equal.
pub fn key_join(key: &[String], other: &str) -> String {
    key.iter()
        .map(|k| format!("x.{0} = {other}.{0}", ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `x."a", x."b"`.
pub fn select_list(cols: &[String]) -> String {
    cols.iter()
        .map(|c| format!("x.{}", ident(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One value in COPY text form.
pub fn copy_field(v: &Value) -> String {
    match v {
        None => "\\N".into(),
        Some(s) => {
            let mut out = String::with_capacity(s.len());
            for ch in s.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
            out
        }
    }
}

/// Runs `sql` through a cursor, calling `f` on every row; returns the
/// number of rows.
pub fn each_row(c: &mut Client, sql: &str, mut f: impl FnMut(&Row) -> Result<()>) -> Result<u64> {
    c.batch_execute(&format!("DECLARE salvage_rows NO SCROLL CURSOR FOR {sql}"))
        .map_err(|e| db_error("reading rows", e))?;
    let mut n = 0;
    loop {
        let rows = c
            .query(&format!("FETCH {FETCH} FROM salvage_rows"), &[])
            .map_err(|e| db_error("reading rows", e))?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            f(r)?;
            n += 1;
        }
    }
    c.batch_execute("CLOSE salvage_rows")
        .map_err(|e| db_error("reading rows", e))?;
    Ok(n)
}

/// The value list of a `text[]` column.
pub fn values(r: &Row, i: usize) -> Vec<Value> {
    r.get::<_, Vec<Option<String>>>(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_fields_escape_what_copy_text_needs() {
        assert_eq!(copy_field(&None), "\\N");
        assert_eq!(copy_field(&Some("a\tb\\c\nd".into())), "a\\tb\\\\c\\nd");
    }

    #[test]
    fn expressions_quote_identifiers() {
        let cols = vec!["id".to_string(), "Odd \"name\"".to_string()];
        assert_eq!(
            row_text(&cols),
            "json_build_array(x.\"id\"::text, x.\"Odd \"\"name\"\"\"::text)::text"
        );
        assert_eq!(text_array(&[]), "'{}'::text[]");
        assert_eq!(key_join(&cols[..1], "s"), "x.\"id\" = s.\"id\"");
    }
}
