//! Power loss, as the disk saw it. The tree lives on an ext4 file system
//! in a file, mounted through a loop device: that file holds exactly what
//! reached the "disk", so a copy of it taken the moment a command returns
//! is what a power loss then would leave. The copy is recovered with
//! `e2fsck` (which replays the journal) and mounted read-only, and what
//! the command put in place must be there whole.
//!
//! A disk can also refuse to write (`syncfs` or a directory sync failing
//! with EIO). No healthy disk does that on demand, so those tests make the
//! call fail where it is made (`BACKUP_FAILPOINT`), and check that the
//! command says so, exits with the target's code, and replaces nothing
//! that was not yet safe on disk.

use crate::common::*;
use crate::rollback::files::deployed;
use crate::rollback::support::{assert_trees, Hooks, System};
use std::path::{Path, PathBuf};
use std::process::Command;

fn must(c: &mut Command) {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ext4 file system in an image file, mounted until drop.
struct LoopFs {
    img: PathBuf,
    mnt: PathBuf,
}

impl LoopFs {
    /// A fresh 128 MiB file system in `dir/disk.img`, mounted at `mnt`.
    fn new(dir: &Path, mnt: &Path) -> LoopFs {
        std::fs::create_dir_all(dir).unwrap();
        let img = dir.join("disk.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(128 << 20)
            .unwrap();
        must(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&img));
        LoopFs::mount(img, mnt, "rw")
    }

    fn mount(img: PathBuf, mnt: &Path, mode: &str) -> LoopFs {
        std::fs::create_dir_all(mnt).unwrap();
        must(
            Command::new("mount")
                .args(["-o", &format!("loop,{mode}")])
                .arg(&img)
                .arg(mnt),
        );
        LoopFs {
            img,
            mnt: mnt.to_path_buf(),
        }
    }

    /// The disk as a power loss now would leave it: a copy of the image in
    /// `dir`, its journal replayed, mounted read-only at `dir/mnt`.
    fn after_power_loss(&self, dir: &Path) -> LoopFs {
        std::fs::create_dir_all(dir).unwrap();
        let copy = dir.join("disk.img");
        std::fs::copy(&self.img, &copy).unwrap();
        // 0: clean, 1: errors corrected (a replayed journal may say so).
        let fsck = Command::new("e2fsck")
            .args(["-f", "-y"])
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            fsck.status.code().is_some_and(|c| c <= 1),
            "e2fsck could not recover the image: {}",
            String::from_utf8_lossy(&fsck.stdout)
        );
        LoopFs::mount(copy, &dir.join("mnt"), "ro")
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
    }
}

/// `files` files; `round` picks their content and size.
fn write_tree(tree: &Path, round: u64, files: u64) {
    std::fs::create_dir_all(tree).unwrap();
    for i in 0..files {
        let size = 200_000 - round as usize * 50_000;
        std::fs::write(
            tree.join(format!("f{i}.bin")),
            random_bytes(round * 100 + i, size),
        )
        .unwrap();
    }
}

/// Whether loop file systems can be mounted here (root only).
fn can_mount() -> bool {
    if !is_root() {
        eprintln!("mounting a loop file system needs root: run the suite as root");
    }
    is_root()
}

#[test]
fn an_in_place_restore_is_on_disk_when_it_returns() {
    if !can_mount() {
        return;
    }
    let env = Env::local();
    let disk = LoopFs::new(&env.path("disk"), &env.path("disk/mnt"));
    let tree = disk.mnt.join("tree");
    write_tree(&tree, 0, 16);
    env.init();
    env.create(&[&tree], &[]);
    let want = digest(&tree);
    // The deployment rewrites half the files, and reaches the disk.
    write_tree(&tree, 1, 8);
    must(Command::new("sync").arg("-f").arg(&tree));
    let r = env.run(&RESTORE_TREE_IN_PLACE).ok().json();
    // Both ways in: copied from the live tree, and read from the repository.
    assert_eq!(r["copied"], 8, "{r}");
    let crashed = disk.after_power_loss(&env.path("crashed"));
    assert_eq!(
        digest(&crashed.mnt.join("tree")),
        want,
        "after a power loss the restored tree is not the snapshot's"
    );
}

#[test]
fn a_rollback_is_on_disk_when_it_returns() {
    if !can_mount() {
        return;
    }
    let sys = System::new(&[], &Hooks::default());
    // The release trees (`srv/dms/api` and `srv/dms/web`) on the loop disk.
    let disk = LoopFs::new(&sys.env.path("disk"), &sys.env.path("srv"));
    let (v1, _, _) = deployed(&sys);
    must(Command::new("sync").arg("-f").arg(&disk.mnt));
    sys.run(&[
        "rollback",
        "latest",
        "--tag",
        "pre-deploy",
        "--yes",
        "--no-safety-snapshot",
    ])
    .ok();
    let crashed = disk.after_power_loss(&sys.env.path("crashed"));
    for tree in ["api", "web"] {
        assert_eq!(
            digest(&crashed.mnt.join("dms").join(tree)),
            v1[tree],
            "after a power loss tree {tree} is not the snapshot's"
        );
    }
}

/// A tree's digest, by relative path.
type Tree = std::collections::BTreeMap<String, Entry>;

/// Entries of `dir` other than `keep`: what a command left behind.
fn left_beside(dir: &Path, keep: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != keep)
        .collect()
}

/// `RESTORE_TREE_IN_PLACE` with the failure point `point` armed.
fn restore_failing_at(env: &Env, point: &str) -> Run {
    let mut c = env.cmd(&RESTORE_TREE_IN_PLACE);
    c.env("BACKUP_FAILPOINT", point);
    Run::from(c.output().unwrap())
}

/// `srv/tree` captured, then half its files rewritten: the tree and the
/// digests of the snapshot's state and of the deployed one.
fn captured_then_deployed(env: &Env) -> (PathBuf, Tree, Tree) {
    let tree = env.path("srv/tree");
    write_tree(&tree, 0, 16);
    env.init();
    env.create(&[&tree], &[]);
    let captured = digest(&tree);
    write_tree(&tree, 1, 8);
    let deployed = digest(&tree);
    (tree, captured, deployed)
}

#[test]
fn a_restore_whose_copy_cannot_reach_the_disk_replaces_nothing() {
    let env = Env::local();
    let (tree, _, deployed) = captured_then_deployed(&env);
    restore_failing_at(&env, "syncfs-fails").fails(9, "so nothing was replaced");
    assert_eq!(digest(&tree), deployed, "the live tree was touched");
    let left = left_beside(&env.path("srv"), "tree");
    assert!(left.is_empty(), "staging left behind: {left:?}");
    // Once the disk takes it, the same command restores.
    let r = env.run(&RESTORE_TREE_IN_PLACE).ok().json();
    assert_eq!(r["copied"], 8, "{r}");
}

#[test]
fn a_restore_whose_directory_cannot_be_synced_says_its_copy_is_in_place() {
    let env = Env::local();
    let (tree, want, deployed) = captured_then_deployed(&env);
    let r = restore_failing_at(&env, "sync-dir-fails")
        .fails(9, "the restored copy is in place")
        .fails(9, "may not survive a power loss");
    assert_eq!(digest(&tree), want, "the restored copy is not in place");
    // Beside it only the previous content, kept as every in-place restore
    // keeps it, and named in the error.
    let left = left_beside(&env.path("srv"), "tree");
    assert!(
        left.len() == 1 && left[0].starts_with("tree.before-restore-"),
        "{left:?}"
    );
    assert!(r.stderr.contains(&left[0]), "{}", r.stderr);
    assert_eq!(digest(&env.path("srv").join(&left[0])), deployed);
}

#[test]
fn a_rollback_whose_staged_trees_cannot_reach_the_disk_changes_nothing() {
    let sys = System::new(&[], &Hooks::default());
    let (_, v2, _) = deployed(&sys);
    sys.roll_back_failing_at("syncfs-fails")
        .fails(9, "so nothing was replaced");
    assert_trees("after the refused rollback", &v2, &sys.trees());
    assert!(
        sys.take_log().is_empty(),
        "a hook ran: the application went down"
    );
    assert!(sys.staging_left().is_empty(), "{:?}", sys.staging_left());
    let status = sys.run(&["rollback", "status", "--json"]).ok().json();
    assert!(status["unfinished"].is_null(), "{status}");
}

#[test]
fn a_rollback_whose_switch_cannot_be_synced_switches_everything_back() {
    let sys = System::new(&[], &Hooks::default());
    let (_, v2, _) = deployed(&sys);
    let r = sys.roll_back_failing_at("switch-sync-fails");
    assert_eq!(r.code, 11, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["result"], "reverted", "{j}");
    assert!(
        j["failure"].as_str().unwrap().contains("cannot sync"),
        "{j}"
    );
    assert_trees("after the switch that was not synced", &v2, &sys.trees());
    assert!(sys.staging_left().is_empty(), "{:?}", sys.staging_left());
    // Down once, up again on the deployed state.
    assert_eq!(
        sys.take_log(),
        ["stop rollback api web config nginx", "start", "health"]
    );
    let status = sys.run(&["rollback", "status", "--json"]).ok().json();
    assert!(status["unfinished"].is_null(), "{status}");
}
