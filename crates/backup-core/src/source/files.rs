//! The file source: directory trees and single files.
//!
//! Keeps mode, owner, mtime, symlinks and empty directories; excludes by
//! glob; records each file's SHA-256; detects files that change while they
//! are read. Sockets, FIFOs and devices are skipped with a warning.

use crate::error::{Error, ErrorKind, Result};
use crate::progress::Progress;
use crate::repository::{BlobKind, Saver, StreamError};
use crate::snapshot::{save_tree, FileStats, FilesComponent, Node, NodeKind};
use globset::{Glob, GlobSet, GlobSetBuilder};
use sha2::Digest;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
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
}

/// The previous capture of the same tree: files whose size, times and
/// inode are unchanged reuse its blobs without being read again.
pub type Parent = std::collections::HashMap<String, Node>;

fn unchanged(old: &Node, meta: &Metadata, index: &crate::repository::Index) -> bool {
    old.kind == NodeKind::File
        && !old.changed_during_read
        && old.size == meta.len()
        && old.mtime == meta.mtime()
        && old.mtime_nsec == meta.mtime_nsec() as u32
        && old.ctime == meta.ctime()
        && old.ctime_nsec == meta.ctime_nsec() as u32
        && old.inode == meta.ino()
        && old.inode != 0
        && old.sha256.is_some()
        && old.blobs.iter().all(|b| index.contains(b))
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

fn base_node(rel: String, kind: NodeKind, meta: &Metadata) -> Node {
    Node {
        path: rel,
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
        inode: meta.ino(),
        ctime: meta.ctime(),
        ctime_nsec: meta.ctime_nsec() as u32,
        changed_during_read: false,
    }
}

struct Entry {
    rel: String,
    abs: PathBuf,
    meta: Metadata,
}

/// An entry that cannot be read: fails the capture, or with
/// `--skip-unreadable` is counted and recorded as a warning.
fn unreadable(
    msg: String,
    options: &FilesOptions,
    progress: &dyn Progress,
    warnings: &mut Vec<String>,
    skipped: &mut u64,
) -> Result<()> {
    if !options.skip_unreadable {
        return Err(Error::new(
            ErrorKind::Source,
            format!("{msg}; fix its permissions, leave it out with --exclude, or pass --skip-unreadable"),
        ));
    }
    progress.warn(&msg);
    warnings.push(msg);
    *skipped += 1;
    Ok(())
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
    let mut skipped = 0u64;
    let mut warnings = Vec::new();
    let mut entries = Vec::new();
    let walker = walkdir::WalkDir::new(&root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !excluded(&excludes, e.path()));
    for item in walker {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                let path = e
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                unreadable(
                    format!("cannot read {path}: {e}"),
                    options,
                    progress,
                    &mut warnings,
                    &mut skipped,
                )?;
                continue;
            }
        };
        let abs = item.path().to_path_buf();
        let rel_path = abs.strip_prefix(&root).unwrap_or(Path::new(""));
        let Some(rel) = rel_path.to_str() else {
            let msg = format!("skipped {}: its name is not valid UTF-8", abs.display());
            progress.warn(&msg);
            warnings.push(msg);
            continue;
        };
        let meta = match item.metadata() {
            Ok(m) => m,
            Err(e) => {
                unreadable(
                    format!("cannot stat {}: {e}", abs.display()),
                    options,
                    progress,
                    &mut warnings,
                    &mut skipped,
                )?;
                continue;
            }
        };
        entries.push(Entry {
            rel: rel.to_string(),
            abs,
            meta,
        });
    }
    let total: u64 = entries
        .iter()
        .filter(|e| e.meta.is_file())
        .map(|e| e.meta.len())
        .sum();
    progress.phase(&format!("reading {}", root.display()), Some(total));

    let mut nodes = Vec::with_capacity(entries.len());
    let mut stats = FileStats::default();
    for e in entries {
        let ft = e.meta.file_type();
        if ft.is_dir() {
            stats.dirs += 1;
            nodes.push(base_node(e.rel, NodeKind::Dir, &e.meta));
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&e.abs)
                .map_err(|err| Error::io(format!("reading link {}", e.abs.display()), err))?;
            let mut n = base_node(e.rel, NodeKind::Symlink, &e.meta);
            n.target = Some(target.to_string_lossy().into_owned());
            stats.symlinks += 1;
            nodes.push(n);
        } else if ft.is_file() {
            let reuse = parent
                .and_then(|p| p.get(&e.rel))
                .filter(|o| !options.force && unchanged(o, &e.meta, &saver.index()))
                .cloned();
            if let Some(old) = reuse {
                let mut n = base_node(e.rel, NodeKind::File, &e.meta);
                n.size = old.size;
                n.sha256 = old.sha256;
                n.blobs = old.blobs;
                progress.inc(n.size);
                stats.files += 1;
                stats.bytes += n.size;
                nodes.push(n);
                continue;
            }
            match capture_file(saver, &e, progress)? {
                Some(n) => {
                    if n.changed_during_read {
                        let msg = format!(
                            "{} changed while it was read: its copy may be inconsistent",
                            e.abs.display()
                        );
                        progress.warn(&msg);
                        warnings.push(msg);
                    }
                    stats.files += 1;
                    stats.bytes += n.size;
                    nodes.push(n);
                }
                None => {
                    let msg = format!("cannot read {}: permission denied", e.abs.display());
                    unreadable(msg, options, progress, &mut warnings, &mut skipped)?;
                }
            }
        } else {
            let msg = format!(
                "skipped {}: sockets, FIFOs and devices are not captured",
                e.abs.display()
            );
            warnings.push(msg);
        }
    }
    stats.skipped = skipped;
    let tree = save_tree(saver, &nodes)?;
    Ok(FilesComponent {
        path: root.to_string_lossy().into_owned(),
        tree,
        stats,
        excludes: options.excludes.clone(),
        warnings,
    })
}

/// Reads one file; `None` when it cannot be opened for lack of permission.
fn capture_file(saver: &Saver, e: &Entry, progress: &dyn Progress) -> Result<Option<Node>> {
    let file = match File::open(&e.abs) {
        Ok(f) => f,
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => return Ok(None),
        Err(err) => {
            return Err(Error::new(
                ErrorKind::Source,
                format!("cannot open {}", e.abs.display()),
            )
            .with_source(err))
        }
    };
    let before = file
        .metadata()
        .map_err(|err| Error::io(format!("stat {}", e.abs.display()), err))?;
    let stored = saver
        .save_sized(&file, before.len(), BlobKind::Data, |n| progress.inc(n))
        .map_err(|err| match err {
            StreamError::Read(io) => Error::new(
                ErrorKind::Source,
                format!("cannot read {}", e.abs.display()),
            )
            .with_source(io),
            StreamError::Repo(r) => r,
        })?;
    let after = std::fs::symlink_metadata(&e.abs).ok();
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
    let mut n = base_node(e.rel.clone(), NodeKind::File, &before);
    n.size = stored.size;
    n.sha256 = Some(stored.sha256);
    n.blobs = stored.blobs;
    n.changed_during_read = changed;
    Ok(Some(n))
}

/// Walks a live tree and hashes its files without storing anything (for
/// `diff --live`). Unreadable entries are reported as errors.
pub fn scan_live(root: &Path, excludes: &[String], progress: &dyn Progress) -> Result<Vec<Node>> {
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
        let Some(rel) = abs.strip_prefix(root).unwrap_or(Path::new("")).to_str() else {
            continue;
        };
        let meta = item.metadata().map_err(|e| {
            Error::new(
                ErrorKind::Source,
                format!("cannot stat {}: {e}", abs.display()),
            )
        })?;
        let ft = meta.file_type();
        if ft.is_dir() {
            out.push(base_node(rel.to_string(), NodeKind::Dir, &meta));
        } else if ft.is_symlink() {
            let mut n = base_node(rel.to_string(), NodeKind::Symlink, &meta);
            n.target = std::fs::read_link(abs)
                .ok()
                .map(|t| t.to_string_lossy().into_owned());
            out.push(n);
        } else if ft.is_file() {
            let mut n = base_node(rel.to_string(), NodeKind::File, &meta);
            let mut f = File::open(abs).map_err(|e| {
                Error::new(ErrorKind::Source, format!("cannot read {}", abs.display()))
                    .with_source(e)
            })?;
            let mut h = sha2::Sha256::new();
            let size = std::io::copy(&mut f, &mut h)
                .map_err(|e| Error::io(format!("reading {}", abs.display()), e))?;
            progress.inc(size);
            n.size = size;
            n.sha256 = Some(hex::encode(sha2::Digest::finalize(h)));
            out.push(n);
        }
    }
    Ok(out)
}
