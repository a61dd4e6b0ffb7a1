//! Switching one component between its live and its staged copy, and
//! back. Every primitive is idempotent and decides what is left to do from
//! what it finds (inode numbers, database names), not from memory: a run
//! killed between two renames is finished or undone by running it again.
//!
//! A tree, a single file or a symlink is switched with
//! `renameat2(RENAME_EXCHANGE)` (one atomic step; the old copy then sits
//! where the staged one was) followed by a rename of the old copy to its
//! kept name. A database is switched by renames: live to kept, staged to
//! live.

use crate::durable;
use crate::error::{Error, ErrorKind, Result};
use crate::restore::{allow_connections, database_exists, maintenance, rename, rename_closed};
use crate::source::postgres::conninfo::ConnInfo;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One component's switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Switch {
    /// A file tree, single file or symlink.
    Files(FilesSwitch),
    /// A database.
    Postgres(DatabaseSwitch),
}

/// How a file component is switched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesSwitch {
    /// The component name.
    pub name: String,
    /// The live path.
    pub live: PathBuf,
    /// The copy that replaces it.
    pub staged: PathBuf,
    /// The staging directory holding `staged`, when this operation made it
    /// (removed when the operation ends; for an undo the staged copy is a
    /// kept one and belongs to nobody).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staging_dir: Option<PathBuf>,
    /// Device and inode of the staged copy, once staged: the live path has
    /// them exactly when the switch happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_inode: Option<(u64, u64)>,
    /// Whether the live path existed (otherwise the switch is a rename).
    pub live_existed: bool,
    /// Where the replaced copy is kept.
    pub kept: PathBuf,
    /// The contents are secret.
    #[serde(default)]
    pub secret: bool,
}

/// How a database component is switched. The connection comes from the
/// system description (by component name), so that no password is written
/// to the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseSwitch {
    /// The component name.
    pub name: String,
    /// The live database.
    pub live: String,
    /// The database that replaces it.
    pub staged: String,
    /// Whether this operation created `staged` (dropped if it ends before
    /// the switch).
    pub owned: bool,
    /// The name the replaced database is kept under.
    pub kept: String,
}

impl Switch {
    /// The component name.
    pub fn name(&self) -> &str {
        match self {
            Switch::Files(f) => &f.name,
            Switch::Postgres(d) => &d.name,
        }
    }

    /// Where the replaced copy is kept: a path or a database name.
    pub fn kept(&self) -> String {
        match self {
            Switch::Files(f) => f.kept.display().to_string(),
            Switch::Postgres(d) => d.kept.clone(),
        }
    }
}

fn target_err(what: String, e: impl Into<std::io::Error>) -> Error {
    Error::io(what, e.into()).with_kind(ErrorKind::Target)
}

/// Device and inode of `path` itself (not following a symlink).
pub fn inode(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn exchange(a: &Path, b: &Path) -> Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(|e| {
        target_err(
            format!("cannot exchange {} and {}", a.display(), b.display()),
            e,
        )
    })
}

/// Renames `from` to `to`, never over an existing entry.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(|e| {
        target_err(
            format!("cannot rename {} to {}", from.display(), to.display()),
            e,
        )
    })
}

impl FilesSwitch {
    /// Whether the live path is the staged copy.
    fn switched(&self) -> bool {
        self.staged_inode.is_some() && inode(&self.live) == self.staged_inode
    }

    /// Puts the staged copy at the live path and the old one at the kept
    /// path.
    pub fn forward(&self) -> Result<()> {
        if !self.switched() {
            if self.live_existed {
                exchange(&self.staged, &self.live)?;
            } else {
                rename_noreplace(&self.staged, &self.live)?;
            }
        }
        if self.live_existed && exists(&self.staged) && !exists(&self.kept) {
            rename_noreplace(&self.staged, &self.kept)?;
        }
        // A disk that refuses the sync once (`switch-sync-fails`): the
        // rollback must switch back.
        if crate::failpoint::armed("switch-sync-fails") {
            let eio = std::io::Error::from_raw_os_error(libc::EIO);
            return Err(target_err(
                format!("cannot sync {}", self.live.display()),
                eio,
            ));
        }
        sync_parent(&self.live)
    }

    /// Puts the old copy back at the live path (and the staged one where
    /// it was staged).
    pub fn revert(&self) -> Result<()> {
        if !self.switched() {
            return Ok(());
        }
        if self.live_existed {
            if exists(&self.kept) && !exists(&self.staged) {
                rename_noreplace(&self.kept, &self.staged)?;
            }
            exchange(&self.staged, &self.live)?;
        } else {
            rename_noreplace(&self.live, &self.staged)?;
        }
        sync_parent(&self.live)
    }

    /// Removes what this operation staged (after a revert, or after the
    /// switch, when the staging directory is empty).
    pub fn remove_staging(&self) -> Result<()> {
        if let Some(dir) = &self.staging_dir {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(target_err(format!("cannot remove {}", dir.display()), e)),
            }
        }
        Ok(())
    }

    /// Removes the kept copy.
    pub fn remove_kept(&self) -> Result<()> {
        remove_path(&self.kept)
    }
}

/// Removes a directory tree, a file or a symlink; absent is fine.
pub(crate) fn remove_path(path: &Path) -> Result<()> {
    let r = match std::fs::symlink_metadata(path) {
        Err(_) => return Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    r.map_err(|e| target_err(format!("cannot remove {}", path.display()), e))
}

/// Makes the renames next to `path` durable.
fn sync_parent(path: &Path) -> Result<()> {
    let dir = durable::parent_of(path);
    durable::sync_dir(dir).map_err(|e| target_err(format!("cannot sync {}", dir.display()), e))
}

/// Which of the three names exist: (live, staged, kept).
fn names(c: &mut postgres::Client, d: &DatabaseSwitch) -> Result<(bool, bool, bool)> {
    Ok((
        database_exists(c, &d.live)?,
        database_exists(c, &d.staged)?,
        database_exists(c, &d.kept)?,
    ))
}

impl DatabaseSwitch {
    /// Moves the live database to the kept name and the staged one to the
    /// live name.
    pub fn forward(&self, conn: &ConnInfo) -> Result<()> {
        let mut c = maintenance(conn)?;
        match names(&mut c, self)? {
            (true, true, false) => {
                rename_closed(&mut c, &self.live, &self.kept)?;
                self.finish_forward(&mut c)
            }
            (false, true, true) => self.finish_forward(&mut c),
            (true, false, true) => {
                allow_connections(&mut c, &self.kept, true)?;
                allow_connections(&mut c, &self.live, true)
            }
            (false, true, false) => rename(&mut c, &self.staged, &self.live),
            state => Err(self.lost(state)),
        }
    }

    fn finish_forward(&self, c: &mut postgres::Client) -> Result<()> {
        rename(c, &self.staged, &self.live)?;
        allow_connections(c, &self.live, true)?;
        allow_connections(c, &self.kept, true)
    }

    /// Puts the kept database back under the live name, the staged one
    /// back under its staging name.
    pub fn revert(&self, conn: &ConnInfo) -> Result<()> {
        let mut c = maintenance(conn)?;
        match names(&mut c, self)? {
            (true, false, true) => {
                rename_closed(&mut c, &self.live, &self.staged)?;
                self.finish_revert(&mut c)
            }
            (false, true, true) => self.finish_revert(&mut c),
            (true, true, false) => allow_connections(&mut c, &self.live, true),
            (true, false, false) => Ok(()),
            state => Err(self.lost(state)),
        }
    }

    fn finish_revert(&self, c: &mut postgres::Client) -> Result<()> {
        rename(c, &self.kept, &self.live)?;
        allow_connections(c, &self.live, true)?;
        allow_connections(c, &self.staged, true)
    }

    /// Drops the staged database if this operation made it.
    pub fn remove_staging(&self, conn: &ConnInfo) -> Result<()> {
        if !self.owned {
            return Ok(());
        }
        let mut c = maintenance(conn)?;
        crate::restore::drop_database(&mut c, &self.staged)
    }

    /// Drops the kept database.
    pub fn remove_kept(&self, conn: &ConnInfo) -> Result<()> {
        let mut c = maintenance(conn)?;
        crate::restore::drop_database(&mut c, &self.kept)
    }

    fn lost(&self, (live, staged, kept): (bool, bool, bool)) -> Error {
        let say = |b: bool| if b { "exists" } else { "is missing" };
        Error::new(
            ErrorKind::Target,
            format!(
                "database {} cannot be switched: {} {}, {} {}, {} {}; someone renamed or dropped one \
                 of them: put them back by hand (ALTER DATABASE ... RENAME TO ...) and run the command again",
                self.name,
                self.live,
                say(live),
                self.staged,
                say(staged),
                self.kept,
                say(kept)
            ),
        )
    }
}

#[cfg(test)]
mod tests;
