//! The report: figures with their targets and PASS/MISS, as a plain and a Markdown table.

use std::fmt::Write as _;

use super::{KIB, MIB};

/// One line of the report; `pass` is `None` for figures without a target.
pub struct Row {
    name: String,
    value: String,
    target: String,
    pass: Option<bool>,
}

impl Row {
    pub fn new(name: &str, value: String, target: &str, pass: Option<bool>) -> Self {
        Self {
            name: name.to_string(),
            value,
            target: target.to_string(),
            pass,
        }
    }

    /// A figure without a target.
    pub fn info(name: &str, value: String) -> Self {
        Self::new(name, value, "", None)
    }

    /// A peak memory (max RSS, `None` when not measured), with the target `< target_mib MiB`
    /// when there is one.
    pub fn rss(name: &str, kib: Option<u64>, target_mib: Option<u64>) -> Self {
        let target = target_mib.map_or(String::new(), |t| format!("< {t} MiB"));
        match kib {
            Some(k) => Self::new(
                name,
                format!("{:.1} MiB", k as f64 / 1024.0),
                &target,
                target_mib.map(|t| k < t * 1024),
            ),
            None => Self::new(name, "n/a".into(), &target, None),
        }
    }

    fn verdict(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "",
        }
    }
}

/// Prints the rows as a plain table, how many targets were met, then the rows as a Markdown
/// table under "Markdown (`setup`):".
pub fn print(rows: &[Row], setup: &str) {
    println!("\n{}", plain_table(rows));
    let misses = rows.iter().filter(|r| r.pass == Some(false)).count();
    let checks = rows.iter().filter(|r| r.pass.is_some()).count();
    println!("{} of {checks} targets met\n", checks - misses);
    println!("Markdown ({setup}):\n");
    println!("{}", markdown_table(rows));
}

fn plain_table(rows: &[Row]) -> String {
    let w0 = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(6);
    let w1 = rows.iter().map(|r| r.value.len()).max().unwrap_or(0).max(5);
    let w2 = rows
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<w0$}  {:<w1$}  {:<w2$}  result",
        "metric", "value", "target"
    );
    let _ = writeln!(s, "{}", "-".repeat(w0 + w1 + w2 + 12));
    for r in rows {
        let _ = writeln!(
            s,
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            r.name,
            r.value,
            r.target,
            r.verdict()
        );
    }
    s
}

fn markdown_table(rows: &[Row]) -> String {
    let mut s = String::from("| Metric | Value | Target | Result |\n|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            r.name.trim().replace('|', "\\|"),
            r.value.replace('|', "\\|"),
            r.target,
            r.verdict()
        );
    }
    s
}

/// A size in B, KiB, MiB or GiB.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    } else if bytes >= MIB {
        format!("{:.1} MiB", b / MIB as f64)
    } else if bytes >= KIB {
        format!("{:.1} KiB", b / KIB as f64)
    } else {
        format!("{bytes} B")
    }
}

/// `part` as a percentage of `whole`.
pub fn pct(part: u64, whole: u64) -> f64 {
    100.0 * part as f64 / whole.max(1) as f64
}
