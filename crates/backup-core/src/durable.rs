//! Making a rename, a new entry or a removal survive a power loss: the
//! directory that holds it is synced. Shared by the repository's local
//! store, restore, the rollback's switch and journal, and saved plans.

use std::path::Path;

/// Syncs directory `dir`, so that what was renamed, created or removed in
/// it is on disk. A file system that cannot sync a directory (`EINVAL`)
/// is taken as having nothing to sync, as PostgreSQL takes it.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::File::open(dir)?.sync_all() {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}

/// The directory that holds `path` (the current one for a bare name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_a_directory_and_reports_one_that_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        sync_dir(dir.path()).unwrap();
        let missing = dir.path().join("gone");
        let err = sync_dir(&missing).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn the_parent_of_a_bare_name_is_the_current_directory() {
        assert_eq!(parent_of(Path::new("tree")), Path::new("."));
        assert_eq!(parent_of(Path::new("/srv/dms/api")), Path::new("/srv/dms"));
    }
}
