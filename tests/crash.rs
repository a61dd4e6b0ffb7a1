//! `kill -9` of `backup create` at random moments: no snapshot appears,
//! verify passes, and the next create works and reuses what was uploaded.

use crate::common::*;
use std::path::Path;
use std::time::Duration;

#[test]
fn killed_create_leaves_no_snapshot_and_its_uploads_are_reused() {
    let env = Env::local();
    let src = env.path("tree");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..12 {
        // Half compressible, half random, so that packs fill steadily.
        let mut data = random_bytes(1000 + i, 3_000_000);
        data[..1_500_000].fill(b'a' + (i as u8));
        std::fs::write(src.join(format!("f{i}.bin")), data).unwrap();
    }
    env.run(&["init", "--pack-size-mib", "2"]).ok();
    let snapshots = Path::new(&env.repo).join("snapshots");
    let mut rng = random_bytes(42, 64);
    let stored_packs = || {
        files_under(&Path::new(&env.repo).join("data"))
            .iter()
            .filter(|p| {
                !p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".tmp-")
            })
            .count()
    };
    // Six kills at random moments, then (if none came late enough to leave
    // a pack behind) later and later ones, so that reuse is really tested.
    let mut round = 0;
    while round < 6 || (stored_packs() == 0 && round < 16) {
        let mut child = env
            .cmd(&["create", "--quiet", "--files", src.to_str().unwrap()])
            .spawn()
            .unwrap();
        let delay = if round < 6 {
            40 + (rng[round] as u64) * 3
        } else {
            400 * (round as u64 - 4)
        };
        round += 1;
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        rng.rotate_left(1);
        if status.success() {
            // It finished before the kill: remove that snapshot to keep the test's premise.
            for f in files_under(&snapshots) {
                std::fs::remove_file(f).unwrap();
            }
            continue;
        }
        assert!(
            files_under(&snapshots).is_empty(),
            "round {round}: a killed create left a snapshot"
        );
        let v = env.run(&["verify", "--read-data", "--json"]);
        assert_eq!(v.code, 0, "round {round}: {v:?}");
    }
    let before = env.run(&["verify", "--json"]).ok().json();
    let packs_before =
        before["packs"].as_u64().unwrap() + before["unindexed_packs"].as_u64().unwrap();
    let created = env.create(&[&src], &[]);
    let total = created["bytes"].as_u64().unwrap();
    let new = created["new_bytes"].as_u64().unwrap();
    assert!(packs_before > 0, "no kill left an uploaded pack behind");
    assert!(new < total, "uploaded packs were not reused: {created}");
    env.run(&["verify", "--read-data"]).ok();
    let target = env.path("out");
    env.run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(digest(&src), digest(&restored(&target, &src)));
}
