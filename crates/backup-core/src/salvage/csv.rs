//! The delta as CSV: one file per table and kind of change,
//! `<schema>.<table>.<kind>.csv`, with a header line. Inserted and updated
//! rows carry the replaced state's columns, deleted rows the compared
//! columns as the snapshot had them. NULL is an empty unquoted field; an
//! empty string is `""`.

use super::{ChangeKind, DatabaseDelta, Value};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes the CSV files of `d` into `dir` (created if missing); returns
/// the files written.
pub fn write_csv(d: &DatabaseDelta, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let mut files = Vec::new();
    for t in d.tables.iter().filter(|t| !t.changes.is_empty()) {
        for kind in [ChangeKind::Insert, ChangeKind::Update, ChangeKind::Delete] {
            let rows: Vec<&Vec<Value>> = t
                .changes
                .iter()
                .filter(|c| c.kind == kind)
                .filter_map(|c| match kind {
                    ChangeKind::Delete => c.before.as_ref(),
                    _ => c.after.as_ref(),
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            let header = match kind {
                ChangeKind::Delete => &t.compared,
                _ => &t.columns,
            };
            let path = dir.join(format!("{}.{}.{}.csv", t.schema, t.name, kind.word()));
            let mut text = line(&header.iter().map(|h| Some(h.clone())).collect::<Vec<_>>());
            for r in rows {
                text.push_str(&line(r));
            }
            let mut f = std::fs::File::create(&path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
            f.write_all(text.as_bytes())
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            files.push(path);
        }
    }
    Ok(files)
}

/// One CSV line (RFC 4180 quoting), ending in `\n`.
pub fn line(values: &[Value]) -> String {
    let fields: Vec<String> = values.iter().map(field).collect();
    format!("{}\n", fields.join(","))
}

fn field(v: &Value) -> String {
    match v {
        None => String::new(),
        Some(s) if s.is_empty() || s.contains([',', '"', '\n', '\r']) => {
            format!("\"{}\"", s.replace('"', "\"\""))
        }
        Some(s) => s.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_tells_null_from_empty() {
        let l = line(&[
            None,
            Some(String::new()),
            Some("a,b".into()),
            Some("say \"hi\"".into()),
            Some("x".into()),
        ]);
        assert_eq!(l, ",\"\",\"a,b\",\"say \"\"hi\"\"\",x\n");
    }
}
