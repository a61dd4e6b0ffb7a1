//! File listings: one [`Node`] per file, directory, symlink, FIFO or device
//! node, stored as JSON lines chunked into tree blobs.
//!
//! Names and link targets are bytes on Unix. JSON strings cannot hold
//! arbitrary bytes, so a name that is not valid UTF-8 is stored twice: a
//! readable form (invalid bytes replaced) for display and matching, and the
//! exact bytes in hex, which restore uses.

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
    /// A named pipe.
    Fifo,
    /// A character device node.
    Chardev,
    /// A block device node.
    Blockdev,
}

/// One entry of a file listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Path relative to the component root, `/`-separated; `""` is the root.
    /// When the name is not valid UTF-8 this is a readable form and
    /// [`Node::path_raw`] holds the exact bytes.
    pub path: String,
    /// The exact path bytes (hex), present only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_raw: Option<String>,
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
    /// The exact target bytes (hex), present only when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_raw: Option<String>,
    /// Hard links: the path of the first entry of this listing that is the
    /// same inode. The node still carries size, SHA-256 and blobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardlink: Option<String>,
    /// The exact bytes of [`Node::hardlink`] (hex), only when not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardlink_raw: Option<String>,
    /// Device number (`st_rdev`) of a device node.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rdev: u64,
    /// Set when the file had holes (fewer blocks allocated than its size):
    /// restore leaves its zero blocks unallocated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sparse: bool,
    /// Extended attributes (including ACLs and file capabilities), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
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

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    /// Its name, e.g. `user.origin` or `security.capability`.
    pub name: String,
    /// Its value (hex).
    pub value: String,
}

/// Splits exact bytes into the stored pair: a readable string, and the hex
/// of the bytes when they are not valid UTF-8.
pub fn encode_name(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), None),
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(hex::encode(bytes)),
        ),
    }
}

fn decode_name(text: &str, raw: &Option<String>) -> Result<Vec<u8>> {
    match raw {
        None => Ok(text.as_bytes().to_vec()),
        Some(h) => hex::decode(h).map_err(|_| {
            Error::corrupt(format!(
                "a file listing entry ({text}) has a malformed raw name"
            ))
        }),
    }
}

impl Node {
    /// The exact path bytes, relative to the component root.
    pub fn path_bytes(&self) -> Result<Vec<u8>> {
        decode_name(&self.path, &self.path_raw)
    }

    /// Sets the path from its exact bytes.
    pub fn set_path(&mut self, bytes: &[u8]) {
        (self.path, self.path_raw) = encode_name(bytes);
    }

    /// The exact symlink target bytes.
    pub fn target_bytes(&self) -> Result<Vec<u8>> {
        decode_name(self.target.as_deref().unwrap_or(""), &self.target_raw)
    }

    /// Sets the symlink target from its exact bytes.
    pub fn set_target(&mut self, bytes: &[u8]) {
        let (t, raw) = encode_name(bytes);
        self.target = Some(t);
        self.target_raw = raw;
    }

    /// The exact bytes of the path this node is a hard link to.
    pub fn hardlink_bytes(&self) -> Result<Option<Vec<u8>>> {
        match &self.hardlink {
            None => Ok(None),
            Some(h) => decode_name(h, &self.hardlink_raw).map(Some),
        }
    }

    /// Records that this node is a hard link to the entry at `bytes`.
    pub fn set_hardlink(&mut self, bytes: &[u8]) {
        let (h, raw) = encode_name(bytes);
        self.hardlink = Some(h);
        self.hardlink_raw = raw;
    }

    /// Major and minor number of a device node.
    pub fn device_numbers(&self) -> (u32, u32) {
        (rustix::fs::major(self.rdev), rustix::fs::minor(self.rdev))
    }

    /// The value bytes of each extended attribute.
    pub fn xattr_values(&self) -> Result<Vec<(&str, Vec<u8>)>> {
        self.xattrs
            .iter()
            .map(|x| {
                hex::decode(&x.value)
                    .map(|v| (x.name.as_str(), v))
                    .map_err(|_| {
                        Error::corrupt(format!(
                            "extended attribute {} of {} is malformed",
                            x.name, self.path
                        ))
                    })
            })
            .collect()
    }
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

/// A listing written node by node: a capture holds its JSON lines (about
/// half the memory of the nodes), not the nodes.
#[derive(Debug, Default)]
pub struct TreeWriter {
    buf: Vec<u8>,
}

impl TreeWriter {
    /// Appends one node.
    pub fn push(&mut self, n: &Node) -> Result<()> {
        serde_json::to_writer(&mut self.buf, n)?;
        self.buf.push(b'\n');
        Ok(())
    }

    /// Stores the listing as tree blobs; returns the blob ids.
    pub fn save(self, saver: &Saver) -> Result<Vec<Id>> {
        Ok(saver.save_bytes(&self.buf, BlobKind::Tree)?.blobs)
    }
}

/// Serializes a listing and stores it as tree blobs; returns the blob ids.
pub fn save_tree(saver: &Saver, nodes: &[Node]) -> Result<Vec<Id>> {
    let mut w = TreeWriter::default();
    for n in nodes {
        w.push(n)?;
    }
    w.save(saver)
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
