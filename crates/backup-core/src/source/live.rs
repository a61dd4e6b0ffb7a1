//! The live side of a tree, read without storing anything: its listing
//! (walked on several threads) and the SHA-256 of the files an earlier
//! listing no longer vouches for. Plans and diffs compare it with a
//! snapshot's listing.

use super::files::{
    base_node, build_excludes, excluded, io_reason, kind_of, open_unseen, reusable, stat_of,
};
use super::xattrs::read_xattrs;
use crate::error::{Error, ErrorKind, Result};
use crate::progress::Progress;
use crate::snapshot::{Node, NodeKind};
use globset::GlobSet;
use sha2::Digest;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The levels listed on the calling thread; each directory at the last of
/// them is walked, with everything below it, by one of the workers.
const SPLIT_DEPTH: usize = 2;

/// Threads walking subtrees at once.
const WALKERS: usize = 2;

/// Walks a live tree into listing nodes without reading any file: file
/// nodes carry their size from `lstat` and no `sha256` (see
/// [`hash_unless_listed`] to hash them afterwards). Nothing is stored;
/// unreadable entries are errors; sockets are left out, as capture leaves
/// them out. A missing root is an empty tree.
///
/// The listing is in walk order (parents first, entries by file name),
/// although the subtrees below [`SPLIT_DEPTH`] are walked on [`WALKERS`]
/// threads: each subtree's nodes are put back right after its directory.
pub fn walk_live(root: &Path, excludes: &[String], xattrs: bool) -> Result<Vec<Node>> {
    let set = build_excludes(excludes)?;
    if std::fs::symlink_metadata(root).is_err() {
        return Ok(Vec::new());
    }
    let walk = LiveWalk {
        root,
        set: &set,
        xattrs,
    };
    let (top, subtrees) = walk.top()?;
    let below = crate::parallel::map_parallel(&subtrees, WALKERS, |(_, dir)| walk.subtree(dir))?;
    Ok(splice(top, &subtrees, below))
}

/// The settings of one walk.
struct LiveWalk<'a> {
    root: &'a Path,
    set: &'a GlobSet,
    xattrs: bool,
}

/// A subtree left to the workers: where its nodes go in the top listing
/// (after that many top nodes), and its directory.
type Subtree = (usize, PathBuf);

impl LiveWalk<'_> {
    /// The nodes down to [`SPLIT_DEPTH`], and the directories at that
    /// depth whose contents the workers walk.
    fn top(&self) -> Result<(Vec<Node>, Vec<Subtree>)> {
        let (mut top, mut subtrees) = (Vec::new(), Vec::new());
        for item in self.entries(self.root, 0, SPLIT_DEPTH) {
            let item = item.map_err(walk_error)?;
            let Some(n) = self.node(&item)? else { continue };
            let split = item.depth() == SPLIT_DEPTH && n.kind == NodeKind::Dir;
            top.push(n);
            if split {
                subtrees.push((top.len(), item.into_path()));
            }
        }
        Ok((top, subtrees))
    }

    /// Everything below directory `dir`, in walk order.
    fn subtree(&self, dir: &Path) -> Result<Vec<Node>> {
        let mut out = Vec::new();
        for item in self.entries(dir, 1, usize::MAX) {
            let item = item.map_err(walk_error)?;
            out.extend(self.node(&item)?);
        }
        Ok(out)
    }

    /// The entries of `from` from `min` to `max` levels down, sorted by
    /// file name, symbolic links not followed, excluded ones (and all
    /// below them) left out.
    fn entries(
        &self,
        from: &Path,
        min: usize,
        max: usize,
    ) -> impl Iterator<Item = walkdir::Result<walkdir::DirEntry>> + '_ {
        walkdir::WalkDir::new(from)
            .follow_links(false)
            .sort_by_file_name()
            .min_depth(min)
            .max_depth(max)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !excluded(self.set, e.path()))
    }

    /// The listing node of one entry; `None` for a socket.
    fn node(&self, item: &walkdir::DirEntry) -> Result<Option<Node>> {
        let abs = item.path();
        let rel = abs.strip_prefix(self.root).unwrap_or(Path::new(""));
        let meta = item.metadata().map_err(|e| {
            Error::new(
                ErrorKind::Source,
                format!("cannot stat {}: {}", abs.display(), io_reason(&e)),
            )
        })?;
        let Some(kind) = kind_of(&meta) else {
            return Ok(None);
        };
        let mut n = base_node(rel.as_os_str().as_bytes(), kind, &meta);
        if self.xattrs {
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
        Ok(Some(n))
    }
}

fn walk_error(e: walkdir::Error) -> Error {
    Error::new(ErrorKind::Source, format!("cannot read the live tree: {e}"))
}

/// The top nodes with each subtree's nodes put back after its directory.
fn splice(top: Vec<Node>, subtrees: &[Subtree], below: Vec<Vec<Node>>) -> Vec<Node> {
    let mut out = Vec::with_capacity(top.len() + below.iter().map(Vec::len).sum::<usize>());
    let mut pending = subtrees.iter().map(|(at, _)| *at).zip(below).peekable();
    for (i, n) in top.into_iter().enumerate() {
        out.push(n);
        if let Some((_, nodes)) = pending.next_if(|(at, _)| *at == i + 1) {
            out.extend(nodes);
        }
    }
    out
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
    fn a_walk_split_over_threads_lists_in_walk_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "b/z/deep/er",
            "b/a",
            "b/old.log/x",
            "a/y",
            "a/x/skip.log/in",
            "c",
            "d.log/e",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "b/z/deep/er/f",
            "b/z/2",
            "b/a/1",
            "a/y/f",
            "a/x/g",
            "a/x/h.log",
            "top",
        ] {
            std::fs::write(root.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("../y", root.join("a/x/link")).unwrap();
        let live = walk_live(root, &["*.log".to_string()], false).unwrap();
        let paths: Vec<&str> = live.iter().map(|n| n.path.as_str()).collect();
        // Parents first, entries by name; `*.log` left out with all below
        // it, at any level; the subtrees below the second level (a/x, a/y,
        // b/a, b/z) each walked by a worker and put back at their place.
        let want = [
            "",
            "a",
            "a/x",
            "a/x/g",
            "a/x/link",
            "a/y",
            "a/y/f",
            "b",
            "b/a",
            "b/a/1",
            "b/z",
            "b/z/2",
            "b/z/deep",
            "b/z/deep/er",
            "b/z/deep/er/f",
            "c",
            "top",
        ];
        assert_eq!(paths, want);
        let of = |p: &str| live.iter().find(|n| n.path == p).unwrap();
        assert_eq!(of("a/x/link").kind, NodeKind::Symlink);
        assert_eq!(of("b/z/deep/er/f").size, "b/z/deep/er/f".len() as u64);
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
