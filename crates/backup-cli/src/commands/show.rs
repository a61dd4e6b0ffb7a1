//! `backup show`.

use crate::exit;
use crate::output::{human_bytes, Output};
use crate::settings::Settings;
use anyhow::Result;
use backup_core::snapshot::{load_tree, NodeKind};

/// Flags of `show`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Snapshot id, unique prefix, or `latest`.
    #[arg(default_value = "latest")]
    snapshot: String,
    /// With `latest`: the newest snapshot carrying these tags.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Show only the summary, not every file.
    #[arg(long)]
    summary: bool,
}

/// Runs `show`.
pub fn run(s: &Settings, a: Args, out: Output) -> Result<i32> {
    let repo = s.open()?;
    let (id, snap) = super::pick(&repo, &a.snapshot, &a.tags)?;
    let mut comps = Vec::new();
    for fc in snap.file_components() {
        let nodes = if a.summary {
            Vec::new()
        } else {
            load_tree(&repo, &fc.tree)?
        };
        comps.push((fc, nodes));
    }
    if out.json {
        let v = serde_json::json!({
            "id": id.to_hex(),
            "snapshot": snap,
            "databases": snap.databases().collect::<Vec<_>>(),
            "components": comps.iter().map(|(fc, nodes)| serde_json::json!({
                "kind": "files", "name": fc.name(), "path": fc.path, "stats": fc.stats, "warnings": fc.warnings,
                "files": nodes.iter().map(|n| serde_json::json!({
                    "path": n.path, "type": n.kind, "mode": format!("{:o}", n.mode), "uid": n.uid, "gid": n.gid,
                    "mtime": n.mtime, "size": n.size, "sha256": n.sha256, "target": n.target,
                    "changed_during_read": n.changed_during_read, "hardlink": n.hardlink,
                    "rdev": n.rdev, "sparse": n.sparse,
                    "xattrs": n.xattrs.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        out.print_json(&v);
        return Ok(exit::OK);
    }
    println!("snapshot {id}");
    println!("  time:    {}", snap.time.format("%Y-%m-%d %H:%M:%S UTC"));
    println!("  host:    {} (user {})", snap.host, snap.username);
    println!("  tags:    {}", snap.tags.join(", "));
    if let Some(l) = &snap.label {
        println!("  label:   {l}");
    }
    println!("  tool:    {}", snap.tool_version);
    if let Some(orig) = &snap.imported_from {
        println!("  imported from snapshot {orig}");
    }
    println!(
        "  stored:  {} new of {} read, {} written, in {:.1}s",
        human_bytes(snap.summary.new_bytes),
        human_bytes(snap.summary.bytes_read),
        human_bytes(snap.summary.stored_bytes),
        snap.summary.duration_secs
    );
    for d in snap.databases() {
        println!(
            "database {} (PostgreSQL {}, {}, collate {}): {} tables, {} rows, {}, {} sequences, {} large objects",
            d.database,
            d.server_version,
            d.encoding,
            d.collate,
            d.tables.len(),
            d.rows(),
            human_bytes(d.bytes()),
            d.sequences.len(),
            d.large_objects.len()
        );
        if !a.summary {
            for t in &d.tables {
                println!(
                    "  table {}.{}: {} rows, {} in {} part(s)",
                    t.schema,
                    t.name,
                    t.rows,
                    human_bytes(t.bytes),
                    t.streams.len()
                );
            }
        }
    }
    for (fc, nodes) in &comps {
        println!(
            "files {}: {} files, {} dirs, {} links, {}",
            fc.path,
            fc.stats.files,
            fc.stats.dirs,
            fc.stats.symlinks,
            human_bytes(fc.stats.bytes)
        );
        for w in &fc.warnings {
            println!("  warning: {w}");
        }
        for n in nodes {
            let full = backup_core::snapshot::full_path(&fc.path, &n.path);
            match n.kind {
                NodeKind::File => println!(
                    "  {:04o} {:>5}:{:<5} {:>12}  {}  {full}",
                    n.mode,
                    n.uid,
                    n.gid,
                    n.size,
                    n.sha256.as_deref().unwrap_or("")
                ),
                NodeKind::Dir => println!(
                    "  {:04o} {:>5}:{:<5} {:>12}  {:<64}  {full}/",
                    n.mode, n.uid, n.gid, "-", "(dir)"
                ),
                NodeKind::Symlink => println!(
                    "  {:>4} {:>5}:{:<5} {:>12}  {:<64}  {full} -> {}",
                    "link",
                    n.uid,
                    n.gid,
                    "-",
                    "(symlink)",
                    n.target.as_deref().unwrap_or("")
                ),
                kind => println!(
                    "  {:04o} {:>5}:{:<5} {:>12}  {:<64}  {full}",
                    n.mode,
                    n.uid,
                    n.gid,
                    "-",
                    {
                        let (major, minor) = n.device_numbers();
                        format!("({kind:?} {major}:{minor})").to_lowercase()
                    }
                ),
            }
        }
    }
    Ok(exit::OK)
}
