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
use sha2::Digest;
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
fn reusable(old: &Node) -> bool {
    old.kind == NodeKind::File && !old.changed_during_read && old.inode != 0 && old.sha256.is_some()
}

/// Size, modification and change times, and inode, as a node records them.
type Stat = (u64, (i64, u32), (i64, u32), u64);

fn stat_of(n: &Node) -> Stat {
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

fn excluded(set: &GlobSet, abs: &Path) -> bool {
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
fn kind_of(meta: &Metadata) -> Option<NodeKind> {
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

fn base_node(rel: &[u8], kind: NodeKind, meta: &Metadata) -> Node {
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
fn io_reason(e: &walkdir::Error) -> String {
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

/// Walks a live tree into listing nodes without reading any file: file
/// nodes carry their size from `lstat` and no `sha256` (see
/// [`hash_unless_listed`] to hash them afterwards). Nothing is stored;
/// unreadable entries are errors; sockets are left out, as capture leaves
/// them out. A missing root is an empty tree.
pub fn walk_live(root: &Path, excludes: &[String], xattrs: bool) -> Result<Vec<Node>> {
    let set = build_excludes(excludes)?;
    let mut out = Vec::new();
    if std::fs::symlink_metadata(root).is_err() {
        return Ok(out);
    }
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !excluded(&set, e.path()));
    for item in walker {
        let item = item.map_err(|e| {
            Error::new(ErrorKind::Source, format!("cannot read the live tree: {e}"))
        })?;
        let abs = item.path();
        let rel = abs.strip_prefix(root).unwrap_or(Path::new(""));
        let meta = item.metadata().map_err(|e| {
            Error::new(
                ErrorKind::Source,
                format!("cannot stat {}: {}", abs.display(), io_reason(&e)),
            )
        })?;
        let Some(kind) = kind_of(&meta) else { continue };
        let mut n = base_node(rel.as_os_str().as_bytes(), kind, &meta);
        if xattrs {
            n.xattrs = read_xattrs(abs)
                .map_err(|e| Error::io(format!("reading the attributes of {}", abs.display()), e))?
                .0;
        }
        match kind {
            NodeKind::Symlink => {
                let t = std::fs::read_link(abs)
                    .map_err(|e| Error::io(format!("reading link {}", abs.display()), e))?;
                n.set_target(t.as_os_str().as_bytes());
            }
            NodeKind::File => n.size = meta.len(),
            _ => {}
        }
        out.push(n);
    }
    Ok(out)
}

/// Gives every file of a live listing that [`walk_live`] made its
/// SHA-256: the listed node's where it still
/// describes the file (size, times and inode, the rule by which a capture
/// reuses a file unread), else read now. Walking first and hashing after
/// lets the walk run while the listing loads. Returns how many files were
/// read.
pub fn hash_unless_listed(
    root: &Path,
    live: &mut [Node],
    listing: &HashMap<String, Node>,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut read = 0;
    for n in live.iter_mut().filter(|n| n.kind == NodeKind::File) {
        let known = listing
            .get(&n.path)
            .filter(|old| reusable(old) && stat_of(old) == stat_of(n));
        match known.and_then(|old| old.sha256.clone()) {
            Some(sha) => n.sha256 = Some(sha),
            None => {
                // A single-file component's one node is the root itself.
                let rel = n.path_bytes()?;
                let abs = if rel.is_empty() {
                    root.to_path_buf()
                } else {
                    root.join(std::ffi::OsStr::from_bytes(&rel))
                };
                hash_live(&abs, n, progress)?;
                read += 1;
            }
        }
    }
    Ok(read)
}

fn hash_live(abs: &Path, n: &mut Node, progress: &dyn Progress) -> Result<()> {
    let mut f = open_unseen(abs).map_err(|e| {
        Error::new(ErrorKind::Source, format!("cannot read {}", abs.display())).with_source(e)
    })?;
    let mut h = sha2::Sha256::new();
    let size = std::io::copy(&mut f, &mut h)
        .map_err(|e| Error::io(format!("reading {}", abs.display()), e))?;
    progress.inc(size);
    n.size = size;
    n.sha256 = Some(hex::encode(sha2::Digest::finalize(h)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(sha2::Sha256::digest(bytes))
    }

    #[test]
    fn walked_files_are_hashed_afterwards_unless_the_listing_vouches_for_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("same"), b"kept").unwrap();
        std::fs::write(dir.path().join("edited"), b"new content").unwrap();
        let mut live = walk_live(dir.path(), &[], false).unwrap();
        assert!(live.iter().all(|n| n.sha256.is_none()));
        // The listing vouches for `same` (with a made-up digest that only a
        // reuse could give) and is stale for `edited` (another size).
        let mut listing = HashMap::new();
        for n in &live {
            let mut old = n.clone();
            old.sha256 = Some("listed".into());
            if n.path == "edited" {
                old.size += 1;
            }
            listing.insert(n.path.clone(), old);
        }
        let read = hash_unless_listed(dir.path(), &mut live, &listing, &NoProgress).unwrap();
        assert_eq!(read, 1, "only the stale file is read");
        let of = |p: &str| live.iter().find(|n| n.path == p).unwrap().sha256.clone();
        assert_eq!(of("same").as_deref(), Some("listed"));
        assert_eq!(of("edited"), Some(sha(b"new content")));
    }

    #[test]
    fn reading_for_a_backup_leaves_the_access_time_alone() {
        use testkit::{read_at, unread_since_long_ago};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("main.js");
        std::fs::write(&file, b"console.log(1)").unwrap();
        let long_ago = unread_since_long_ago(&file);
        std::io::Read::read_to_end(&mut open_unseen(&file).unwrap(), &mut Vec::new()).unwrap();
        assert_eq!(read_at(&file), long_ago);
        let mut live = walk_live(&file, &[], false).unwrap();
        hash_unless_listed(&file, &mut live, &HashMap::new(), &NoProgress).unwrap();
        assert_eq!(read_at(&file), long_ago);
        // A plain read does move it here: the check above can fail.
        std::fs::read(&file).unwrap();
        assert!(read_at(&file) > long_ago);
    }

    #[test]
    fn a_single_file_root_is_hashed_at_its_own_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dms.conf");
        std::fs::write(&file, b"server {}").unwrap();
        let mut live = walk_live(&file, &[], false).unwrap();
        assert_eq!(live.len(), 1);
        let read = hash_unless_listed(&file, &mut live, &HashMap::new(), &NoProgress).unwrap();
        assert_eq!(read, 1);
        assert_eq!(live[0].sha256, Some(sha(b"server {}")));
    }
}
