//! `backup snapshots`.

use crate::exit;
use crate::output::{human_bytes, Output};
use crate::settings::Settings;
use anyhow::Result;
use backup_core::snapshot::list_snapshots;

/// Flags of `snapshots`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only snapshots with this tag (repeatable: all must match).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Only snapshots from this host.
    #[arg(long)]
    host: Option<String>,
}

/// Runs `snapshots`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let repo = s.open()?;
    let mut rows = Vec::new();
    let mut damaged = Vec::new();
    for (id, snap) in list_snapshots(&repo)? {
        match snap {
            Ok(snap) => {
                if a.tags.iter().all(|t| snap.tags.contains(t))
                    && a.host.as_ref().is_none_or(|h| &snap.host == h)
                {
                    rows.push((id, snap));
                }
            }
            Err(e) => damaged.push((id, e.to_string())),
        }
    }
    if out.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(id, s)| {
                let st = s.file_stats();
                serde_json::json!({
                    "id": id.to_hex(), "short_id": id.short(), "time": s.time, "host": s.host,
                    "username": s.username, "tags": s.tags, "label": s.label,
                    "files": st.files, "bytes": st.bytes + s.databases().map(|d| d.bytes()).sum::<u64>(),
                    "databases": s.databases().map(|d| d.database.clone()).collect::<Vec<_>>(),
                    "tool_version": s.tool_version,
                })
            })
            .collect();
        out.print_json(&serde_json::Value::Array(v));
    } else {
        println!(
            "{:<10} {:<20} {:<16} {:<20} {:>8} {:>10}  LABEL",
            "ID", "TIME (UTC)", "HOST", "TAGS", "FILES", "SIZE"
        );
        for (id, s) in &rows {
            let st = s.file_stats();
            println!(
                "{:<10} {:<20} {:<16} {:<20} {:>8} {:>10}  {}",
                id.short(),
                s.time.format("%Y-%m-%d %H:%M:%S"),
                s.host,
                s.tags.join(","),
                st.files,
                human_bytes(st.bytes + s.databases().map(|d| d.bytes()).sum::<u64>()),
                s.label.as_deref().unwrap_or("")
            );
        }
        out.say(format!("{} snapshot(s)", rows.len()));
    }
    for (id, e) in &damaged {
        eprintln!("error: snapshot {id} cannot be read: {e}");
    }
    Ok(if damaged.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
