//! `prune` end to end, on a local repository and Garage S3: space freed,
//! `verify --read-data` passes, every remaining snapshot restores exactly;
//! `kill -9` at each step leaves a valid repository that the next prune
//! finishes without any unlock; a create beside a prune waits for it and
//! produces a valid snapshot.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::Garage;

/// Four snapshots of a changing tree: each round drops some files and adds
/// new ones, so that forgetting old snapshots leaves packs unused and
/// partly used. Returns the snapshot ids with the tree digest at each.
fn history(env: &Env) -> Vec<(String, BTreeMap<String, Entry>)> {
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    env.run(&["init", "--pack-size-mib", "1"]).ok();
    let mut out = Vec::new();
    for round in 0..4u64 {
        for i in 0..6u64 {
            let n = round * 6 + i;
            std::fs::write(
                src.join(format!("f{n}.bin")),
                random_bytes(100 + n, 400_000),
            )
            .unwrap();
        }
        if round > 0 {
            for i in 0..4u64 {
                let _ = std::fs::remove_file(src.join(format!("f{}.bin", (round - 1) * 6 + i)));
            }
        }
        let snap = env.create(&[&src], &[]);
        out.push((snap["id"].as_str().unwrap().to_string(), digest(&src)));
    }
    out
}

fn data_bytes(env: &Env) -> u64 {
    files_under(&Path::new(&env.repo).join("data"))
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn assert_restores(env: &Env, snaps: &[(String, BTreeMap<String, Entry>)], what: &str) {
    env.run(&["verify", "--read-data"]).ok();
    for (i, (id, want)) in snaps.iter().enumerate() {
        let target = env.path(&format!("restore-{what}-{i}"));
        env.run(&["restore", id, "--target", target.to_str().unwrap()])
            .ok();
        let got = digest(&restored(&target, &env.path("src")));
        assert_eq!(&got, want, "{what}: snapshot {i} restores differently");
        std::fs::remove_dir_all(&target).unwrap();
    }
}

fn forget_oldest_two(env: &Env) {
    env.run(&["forget", "--keep-last", "2"]).ok();
    assert_eq!(env.listed_snapshots(), 2);
}

fn prune_cycle(env: &Env) {
    let snaps = history(env);
    forget_oldest_two(env);
    let kept = &snaps[2..];
    // The same repack limit as the prune below: with the default 5%, packs
    // just under it would be kept by the estimate and repacked by the prune
    // (which packs those are follows the order the packers finished in).
    let dry = env
        .run(&["prune", "--dry-run", "--max-unused", "0%", "--json"])
        .ok()
        .json();
    assert_eq!(dry["dry_run"], true);
    assert!(dry["bytes_freed"].as_u64().unwrap() > 0, "{dry}");
    assert_eq!(dry["unused_bytes_after"], 0, "{dry}");
    let r = env
        .run(&["prune", "--max-unused", "0%", "--json"])
        .ok()
        .json();
    assert!(
        r["packs_deleted"].as_u64().unwrap() + r["packs_repacked"].as_u64().unwrap() > 0,
        "{r}"
    );
    assert_eq!(r["unused_bytes_after"], 0, "{r}");
    // The dry run's estimate differs only by the headers of the new packs.
    let (est, real) = (
        dry["bytes_freed"].as_u64().unwrap(),
        r["bytes_freed"].as_u64().unwrap(),
    );
    assert!(
        est.abs_diff(real) * 200 < real,
        "the dry run estimated {est}, prune freed {real}"
    );
    assert_restores(env, kept, "after prune");
    // Nothing left to do.
    let again = env.run(&["prune", "--json"]).ok().json();
    assert_eq!(again["bytes_freed"], 0, "{again}");
}

#[test]
fn prune_frees_the_space_of_forgotten_snapshots_and_the_rest_restores() {
    let env = Env::local();
    let snaps = history(&env);
    let before = data_bytes(&env);
    forget_oldest_two(&env);
    let r = env
        .run(&["prune", "--max-unused", "0%", "--json"])
        .ok()
        .json();
    let after = data_bytes(&env);
    assert_eq!(r["bytes_before"].as_u64().unwrap(), before, "{r}");
    assert_eq!(r["bytes_after"].as_u64().unwrap(), after, "{r}");
    // The first two rounds' dropped files (8 of 400 KB, random) are gone.
    assert!(
        before - after > 3_000_000,
        "freed only {} bytes: {r}",
        before - after
    );
    assert_restores(&env, &snaps[2..], "local");
}

#[test]
fn prune_on_garage_s3() {
    let garage = Garage::start();
    let mut env = Env::local();
    env.repo = format!("s3://{}/prune", garage.bucket());
    env.extra = garage.env();
    let snaps = history(&env);
    forget_oldest_two(&env);
    let r = env
        .run(&[
            "forget",
            "--keep-last",
            "2",
            "--prune",
            "--max-unused",
            "0%",
            "--json",
        ])
        .ok()
        .json();
    assert!(
        r["prune"]["bytes_freed"].as_u64().unwrap() > 3_000_000,
        "{r}"
    );
    assert_restores(&env, &snaps[2..], "s3");
}

#[test]
fn forget_prune_dry_run_shows_what_both_would_free() {
    let env = Env::local();
    prune_cycle_dry(&env);
}

fn prune_cycle_dry(env: &Env) {
    history(env);
    let before = data_bytes(env);
    let r = env
        .run(&[
            "forget",
            "--keep-last",
            "2",
            "--prune",
            "--dry-run",
            "--json",
        ])
        .ok()
        .json();
    // The two forgotten snapshots alone hold 8 files of 400 kB: all of it
    // is freed or, in packs below the 5% repack limit (their layout
    // follows the order the packers finished in), left unused.
    let freed = r["prune"]["bytes_freed"].as_u64().unwrap();
    let left = r["prune"]["unused_bytes_after"].as_u64().unwrap();
    assert!(freed > 2_000_000 && freed + left > 3_000_000, "{r}");
    assert_eq!(env.listed_snapshots(), 4, "a dry run removed snapshots");
    assert_eq!(data_bytes(env), before, "a dry run removed data");
}

#[test]
fn a_killed_prune_leaves_a_valid_repository_and_the_next_one_finishes() {
    for point in [
        "prune:repacked",
        "prune:indexed",
        "prune:index-replaced",
        "prune:deleting",
    ] {
        let env = Env::local();
        let snaps = history(&env);
        forget_oldest_two(&env);
        let mut c = env.cmd(&["prune", "--max-unused", "0%"]);
        c.env("BACKUP_FAILPOINT", point);
        let r = Run::from(c.output().unwrap());
        assert_eq!(r.code, -1, "{point}: not killed: {}", r.stderr);
        // The lock of the killed prune is left behind and removed by the
        // next process (its holder is dead): no unlock by hand.
        assert_restores(&env, &snaps[2..], point);
        env.create(&[&env.path("src")], &[]);
        let r = env
            .run(&["prune", "--max-unused", "0%", "--json"])
            .ok()
            .json();
        assert_eq!(r["unused_bytes_after"], 0, "{point}: {r}");
        assert_restores(&env, &snaps[2..], &format!("{point}, pruned again"));
    }
}

#[test]
fn a_create_beside_a_prune_waits_and_both_leave_valid_snapshots() {
    let env = Env::local();
    let snaps = history(&env);
    forget_oldest_two(&env);
    // A big tree keeps the create busy (and its shared lock held).
    let big = env.path("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..3u64 {
        std::fs::write(big.join(format!("b{i}")), random_bytes(900 + i, 30_000_000)).unwrap();
    }
    let create = env
        .cmd(&["create", "--json", "--files", big.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let locks = Path::new(&env.repo).join("locks");
    let t0 = Instant::now();
    while files_under(&locks).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the create took no lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Without waiting, prune is refused and deletes nothing.
    let before = data_bytes(&env);
    env.run(&["prune"]).fails(7, "locked");
    // With --retry-lock it waits for the create, then prunes.
    let r = env.run(&[
        "prune",
        "--max-unused",
        "0%",
        "--retry-lock",
        "5m",
        "--json",
    ]);
    let created = create.wait_with_output().unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let r = r.ok().json();
    assert_eq!(r["snapshots"], 3, "prune ran after the create: {r}");
    assert!(data_bytes(&env) < before + 95_000_000);
    assert_restores(&env, &snaps[2..], "beside a create");
    let id: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let target = env.path("big-restore");
    env.run(&[
        "restore",
        id["id"].as_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(digest(&restored(&target, &big)), digest(&big));
}

#[test]
fn prune_refuses_while_a_snapshot_cannot_be_read() {
    let env = Env::local();
    history(&env);
    forget_oldest_two(&env);
    let manifest = files_under(&Path::new(&env.repo).join("snapshots")).remove(0);
    flip_byte(&manifest, 10);
    let before = data_bytes(&env);
    env.run(&["prune"]).fails(3, "prune deletes nothing");
    assert_eq!(data_bytes(&env), before);
}

#[test]
fn prune_cycle_local() {
    prune_cycle(&Env::local());
}
