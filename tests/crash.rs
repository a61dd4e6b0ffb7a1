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
    for round in 0..6 {
        let mut child = env
            .cmd(&["create", "--quiet", "--files", src.to_str().unwrap()])
            .spawn()
            .unwrap();
        let delay = 40 + (rng[round] as u64) * 3;
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
    if packs_before > 0 {
        assert!(new < total, "uploaded packs were not reused: {created}");
    }
    env.run(&["verify", "--read-data"]).ok();
    let target = env.path("out");
    env.run(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(digest(&src), digest(&restored(&target, &src)));
}
