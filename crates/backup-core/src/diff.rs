//! `diff`: what changed between two snapshots, or between a snapshot and
//! the live tree, from manifests (no data download).

use crate::error::Result;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::{full_path, load_tree, FilesComponent, Node, NodeKind, Snapshot};
use crate::source::live::{hash_unless_listed, walk_live};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Only in the newer side.
    Added,
    /// Only in the older side.
    Removed,
    /// In both, different.
    Modified,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Added, removed or modified.
    pub kind: ChangeKind,
    /// The absolute path.
    pub path: String,
    /// What differs (`content`, `mode`, `owner`, `type`, `target`, `mtime`).
    pub details: Vec<String>,
}

fn flatten(repo: &Repository, snap: &Snapshot) -> Result<BTreeMap<String, Node>> {
    let mut out = BTreeMap::new();
    for fc in snap.file_components() {
        for n in load_tree(repo, &fc.tree)? {
            out.insert(full_path(&fc.path, &n.path), n);
        }
    }
    Ok(out)
}

fn compare(a: &Node, b: &Node) -> Vec<String> {
    let mut d = Vec::new();
    if a.kind != b.kind {
        d.push("type".to_string());
        return d;
    }
    if a.kind == NodeKind::File && (a.sha256 != b.sha256 || a.size != b.size) {
        d.push("content".into());
    }
    if a.kind == NodeKind::Symlink && (a.target != b.target || a.target_raw != b.target_raw) {
        d.push("target".into());
    }
    if a.rdev != b.rdev {
        d.push("device".into());
    }
    if a.xattrs != b.xattrs {
        d.push("xattrs".into());
    }
    if a.kind != NodeKind::Symlink && a.mode != b.mode {
        d.push(format!("mode {:o}->{:o}", a.mode, b.mode));
    }
    if a.uid != b.uid || a.gid != b.gid {
        d.push(format!("owner {}:{}->{}:{}", a.uid, a.gid, b.uid, b.gid));
    }
    if a.kind == NodeKind::File && (a.mtime != b.mtime || a.mtime_nsec != b.mtime_nsec) {
        d.push("mtime".into());
    }
    d
}

fn diff_maps<K: Ord + AsRef<str>, N: std::borrow::Borrow<Node>>(
    a: &BTreeMap<K, N>,
    b: &BTreeMap<K, N>,
) -> Vec<Change> {
    let mut out = Vec::new();
    for (p, na) in a {
        match b.get(p) {
            None => out.push(Change {
                kind: ChangeKind::Removed,
                path: p.as_ref().to_string(),
                details: vec![],
            }),
            Some(nb) => {
                let d = compare(na.borrow(), nb.borrow());
                if !d.is_empty() {
                    out.push(Change {
                        kind: ChangeKind::Modified,
                        path: p.as_ref().to_string(),
                        details: d,
                    });
                }
            }
        }
    }
    for p in b.keys() {
        if !a.contains_key(p) {
            out.push(Change {
                kind: ChangeKind::Added,
                path: p.as_ref().to_string(),
                details: vec![],
            });
        }
    }
    out.sort_by(|x, y| x.path.cmp(&y.path));
    out
}

/// Changes from snapshot `a` to snapshot `b`: files, and for databases
/// each table (rows and content digest), sequence and large object, as
/// `postgres:<db>/...` paths. DDL changes are not compared.
pub fn diff_snapshots(repo: &Repository, a: &Snapshot, b: &Snapshot) -> Result<Vec<Change>> {
    let mut out = diff_maps(&flatten(repo, a)?, &flatten(repo, b)?);
    out.extend(diff_databases(a, b));
    Ok(out)
}

fn db_map(s: &Snapshot, rename: Option<&str>) -> BTreeMap<String, (String, Vec<String>)> {
    let mut m = BTreeMap::new();
    for d in s.databases() {
        let base = format!("postgres:{}", rename.unwrap_or(&d.database));
        for t in &d.tables {
            m.insert(
                format!("{base}/table {}.{}", t.schema, t.name),
                (
                    format!("{}:{}", t.rows, t.digest),
                    vec![format!("{} rows", t.rows)],
                ),
            );
        }
        for q in &d.sequences {
            m.insert(
                format!("{base}/sequence {}.{}", q.schema, q.name),
                (
                    format!("{}:{}", q.last_value, q.is_called),
                    vec![format!("value {}", q.last_value)],
                ),
            );
        }
        for l in &d.large_objects {
            m.insert(
                format!("{base}/large object {}", l.oid),
                (l.data.sha256.clone(), vec!["content".into()]),
            );
        }
    }
    m
}

fn diff_databases(a: &Snapshot, b: &Snapshot) -> Vec<Change> {
    // Two snapshots of one database each are compared whatever its name
    // (a copy restored under another name compares equal).
    let single = |s: &Snapshot| {
        let v: Vec<_> = s.databases().collect();
        (v.len() == 1).then(|| v[0].database.clone())
    };
    let name = match (single(a), single(b)) {
        (Some(_), Some(nb)) => Some(nb),
        _ => None,
    };
    let (ma, mb) = (db_map(a, name.as_deref()), db_map(b, name.as_deref()));
    let mut out = Vec::new();
    for (p, (ka, da)) in &ma {
        match mb.get(p) {
            None => out.push(Change {
                kind: ChangeKind::Removed,
                path: p.clone(),
                details: vec![],
            }),
            Some((kb, db)) if kb != ka => {
                let details = if da != db {
                    vec![format!("{} -> {}", da.join(""), db.join(""))]
                } else {
                    vec!["content".into()]
                };
                out.push(Change {
                    kind: ChangeKind::Modified,
                    path: p.clone(),
                    details,
                });
            }
            _ => {}
        }
    }
    for p in mb.keys() {
        if !ma.contains_key(p) {
            out.push(Change {
                kind: ChangeKind::Added,
                path: p.clone(),
                details: vec![],
            });
        }
    }
    out
}

/// What changed from a snapshot to the live trees, and how it was told.
#[derive(Debug, Clone, Default)]
pub struct LiveDiff {
    /// The changes, by full path.
    pub changes: Vec<Change>,
    /// Live files read and hashed.
    pub files_read: u64,
    /// Live files taken as captured without being read.
    pub files_trusted: u64,
}

/// Changes from snapshot `a` to the live trees it captured. Nothing is
/// downloaded; live files whose size, times and inode still match the
/// captured node are taken as unchanged without being read (the rule by
/// which a capture reuses them) unless `read_all`, which hashes every live
/// file.
pub fn diff_live(
    repo: &Repository,
    a: &Snapshot,
    read_all: bool,
    progress: &dyn Progress,
) -> Result<LiveDiff> {
    let mut captured = BTreeMap::new();
    let mut live = BTreeMap::new();
    let mut out = LiveDiff::default();
    for fc in a.file_components() {
        let root = Path::new(&fc.path);
        let walk = || Ok((walk_live(root, &fc.excludes, !fc.no_xattrs)?, ()));
        let Listings {
            captured: c,
            live: l,
            read,
            ..
        } = live_listing(repo, fc, read_all, walk, progress)?;
        let files = l.iter().filter(|n| n.kind == NodeKind::File).count() as u64;
        out.files_read += read;
        out.files_trusted += files - read;
        captured.extend(c.into_values().map(|n| (full_path(&fc.path, &n.path), n)));
        live.extend(l.into_iter().map(|n| (full_path(&fc.path, &n.path), n)));
    }
    out.changes = diff_maps(&captured, &live);
    Ok(out)
}

/// Changes from one captured file component to its live tree, by the rule
/// of [`diff_live`] without `read_all`; the live listing comes back hashed,
/// with relative paths as in the snapshot. `walked` is the live tree's
/// walk when it was made already (with the component's excludes and
/// extended attributes setting); without it the tree is walked here.
/// `beside` runs on the live listing, before it is hashed, while the
/// snapshot's listing loads; its result comes back last.
pub fn diff_live_component<R>(
    repo: &Repository,
    fc: &FilesComponent,
    walked: Option<Vec<Node>>,
    beside: impl FnOnce(&[Node]) -> R,
    progress: &dyn Progress,
) -> Result<(Vec<Change>, Vec<Node>, R)> {
    let live_side = || {
        let live = match walked {
            Some(live) => live,
            None => walk_live(Path::new(&fc.path), &fc.excludes, !fc.no_xattrs)?,
        };
        let r = beside(&live);
        Ok((live, r))
    };
    let Listings {
        captured,
        live,
        beside: r,
        ..
    } = live_listing(repo, fc, false, live_side, progress)?;
    // Both sides are relative to the same root: compared by relative path
    // (which sorts as the full path does), only the changes get the root.
    let mut changes = diff_maps(&by_path(captured.values()), &by_path(live.iter()));
    for c in &mut changes {
        c.path = full_path(&fc.path, &c.path);
    }
    Ok((changes, live, r))
}

/// Both listings of one file component.
struct Listings<R> {
    /// The snapshot's, by relative path.
    captured: HashMap<String, Node>,
    /// The live tree's, hashed.
    live: Vec<Node>,
    /// How many live files were read to hash them.
    read: u64,
    /// What the live side made beside its listing.
    beside: R,
}

/// A file component's captured listing by relative path, loaded while
/// `live_side` gives the live tree's listing (and whatever else it made on
/// this thread), which is then hashed: every file with `read_all`, else
/// those the captured listing no longer describes.
fn live_listing<R>(
    repo: &Repository,
    fc: &FilesComponent,
    read_all: bool,
    live_side: impl FnOnce() -> Result<(Vec<Node>, R)>,
    progress: &dyn Progress,
) -> Result<Listings<R>> {
    let root = Path::new(&fc.path);
    let (captured, (mut live, r)) = std::thread::scope(|s| {
        let loading = s.spawn(|| -> Result<HashMap<String, Node>> {
            let nodes = load_tree(repo, &fc.tree)?;
            Ok(nodes.into_iter().map(|n| (n.path.clone(), n)).collect())
        });
        let live = live_side();
        let captured = loading.join().unwrap_or_else(|_| {
            Err(crate::error::Error::new(
                crate::error::ErrorKind::Source,
                "loading the snapshot listing panicked",
            ))
        });
        Ok::<_, crate::error::Error>((captured?, live?))
    })?;
    let trusted = if read_all { &HashMap::new() } else { &captured };
    let read = hash_unless_listed(root, &mut live, trusted, progress)?;
    Ok(Listings {
        captured,
        live,
        read,
        beside: r,
    })
}

/// Listing nodes by their relative path, borrowed (not copied).
fn by_path<'a>(nodes: impl Iterator<Item = &'a Node>) -> BTreeMap<&'a str, &'a Node> {
    nodes.map(|n| (n.path.as_str(), n)).collect()
}
