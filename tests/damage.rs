//! Damaged objects: `verify` names them; `restore` refuses before touching
//! the target.

use crate::common::*;
use std::path::{Path, PathBuf};

fn setup() -> (Env, PathBuf, String) {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    let id = env.create(&[&src], &[])["id"].as_str().unwrap().to_string();
    (env, src, id)
}

fn only_file(dir: &Path) -> PathBuf {
    let mut f = files_under(dir);
    assert_eq!(f.len(), 1, "{f:?}");
    f.pop().unwrap()
}

fn assert_restore_refused(env: &Env, id: &str) {
    let target = env.path("restore");
    let r = env.run(&["restore", id, "--target", target.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(!target.exists(), "the target must not be created");
    let names: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("staging")), "{names:?}");
}

#[test]
fn flipped_byte_in_a_pack_is_named_with_the_files_it_affects() {
    let (env, src, id) = setup();
    env.run(&["verify", "--read-data"]).ok();
    let pack = only_file(&Path::new(&env.repo).join("data"));
    // Find vendor.js's data: the largest blob region sits early in the pack; flip a byte in the middle.
    let len = std::fs::metadata(&pack).unwrap().len() as i64;
    flip_byte(&pack, len / 3);
    let structural = env.run(&["verify"]);
    assert_eq!(
        structural.code, 0,
        "a flipped byte keeps the size: structure is fine\n{structural:?}"
    );
    let r = env.run(&["verify", "--read-data"]);
    assert_eq!(r.code, 3, "{r:?}");
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        r.stdout
            .contains(&format!("DAMAGED data/{}/{name}", &name[..2])),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("snapshot {}", &id[..8])),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&src.display().to_string()),
        "{}",
        r.stdout
    );
    assert_restore_refused(&env, &id);
}

#[test]
fn missing_pack_is_found_by_the_structural_check() {
    let (env, _src, id) = setup();
    let pack = only_file(&Path::new(&env.repo).join("data"));
    std::fs::remove_file(&pack).unwrap();
    let r = env.run(&["verify"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.contains("missing"), "{}", r.stdout);
    let target = env.path("restore");
    let r = env.run(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(!target.exists());
}

#[test]
fn flipped_byte_in_an_index_object_is_named() {
    let (env, _src, id) = setup();
    let index = only_file(&Path::new(&env.repo).join("index"));
    flip_byte(&index, 20);
    let r = env.run(&["verify"]);
    assert_eq!(r.code, 3, "{r:?}");
    let name = index.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        r.stdout.contains(&format!("DAMAGED index/{name}")),
        "{}",
        r.stdout
    );
    assert_restore_refused(&env, &id);
    env.run(&["snapshots"]).fails(3, &format!("index/{name}"));
}

#[test]
fn flipped_byte_in_a_snapshot_object_is_named() {
    let (env, _src, id) = setup();
    let snap = Path::new(&env.repo).join("snapshots").join(&id);
    flip_byte(&snap, -5);
    let r = env.run(&["verify"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(
        r.stdout.contains(&format!("DAMAGED snapshots/{id}")),
        "{}",
        r.stdout
    );
    assert_restore_refused(&env, &id);
}

/// Two snapshots tagged `nightly`; the newer manifest has a flipped byte.
/// Returns the environment, the older id and the newer (damaged) id.
fn newest_of_two_damaged() -> (Env, PathBuf, String, String) {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    let older = env.create(&[&src], &["--tag", "nightly"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(src.join("web/index.html"), b"<html>newer</html>\n").unwrap();
    let newer = env.create(&[&src], &["--tag", "nightly"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    flip_byte(&Path::new(&env.repo).join("snapshots").join(&newer), 40);
    (env, src, older, newer)
}

/// `latest` must not quietly mean an older snapshot: the message names the
/// damaged manifest and how to choose one explicitly.
fn assert_latest_refused(r: Run, damaged: &str) {
    let r = r.fails(3, &format!("snapshots/{damaged}"));
    for hint in ["id", "backup snapshots", "backup verify"] {
        assert!(r.stderr.contains(hint), "no {hint:?} in: {}", r.stderr);
    }
}

#[test]
fn latest_refuses_to_fall_back_past_a_damaged_newest_manifest() {
    let (env, _src, older, newer) = newest_of_two_damaged();
    let target = env.path("restore");
    let t = target.to_str().unwrap();
    let bundle = env.path("bundle.tar");
    let b = bundle.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["restore", "latest", "--target", t],
        vec!["restore", "latest", "--tag", "nightly", "--target", t],
        vec!["show", "latest"],
        vec!["show", "latest", "--tag", "nightly"],
        vec!["show"],
        vec!["export", "latest", "-o", b],
        vec!["export", "latest", "--tag", "nightly", "-o", b],
        vec!["diff", &older, "latest"],
        vec!["diff", "latest", "--live"],
    ];
    for args in commands {
        let r = env.run(&args);
        assert!(!r.stdout.contains(&older[..8]), "{args:?}: {r:?}");
        assert_latest_refused(r, &newer);
    }
    assert!(!target.exists(), "nothing may be restored");
    assert!(!bundle.exists(), "nothing may be exported");
    // Naming the older snapshot explicitly still works.
    env.run(&["restore", &older, "--target", t]).ok();
    assert!(target.exists());
}

#[test]
fn latest_with_its_only_snapshot_damaged_is_damage_not_an_empty_repository() {
    let (env, _src, id) = setup();
    flip_byte(&Path::new(&env.repo).join("snapshots").join(&id), 40);
    let target = env.path("restore");
    let r = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert!(!r.stderr.contains("no snapshot yet"), "{}", r.stderr);
    assert_latest_refused(r, &id);
    assert_latest_refused(env.run(&["show"]), &id);
    assert!(!target.exists());
}

/// Changes one hex digit of the wrapped master key in the only key object
/// (the JSON stays valid, so only the name check can tell damage from a
/// wrong password).
fn damage_the_key(env: &Env) -> String {
    let key = only_file(&Path::new(&env.repo).join("keys"));
    let mut text = std::fs::read_to_string(&key).unwrap();
    let at = text.find("\"data\": \"").unwrap() + 9 + 20;
    let old = text.as_bytes()[at];
    let new = if old == b'0' { "1" } else { "0" };
    text.replace_range(at..at + 1, new);
    std::fs::write(&key, text).unwrap();
    key.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn damaged_key_object_is_damage_not_a_wrong_password() {
    let (env, _src, id) = setup();
    let name = damage_the_key(&env);
    for args in [vec!["snapshots"], vec!["verify"], vec!["show", &id]] {
        let r = env.run(&args).fails(3, &format!("key object keys/{name}"));
        assert!(r.stderr.contains("is damaged"), "{}", r.stderr);
        assert!(
            r.stderr.contains("restore a copy of the keys/ folder"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("wrong password"), "{}", r.stderr);
    }
}

#[test]
fn flipped_digits_in_the_config_are_damage_found_by_every_command() {
    for (field, encrypted) in [
        ("seed", true),
        ("compression_level", true),
        ("seed", false),
        ("compression_level", false),
    ] {
        let mut env = Env::local();
        let src = env.path("tree");
        fixture(&src);
        if encrypted {
            env.init();
        } else {
            env.password = None;
            env.run(&["init", "--insecure-no-encryption"]).ok();
        }
        let id = env.create(&[&src], &[])["id"].as_str().unwrap().to_string();
        let cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(Path::new(&env.repo).join("config")).unwrap())
                .unwrap();
        // One digit changes, the value stays in range.
        let (from, to) = match field {
            "seed" => {
                let seed = cfg["chunker"]["seed"].as_u64().unwrap();
                let other = if seed % 10 == 1 {
                    seed - 1
                } else {
                    seed / 10 * 10 + 1
                };
                (format!("\"seed\": {seed}"), format!("\"seed\": {other}"))
            }
            _ => (
                "\"compression_level\": 3".to_string(),
                "\"compression_level\": 4".to_string(),
            ),
        };
        edit_config_text(&env.repo, &from, &to);
        let target = env.path("restore");
        let t = target.to_str().unwrap();
        for args in [
            vec!["verify", "--read-data"],
            vec!["snapshots"],
            vec!["create", "--files", src.to_str().unwrap()],
            vec!["restore", &id, "--target", t],
        ] {
            let r = env.run(&args).fails(3, "config object of");
            assert!(
                r.stderr.contains("does not match its checksum"),
                "{field} {args:?}: {}",
                r.stderr
            );
            assert!(r.stderr.contains("backup copy"), "{}", r.stderr);
        }
        assert!(!target.exists());
        assert_eq!(
            files_under(&Path::new(&env.repo).join("snapshots")).len(),
            1,
            "no snapshot written with a damaged config"
        );
        // Put the digit back: everything is fine again.
        edit_config_text(&env.repo, &to, &from);
        env.run(&["verify", "--read-data"]).ok();
    }
}

#[test]
fn a_config_edited_with_a_recomputed_checksum_fails_its_mac() {
    let (env, _src, _id) = setup();
    edit_config_with_checksum(&env.repo, |v| v["compression_level"] = 9.into());
    let r = env.run(&["snapshots"]).fails(3, "fails authentication");
    assert!(r.stderr.contains("backup copy"), "{}", r.stderr);
    // Claiming the repository is unencrypted skips the MAC, but the key objects give it away.
    let (env, _src, _id) = setup();
    edit_config_with_checksum(&env.repo, |v| {
        v["encryption"] = "none".into();
        v.as_object_mut().unwrap().remove("mac");
    });
    env.run(&["snapshots"]).fails(3, "holds key objects");
    env.run(&["verify"]).fails(3, "holds key objects");
}

#[test]
fn a_config_without_checksum_is_refused_as_damaged() {
    let (env, _src, _id) = setup();
    let path = Path::new(&env.repo).join("config");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("checksum");
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let r = env.run(&["snapshots"]).fails(3, "has no checksum");
    assert!(r.stderr.contains("pre-release"), "{}", r.stderr);
    // A config of some other tool is still "not a repository".
    std::fs::write(
        &path,
        br#"{"version": 2, "id": "abc", "chunker_polynomial": "3f"}"#,
    )
    .unwrap();
    env.run(&["snapshots"]).fails(5, "not a backup repository");
}
