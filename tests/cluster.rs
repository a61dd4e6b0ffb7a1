//! A repository on a three-node Garage cluster (replication factor 3, so
//! reads and writes need 2 of 3 nodes) while nodes go down: with one node
//! down every command works; with two down every command fails cleanly
//! (exit 6, storage unreachable) in bounded time; once the nodes are back,
//! the repository verifies, the kept snapshot restores exactly and nothing
//! was half-deleted.

use crate::common::*;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use testkit::GarageCluster;

/// A command that fails for lack of a quorum must say so within this long.
const FAIL_WITHIN: Duration = Duration::from_secs(60);
/// A bounded command is killed after this long (the test then fails).
const KILL_AFTER: Duration = Duration::from_secs(180);

fn cluster_env(cluster: &GarageCluster) -> Env {
    let mut env = Env::local();
    env.repo = format!("s3://{}/cluster", cluster.bucket());
    env.extra = cluster.env();
    env
}

/// Runs `backup ARGS`, killed after [`KILL_AFTER`] (a panic then); returns
/// the run and how long it took.
fn run_bounded(env: &Env, args: &[&str]) -> (Run, Duration) {
    // The binary is built on first use (a fresh clone): not part of the time.
    let mut cmd = env.cmd(args);
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backup");
    // Read both pipes on threads, so that a chatty child never blocks.
    let drain = |child: &mut Child, out: bool| {
        let mut pipe: Box<dyn Read + Send> = if out {
            Box::new(child.stdout.take().unwrap())
        } else {
            Box::new(child.stderr.take().unwrap())
        };
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let (stdout, stderr) = (drain(&mut child, true), drain(&mut child, false));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for backup") {
            break status;
        }
        if start.elapsed() > KILL_AFTER {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`backup {}` did not finish within {} s (killed):\nstderr: {}",
                args.join(" "),
                KILL_AFTER.as_secs(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    let took = start.elapsed();
    eprintln!(
        "backup {} -> exit {} in {:.1} s",
        args.join(" "),
        run.code,
        took.as_secs_f64()
    );
    (run, took)
}

/// Runs a command that must succeed (bounded like [`run_bounded`]).
fn must_succeed(env: &Env, args: &[&str]) -> Run {
    let (run, _) = run_bounded(env, args);
    run.ok()
}

/// Runs a command that must fail as storage unreachable (exit 6) with a
/// message that names the repository, within [`FAIL_WITHIN`].
fn must_fail_unreachable(env: &Env, args: &[&str]) -> Duration {
    let (run, took) = run_bounded(env, args);
    eprintln!("  stderr: {}", run.stderr.trim());
    assert_eq!(
        run.code,
        6,
        "`backup {}` with two of three nodes down: wrong exit code\nstdout: {}\nstderr: {}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr.contains(&env.repo),
        "`backup {}` failed without saying which storage:\n{}",
        args.join(" "),
        run.stderr
    );
    assert!(
        took < FAIL_WITHIN,
        "`backup {}` took {:.1} s to fail (more than {} s)",
        args.join(" "),
        took.as_secs_f64(),
        FAIL_WITHIN.as_secs()
    );
    took
}

/// Restores snapshot `id` into a fresh directory and compares it with
/// `want`.
fn assert_restores(env: &Env, id: &str, want: &BTreeMap<String, Entry>, what: &str) {
    let target = env.path(&format!("restore-{what}"));
    must_succeed(env, &["restore", id, "--target", target.to_str().unwrap()]);
    let got = digest(&restored(&target, &env.path("src")));
    assert!(&got == want, "{what}: snapshot {id} restores differently");
    std::fs::remove_dir_all(&target).unwrap();
}

/// Writes file `n` of the tree (400 KB of random bytes from `seed`).
fn write_file(src: &Path, n: u64, seed: u64) {
    std::fs::write(src.join(format!("f{n}.bin")), random_bytes(seed, 400_000)).unwrap();
}

fn snapshot_id(json: &serde_json::Value) -> String {
    json["id"].as_str().expect("a snapshot id").to_string()
}

/// The object count and size of the bucket, as `garage bucket info` puts
/// them (for the log: Garage updates these counters in the background).
fn bucket_usage(cluster: &GarageCluster) -> String {
    let info = cluster.cli(0, &["bucket", "info", cluster.bucket()]);
    info.lines()
        .filter(|l| l.starts_with("Size:") || l.starts_with("Objects:"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn cluster_keeps_working_with_one_node_down_and_fails_cleanly_with_two() {
    let started = Instant::now();
    let mut cluster = GarageCluster::start(3);
    eprintln!(
        "cluster of {} nodes up in {:.1} s",
        cluster.len(),
        started.elapsed().as_secs_f64()
    );
    let env = cluster_env(&cluster);
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();

    // 1. Two snapshots of a small tree (3.2 MB in 1 MiB packs), some files
    //    changed, one removed and one added between them.
    must_succeed(&env, &["init", "--pack-size-mib", "1"]);
    for n in 0..8 {
        write_file(&src, n, 1000 + n);
    }
    std::fs::write(src.join("notes.txt"), b"first\n").unwrap();
    let first = snapshot_id(
        &must_succeed(
            &env,
            &["create", "--json", "--files", src.to_str().unwrap()],
        )
        .json(),
    );
    write_file(&src, 1, 2001);
    write_file(&src, 2, 2002);
    std::fs::remove_file(src.join("f3.bin")).unwrap();
    write_file(&src, 8, 2008);
    std::fs::write(src.join("notes.txt"), b"second\n").unwrap();
    let second = snapshot_id(
        &must_succeed(
            &env,
            &["create", "--json", "--files", src.to_str().unwrap()],
        )
        .json(),
    );
    assert_ne!(first, second);
    assert_eq!(env.listed_snapshots(), 2);

    // 2. Node 2 down: a quorum of 2 is still there, everything works.
    cluster.kill(2);
    assert!(!cluster.is_running(2));
    write_file(&src, 4, 3004);
    write_file(&src, 9, 3009);
    let third_json = must_succeed(
        &env,
        &["create", "--json", "--files", src.to_str().unwrap()],
    )
    .json();
    let third = snapshot_id(&third_json);
    let kept = digest(&src);
    assert_restores(&env, &third, &kept, "one-down");
    must_succeed(&env, &["forget", "--keep-last", "1"]);
    assert_eq!(env.listed_snapshots(), 1);
    let pruned = must_succeed(&env, &["prune", "--max-unused", "0%", "--json"]).json();
    assert!(
        pruned["packs_deleted"].as_u64().unwrap() + pruned["packs_repacked"].as_u64().unwrap() > 0,
        "prune with one node down removed nothing: {pruned}"
    );
    assert_eq!(pruned["unused_bytes_after"], 0, "{pruned}");
    let packs_after_prune = pruned["packs_before"].as_u64().unwrap()
        - pruned["packs_deleted"].as_u64().unwrap()
        - pruned["packs_repacked"].as_u64().unwrap()
        + pruned["packs_written"].as_u64().unwrap();
    let bytes_after_prune = pruned["bytes_after"].as_u64().unwrap();
    eprintln!(
        "after the prune with node 2 down: {packs_after_prune} packs, {bytes_after_prune} bytes; \
         bucket: {}",
        bucket_usage(&cluster)
    );
    assert_restores(&env, &third, &kept, "after-prune-one-down");

    // 3. Node 1 down as well: no quorum; every command fails as storage
    //    unreachable, with a message, in bounded time.
    cluster.kill(1);
    assert!(!cluster.is_running(1));
    write_file(&src, 5, 4005);
    let mut times = Vec::new();
    times.push(must_fail_unreachable(
        &env,
        &["create", "--files", src.to_str().unwrap()],
    ));
    let target = env.path("restore-two-down");
    times.push(must_fail_unreachable(
        &env,
        &["restore", &third, "--target", target.to_str().unwrap()],
    ));
    times.push(must_fail_unreachable(&env, &["forget", "--keep-last", "1"]));
    times.push(must_fail_unreachable(
        &env,
        &["prune", "--max-unused", "0%"],
    ));
    eprintln!("with two nodes down, the failures took {times:.1?}");

    // 4. Both back: the repository verifies, holds the one kept snapshot,
    //    which restores exactly; every pack the prune kept is still there.
    for i in [1, 2] {
        let healing = Instant::now();
        cluster.restart(i);
        assert!(cluster.is_running(i));
        eprintln!("node {i} back in {:.1} s", healing.elapsed().as_secs_f64());
    }
    eprintln!("bucket: {}", bucket_usage(&cluster));
    must_succeed(&env, &["verify", "--read-data"]);
    let list = must_succeed(&env, &["snapshots", "--json"]).json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [third.as_str()], "the snapshots after the outage");
    assert_restores(&env, &third, &kept, "after-outage");
    // A dry run sees exactly the packs the prune left, all of them used,
    // and nothing left over: the failed commands wrote nothing (they fail
    // at their first read, of `config`: reads need a quorum too).
    let dry = must_succeed(&env, &["prune", "--dry-run", "--json"]).json();
    eprintln!("prune --dry-run after the outage: {dry}");
    assert_eq!(
        dry["packs_before"].as_u64().unwrap(),
        packs_after_prune,
        "indexed packs changed across the outage: {dry}"
    );
    assert_eq!(
        dry["bytes_before"].as_u64().unwrap(),
        bytes_after_prune,
        "{dry}"
    );
    assert_eq!(dry["blobs_removed"], 0, "{dry}");
    assert_eq!(dry["unindexed_deleted"], 0, "{dry}");
    assert_eq!(dry["bytes_freed"], 0, "{dry}");
    eprintln!("whole test: {:.1} s", started.elapsed().as_secs_f64());
}

/// A node that missed a forget and a prune comes back, and another node goes
/// down before Garage's anti-entropy has told it what it missed (Garage
/// syncs a table 20 s after a node starts and every 10 minutes; the harness
/// does it at once in `restart`, not in `restart_without_sync`). A quorum
/// read then merges node 0 (current) with node 2 (stale): listings show the
/// index and snapshot objects the prune and forget deleted (each node drops
/// the deletions it knows of before the merge), and reading one of them
/// says "no such object". The same happens at random, for the same
/// minutes, with all three nodes up, whenever the stale node is among the
/// first two to answer.
///
/// Every command must then work: an object that is listed but gone when
/// read is skipped (it was deleted; the listing is behind), never taken
/// for damage or bad usage.
#[test]
fn cluster_node_back_with_stale_metadata_then_another_down() {
    let mut cluster = GarageCluster::start(3);
    let env = cluster_env(&cluster);
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    must_succeed(&env, &["init", "--pack-size-mib", "1"]);
    for n in 0..6 {
        write_file(&src, n, 5000 + n);
    }
    must_succeed(&env, &["create", "--files", src.to_str().unwrap()]);
    for n in 0..3 {
        write_file(&src, n, 6000 + n);
    }
    let kept = snapshot_id(
        &must_succeed(
            &env,
            &["create", "--json", "--files", src.to_str().unwrap()],
        )
        .json(),
    );
    let want = digest(&src);
    cluster.kill(2);
    must_succeed(&env, &["forget", "--keep-last", "1"]);
    must_succeed(&env, &["prune", "--max-unused", "0%"]);
    cluster.restart_without_sync(2);
    cluster.kill(1);

    // Nodes 0 and 2 up: a quorum, but node 2 stale.
    let target = env.path("restore-stale");
    let commands: Vec<Vec<&str>> = vec![
        vec!["snapshots"],
        vec!["verify", "--read-data"],
        vec!["restore", &kept, "--target", target.to_str().unwrap()],
        vec!["create", "--files", src.to_str().unwrap()],
        vec!["forget", "--keep-last", "1"],
        vec!["prune", "--dry-run"],
    ];
    let mut outcomes = Vec::new();
    for args in &commands {
        let (run, took) = run_bounded(&env, args);
        eprintln!("  stderr: {}", run.stderr.trim());
        outcomes.push((
            args.join(" "),
            run.code,
            took,
            run.stderr.trim().to_string(),
        ));
    }
    let _ = std::fs::remove_dir_all(&target);

    // Once node 0 has pushed what node 2 missed, all is well: nothing was
    // lost, and nothing deleted comes back.
    cluster.sync_tables();
    must_succeed(&env, &["verify", "--read-data"]);
    assert_eq!(env.listed_snapshots(), 1);
    // The stale-phase create and forget left one snapshot of the same tree.
    assert_restores(&env, "latest", &want, "after-sync");

    // With a stale node among the quorum, a command must either work (the
    // phantom objects are ones the prune deleted) or fail as storage
    // trouble that may pass (6), never as bad usage (2).
    let wrong: Vec<_> = outcomes
        .iter()
        .filter(|(_, code, _, _)| *code != 0 && *code != 6)
        .collect();
    assert!(
        wrong.is_empty(),
        "with a stale Garage node in the quorum, commands that neither worked nor exited 6:\n{}",
        wrong
            .iter()
            .map(|(cmd, code, took, err)| format!(
                "  backup {cmd} -> exit {code} in {:.1} s: {err}",
                took.as_secs_f64()
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
