//! Bad input: each gets a clear message, a non-zero exit, and loses nothing.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

#[test]
fn wrong_or_missing_password_is_refused() {
    let mut env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    env.create(&[&src], &[]);
    env.password = Some("not the password".into());
    env.run(&["snapshots"]).fails(4, "wrong password");
    env.password = None;
    env.run(&["snapshots"]).fails(4, "BACKUP_PASSWORD");
    env.run(&["init"]).fails(2, "already holds a repository");
}

#[test]
fn init_without_password_needs_explicit_opt_out() {
    let mut env = Env::local();
    env.password = None;
    env.run(&["init"]).fails(1, "--insecure-no-encryption");
    assert!(!Path::new(&env.repo).join("config").exists());
}

#[test]
fn a_path_that_is_not_a_repository_is_refused() {
    let env = Env::local();
    std::fs::create_dir_all(&env.repo).unwrap();
    std::fs::write(Path::new(&env.repo).join("somefile"), b"x").unwrap();
    env.run(&["snapshots"]).fails(5, "not a backup repository");
    env.run(&["init"]).fails(2, "not empty");
    let e2 = Env {
        repo: "ftp://host/x".into(),
        ..Env::local()
    };
    e2.run(&["snapshots"])
        .fails(2, "unsupported repository URL");
}

#[test]
fn an_unknown_format_version_is_refused() {
    let env = Env::local();
    env.init();
    // A version changed without updating the checksum is damage, not a newer format.
    edit_config_text(&env.repo, "\"version\": 1", "\"version\": 2");
    env.run(&["snapshots"])
        .fails(3, "does not match its checksum");
    // Written so by a newer tool (the checksum is computed the same way in every version).
    edit_config_with_checksum(&env.repo, |_| {});
    env.run(&["snapshots"]).fails(5, "format version 2");
}

#[test]
fn missing_sources_and_bad_patterns_fail_before_any_write() {
    let env = Env::local();
    env.init();
    env.run(&["create", "--files", "/no/such/dir"])
        .fails(8, "does not exist");
    let src = env.path("tree");
    fixture(&src);
    env.run(&[
        "create",
        "--files",
        src.to_str().unwrap(),
        "--exclude",
        "a[b",
    ])
    .fails(2, "bad --exclude pattern");
    env.run(&["create"]).fails(2, "nothing to capture");
    let inner = src.join("web");
    env.run(&[
        "create",
        "--files",
        src.to_str().unwrap(),
        "--files",
        inner.to_str().unwrap(),
    ])
    .fails(2, "lies inside");
    assert!(files_under(&Path::new(&env.repo).join("data")).is_empty());
    assert!(files_under(&Path::new(&env.repo).join("snapshots")).is_empty());
}

fn open_up(p: &Path) {
    for e in walkdir::WalkDir::new(p) {
        let e = e.unwrap();
        let mode = if e.file_type().is_dir() { 0o777 } else { 0o666 };
        if !e.path_is_symlink() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

#[test]
fn unreadable_source_files_fail_the_run_or_are_skipped_on_request() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    open_up(env.dir.path());
    std::fs::set_permissions(
        src.join("config/.env"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let r = env.run_unprivileged(&["create", "--files", src.to_str().unwrap()]);
    let r = r.fails(8, "config/.env");
    assert!(r.stderr.contains("--skip-unreadable"));
    assert!(files_under(&Path::new(&env.repo).join("snapshots")).is_empty());
    let r = env.run_unprivileged(&[
        "create",
        "--json",
        "--skip-unreadable",
        "--files",
        src.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 10, "{r:?}");
    let out = r.json();
    assert!(out["warnings"][0].as_str().unwrap().contains("config/.env"));
    assert_eq!(out["skipped"], 1, "{out}");
    assert_eq!(
        files_under(&Path::new(&env.repo).join("snapshots")).len(),
        1
    );
}

#[test]
fn read_only_target_fails_cleanly() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    env.create(&[&src], &[]);
    open_up(env.dir.path());
    let parent = env.path("ro");
    std::fs::create_dir_all(&parent).unwrap();
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o555)).unwrap();
    let target = parent.join("out");
    let r = env.run_unprivileged(&["restore", "latest", "--target", target.to_str().unwrap()]);
    r.fails(9, "staging");
    assert!(!target.exists());
    assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 0);
}

#[test]
fn full_disk_on_restore_leaves_the_target_untouched() {
    let env = Env::local();
    let src = env.path("tree");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big.bin"), random_bytes(5, 4_000_000)).unwrap();
    env.init();
    env.create(&[&src], &[]);
    let mnt = env.path("small");
    std::fs::create_dir_all(&mnt).unwrap();
    // A private mount namespace: the 1 MiB file system vanishes with the process.
    let target = mnt.join("out");
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs {m} && mkdir {m}/out && echo keep > {m}/out/old.txt && \
         {b} restore latest --overwrite --target {t}; rc=$?; ls -A {m}; cat {m}/out/old.txt; exit $rc",
        m = mnt.display(),
        b = bin().display(),
        t = target.display()
    );
    let mut c = Command::new("unshare");
    if is_root() {
        c.arg("-m");
    } else {
        c.arg("-Urm");
    }
    c.args(["sh", "-c", &script]);
    c.env("BACKUP_REPOSITORY", &env.repo)
        .env("BACKUP_PASSWORD", env.password.as_deref().unwrap());
    c.env("XDG_CACHE_HOME", env.dir.path().join("cache"));
    let r = Run::from(c.output().unwrap());
    assert_eq!(r.code, 9, "{r:?}");
    assert!(r.stderr.contains("No space left"), "{}", r.stderr);
    // Only the old target remains, with its content; no staging directory.
    assert_eq!(r.stdout.trim(), "out\nkeep", "{r:?}");
}

#[test]
fn bad_bundles_and_missing_restore_targets_are_refused() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    env.create(&[&src], &[]);
    // Not a tar at all, and a tar that is not a bundle.
    let junk = env.path("junk.tar");
    std::fs::write(&junk, random_bytes(3, 10_000)).unwrap();
    env.run(&["import", junk.to_str().unwrap()])
        .fails(2, "not a valid bundle");
    let plain = env.path("plain.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&plain)
        .arg("-C")
        .arg(&src)
        .arg("web")
        .status()
        .unwrap();
    assert!(st.success());
    env.run(&["import", plain.to_str().unwrap()])
        .fails(2, "not a valid bundle");
    env.run(&["import", env.path("absent.tar").to_str().unwrap()])
        .fails(2, "cannot open");
    assert_eq!(
        files_under(&Path::new(&env.repo).join("snapshots")).len(),
        1
    );
    // Restores need a target, and --replace belongs to databases.
    env.run(&["restore", "latest"])
        .fails(2, "say where to restore");
    env.run(&[
        "restore",
        "latest",
        "--target",
        env.path("t").to_str().unwrap(),
        "--replace",
    ])
    .fails(2, "--overwrite");
    assert!(!env.path("t").exists());
    // An export into a missing directory fails and leaves nothing.
    env.run(&[
        "export",
        "latest",
        "-o",
        env.path("no/such/dir/b.tar").to_str().unwrap(),
    ])
    .fails(9, "cannot create a file");
    // A snapshot without a database cannot be restored to PostgreSQL.
    env.run(&["restore", "latest", "--postgres-target", "dbname=x"])
        .fails(2, "holds no database");
}
