//! The file switch from every state a kill can leave it in.

use super::*;

struct Case {
    _dir: tempfile::TempDir,
    sw: FilesSwitch,
}

/// A live tree `live` (holding `old`) and a staged one (holding `new`).
fn case(live_exists: bool) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("api");
    let staging = dir.path().join(".api.rollback-1");
    std::fs::create_dir_all(staging.join("r")).unwrap();
    std::fs::write(staging.join("r/version"), "new").unwrap();
    if live_exists {
        std::fs::create_dir(&live).unwrap();
        std::fs::write(live.join("version"), "old").unwrap();
    }
    let staged = staging.join("r");
    let sw = FilesSwitch {
        name: "api".into(),
        live: live.clone(),
        staged_inode: inode(&staged),
        staged,
        staging_dir: Some(staging),
        live_existed: live_exists,
        kept: dir.path().join("api.before-rollback-1"),
        secret: false,
    };
    Case { _dir: dir, sw }
}

fn version(p: &Path) -> Option<String> {
    std::fs::read_to_string(p.join("version")).ok()
}

#[test]
fn forward_then_revert_and_each_twice() {
    let c = case(true);
    c.sw.forward().unwrap();
    c.sw.forward().unwrap();
    assert_eq!(version(&c.sw.live).as_deref(), Some("new"));
    assert_eq!(version(&c.sw.kept).as_deref(), Some("old"));
    assert!(!c.sw.staged.exists());
    c.sw.revert().unwrap();
    c.sw.revert().unwrap();
    assert_eq!(version(&c.sw.live).as_deref(), Some("old"));
    assert_eq!(version(&c.sw.staged).as_deref(), Some("new"));
    assert!(!c.sw.kept.exists());
}

#[test]
fn killed_between_the_exchange_and_the_kept_rename() {
    // Forward: finishes the rename to the kept name.
    let c = case(true);
    exchange(&c.sw.staged, &c.sw.live).unwrap();
    c.sw.forward().unwrap();
    assert_eq!(version(&c.sw.live).as_deref(), Some("new"));
    assert_eq!(version(&c.sw.kept).as_deref(), Some("old"));
    // Revert from the same state: the old copy is still where the staged
    // one was.
    let c = case(true);
    exchange(&c.sw.staged, &c.sw.live).unwrap();
    c.sw.revert().unwrap();
    assert_eq!(version(&c.sw.live).as_deref(), Some("old"));
    assert_eq!(version(&c.sw.staged).as_deref(), Some("new"));
}

#[test]
fn revert_before_any_switch_changes_nothing() {
    let c = case(true);
    c.sw.revert().unwrap();
    assert_eq!(version(&c.sw.live).as_deref(), Some("old"));
    assert_eq!(version(&c.sw.staged).as_deref(), Some("new"));
    c.sw.remove_staging().unwrap();
    assert!(!c.sw.staging_dir.as_ref().unwrap().exists());
    assert_eq!(version(&c.sw.live).as_deref(), Some("old"));
}

#[test]
fn a_live_path_that_did_not_exist_is_created_and_removed_again() {
    let c = case(false);
    c.sw.forward().unwrap();
    assert_eq!(version(&c.sw.live).as_deref(), Some("new"));
    assert!(!c.sw.kept.exists());
    c.sw.revert().unwrap();
    assert!(std::fs::symlink_metadata(&c.sw.live).is_err());
    assert_eq!(version(&c.sw.staged).as_deref(), Some("new"));
}

#[test]
fn a_symlink_is_switched_as_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("current");
    std::os::unix::fs::symlink("releases/v2", &live).unwrap();
    let staging = dir.path().join(".current.rollback-1");
    std::fs::create_dir(&staging).unwrap();
    std::os::unix::fs::symlink("releases/v1", staging.join("r")).unwrap();
    let sw = FilesSwitch {
        name: "current".into(),
        live: live.clone(),
        staged: staging.join("r"),
        staged_inode: inode(&staging.join("r")),
        staging_dir: Some(staging),
        live_existed: true,
        kept: dir.path().join("current.before-rollback-1"),
        secret: false,
    };
    sw.forward().unwrap();
    assert_eq!(std::fs::read_link(&live).unwrap(), Path::new("releases/v1"));
    assert_eq!(
        std::fs::read_link(&sw.kept).unwrap(),
        Path::new("releases/v2")
    );
    sw.revert().unwrap();
    assert_eq!(std::fs::read_link(&live).unwrap(), Path::new("releases/v2"));
}
