//! The plan of one file tree: the files added, removed and changed since
//! the snapshot (from its listing and the live files, nothing downloaded),
//! and the fingerprint of the live listing.
//!
//! A secret tree (`secret = true`) shows only counts and a hash of its
//! change list: no path of it and nothing of its contents enters the plan.

use crate::diff::{diff_live_component, Change, ChangeKind};
use crate::error::Result;
use crate::id::Id;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::snapshot::{FilesComponent, Node, NodeKind};
use crate::source::live::walk_live;
use crate::system::FilesEntry;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Up to this many live entries, the plan keeps a digest per entry, so
/// that a later check can count what moved.
pub const MAX_LISTED_ENTRIES: usize = 20_000;

/// What rolling one file tree back would change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FilesPlan {
    /// The component name (`[[files]]` `name`).
    pub name: String,
    /// The captured path; omitted for a secret tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The tree is secret: only counts and a hash are shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// Entries that exist live but not in the snapshot (the rollback removes them).
    pub added: u64,
    /// Entries of the snapshot missing live (the rollback brings them back).
    pub removed: u64,
    /// Entries that differ (content, mode, owner, type, target, times).
    pub changed: u64,
    /// Every change, snapshot → live; empty for a secret tree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// SHA-256 of the change list (one `kind path details` line each).
    pub changes_sha256: String,
    /// Bytes of file content in the snapshot.
    pub bytes: u64,
    /// The exclude globs the tree was scanned with (those of the capture).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// Live entries when the plan was made.
    pub live_entries: u64,
    /// Per live entry, `hash(path):hash(metadata)` (16 hex digits each),
    /// sorted; only up to [`MAX_LISTED_ENTRIES`] entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_listing: Option<Vec<String>>,
}

/// Plans one file tree, from its live listing if `walked` ahead. Returns
/// the plan and the live fingerprint.
pub fn plan_files(
    repo: &Repository,
    entry: &FilesEntry,
    fc: &FilesComponent,
    walked: Option<Result<Vec<Node>>>,
    progress: &dyn Progress,
) -> Result<(FilesPlan, String)> {
    progress.phase(&format!("planning files {}", entry.name), None);
    // The fingerprint and the digests need only the walk: they are made
    // while the snapshot's listing loads.
    let prints = |live: &[Node]| {
        // Past the limit no digest is kept: none is made.
        let digests = (live.len() <= MAX_LISTED_ENTRIES).then(|| entry_digests(live));
        (listing_fingerprint(live), digests)
    };
    let (changes, live, (fingerprint, listing)) =
        diff_live_component(repo, fc, walked.transpose()?, prints, progress)?;
    let count = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count() as u64;
    let plan = FilesPlan {
        name: entry.name.clone(),
        path: (!entry.secret).then(|| fc.path.clone()),
        secret: entry.secret,
        added: count(ChangeKind::Added),
        removed: count(ChangeKind::Removed),
        changed: count(ChangeKind::Modified),
        changes_sha256: change_list_hash(&changes),
        changes: if entry.secret { Vec::new() } else { changes },
        bytes: fc.stats.bytes,
        excludes: fc.excludes.clone(),
        live_entries: live.len() as u64,
        live_listing: listing,
    };
    Ok((plan, fingerprint))
}

/// The live listing of a tree, metadata only (nothing is read), as the
/// fingerprint needs it.
pub fn live_listing(path: &Path, excludes: &[String]) -> Result<Vec<Node>> {
    walk_live(path, excludes, false)
}

/// One entry as the fingerprint sees it: path, type, size, mode, owner,
/// modification and change times (ns), link target, device number.
fn entry_line(n: &Node) -> String {
    let kind = match n.kind {
        NodeKind::File => "file",
        NodeKind::Dir => "dir",
        NodeKind::Symlink => "symlink",
        NodeKind::Fifo => "fifo",
        NodeKind::Chardev => "chardev",
        NodeKind::Blockdev => "blockdev",
    };
    let size = if n.kind == NodeKind::File { n.size } else { 0 };
    format!(
        "{}\0{kind}\0{size}\0{:o}\0{}:{}\0{}.{:09}\0{}.{:09}\0{}\0{}",
        n.path_raw.as_deref().unwrap_or(&n.path),
        n.mode,
        n.uid,
        n.gid,
        n.mtime,
        n.mtime_nsec,
        n.ctime,
        n.ctime_nsec,
        n.target_raw
            .as_deref()
            .or(n.target.as_deref())
            .unwrap_or(""),
        n.rdev
    )
}

/// SHA-256 over the sorted live listing.
pub fn listing_fingerprint(live: &[Node]) -> String {
    let mut lines: Vec<String> = live.iter().map(entry_line).collect();
    lines.sort();
    let mut text = lines.join("\n");
    text.push('\n');
    Id::sha256(text.as_bytes()).to_hex()
}

/// `hash(path):hash(entry)` per entry, sorted: what a check compares to
/// count what moved, without the plan holding any path.
pub fn entry_digests(live: &[Node]) -> Vec<String> {
    let short = |s: &str| Id::sha256(s.as_bytes()).to_hex()[..16].to_string();
    let mut v: Vec<String> = live
        .iter()
        .map(|n| {
            let path = n.path_raw.as_deref().unwrap_or(&n.path);
            format!("{}:{}", short(path), short(&entry_line(n)))
        })
        .collect();
    v.sort();
    v
}

/// SHA-256 of a change list, one `kind path details` line per change.
fn change_list_hash(changes: &[Change]) -> String {
    let mut text = String::new();
    for c in changes {
        let kind = match c.kind {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
        };
        text.push_str(&format!("{kind} {} {}\n", c.path, c.details.join(",")));
    }
    Id::sha256(text.as_bytes()).to_hex()
}
