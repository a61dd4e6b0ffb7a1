//! Staging directories next to a target, and moving them into place.

use crate::error::{Error, ErrorKind, Result};
use std::path::{Path, PathBuf};

/// A staging directory next to a target; removed on drop unless kept.
#[derive(Debug)]
pub struct StagingDir {
    path: PathBuf,
    keep: bool,
}

impl StagingDir {
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
        Ok(StagingDir { path, keep: false })
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
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let keep = target.with_file_name(format!("{name}.before-restore-{stamp}"));
    let exchanged = rustix::fs::renameat_with(
        rustix::fs::CWD,
        staged,
        rustix::fs::CWD,
        target,
        rustix::fs::RenameFlags::EXCHANGE,
    );
    match exchanged {
        Ok(()) => {
            std::fs::rename(staged, &keep).map_err(|e| map("keep the previous content of", e))?;
        }
        Err(_) => {
            std::fs::rename(target, &keep).map_err(|e| map("move aside", e))?;
            std::fs::rename(staged, target).map_err(|e| map("move the restored copy to", e))?;
        }
    }
    Ok(Some(keep))
}
