//! The file source: directory trees and single files.
//!
//! Keeps names as exact bytes, mode, owner, mtime, symlinks, empty
//! directories, FIFOs and device nodes, hard links (within one tree), holes
//! of sparse files and extended attributes (ACLs and file capabilities
//! among them); excludes by glob; records each file's SHA-256; detects files
//! that change while they are read. Sockets are left out, with a warning:
//! the program that listens on one creates it again. Everything left out or
//! read while changing is counted, so the run ends with warnings.

use super::xattrs::read_xattrs;
use crate::error::{Error, ErrorKind, Result};
use crate::progress::Progress;
use crate::repository::{BlobKind, Saver, StreamError};
use crate::snapshot::{FileStats, FilesComponent, Node, NodeKind, TreeWriter};
use globset::{Glob, GlobSet, GlobSetBuilder};
use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Options of the file source.
#[derive(Debug, Clone, Default)]
pub struct FilesOptions {
    /// Glob patterns to leave out. A pattern without `/` matches a file name
    /// anywhere; one with `/` matches the absolute path.
    pub excludes: Vec<String>,
    /// Skip unreadable files with a warning instead of failing.
    pub skip_unreadable: bool,
    /// Read every file, even those unchanged since the parent snapshot.
    pub force: bool,
    /// Leave extended attributes (and so ACLs and capabilities) out.
    pub no_xattrs: bool,
}

/// The previous capture of the same tree, by exact path: files whose size,
/// times and inode are unchanged reuse its blobs without being read again.
pub type Parent = HashMap<Vec<u8>, Node>;

/// A listing as a [`Parent`]: its nodes by path (a node whose path cannot
/// be decoded is left out, and its file read again).
pub fn parent_of(nodes: impl IntoIterator<Item = Node>) -> Parent {
    nodes
        .into_iter()
        .filter_map(|n| Some((n.path_bytes().ok()?, n)))
        .collect()
}

fn unchanged(old: &Node, meta: &Metadata, index: &crate::repository::Index) -> bool {
    same_file(old, meta) && old.blobs.iter().all(|b| index.contains(b))
}

/// Whether a listed file node still describes the file with this `lstat`:
/// same size, modification and change times and inode, and it was not
/// changing while read. The change time cannot be set back by a program,
/// so the content is then the listed one.
fn same_file(old: &Node, meta: &Metadata) -> bool {
    let now = (
        meta.len(),
        (meta.mtime(), meta.mtime_nsec() as u32),
        (meta.ctime(), meta.ctime_nsec() as u32),
        meta.ino(),
    );
    reusable(old) && stat_of(old) == now
}

/// A listed file node whose content a matching `lstat` vouches for.
pub(super) fn reusable(old: &Node) -> bool {
    old.kind == NodeKind::File && !old.changed_during_read && old.inode != 0 && old.sha256.is_some()
}

/// Size, modification and change times, and inode, as a node records them.
pub(super) type Stat = (u64, (i64, u32), (i64, u32), u64);

pub(super) fn stat_of(n: &Node) -> Stat {
    (
        n.size,
        (n.mtime, n.mtime_nsec),
        (n.ctime, n.ctime_nsec),
        n.inode,
    )
}

/// Builds the exclude matcher, rejecting bad patterns with a clear error.
pub fn build_excludes(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g =
            Glob::new(p).map_err(|e| Error::usage(format!("bad --exclude pattern {p:?}: {e}")))?;
        b.add(g);
    }
    b.build()
        .map_err(|e| Error::usage(format!("bad --exclude patterns: {e}")))
}

pub(super) fn excluded(set: &GlobSet, abs: &Path) -> bool {
    if set.is_empty() {
        return false;
    }
    set.is_match(abs) || abs.file_name().is_some_and(|n| set.is_match(n))
}

/// Makes a source path absolute and checks that it exists.
pub fn absolute_source(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path)
        .map_err(|e| Error::io(format!("resolving {}", path.display()), e))?;
    match std::fs::symlink_metadata(&abs) {
        Ok(_) => Ok(abs),
        Err(e) => Err(Error::new(
            ErrorKind::Source,
            format!(
                "cannot capture {}: it does not exist or cannot be read",
                abs.display()
            ),
        )
        .with_source(e)),
    }
}

/// What a directory entry is, as a listing node kind; `None` for sockets.
pub(super) fn kind_of(meta: &Metadata) -> Option<NodeKind> {
    let ft = meta.file_type();
    Some(if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_file() {
        NodeKind::File
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_char_device() {
        NodeKind::Chardev
    } else if ft.is_block_device() {
        NodeKind::Blockdev
    } else {
        return None;
    })
}

pub(super) fn base_node(rel: &[u8], kind: NodeKind, meta: &Metadata) -> Node {
    let mut n = Node {
        path: String::new(),
        path_raw: None,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec() as u32,
        size: 0,
        sha256: None,
        blobs: Vec::new(),
        target: None,
        target_raw: None,
        hardlink: None,
        hardlink_raw: None,
        rdev: 0,
        sparse: false,
        xattrs: Vec::new(),
        inode: meta.ino(),
        ctime: meta.ctime(),
        ctime_nsec: meta.ctime_nsec() as u32,
        changed_during_read: false,
    };
    n.set_path(rel);
    if matches!(kind, NodeKind::Chardev | NodeKind::Blockdev) {
        n.rdev = meta.rdev();
    }
    if kind == NodeKind::File {
        n.sparse = meta.blocks().saturating_mul(512) < meta.len();
    }
    n
}

struct Entry {
    rel: Vec<u8>,
    meta: Metadata,
}

/// One capture of one tree: its entries become nodes, with what was left
/// out or changed counted and reported.
struct Capture<'a> {
    saver: &'a Saver,
    options: &'a FilesOptions,
    parent: Option<&'a Parent>,
    progress: &'a dyn Progress,
    root: PathBuf,
    listing: TreeWriter,
    stats: FileStats,
    warnings: Vec<String>,
    /// First node of each multiply linked inode, by (device, inode).
    links: HashMap<(u64, u64), Node>,
}

impl Capture<'_> {
    /// The absolute path of an entry.
    fn abs(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(std::ffi::OsStr::from_bytes(rel))
        }
    }

    /// Records a warning and shows it.
    fn warn(&mut self, msg: String) {
        self.progress.warn(&msg);
        self.warnings.push(msg);
    }

    /// An entry that cannot be read: fails the capture, or with
    /// `--skip-unreadable` is counted and recorded as a warning.
    fn unreadable(&mut self, msg: String) -> Result<()> {
        if !self.options.skip_unreadable {
            return Err(Error::new(
                ErrorKind::Source,
                format!("{msg}; fix its permissions, leave it out with --exclude, or pass --skip-unreadable"),
            ));
        }
        self.stats.skipped += 1;
        self.warn(msg);
        Ok(())
    }

    /// Walks the tree: every entry that is not excluded, with its metadata.
    fn walk(&mut self, excludes: &GlobSet) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let root = self.root.clone();
        let walker = walkdir::WalkDir::new(&root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !excluded(excludes, e.path()));
        for item in walker {
            let item = match item {
                Ok(i) => i,
                Err(e) => {
                    let path = e.path().map(|p| p.display().to_string());
                    let msg = format!("cannot read {}", path.unwrap_or_default());
                    self.unreadable(format!("{msg}: {}", io_reason(&e)))?;
                    continue;
                }
            };
            let abs = item.path();
            let rel = abs
                .strip_prefix(&root)
                .unwrap_or(Path::new(""))
                .as_os_str()
                .as_bytes()
                .to_vec();
            match item.metadata() {
                Ok(meta) => entries.push(Entry { rel, meta }),
                Err(e) => {
                    let msg = format!("cannot stat {}: {}", abs.display(), io_reason(&e));
                    self.unreadable(msg)?;
                }
            }
        }
        Ok(entries)
    }

    /// Turns one entry into a node (none for what is left out).
    fn add(&mut self, e: Entry) -> Result<()> {
        let abs = self.abs(&e.rel);
        let Some(kind) = kind_of(&e.meta) else {
            self.stats.skipped += 1;
            self.warn(format!(
                "skipped {}: sockets are not captured (the program that listens on one creates it again)",
                abs.display()
            ));
            return Ok(());
        };
        let mut n = base_node(&e.rel, kind, &e.meta);
        if !self.options.no_xattrs && !self.attach_xattrs(&mut n, &abs)? {
            return Ok(());
        }
        match kind {
            NodeKind::Dir => self.stats.dirs += 1,
            NodeKind::Symlink => {
                let target = std::fs::read_link(&abs)
                    .map_err(|err| Error::io(format!("reading link {}", abs.display()), err))?;
                n.set_target(target.as_os_str().as_bytes());
                self.stats.symlinks += 1;
            }
            NodeKind::Fifo | NodeKind::Chardev | NodeKind::Blockdev => self.stats.special += 1,
            NodeKind::File => return self.add_file(n, e, &abs),
        }
        self.listing.push(&n)
    }

    /// Reads the entry's extended attributes into the node; `false` when
    /// they could not be read and the entry was skipped.
    fn attach_xattrs(&mut self, n: &mut Node, abs: &Path) -> Result<bool> {
        match read_xattrs(abs) {
            Ok((xattrs, bad)) => {
                n.xattrs = xattrs;
                if !bad.is_empty() {
                    self.stats.skipped += 1;
                    self.warn(format!(
                        "left out extended attributes of {} whose names are not UTF-8: {}",
                        abs.display(),
                        bad.join(", ")
                    ));
                }
                Ok(true)
            }
            Err(err) => {
                let msg = format!(
                    "cannot read the extended attributes of {}: {err} (or pass --no-xattrs)",
                    abs.display()
                );
                self.unreadable(msg)?;
                Ok(false)
            }
        }
    }

    /// A regular file: a hard link to an earlier one, unchanged since the
    /// parent snapshot, or read now.
    fn add_file(&mut self, mut n: Node, e: Entry, abs: &Path) -> Result<()> {
        crate::progress::check_cancelled(self.progress)?;
        let key = (e.meta.dev(), e.meta.ino());
        if e.meta.nlink() > 1 {
            if let Some(f) = self.links.get(&key) {
                let first_path = f.path_bytes()?;
                (n.size, n.sha256, n.blobs) = (f.size, f.sha256.clone(), f.blobs.clone());
                n.set_hardlink(&first_path);
                self.stats.files += 1;
                self.stats.hardlinks += 1;
                self.progress.inc(n.size);
                return self.listing.push(&n);
            }
        }
        let reuse = self
            .parent
            .and_then(|p| p.get(&e.rel))
            .filter(|o| !self.options.force && unchanged(o, &e.meta, &self.saver.index()))
            .cloned();
        if let Some(old) = reuse {
            (n.size, n.sha256, n.blobs) = (old.size, old.sha256, old.blobs);
            self.progress.inc(n.size);
        } else {
            let Some(read) = capture_file(self.saver, &e, abs, self.progress)? else {
                let msg = format!("cannot read {}: permission denied", abs.display());
                return self.unreadable(msg);
            };
            if read.changed_during_read {
                self.stats.changed += 1;
                self.warn(format!(
                    "{} changed while it was read: its copy may be inconsistent",
                    abs.display()
                ));
            }
            n = Node {
                xattrs: n.xattrs,
                ..read
            };
        }
        self.stats.files += 1;
        self.stats.bytes += n.size;
        self.listing.push(&n)?;
        if e.meta.nlink() > 1 {
            self.links.insert(key, n);
        }
        Ok(())
    }
}

/// The OS reason of a walk error, without repeating the path.
pub(super) fn io_reason(e: &walkdir::Error) -> String {
    e.io_error()
        .map(|io| io.to_string())
        .unwrap_or_else(|| e.to_string())
}

/// Captures one tree (or file) into a component.
pub fn capture_files(
    saver: &Saver,
    root: &Path,
    options: &FilesOptions,
    parent: Option<&Parent>,
    progress: &dyn Progress,
) -> Result<FilesComponent> {
    let root = absolute_source(root)?;
    let excludes = build_excludes(&options.excludes)?;
    let mut cap = Capture {
        saver,
        options,
        parent,
        progress,
        root: root.clone(),
        listing: TreeWriter::default(),
        stats: FileStats::default(),
        warnings: Vec::new(),
        links: HashMap::new(),
    };
    let entries = cap.walk(&excludes)?;
    let total: u64 = entries
        .iter()
        .filter(|e| e.meta.is_file())
        .map(|e| e.meta.len())
        .sum();
    progress.phase(&format!("reading {}", root.display()), Some(total));
    for e in entries {
        cap.add(e)?;
    }
    let tree = std::mem::take(&mut cap.listing).save(saver)?;
    Ok(FilesComponent {
        name: String::new(),
        path: root.to_string_lossy().into_owned(),
        tree,
        stats: cap.stats,
        excludes: options.excludes.clone(),
        no_xattrs: options.no_xattrs,
        secret: false,
        warnings: cap.warnings,
    })
}

/// Opens a file for reading without moving its access time
/// (`O_NOATIME`): reading it for a backup is not a use of it. Only the
/// file's owner or a privileged process may ask for that; anyone else
/// opens it plainly.
pub(crate) fn open_unseen(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let unseen = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path);
    match unseen {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => File::open(path),
        other => other,
    }
}

/// Reads one file; `None` when it cannot be opened for lack of permission.
fn capture_file(
    saver: &Saver,
    e: &Entry,
    abs: &Path,
    progress: &dyn Progress,
) -> Result<Option<Node>> {
    let file = match open_unseen(abs) {
        Ok(f) => f,
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => return Ok(None),
        Err(err) => {
            return Err(
                Error::new(ErrorKind::Source, format!("cannot open {}", abs.display()))
                    .with_source(err),
            )
        }
    };
    let before = file
        .metadata()
        .map_err(|err| Error::io(format!("stat {}", abs.display()), err))?;
    let stored = saver
        .save_sized(&file, before.len(), BlobKind::Data, |n| progress.inc(n))
        .map_err(|err| match err {
            StreamError::Read(io) => {
                Error::new(ErrorKind::Source, format!("cannot read {}", abs.display()))
                    .with_source(io)
            }
            StreamError::Repo(r) => r,
        })?;
    let after = std::fs::symlink_metadata(abs).ok();
    let changed = match &after {
        Some(a) => {
            a.mtime() != before.mtime()
                || a.mtime_nsec() != before.mtime_nsec()
                || a.ctime() != before.ctime()
                || a.ctime_nsec() != before.ctime_nsec()
                || a.len() != before.len()
                || a.ino() != before.ino()
        }
        None => true,
    } || stored.size != before.len();
    let mut n = base_node(&e.rel, NodeKind::File, &before);
    n.size = stored.size;
    n.sha256 = Some(stored.sha256);
    n.blobs = stored.blobs;
    n.changed_during_read = changed;
    Ok(Some(n))
}
