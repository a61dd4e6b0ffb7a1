//! A directory handle and the file operations relative to it.
//!
//! Restore works on paths relative to an open staging directory
//! (`openat`-style), never on the staging prefix joined with the captured
//! path: whatever could be captured can be restored, however close its
//! path is to `PATH_MAX`, and a symlink planted in a parent cannot redirect
//! a write (`O_NOFOLLOW` on every final component).

use crate::error::{Error, ErrorKind, Result};
use crate::snapshot::NodeKind;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An open directory; every operation takes a path relative to it.
#[derive(Debug)]
pub struct DirHandle {
    fd: OwnedFd,
}

fn target_err(what: String, e: impl Into<std::io::Error>) -> Error {
    Error::io(what, e.into()).with_kind(ErrorKind::Target)
}

/// A relative path for messages.
pub fn shown(rel: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(rel)
}

fn nofollow() -> OFlags {
    OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl DirHandle {
    /// Opens the directory at `path`.
    pub fn open(path: &Path) -> Result<DirHandle> {
        let fd = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | nofollow(),
            Mode::empty(),
        )
        .map_err(|e| target_err(format!("cannot open {}", path.display()), e))?;
        Ok(DirHandle { fd })
    }

    /// Creates the directory `rel` (private until its mode is applied).
    pub fn create_dir(&self, rel: &[u8]) -> Result<()> {
        rustix::fs::mkdirat(&self.fd, rel, Mode::from_raw_mode(0o700))
            .map_err(|e| target_err(format!("cannot create {}", shown(rel)), e))
    }

    /// Creates `rel` and every missing directory above it.
    pub fn create_dir_all(&self, rel: &[u8]) -> Result<()> {
        let mut end = 0;
        while end < rel.len() {
            end = rel[end + 1..]
                .iter()
                .position(|b| *b == b'/')
                .map_or(rel.len(), |p| end + 1 + p);
            match rustix::fs::mkdirat(&self.fd, &rel[..end], Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => {
                    return Err(target_err(
                        format!("cannot create {}", shown(&rel[..end])),
                        e,
                    ))
                }
            }
        }
        Ok(())
    }

    /// Creates the empty regular file `rel`, open for reading and writing.
    pub fn create_file_rw(&self, rel: &[u8]) -> Result<File> {
        rustix::fs::openat(
            &self.fd,
            rel,
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | nofollow(),
            Mode::from_raw_mode(0o600),
        )
        .map(File::from)
        .map_err(|e| target_err(format!("cannot create {}", shown(rel)), e))
    }

    /// Sets the size of the open staged file `rel` (a hole, until written).
    pub fn set_size(&self, f: &File, rel: &[u8], size: u64) -> Result<()> {
        rustix::fs::ftruncate(f, size)
            .map_err(|e| target_err(format!("cannot size {}", shown(rel)), e))
    }

    /// Writes everything cached for the directory's file system to disk
    /// (`syncfs`): a staged copy survives a power loss before it replaces
    /// anything.
    pub fn sync_filesystem(&self, what: &Path) -> Result<()> {
        let synced = if crate::failpoint::armed("syncfs-fails") {
            Err(rustix::io::Errno::IO)
        } else {
            rustix::fs::syncfs(&self.fd)
        };
        synced.map_err(|e| {
            target_err(
                format!(
                    "cannot write the staged copy {} to disk, so nothing was replaced: check \
                     the file system (`dmesg`) and its free space, then run again",
                    what.display()
                ),
                e,
            )
        })
    }

    /// Writes out what is cached for the directory's file system, for a
    /// flusher running beside the staging; a failure is left for the final
    /// [`DirHandle::sync_filesystem`] to report.
    pub fn write_back(&self) {
        let _ = rustix::fs::syncfs(&self.fd);
    }

    /// Opens the regular file `rel` for writing or reading.
    pub fn open_file(&self, rel: &[u8], write: bool) -> Result<File> {
        let mode = if write {
            OFlags::WRONLY
        } else {
            OFlags::RDONLY
        };
        rustix::fs::openat(&self.fd, rel, mode | nofollow(), Mode::empty())
            .map(File::from)
            .map_err(|e| target_err(format!("cannot open {}", shown(rel)), e))
    }

    /// Creates the symlink `rel` pointing at `target`.
    pub fn symlink(&self, target: &[u8], rel: &[u8]) -> Result<()> {
        rustix::fs::symlinkat(target, &self.fd, rel)
            .map_err(|e| target_err(format!("cannot create link {}", shown(rel)), e))
    }

    /// Makes `rel` a hard link to the existing `existing`.
    pub fn hardlink(&self, existing: &[u8], rel: &[u8]) -> Result<()> {
        rustix::fs::linkat(&self.fd, existing, &self.fd, rel, AtFlags::empty()).map_err(|e| {
            target_err(
                format!("cannot link {} to {}", shown(rel), shown(existing)),
                e,
            )
        })
    }

    /// Creates a FIFO or device node.
    pub fn mknod(&self, rel: &[u8], kind: NodeKind, rdev: u64) -> Result<()> {
        let ft = match kind {
            NodeKind::Fifo => FileType::Fifo,
            NodeKind::Chardev => FileType::CharacterDevice,
            NodeKind::Blockdev => FileType::BlockDevice,
            other => unreachable!("mknod of a {other:?}"),
        };
        rustix::fs::mknodat(&self.fd, rel, ft, Mode::from_raw_mode(0o600), rdev).map_err(|e| {
            let hint = if e == rustix::io::Errno::PERM {
                " (only root can create device nodes: restore as root, or leave it out with --include)"
            } else {
                ""
            };
            target_err(format!("cannot create {}{hint}", shown(rel)), e)
        })
    }

    /// A short path to `rel` for the calls that have no `*at` form: its
    /// parent is opened (`O_PATH`) and named through `/proc/self/fd/N/leaf`,
    /// which resolves the parent by handle and does not follow the leaf.
    /// The handle must outlive the use of the path.
    fn through_parent(&self, rel: &[u8]) -> Result<(OwnedFd, Vec<u8>)> {
        let (parent, leaf) = match rel.iter().rposition(|b| *b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&b"."[..], rel),
        };
        let pfd = rustix::fs::openat(
            &self.fd,
            parent,
            OFlags::PATH | OFlags::DIRECTORY | nofollow(),
            Mode::empty(),
        )
        .map_err(|e| target_err(format!("cannot open {}", shown(parent)), e))?;
        let mut path = format!("/proc/self/fd/{}/", fd_number(&pfd)).into_bytes();
        path.extend_from_slice(leaf);
        Ok((pfd, path))
    }
}

/// The error for an extended attribute of `rel` that cannot be set.
pub fn xattr_error(rel: &[u8], name: &str, e: rustix::io::Errno) -> Error {
    target_err(
        format!(
            "cannot set the extended attribute {name} of {} (restore as root, \
             onto a filesystem with extended attributes, or pass --no-xattrs)",
            shown(rel)
        ),
        e,
    )
}

fn fd_number(fd: &OwnedFd) -> i32 {
    use std::os::fd::AsRawFd;
    fd.as_fd().as_raw_fd()
}

/// An entry whose owner, extended attributes, mode and times are set: by
/// its path beneath the staging directory (never following a symlink), or
/// through a descriptor open on it. `rel` names it in errors.
pub(crate) enum Entry<'a> {
    /// The entry `rel` beneath the directory.
    At(&'a DirHandle, &'a [u8]),
    /// A staged regular file, open.
    Open(&'a File, &'a [u8]),
}

impl Entry<'_> {
    fn rel(&self) -> &[u8] {
        match self {
            Entry::At(_, rel) | Entry::Open(_, rel) => rel,
        }
    }

    /// Sets owner and group.
    pub(crate) fn chown(&self, uid: u32, gid: u32) -> Result<()> {
        let set = match self {
            Entry::At(dir, rel) => {
                let (_parent, path) = dir.through_parent(rel)?;
                std::os::unix::fs::lchown(OsStr::from_bytes(&path), Some(uid), Some(gid))
            }
            Entry::Open(f, _) => std::os::unix::fs::fchown(f, Some(uid), Some(gid)),
        };
        set.map_err(|e| target_err(format!("cannot set the owner of {}", shown(self.rel())), e))
    }

    /// Sets one extended attribute.
    pub(crate) fn set_xattr(&self, name: &str, value: &[u8]) -> Result<()> {
        let set = match self {
            Entry::At(dir, rel) => {
                let (_parent, path) = dir.through_parent(rel)?;
                rustix::fs::lsetxattr(OsStr::from_bytes(&path), name, value, XattrFlags::empty())
            }
            Entry::Open(f, _) => rustix::fs::fsetxattr(f, name, value, XattrFlags::empty()),
        };
        set.map_err(|e| xattr_error(self.rel(), name, e))
    }

    /// Sets the permission bits (not for symlinks, which have none).
    pub(crate) fn chmod(&self, mode: u32) -> Result<()> {
        let mode = Mode::from_raw_mode(mode);
        let set = match self {
            Entry::At(dir, rel) => rustix::fs::chmodat(&dir.fd, *rel, mode, AtFlags::empty()),
            Entry::Open(f, _) => rustix::fs::fchmod(f, mode),
        };
        set.map_err(|e| target_err(format!("cannot set the mode of {}", shown(self.rel())), e))
    }

    /// Sets access and modification time.
    pub(crate) fn set_mtime(&self, secs: i64, nsec: u32) -> Result<()> {
        let t = Timespec {
            tv_sec: secs,
            tv_nsec: nsec.into(),
        };
        let times = Timestamps {
            last_access: t,
            last_modification: t,
        };
        let set = match self {
            Entry::At(dir, rel) => {
                rustix::fs::utimensat(&dir.fd, *rel, &times, AtFlags::SYMLINK_NOFOLLOW)
            }
            Entry::Open(f, _) => rustix::fs::futimens(f, &times),
        };
        set.map_err(|e| target_err(format!("cannot set the times of {}", shown(self.rel())), e))
    }
}
