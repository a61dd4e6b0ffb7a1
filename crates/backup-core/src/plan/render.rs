//! Plans for people: a text summary for the terminal and Markdown for a
//! change ticket. Both show what the plan holds and nothing more, so a
//! secret tree appears with its name, counts and change-list hash only.

use super::database::{DatabasePlan, RowSource, TablePlan};
use super::files::FilesPlan;
use super::Plan;
use crate::diff::{Change, ChangeKind};
use std::fmt::Write;

/// At most this many changed files per tree are listed (all are in the JSON).
const MAX_LISTED_FILES: usize = 50;

/// A readable summary of a plan.
pub fn render_text(p: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Rollback plan: back to {}", snapshot_line(p));
    let _ = writeln!(
        s,
        "Made {} on {}; plan hash {}.",
        time(&p.created),
        p.host,
        short(&p.hash)
    );
    for d in &p.databases {
        text_database(&mut s, d);
    }
    for f in &p.files {
        text_files(&mut s, f);
    }
    if !p.not_rolled_back.is_empty() {
        let _ = writeln!(
            s,
            "\nNot rolled back (the system description does not name them): {}",
            p.not_rolled_back.join(", ")
        );
    }
    let _ = writeln!(s, "\n{}", totals(p));
    s
}

fn text_database(s: &mut String, d: &DatabasePlan) {
    let _ = writeln!(s, "\nDatabase {} (live database {}):", d.name, d.database);
    let sc = &d.schema;
    if sc.is_empty() {
        let _ = writeln!(s, "  Schema: unchanged since the snapshot.");
    } else {
        let _ = writeln!(
            s,
            "  Schema changed since the snapshot (the rollback undoes it): {} added, {} removed, {} changed",
            sc.added.len(),
            sc.removed.len(),
            sc.changed.len()
        );
        for o in &sc.added {
            let _ = writeln!(s, "    + {}", o.object);
        }
        for o in &sc.removed {
            let _ = writeln!(s, "    - {}", o.object);
        }
        for c in &sc.changed {
            let _ = writeln!(s, "    ~ {}", c.object);
            for l in c.diff.iter().filter(|l| !l.starts_with(' ')) {
                let _ = writeln!(s, "        {l}");
            }
        }
    }
    let (moved, still) = split_tables(&d.tables);
    if moved.is_empty() {
        let _ = writeln!(
            s,
            "  Tables: {still} table(s), none written since the snapshot."
        );
    } else {
        let _ = writeln!(
            s,
            "  {:<32} {:>14} {:>22}  written since (estimate)",
            "Tables", "snapshot rows", "live rows"
        );
        for t in moved {
            let _ = writeln!(
                s,
                "    {:<30} {:>14} {:>22}  {}",
                t.table,
                opt(t.snapshot_rows),
                live_rows(t),
                written(t)
            );
            if let Some(n) = &t.note {
                let _ = writeln!(s, "      ({n})");
            }
        }
        if still > 0 {
            let _ = writeln!(s, "    and {still} other table(s), not written since");
        }
    }
    if let Some(n) = &d.statistics.note {
        let _ = writeln!(s, "  Note: {n}");
    }
}

fn text_files(s: &mut String, f: &FilesPlan) {
    if f.secret {
        let _ = writeln!(
            s,
            "\nFiles {} (secret: paths and contents not shown): {}; change list SHA-256 {}",
            f.name,
            counts(f),
            f.changes_sha256
        );
        return;
    }
    let _ = writeln!(
        s,
        "\nFiles {} ({}): {} since the snapshot",
        f.name,
        f.path.as_deref().unwrap_or(""),
        counts(f)
    );
    for c in f.changes.iter().take(MAX_LISTED_FILES) {
        let _ = writeln!(s, "    {}", change_line(c));
    }
    if f.changes.len() > MAX_LISTED_FILES {
        let _ = writeln!(
            s,
            "    … and {} more (all are in the plan JSON)",
            f.changes.len() - MAX_LISTED_FILES
        );
    }
}

/// The plan as Markdown for a change ticket: headings and tables.
pub fn render_markdown(p: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Rollback plan\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| Snapshot | `{}` |", p.snapshot);
    let _ = writeln!(s, "| Taken | {} |", time(&p.snapshot_time));
    if !p.snapshot_tags.is_empty() {
        let _ = writeln!(s, "| Tags | {} |", cell(&p.snapshot_tags.join(", ")));
    }
    if let Some(l) = &p.snapshot_label {
        let _ = writeln!(s, "| Label | {} |", cell(l));
    }
    let _ = writeln!(
        s,
        "| Plan made | {} on {} |",
        time(&p.created),
        cell(&p.host)
    );
    let _ = writeln!(s, "| Plan hash | `{}` |", p.hash);
    let _ = writeln!(s, "| To restore | {} |", bytes(p.bytes_to_restore));
    let _ = writeln!(s, "| Free space needed | {} |", bytes(p.free_space_needed));
    let _ = writeln!(
        s,
        "| Staging (estimate) | about {:.1} s |",
        p.estimated_duration_secs
    );
    let _ = writeln!(
        s,
        "| Downtime (estimate) | about {:.2} s for the switch, plus the stop, start and health-check hooks |",
        p.estimated_downtime_secs
    );
    for d in &p.databases {
        markdown_database(&mut s, d);
    }
    for f in &p.files {
        markdown_files(&mut s, f);
    }
    if !p.not_rolled_back.is_empty() {
        let _ = writeln!(
            s,
            "\n## Not rolled back\n\nThe system description does not name: {}.",
            cell(&p.not_rolled_back.join(", "))
        );
    }
    s
}

fn markdown_database(s: &mut String, d: &DatabasePlan) {
    let _ = writeln!(
        s,
        "\n## Database `{}` (live database `{}`)\n",
        d.name, d.database
    );
    let sc = &d.schema;
    if sc.is_empty() {
        let _ = writeln!(s, "Schema unchanged since the snapshot.\n");
    } else {
        let _ = writeln!(
            s,
            "### Schema changes since the snapshot (the rollback undoes them)\n"
        );
        for o in &sc.added {
            let _ = writeln!(s, "- added: `{}`", o.object);
        }
        for o in &sc.removed {
            let _ = writeln!(s, "- removed: `{}`", o.object);
        }
        for c in &sc.changed {
            let _ = writeln!(s, "- changed: `{}`", c.object);
        }
        for c in &sc.changed {
            let _ = writeln!(
                s,
                "\n`{}`:\n\n```diff\n{}\n```",
                c.object,
                c.diff.join("\n")
            );
        }
        s.push('\n');
    }
    let _ = writeln!(s, "### Tables\n");
    let _ = writeln!(
        s,
        "| Table | Snapshot rows | Live rows | Inserted | Updated | Deleted | Note |\n|---|---:|---:|---:|---:|---:|---|"
    );
    for t in &d.tables {
        let w = |f: fn(&super::Written) -> u64| {
            t.written
                .as_ref()
                .map(f)
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into())
        };
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            t.table,
            opt(t.snapshot_rows),
            live_rows(t),
            w(|w| w.inserted),
            w(|w| w.updated),
            w(|w| w.deleted),
            cell(t.note.as_deref().unwrap_or(""))
        );
    }
    let _ = writeln!(
        s,
        "\nWritten rows are estimates from the statistics counters (`pg_stat_user_tables`)."
    );
    if let Some(n) = &d.statistics.note {
        let _ = writeln!(s, "\n> {}", cell(n));
    }
}

fn markdown_files(s: &mut String, f: &FilesPlan) {
    if f.secret {
        let _ = writeln!(s, "\n## Files `{}` (secret)\n", f.name);
        let _ = writeln!(
            s,
            "{}. Paths and contents are not shown; change list SHA-256 `{}`.",
            capitalised(&counts(f)),
            f.changes_sha256
        );
        return;
    }
    let _ = writeln!(
        s,
        "\n## Files `{}` (`{}`)\n\n{} since the snapshot.\n",
        f.name,
        f.path.as_deref().unwrap_or(""),
        capitalised(&counts(f))
    );
    if f.changes.is_empty() {
        return;
    }
    let _ = writeln!(s, "| Change | Path | What |\n|---|---|---|");
    for c in f.changes.iter().take(MAX_LISTED_FILES * 4) {
        let _ = writeln!(
            s,
            "| {} | `{}` | {} |",
            kind_word(c.kind),
            c.path.replace('`', "'"),
            cell(&c.details.join(", "))
        );
    }
    if f.changes.len() > MAX_LISTED_FILES * 4 {
        let _ = writeln!(
            s,
            "\n… and {} more (all are in the plan JSON).",
            f.changes.len() - MAX_LISTED_FILES * 4
        );
    }
}

/// Tables that changed (listed) and how many did not.
fn split_tables(tables: &[TablePlan]) -> (Vec<&TablePlan>, usize) {
    let moved: Vec<&TablePlan> = tables
        .iter()
        .filter(|t| {
            t.note.is_some()
                || t.written.is_none_or(|w| w.total() > 0)
                || (t.live_rows_from == RowSource::Count && t.live_rows != t.snapshot_rows)
        })
        .collect();
    let still = tables.len() - moved.len();
    (moved, still)
}

fn snapshot_line(p: &Plan) -> String {
    let mut s = format!(
        "snapshot {} ({}",
        short(&p.snapshot),
        time(&p.snapshot_time)
    );
    if !p.snapshot_tags.is_empty() {
        let _ = write!(s, "; tags {}", p.snapshot_tags.join(", "));
    }
    if let Some(l) = &p.snapshot_label {
        let _ = write!(s, "; label {l:?}");
    }
    s.push(')');
    s
}

fn totals(p: &Plan) -> String {
    format!(
        "To restore: {}; free space needed: {}; staging takes about {:.1} s (estimate).\n\
         Downtime: about {:.2} s for the switch (renames), plus the stop, start and health-check hooks.",
        bytes(p.bytes_to_restore),
        bytes(p.free_space_needed),
        p.estimated_duration_secs,
        p.estimated_downtime_secs
    )
}

fn counts(f: &FilesPlan) -> String {
    format!(
        "{} added, {} removed, {} changed",
        f.added, f.removed, f.changed
    )
}

fn change_line(c: &Change) -> String {
    let mark = match c.kind {
        ChangeKind::Added => "+",
        ChangeKind::Removed => "-",
        ChangeKind::Modified => "M",
    };
    if c.details.is_empty() {
        format!("{mark} {}", c.path)
    } else {
        format!("{mark} {} ({})", c.path, c.details.join(", "))
    }
}

fn kind_word(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Added => "added",
        ChangeKind::Removed => "removed",
        ChangeKind::Modified => "changed",
    }
}

fn live_rows(t: &TablePlan) -> String {
    match (t.live_rows, t.live_rows_from) {
        (Some(n), RowSource::Count) => format!("{n} (count)"),
        (Some(n), RowSource::Counters) => format!("~{n} (counters)"),
        (Some(n), RowSource::Reltuples) => format!("~{n} (reltuples)"),
        _ => "-".into(),
    }
}

fn written(t: &TablePlan) -> String {
    match &t.written {
        Some(w) => format!(
            "{} inserted, {} updated, {} deleted",
            w.inserted, w.updated, w.deleted
        ),
        None => "unknown".into(),
    }
}

fn opt(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Text fit for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// A byte count for people (binary units).
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
