//! Seeding a staged copy from the content it is about to replace.
//!
//! A rollback or an in-place restore stages a whole tree next to a live one
//! that mostly holds the same files. A file whose current copy has the
//! captured size is copied in the kernel (`copy_file_range`, which shares
//! extents where the file system can) instead of being read, decrypted and
//! decompressed from the repository. Nothing is trusted: the read-back check
//! against the snapshot's SHA-256 decides, and a copy that does not match
//! (the file changed, or changed while it was copied) is written again from
//! the repository before it is checked again.
//!
//! The current copy is opened beneath its root without following any
//! symlink (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), non
//! blocking, without moving its access time where allowed (`O_NOATIME`),
//! and only a regular file of the right size is read, so a FIFO or device
//! planted in the live tree is never opened for reading.

use super::selection::{Item, STAGED};
use crate::progress::Progress;
use crate::snapshot::NodeKind;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;

/// The current copy of a staged tree: the parent directory of the path the
/// staged copy will replace, and that path's name in it.
pub(crate) struct Seed {
    parent: OwnedFd,
    name: Vec<u8>,
}

impl Seed {
    /// The current content at `path`, if its parent directory can be
    /// opened; `None` means the tree is staged from the repository alone.
    pub(crate) fn open(path: &Path) -> Option<Seed> {
        let name = path.file_name()?.as_bytes().to_vec();
        let parent = path.parent()?;
        let parent = rustix::fs::open(
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        Some(Seed { parent, name })
    }

    /// The current file that corresponds to staged entry `rel`, open for
    /// reading, if it is a regular file of `size` bytes.
    fn current(&self, rel: &[u8], size: u64) -> Option<OwnedFd> {
        let tail = rel.strip_prefix(STAGED)?;
        let mut path = self.name.clone();
        path.extend_from_slice(tail);
        let st = rustix::fs::statat(&self.parent, &path[..], AtFlags::SYMLINK_NOFOLLOW).ok()?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_size as u64 != size
        {
            return None;
        }
        let open = |extra: OFlags| {
            rustix::fs::openat2(
                &self.parent,
                &path[..],
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | extra,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            )
        };
        // Its access time stays (`O_NOATIME`) where the file's owner or a
        // privileged process asks.
        let fd = match open(OFlags::NOATIME) {
            Err(rustix::io::Errno::PERM) => open(OFlags::empty()),
            other => other,
        }
        .ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_size as u64 == size)
            .then_some(fd)
    }
}

/// Whether an item's content may come from its current copy: a regular,
/// non-empty, non-sparse file that is not a second link to another item
/// (a sparse file's holes would be filled by the copy).
fn seedable(it: &Item) -> bool {
    it.node.kind == NodeKind::File && it.link.is_none() && it.node.size > 0 && !it.node.sparse
}

/// Copies the current copy of every seedable item among `files` (indices
/// into `items`) into its staged file, on `workers` threads. Returns the
/// indices copied whole, in order; any failure only means the file is
/// written from the repository instead.
pub(crate) fn seed_files(
    seed: &Seed,
    dir: &super::handle::DirHandle,
    items: &[Item],
    files: &[usize],
    workers: usize,
    progress: &dyn Progress,
) -> Vec<usize> {
    let copied = Mutex::new(Vec::new());
    // The work never fails: a file that cannot be copied is left to the repository.
    let _ = crate::parallel::for_each_parallel(
        files,
        workers,
        || Ok(()),
        |_, i| {
            let it = &items[*i];
            if seedable(it) && copy_current(seed, dir, it) {
                copied.lock().expect("lock").push(*i);
                progress.inc(it.node.size);
            }
            Ok(())
        },
    );
    let mut copied = copied.into_inner().expect("lock");
    copied.sort_unstable();
    copied
}

/// Copies one item's current copy whole into its staged file.
fn copy_current(seed: &Seed, dir: &super::handle::DirHandle, it: &Item) -> bool {
    let Some(from) = seed.current(&it.rel, it.node.size) else {
        return false;
    };
    let Ok(to) = dir.open_file(&it.rel, true) else {
        return false;
    };
    let (mut off_in, mut off_out) = (0u64, 0u64);
    while off_in < it.node.size {
        let left = (it.node.size - off_in).min(1 << 30) as usize;
        match rustix::fs::copy_file_range(&from, Some(&mut off_in), &to, Some(&mut off_out), left) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
    super::handle::start_writeback(&to);
    true
}
