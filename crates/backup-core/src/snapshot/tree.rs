//! File listings: one [`Node`] per file, directory or symlink, stored as
//! JSON lines chunked into tree blobs.

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repository::{BlobKind, Repository, Saver};
use serde::{Deserialize, Serialize};

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

/// One entry of a file listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Path relative to the component root, `/`-separated; `""` is the root.
    pub path: String,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Nanoseconds part of the modification time.
    pub mtime_nsec: u32,
    /// Size in bytes (files).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// SHA-256 of the content (files, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Content blobs in order (files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<Id>,
    /// Link target (symlinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Inode number (to recognise unchanged files in the next capture).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inode: u64,
    /// Change time, seconds (ditto).
    #[serde(default, skip_serializing_if = "is_zero_i")]
    pub ctime: i64,
    /// Change time, nanoseconds part (ditto).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub ctime_nsec: u32,
    /// Set when the file changed while it was read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed_during_read: bool,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_i(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// Serializes a listing and stores it as tree blobs; returns the blob ids.
pub fn save_tree(saver: &Saver, nodes: &[Node]) -> Result<Vec<Id>> {
    let mut buf = Vec::with_capacity(nodes.len() * 160);
    for n in nodes {
        serde_json::to_writer(&mut buf, n)?;
        buf.push(b'\n');
    }
    Ok(saver.save_bytes(&buf, BlobKind::Tree)?.blobs)
}

/// Loads a listing stored by [`save_tree`].
pub fn load_tree(repo: &Repository, blobs: &[Id]) -> Result<Vec<Node>> {
    let data = repo.read_stream(blobs)?;
    let mut out = Vec::new();
    for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        out.push(
            serde_json::from_slice(line)
                .map_err(|e| Error::corrupt(format!("a file listing entry is malformed: {e}")))?,
        );
    }
    Ok(out)
}
