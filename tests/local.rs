//! Happy paths against a local-directory repository.

use crate::common::*;
use std::path::Path;

#[test]
fn round_trip_keeps_content_modes_times_links_and_empty_dirs() {
    let env = Env::local();
    let src = env.path("srv/dms/current");
    fixture(&src);
    let etc = env.path("etc/dms.conf");
    std::fs::create_dir_all(etc.parent().unwrap()).unwrap();
    std::fs::write(&etc, b"port = 8080\n").unwrap();
    env.init();
    let created = env.create(
        &[&src, &etc],
        &["--tag", "pre-deploy", "--label", "v1.0 go-live"],
    );
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["files"], 9, "{created}");

    let list = env.run(&["snapshots", "--json"]).ok().json();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["tags"][0], "pre-deploy");
    assert_eq!(list[0]["label"], "v1.0 go-live");

    // show lists every file with the SHA-256 of its content.
    let shown = env.run(&["show", "--json", &id[..10]]).ok().json();
    let files = shown["components"][0]["files"].as_array().unwrap();
    let main = files
        .iter()
        .find(|f| f["path"] == "api/dist/main.js")
        .unwrap();
    let want = digest(&src)["api/dist/main.js"].sha256.clone();
    assert_eq!(main["sha256"], want.as_str());

    let target = env.path("restore");
    let r = env
        .run(&[
            "restore",
            &id,
            "--target",
            target.to_str().unwrap(),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["files"], 9);
    assert_eq!(digest(&src), digest(&restored(&target, &src)));
    assert_eq!(
        std::fs::read(restored(&target, &etc)).unwrap(),
        b"port = 8080\n"
    );
    // No staging directory is left next to the target.
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("staging"))
        .collect();
    assert!(leftovers.is_empty());

    // The live tree equals the snapshot.
    let d = env.run(&["diff", "latest", "--live", "--json"]).ok().json();
    assert_eq!(d.as_array().unwrap().len(), 0, "{d}");
    env.run(&["verify", "--read-data"]).ok();
}

#[test]
fn second_snapshot_of_unchanged_tree_stores_almost_nothing() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    std::fs::write(src.join("big.bin"), random_bytes(9, 16_000_000)).unwrap();
    env.init();
    let first = env.create(&[&src], &[]);
    let second = env.create(&[&src], &[]);
    let bytes = first["bytes"].as_u64().unwrap();
    assert!(first["stored_bytes"].as_u64().unwrap() > bytes / 2);
    assert_eq!(second["new_bytes"], 0, "{second}");
    assert!(
        second["stored_bytes"].as_u64().unwrap() * 100 < bytes,
        "{second}"
    );
    // A small change stores the chunk around it (and at times the next
    // one, until the cut points line up again), not the 16 MB file; chunks
    // are at most 4 MiB whatever the repository's chunker seed.
    let mut big = std::fs::read(src.join("big.bin")).unwrap();
    big[8_000_000..8_000_100].fill(0);
    std::fs::write(src.join("big.bin"), big).unwrap();
    let third = env.create(&[&src], &[]);
    assert!(third["new_bytes"].as_u64().unwrap() < 9_000_000, "{third}");
}

#[test]
fn diff_reports_added_removed_and_changed_files() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    let a = env.create(&[&src], &[])["id"].as_str().unwrap().to_string();
    std::fs::write(src.join("web/index.html"), b"<html>v2</html>").unwrap();
    std::fs::remove_file(src.join("zero.bin")).unwrap();
    std::fs::write(src.join("web/new.css"), b"body{}").unwrap();
    std::fs::set_permissions(
        src.join("api/dist/main.js"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let live = env.run(&["diff", &a, "--live"]).ok().stdout;
    let b = env.create(&[&src], &[])["id"].as_str().unwrap().to_string();
    let out = env.run(&["diff", &a, &b]).ok().stdout;
    for text in [&live, &out] {
        assert!(
            text.contains(&format!("+ {}", src.join("web/new.css").display())),
            "{text}"
        );
        assert!(
            text.contains(&format!("- {}", src.join("zero.bin").display())),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "M {} (content",
                src.join("web/index.html").display()
            )),
            "{text}"
        );
        assert!(text.contains("mode 644->600"), "{text}");
        assert!(text.contains("1 added, 1 removed, 2 modified"), "{text}");
    }
}

#[test]
fn diff_live_trusts_files_as_captured_and_read_all_reads_every_one() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    env.create(&[&src], &[]);
    std::fs::write(src.join("web/index.html"), b"<html>v2</html>").unwrap();
    let files = walkdir::WalkDir::new(&src)
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .count();

    let trusted = env.run(&["diff", "latest", "--live"]).ok().stdout;
    let read = env
        .run(&["diff", "latest", "--live", "--read-all"])
        .ok()
        .stdout;
    for text in [&trusted, &read] {
        assert!(
            text.contains(&format!(
                "M {} (content",
                src.join("web/index.html").display()
            )),
            "{text}"
        );
        assert!(text.contains("0 added, 0 removed, 1 modified"), "{text}");
    }
    assert!(
        trusted.contains(&format!(
            "1 live files read, {} taken as captured",
            files - 1
        )),
        "{trusted}"
    );
    assert!(
        read.contains(&format!("{files} live files read, 0 taken as captured")),
        "{read}"
    );
    env.run(&["diff", "latest", "--read-all"])
        .fails(2, "--live");
}

#[test]
fn create_diff_and_an_in_place_restore_leave_access_times_alone() {
    use testkit::{read_at, unread_since_long_ago};
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    let main = src.join("api/dist/main.js");
    let long_ago = unread_since_long_ago(&main);
    env.init();
    env.create(&[&src], &[]);
    assert_eq!(read_at(&main), long_ago, "create read it as a use");
    env.run(&["diff", "latest", "--live", "--read-all"]).ok();
    assert_eq!(read_at(&main), long_ago, "diff --read-all read it as a use");
    std::fs::write(src.join("web/index.html"), b"<html>v2</html>").unwrap();
    let r = env.run(&RESTORE_TREE_IN_PLACE).ok().json();
    // The unchanged files were copied from the live tree, now kept aside.
    assert!(r["copied"].as_u64().unwrap() > 0, "{r}");
    let kept = std::path::PathBuf::from(r["previous"].as_str().unwrap()).join("api/dist/main.js");
    assert_eq!(
        read_at(&kept),
        long_ago,
        "the copy from the live tree read it as a use"
    );
    // A plain read does move it on this file system: the checks above can fail.
    std::fs::read(&kept).unwrap();
    assert!(read_at(&kept) > long_ago);
}

#[test]
fn a_reader_who_owns_none_of_the_files_still_captures_hashes_and_copies_them() {
    // The kernel allows `O_NOATIME` only to a file's owner (or root) and
    // answers anyone else with EPERM: such a reader must open the file
    // plainly, not skip it. Root writes the tree; `nobody` backs it up.
    let env = Env::local();
    let src = env.path("tree");
    let main = src.join("api/main.js");
    std::fs::create_dir_all(main.parent().unwrap()).unwrap();
    std::fs::write(&main, random_bytes(7, 300_000)).unwrap();
    std::fs::write(src.join("index.html"), b"<html>v1</html>").unwrap();
    env.run_unprivileged(&["init"]).ok();
    env.run_unprivileged(&["create", "--files", src.to_str().unwrap()])
        .ok();
    let out = env.path("out");
    env.run(&["restore", "latest", "--target", out.to_str().unwrap()])
        .ok();
    let got = restored(&out, &src);
    assert_eq!(
        std::fs::read(got.join("api/main.js")).unwrap(),
        std::fs::read(&main).unwrap(),
        "a file nobody does not own was not captured"
    );
    let diff = env
        .run_unprivileged(&["diff", "latest", "--live", "--read-all"])
        .ok();
    assert!(diff.stdout.contains("2 live files read"), "{}", diff.stdout);
    std::fs::write(src.join("index.html"), b"<html>version 2</html>").unwrap();
    let r = env.run_unprivileged(&RESTORE_TREE_IN_PLACE).ok().json();
    assert_eq!(
        r["copied"], 1,
        "main.js was not copied from the live tree: {r}"
    );
    assert_eq!(
        std::fs::read(&main).unwrap(),
        std::fs::read(got.join("api/main.js")).unwrap()
    );
    assert_eq!(
        std::fs::read(src.join("index.html")).unwrap(),
        b"<html>v1</html>"
    );
}

#[test]
fn restore_include_restores_only_that_subtree() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    env.create(&[&src], &[]);
    let target = env.path("out");
    let inc = src.join("web");
    env.run(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--include",
        inc.to_str().unwrap(),
    ])
    .ok();
    let got = restored(&target, &src);
    assert!(got.join("web/index.html").exists());
    assert!(!got.join("api").exists());
    assert_eq!(
        std::fs::read(got.join("web/index.html")).unwrap(),
        std::fs::read(src.join("web/index.html")).unwrap()
    );
    let none = env.run(&[
        "restore",
        "latest",
        "--target",
        env.path("out2").to_str().unwrap(),
        "--include",
        "/no/such/path",
    ]);
    none.fails(2, "matches --include");
    assert!(!env.path("out2").exists());
}

#[test]
fn restore_refuses_occupied_target_and_overwrite_keeps_the_old_content() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    env.create(&[&src], &[]);
    let target = env.path("out");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("precious.txt"), b"keep me").unwrap();
    env.run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .fails(9, "not empty");
    assert_eq!(
        std::fs::read(target.join("precious.txt")).unwrap(),
        b"keep me"
    );
    let r = env
        .run(&[
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
            "--overwrite",
            "--json",
        ])
        .ok()
        .json();
    let previous = Path::new(r["previous"].as_str().unwrap());
    assert_eq!(
        std::fs::read(previous.join("precious.txt")).unwrap(),
        b"keep me"
    );
    assert!(!target.join("precious.txt").exists());
    assert_eq!(digest(&src), digest(&restored(&target, &src)));
}

#[test]
fn export_bundle_passes_sha256sum_and_imports_into_another_repository() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    let id = env.create(&[&src], &["--tag", "release"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bundle = env.path("bundle.tar");
    env.run(&["export", &id[..8], "-o", bundle.to_str().unwrap()])
        .ok();
    let x = env.path("x");
    std::fs::create_dir_all(&x).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&bundle)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(&x)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert!(std::fs::read_to_string(x.join("README.txt"))
        .unwrap()
        .contains("sha256sum -c"));
    let from_tar = x.join("files").join(src.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read(from_tar.join("api/dist/vendor.js")).unwrap(),
        std::fs::read(src.join("api/dist/vendor.js")).unwrap()
    );

    // Import into a second, unencrypted repository and restore from there.
    let mut other = Env::local();
    other.password = None;
    other.run(&["init", "--insecure-no-encryption"]).ok();
    let imported = other
        .run(&["import", bundle.to_str().unwrap(), "--json"])
        .ok()
        .json();
    assert_eq!(imported["imported_from"], id.as_str());
    let list = other.run(&["snapshots", "--json"]).ok().json();
    assert_eq!(list[0]["tags"][0], "release");
    let target = other.path("restore");
    other
        .run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(digest(&src), digest(&restored(&target, &src)));

    // A damaged bundle is refused and creates no snapshot.
    let mut data = std::fs::read(&bundle).unwrap();
    let pos = data.windows(12).position(|w| w == b"dms api v1')").unwrap();
    data[pos] ^= 1;
    let bad = other.path("bad.tar");
    std::fs::write(&bad, data).unwrap();
    other
        .run(&["import", bad.to_str().unwrap()])
        .fails(3, "does not match");
    assert_eq!(other.listed_snapshots(), 1);
}

#[test]
fn encrypted_repository_leaks_no_plaintext_and_plain_one_needs_no_password() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    env.create(&[&src], &[]);
    for f in files_under(Path::new(&env.repo)) {
        let data = std::fs::read(&f).unwrap();
        assert!(
            !data.windows(17).any(|w| w == b"s3cr3t-marker-ZQX"),
            "{} holds plaintext",
            f.display()
        );
        assert!(
            !data.windows(8).any(|w| w == b"main.js\""),
            "{} holds a file name",
            f.display()
        );
    }
    let mut plain = Env::local();
    plain.password = None;
    plain.run(&["init", "--insecure-no-encryption"]).ok();
    plain.create(&[&src], &[]);
    plain.run(&["verify", "--read-data"]).ok();
}

#[test]
fn snapshot_selection_by_prefix_latest_and_tag() {
    let env = Env::local();
    let src = env.path("tree");
    std::fs::create_dir_all(&src).unwrap();
    env.init();
    let mut ids: Vec<String> = Vec::new();
    // Make snapshots until two share a first hex digit (an ambiguous prefix).
    let clash = loop {
        std::fs::write(src.join("n"), format!("{}", ids.len())).unwrap();
        let tag = if ids.is_empty() { "first" } else { "later" };
        let id = env.create(&[&src], &["--tag", tag])["id"]
            .as_str()
            .unwrap()
            .to_string();
        if let Some(other) = ids.iter().find(|o| o[..1] == id[..1]) {
            break (other.clone(), id);
        }
        ids.push(id);
    };
    env.run(&["show", &clash.0[..1]])
        .fails(2, "matches 2 snapshots");
    let shown = env
        .run(&["show", "--json", "latest", "--tag", "first"])
        .ok()
        .json();
    assert_eq!(shown["id"], ids[0].as_str());
    let shown = env.run(&["show", "--json", "latest"]).ok().json();
    assert_eq!(shown["id"], clash.1.as_str());
    env.run(&["show", "ffffffffffffffffff"])
        .fails(2, "no snapshot id starts with");
    env.run(&["show", "latest", "--tag", "nope"])
        .fails(2, "no snapshot carries");
}

#[test]
fn excludes_leave_paths_out() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    std::fs::create_dir_all(src.join("node_modules/x")).unwrap();
    std::fs::write(src.join("node_modules/x/i.js"), b"x").unwrap();
    std::fs::write(src.join("debug.log"), b"log").unwrap();
    env.init();
    env.create(
        &[&src],
        &["--exclude", "node_modules", "--exclude", "*.log"],
    );
    let shown = env.run(&["show", "--json"]).ok().json();
    let paths: Vec<&str> = shown["components"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"web/index.html"));
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("node_modules") || p.ends_with(".log")),
        "{paths:?}"
    );
    // diff --live applies the same excludes.
    let d = env.run(&["diff", "latest", "--live", "--json"]).ok().json();
    assert_eq!(d.as_array().unwrap().len(), 0, "{d}");
}

#[test]
fn read_data_subset_rotates_over_every_pack() {
    let env = Env::local();
    let src = env.path("tree");
    std::fs::create_dir_all(&src).unwrap();
    // Files smaller than a pack keep the pack count independent of where
    // the repository's seeded chunker cuts: 16 MB in packs of at most
    // 1 MiB + 400 kB is at least 11 packs.
    for i in 0..40 {
        std::fs::write(
            src.join(format!("r{i}.bin")),
            random_bytes(100 + i, 400_000),
        )
        .unwrap();
    }
    env.run(&["init", "--pack-size-mib", "1"]).ok();
    env.create(&[&src], &[]);
    let all = env.run(&["verify", "--json"]).ok().json();
    let packs = all["packs"].as_u64().unwrap() as usize;
    assert!(packs >= 8, "{all}");
    let mut seen = std::collections::HashSet::new();
    let per_run = packs.div_ceil(4);
    for _ in 0..4 {
        let r = env
            .run(&["verify", "--read-data-subset", "25%", "--json"])
            .ok()
            .json();
        let ids = r["read_pack_ids"].as_array().unwrap();
        assert_eq!(ids.len(), per_run);
        seen.extend(ids.iter().map(|i| i.as_str().unwrap().to_string()));
    }
    assert_eq!(seen.len(), packs, "four 25% runs must read every pack");
    env.run(&["verify", "--read-data-subset", "150%"])
        .fails(2, "bad subset");
}

#[test]
fn config_file_supplies_repository_and_password_file() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    let pw = env.path("pw");
    std::fs::write(&pw, "file-password\n").unwrap();
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let cfg = env.path("backup.toml");
    std::fs::write(
        &cfg,
        format!(
            "repository = {:?}\npassword_file = {:?}\n",
            env.repo,
            pw.display().to_string()
        ),
    )
    .unwrap();
    let mut e2 = Env::local();
    e2.password = None;
    e2.repo = String::new();
    e2.extra
        .push(("BACKUP_CONFIG".into(), cfg.display().to_string()));
    let mut c = e2.cmd(&["init"]);
    c.env_remove("BACKUP_REPOSITORY");
    assert!(c.status().unwrap().success());
    let mut c = e2.cmd(&["create", "--files", src.to_str().unwrap()]);
    c.env_remove("BACKUP_REPOSITORY");
    assert!(c.status().unwrap().success());
    // The same password from the environment opens it.
    let mut e3 = Env::local();
    e3.repo = env.repo.clone();
    e3.password = Some("file-password".into());
    assert_eq!(e3.listed_snapshots(), 1);
    // A world-readable password file is refused.
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut c = e2.cmd(&["snapshots"]);
    c.env_remove("BACKUP_REPOSITORY");
    let r = Run::from(c.output().unwrap());
    r.fails(1, "readable by every user");
}

#[test]
fn unchanged_files_are_not_read_again_but_changes_are_caught() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    let first = env.create(&[&src], &[]);
    let bytes = first["bytes"].as_u64().unwrap();
    assert!(first["bytes_read"].as_u64().unwrap() >= bytes);
    let second = env.create(&[&src], &[]);
    assert!(
        second["bytes_read"].as_u64().unwrap() * 100 < bytes,
        "{second}"
    );
    // Same size, same mtime, different content: the change time gives it away.
    let f = src.join("api/dist/main.js");
    let old = std::fs::metadata(&f).unwrap();
    let mut data = std::fs::read(&f).unwrap();
    data[0] = b'C';
    std::fs::write(&f, &data).unwrap();
    filetime::set_file_mtime(&f, filetime::FileTime::from_last_modification_time(&old)).unwrap();
    let third = env.create(&[&src], &[]);
    let d = env
        .run(&[
            "diff",
            first["id"].as_str().unwrap(),
            third["id"].as_str().unwrap(),
        ])
        .ok()
        .stdout;
    assert!(d.contains(&format!("M {} (content)", f.display())), "{d}");
    let forced = env.create(&[&src], &["--force"]);
    assert!(forced["bytes_read"].as_u64().unwrap() >= bytes, "{forced}");
    let target = env.path("out");
    env.run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(digest(&src), digest(&restored(&target, &src)));
}

#[test]
fn a_deleted_pack_makes_restore_report_damage_and_leave_no_target() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    env.create(&[&src], &[]);
    for pack in files_under(&Path::new(&env.repo).join("data")) {
        std::fs::remove_file(pack).unwrap();
    }
    let target = env.path("out");
    env.run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .fails(3, "missing");
    assert!(!target.exists());
}

#[test]
fn in_place_restore_copies_unchanged_files_and_rewrites_the_rest() {
    use std::os::unix::fs::FileTypeExt;
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    let before = digest(&src);
    env.init();
    env.create(&[&src], &[]);
    // The same size with other bytes, a symlink to a right copy elsewhere,
    // a FIFO where a file was, a file removed: none may be taken as it is.
    flip_byte(&src.join("api/dist/vendor.js"), 1000);
    let elsewhere = env.path("logo-copy.png");
    std::fs::rename(src.join("web/assets/logo.png"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, src.join("web/assets/logo.png")).unwrap();
    std::fs::remove_file(src.join("api/dist/main.js")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(src.join("api/dist/main.js"))
        .status()
        .unwrap();
    assert!(fifo.success());
    std::fs::remove_file(src.join("bin/start.sh")).unwrap();
    let r = env
        .run(&[
            "restore",
            "latest",
            "--target",
            src.to_str().unwrap(),
            "--overwrite",
            "--json",
        ])
        .ok()
        .json();
    // index.html, the non-ASCII name and .env are unchanged and copied.
    assert_eq!(r["copied"], 3, "{r}");
    assert_eq!(digest(&src), before);
    let previous = Path::new(r["previous"].as_str().unwrap());
    let kept = std::fs::symlink_metadata(previous.join("api/dist/main.js")).unwrap();
    assert!(
        kept.file_type().is_fifo(),
        "the replaced FIFO is kept as it was"
    );
}
