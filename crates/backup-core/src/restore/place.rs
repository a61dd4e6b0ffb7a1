//! Staging directories next to a target, and moving the staged copy into
//! place: a rename, an atomic exchange with the old content kept aside, or
//! for an empty mount point a move of its entries.

use super::selection::STAGED;
use crate::durable;
use crate::error::{Error, ErrorKind, Result};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A staging directory next to a target; removed on drop unless kept.
#[derive(Debug)]
pub struct StagingDir {
    path: PathBuf,
    keep: bool,
    /// Inside the target (an empty mount point) rather than next to it.
    inside: bool,
}

impl StagingDir {
    /// A staging directory for `target`: next to it, or inside it when it
    /// is an empty mount point (which cannot be renamed, and whose parent is
    /// another filesystem).
    pub fn for_target(target: &Path) -> Result<StagingDir> {
        if !is_mount_point(target) {
            return Self::next_to(target);
        }
        if occupied(target) {
            return Err(Error::new(
                ErrorKind::Target,
                format!(
                    "{} is a mount point and not empty: it cannot be swapped; empty it first, \
                     or restore to a directory inside it",
                    target.display()
                ),
            ));
        }
        let mut staging = Self::create(target, "restore")?;
        staging.inside = true;
        Ok(staging)
    }

    /// Creates `.<name>.staging-<random>` next to `target`.
    pub fn next_to(target: &Path) -> Result<StagingDir> {
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| {
            Error::io(format!("cannot create {}", parent.display()), e).with_kind(ErrorKind::Target)
        })?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "restore".into());
        Self::create(parent, &name)
    }

    /// Creates `.<name>.staging-<random>` in `parent`.
    fn create(parent: &Path, name: &str) -> Result<StagingDir> {
        let mut rnd = [0u8; 6];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut rnd);
        let path = parent.join(format!(".{name}.staging-{}", hex::encode(rnd)));
        std::fs::create_dir(&path).map_err(|e| {
            Error::io(
                format!(
                    "cannot create the staging directory {} (is the target writable?)",
                    path.display()
                ),
                e,
            )
            .with_kind(ErrorKind::Target)
        })?;
        Ok(StagingDir {
            path,
            keep: false,
            inside: false,
        })
    }

    /// The staging path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory (it was moved into place).
    pub fn disarm(&mut self) {
        self.keep = true;
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Whether `path` is an existing non-empty directory (or a non-directory).
pub fn occupied(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Err(_) => false,
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true),
        Ok(_) => true,
    }
}

/// Puts the staged copy (entry [`STAGED`] of the staging directory) at
/// `target`: see [`exchange_or_move`]. An empty directory that is a mount
/// point cannot be replaced by a rename: the staged content is moved into
/// it instead.
pub fn put_in_place(staging: &mut StagingDir, target: &Path) -> Result<Option<PathBuf>> {
    let staged = staging.path().join(std::ffi::OsStr::from_bytes(STAGED));
    if staging.inside {
        fill_mount_point(&staged, target)?;
        sync_placed(target).map_err(|e| not_on_disk(target, None, e))?;
        return Ok(None);
    }
    let inode = |p: &Path| {
        std::fs::symlink_metadata(p)
            .map(|m| (m.dev(), m.ino()))
            .ok()
    };
    let restored = inode(&staged);
    let placed = exchange_or_move(&staged, target);
    if placed.is_err() && restored.is_some() && inode(target) == restored {
        // Swapped in, but the old content could not be moved aside: it is
        // still in the staging directory, which must not be removed.
        staging.disarm();
        return placed.map_err(|e| {
            e.context(format!(
                "the restored copy is in place; the previous content is at {}",
                staged.display()
            ))
        });
    }
    let placed = placed?;
    // A restore that returned is in place after a power loss.
    sync_placed(durable::parent_of(target))
        .map_err(|e| not_on_disk(target, placed.as_deref(), e))?;
    Ok(placed)
}

/// Syncs `dir`, which received the restored copy (`sync-dir-fails` makes
/// it fail as a failing disk would).
fn sync_placed(dir: &Path) -> std::io::Result<()> {
    if crate::failpoint::armed("sync-dir-fails") {
        return Err(std::io::Error::from_raw_os_error(libc::EIO));
    }
    durable::sync_dir(dir)
}

/// The error when the directory that received the restored copy cannot
/// be synced: the copy is in place (the previous content at `kept`), but
/// may not survive a power loss.
fn not_on_disk(target: &Path, kept: Option<&Path>, e: std::io::Error) -> Error {
    let previous = kept
        .map(|k| format!(" (the previous content is at {})", k.display()))
        .unwrap_or_default();
    Error::io(
        format!(
            "the restored copy is in place at {}{previous}, but the directory could not be \
             synced, so it may not survive a power loss: check the file system (`dmesg`), then \
             run `sync`",
            target.display()
        ),
        e,
    )
    .with_kind(ErrorKind::Target)
}

/// Whether `path` is a directory on another filesystem than its parent.
fn is_mount_point(path: &Path) -> bool {
    let parent = path.parent().unwrap_or(Path::new("/"));
    match (std::fs::symlink_metadata(path), std::fs::metadata(parent)) {
        (Ok(m), Ok(p)) => m.is_dir() && (m.dev() != p.dev() || m.ino() == p.ino()),
        _ => false,
    }
}

/// Moves each entry of the staged directory into the empty `target`, then
/// gives `target` the staged directory's owner, mode and times.
fn fill_mount_point(staged: &Path, target: &Path) -> Result<()> {
    let map = |what: String, e: std::io::Error| Error::io(what, e).with_kind(ErrorKind::Target);
    let meta = std::fs::symlink_metadata(staged)
        .map_err(|e| map(format!("cannot stat {}", staged.display()), e))?;
    if !meta.is_dir() {
        return Err(Error::new(
            ErrorKind::Target,
            format!(
                "{} is a mount point: only a directory can be restored onto it",
                target.display()
            ),
        ));
    }
    let entries = std::fs::read_dir(staged)
        .map_err(|e| map(format!("cannot list {}", staged.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| map(format!("cannot list {}", staged.display()), e))?;
        let to = target.join(entry.file_name());
        std::fs::rename(entry.path(), &to).map_err(|e| {
            map(
                format!("cannot move the restored entry to {}", to.display()),
                e,
            )
        })?;
    }
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::lchown(target, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| map(format!("cannot set the owner of {}", target.display()), e))?;
    }
    std::fs::set_permissions(target, meta.permissions())
        .map_err(|e| map(format!("cannot set the mode of {}", target.display()), e))?;
    let mtime = filetime::FileTime::from_last_modification_time(&meta);
    filetime::set_file_mtime(target, mtime)
        .map_err(|e| map(format!("cannot set the times of {}", target.display()), e))?;
    std::fs::remove_dir(staged).map_err(|e| map(format!("cannot remove {}", staged.display()), e))
}

/// Puts `staged` at `target`. An absent or empty target is replaced by a
/// rename. An occupied target is atomically exchanged with the staged copy
/// (`renameat2(RENAME_EXCHANGE)`, or two renames where that is not
/// supported), and the previous content is kept at the returned path.
pub fn exchange_or_move(staged: &Path, target: &Path) -> Result<Option<PathBuf>> {
    let map = |what: &str, e: std::io::Error| {
        Error::io(format!("cannot {what} {}", target.display()), e).with_kind(ErrorKind::Target)
    };
    if !occupied(target) {
        if target.exists() {
            std::fs::remove_dir(target).map_err(|e| map("replace the empty directory", e))?;
        }
        std::fs::rename(staged, target).map_err(|e| map("move the restored copy to", e))?;
        return Ok(None);
    }
    let exchanged = rustix::fs::renameat_with(
        rustix::fs::CWD,
        staged,
        rustix::fs::CWD,
        target,
        rustix::fs::RenameFlags::EXCHANGE,
    );
    match exchanged {
        Ok(()) => {
            let keep =
                move_aside(staged, target).map_err(|e| map("keep the previous content of", e))?;
            Ok(Some(keep))
        }
        Err(_) => {
            let keep = move_aside(target, target).map_err(|e| map("move aside", e))?;
            std::fs::rename(staged, target).map_err(|e| map("move the restored copy to", e))?;
            Ok(Some(keep))
        }
    }
}

/// Renames `from` to `<target>.before-restore-<time>[.N]`, never over an
/// existing entry (a second restore in the same second gets `.1`).
fn move_aside(from: &Path, target: &Path) -> std::io::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for n in 0..1000 {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!(".{n}")
        };
        let keep = target.with_file_name(format!("{name}.before-restore-{stamp}{suffix}"));
        let r = rustix::fs::renameat_with(
            rustix::fs::CWD,
            from,
            rustix::fs::CWD,
            &keep,
            rustix::fs::RenameFlags::NOREPLACE,
        );
        match r {
            Ok(()) => return Ok(keep),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(std::io::Error::other(
        "a thousand kept copies from the same second already exist next to it: \
         remove old `.before-restore-*` copies",
    ))
}
