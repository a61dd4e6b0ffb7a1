//! `forget`: retention policies on a calendar of snapshots made with
//! `create --time`, checked against hand-worked answers and against restic
//! itself (the same times in a restic repository, the same flags).

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Twenty capture times (UTC). ISO weeks: 2020-12-28 (Mon) to 2021-01-03
/// (Sun) is 2020-W53; 2021-01-04 and 2021-01-11 are Mondays (W01, W02);
/// 2021-02-01 is Monday of W05, 2021-02-28 Sunday of W08, 2021-03-01
/// Monday of W09; 2020-12-20 is Sunday of W51, 2020-11-20 Friday of W47,
/// 2020-11-15 Sunday of W46.
const CALENDAR: [&str; 20] = [
    "2020-11-15 10:00:00", // t01
    "2020-11-20 09:00:00", // t02
    "2020-12-20 12:00:00", // t03
    "2020-12-28 08:00:00", // t04
    "2020-12-31 23:00:00", // t05
    "2021-01-01 01:00:00", // t06
    "2021-01-03 22:00:00", // t07
    "2021-01-04 06:00:00", // t08
    "2021-01-04 18:00:00", // t09
    "2021-01-10 12:00:00", // t10
    "2021-01-11 00:30:00", // t11
    "2021-01-15 10:00:00", // t12
    "2021-01-15 10:30:00", // t13
    "2021-01-15 11:00:00", // t14
    "2021-01-16 09:00:00", // t15
    "2021-01-17 09:00:00", // t16
    "2021-02-01 09:00:00", // t17
    "2021-02-28 09:00:00", // t18
    "2021-03-01 09:00:00", // t19
    "2021-03-01 12:00:00", // t20
];

/// The calendar times with these numbers (1-based), newest first.
fn times(numbers: &[usize]) -> Vec<String> {
    let mut v: Vec<String> = numbers
        .iter()
        .map(|n| CALENDAR[n - 1].to_string())
        .collect();
    v.sort();
    v.reverse();
    v
}

/// "2021-03-01T12:00:00Z" (or with fractions) as "2021-03-01 12:00:00".
fn plain_time(v: &Value) -> String {
    let s = v.as_str().expect("a time string");
    s[..19].replace('T', " ")
}

/// A one-file tree (10 bytes).
fn tiny_tree(env: &Env) -> PathBuf {
    let dir = env.path("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f"), b"0123456789").unwrap();
    dir
}

/// Creates one snapshot per time of `times`; returns time → id.
fn create_at(env: &Env, tree: &Path, times: &[&str], extra: &[&str]) -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    for t in times {
        let mut args = vec!["--time", t, "--host", "h"];
        args.extend_from_slice(extra);
        let v = env.create(&[tree], &args);
        assert_eq!(plain_time(&v["time"]), *t, "{v}");
        ids.insert(t.to_string(), v["id"].as_str().unwrap().to_string());
    }
    ids
}

/// The kept times of the one group of a grouped `forget --json`, newest
/// first, and how many it removes.
fn kept_of(v: &Value) -> (Vec<String>, usize) {
    let groups = v.as_array().expect("a list of groups");
    assert_eq!(groups.len(), 1, "{v}");
    let g = &groups[0];
    let keep = g["keep"]
        .as_array()
        .unwrap_or_else(|| panic!("no keep list: {v}"));
    let mut kept: Vec<String> = keep.iter().map(|s| plain_time(&s["time"])).collect();
    // restic prints them newest first too; sorting keeps the comparison
    // about which snapshots, not in what order.
    kept.sort();
    kept.reverse();
    (kept, g["remove"].as_array().map_or(0, |r| r.len()))
}

fn forget_json(env: &Env, policy: &[&str]) -> Value {
    let mut args = vec!["forget", "--dry-run", "--json"];
    args.extend_from_slice(policy);
    env.run(&args).ok().json()
}

fn listed_times(env: &Env) -> Vec<String> {
    let v = env.run(&["snapshots", "--json"]).ok().json();
    let mut t: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| plain_time(&s["time"]))
        .collect();
    t.sort();
    t.reverse();
    t
}

/// The policies checked by hand and against restic, with the hand-worked
/// kept snapshots (calendar numbers).
fn policies() -> Vec<(Vec<&'static str>, Vec<usize>)> {
    vec![
        // Days 03-01 and 02-28 use up the weeks (W09, W08) and months; 02-01
        // is the third day.
        (
            vec![
                "--keep-daily",
                "3",
                "--keep-weekly",
                "2",
                "--keep-monthly",
                "2",
            ],
            vec![20, 18, 17],
        ),
        // Days 03-01, 02-28, 02-01, 01-17, 01-16; weeks W09, W08, W05, W02.
        (
            vec!["--keep-daily", "5", "--keep-weekly", "4"],
            vec![20, 18, 17, 16, 15],
        ),
        // Five months use 5 of 10: the oldest (t01, November like t02) too.
        (vec!["--keep-monthly", "10"], vec![20, 18, 16, 5, 2, 1]),
        // Every ISO week: 2021-01-03 (t07) is in 2020-W53, t08-t10 in 2021-W01.
        (
            vec!["--keep-weekly", "-1"],
            vec![20, 18, 17, 16, 10, 7, 3, 2, 1],
        ),
        // Within 3 days of the newest (after 2021-02-26 12:00), and the last 2.
        (
            vec!["--keep-last", "2", "--keep-within", "3d"],
            vec![20, 19, 18],
        ),
        // Daily within 2 months of the newest (after 2021-01-01 12:00: t06
        // is out), and the newest of 2021 and of 2020.
        (
            vec!["--keep-within-daily", "2m", "--keep-yearly", "2"],
            vec![20, 18, 17, 16, 15, 14, 11, 10, 9, 7, 5],
        ),
        // Eight hours: 01-15 10:30 (t13) is the newest of its hour, not 10:00.
        (
            vec!["--keep-hourly", "8"],
            vec![20, 19, 18, 17, 16, 15, 14, 13],
        ),
    ]
}

#[test]
fn dry_run_keeps_the_hand_worked_snapshots_and_changes_nothing() {
    let env = Env::local();
    env.init();
    let tree = tiny_tree(&env);
    create_at(&env, &tree, &CALENDAR, &[]);
    for (policy, numbers) in policies() {
        let v = forget_json(&env, &policy);
        let (kept, removed) = kept_of(&v);
        assert_eq!(kept, times(&numbers), "{policy:?}");
        assert_eq!(removed, 20 - numbers.len(), "{policy:?}");
        let g = &v[0];
        assert_eq!(g["group"]["host"], "h", "{v}");
        let paths = g["group"]["paths"].as_array().expect("paths");
        assert_eq!(paths.len(), 1, "{v}");
        assert!(paths[0].as_str().unwrap().ends_with("/app"), "{v}");
        assert!(
            g["keep"][0]["reasons"]
                .as_array()
                .is_some_and(|r| !r.is_empty()),
            "{v}"
        );
        assert!(g["keep"][0]["id"].is_string(), "{v}");
    }
    let v = forget_json(&env, &["--keep-monthly", "10"]);
    let oldest = &v[0]["keep"][5];
    assert_eq!(plain_time(&oldest["time"]), CALENDAR[0]);
    assert_eq!(
        oldest["reasons"],
        serde_json::json!(["oldest monthly snapshot"])
    );
    assert_eq!(env.listed_snapshots(), 20);
}

#[test]
fn forget_removes_exactly_the_others_and_the_kept_ones_still_restore() {
    let env = Env::local();
    env.init();
    let tree = tiny_tree(&env);
    let ids = create_at(&env, &tree, &CALENDAR, &[]);
    let r = env.run(&["forget", "--keep-monthly", "10"]).ok();
    assert!(r.stdout.contains("removed 14 snapshots"), "{}", r.stdout);
    assert!(r.stdout.contains("oldest monthly snapshot"), "{}", r.stdout);
    let want = times(&[20, 18, 16, 5, 2, 1]);
    assert_eq!(listed_times(&env), want);
    for t in &want {
        let target = env.path(&format!("restore-{}", &ids[t][..8]));
        env.run(&["restore", &ids[t], "--target", target.to_str().unwrap()])
            .ok();
        let got = std::fs::read(restored(&target, &tree).join("f")).unwrap();
        assert_eq!(got, b"0123456789");
    }
    env.run(&["verify"]).ok();
    // Applying the same policy again removes nothing.
    let r = env.run(&["forget", "--keep-monthly", "10"]).ok();
    assert!(r.stdout.contains("removed 0 snapshots"), "{}", r.stdout);
    assert_eq!(listed_times(&env), want);
}

#[test]
fn pre_rollback_snapshots_survive_and_tags_keep() {
    let env = Env::local();
    env.init();
    let tree = tiny_tree(&env);
    create_at(
        &env,
        &tree,
        &["2021-01-01 00:00:00"],
        &["--tag", "pre-deploy"],
    );
    create_at(
        &env,
        &tree,
        &["2021-01-02 00:00:00"],
        &["--tag", "pre-rollback"],
    );
    create_at(
        &env,
        &tree,
        &["2021-01-03 00:00:00", "2021-01-04 00:00:00"],
        &[],
    );
    let v = forget_json(&env, &["--keep-last", "1", "--keep-tag", "pre-deploy"]);
    let reasons: Vec<(String, Value)> = v[0]["keep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (plain_time(&s["time"]), s["reasons"].clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "2021-01-04 00:00:00".into(),
                serde_json::json!(["last snapshot"])
            ),
            (
                "2021-01-02 00:00:00".into(),
                serde_json::json!(["pre-rollback safety snapshot"])
            ),
            (
                "2021-01-01 00:00:00".into(),
                serde_json::json!(["tag pre-deploy"])
            ),
        ]
    );
    env.run(&["forget", "--keep-last", "1"]).ok();
    assert_eq!(
        listed_times(&env),
        ["2021-01-04 00:00:00", "2021-01-02 00:00:00"]
    );
}

#[test]
fn groups_hosts_and_filters() {
    let env = Env::local();
    env.init();
    let tree = tiny_tree(&env);
    create_at(
        &env,
        &tree,
        &["2021-01-01 00:00:00", "2021-01-02 00:00:00"],
        &[],
    );
    for t in ["2021-01-03 00:00:00", "2021-01-04 00:00:00"] {
        env.create(&[&tree], &["--time", t, "--host", "other", "--tag", "x"]);
    }
    let v = forget_json(&env, &["--keep-last", "1"]);
    let groups = v.as_array().unwrap();
    assert_eq!(groups.len(), 2, "{v}");
    assert_eq!(groups[0]["group"]["host"], "h");
    assert_eq!(groups[1]["group"]["host"], "other");
    assert_eq!(
        plain_time(&groups[0]["keep"][0]["time"]),
        "2021-01-02 00:00:00"
    );
    assert_eq!(
        plain_time(&groups[1]["keep"][0]["time"]),
        "2021-01-04 00:00:00"
    );
    // One group: an object, not a list.
    let v = forget_json(&env, &["--keep-last", "1", "--group-by", ""]);
    assert_eq!(v["keep"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["remove"].as_array().unwrap().len(), 3, "{v}");
    let v = forget_json(&env, &["--keep-last", "1", "--group-by", "tags"]);
    assert_eq!(v[1]["group"]["tags"], serde_json::json!(["x"]), "{v}");
    // Filters: only host h (or only tag x) is considered.
    env.run(&["forget", "--keep-last", "1", "--host", "h"]).ok();
    assert_eq!(
        listed_times(&env),
        [
            "2021-01-04 00:00:00",
            "2021-01-03 00:00:00",
            "2021-01-02 00:00:00"
        ]
    );
    env.run(&["forget", "--keep-last", "1", "--tag", "x"]).ok();
    assert_eq!(
        listed_times(&env),
        ["2021-01-04 00:00:00", "2021-01-02 00:00:00"]
    );
}

#[test]
fn the_config_retention_table_is_used_unless_flags_replace_it() {
    let env = Env::local();
    env.init();
    let tree = tiny_tree(&env);
    create_at(
        &env,
        &tree,
        &["2021-01-01 00:00:00"],
        &["--tag", "pre-deploy"],
    );
    create_at(
        &env,
        &tree,
        &["2021-03-01 00:00:00"],
        &["--tag", "pre-deploy"],
    );
    create_at(
        &env,
        &tree,
        &[
            "2021-05-01 00:00:00",
            "2021-05-02 00:00:00",
            "2021-05-03 00:00:00",
        ],
        &[],
    );
    let cfg = env.path("system.toml");
    std::fs::write(
        &cfg,
        "[retention]\nkeep_last = 2\nkeep_tag = { \"pre-deploy\" = \"90d\" }\n",
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    // 90 days before 2021-05-03 is 2021-02-02: only the March pre-deploy one.
    let (kept, _) = kept_of(&forget_json(&env, &["--config", c]));
    assert_eq!(
        kept,
        [
            "2021-05-03 00:00:00",
            "2021-05-02 00:00:00",
            "2021-03-01 00:00:00"
        ]
    );
    let (kept, _) = kept_of(&forget_json(&env, &["--config", c, "--keep-last", "1"]));
    assert_eq!(kept, ["2021-05-03 00:00:00"]);
    std::fs::write(&cfg, "[retention]\nkeep_lats = 2\n").unwrap();
    env.run(&["forget", "--config", c, "--dry-run"])
        .fails(2, "unknown key `retention.keep_lats`");
}

#[test]
fn bad_policies_and_times_are_refused() {
    let env = Env::local();
    env.init();
    let tree = tiny_tree(&env);
    create_at(&env, &tree, &["2021-01-01 00:00:00"], &[]);
    env.run(&["forget"]).fails(2, "no retention policy");
    env.run(&["forget", "--keep-daily", "-2"])
        .fails(2, "-1 for unlimited");
    env.run(&["forget", "--keep-within", "2w"])
        .fails(2, "y (years), m (months), d (days), h (hours)");
    env.run(&["forget", "--keep-last", "1", "--group-by", "hostname"])
        .fails(2, "--group-by");
    let r = env.run(&["forget", "--keep-tag"]);
    assert_eq!(r.code, 2, "--keep-tag without a tag: {}", r.stderr);
    assert!(r.stderr.contains("--keep-tag"), "{}", r.stderr);
    env.run(&["prune", "--max-unused", "150%"])
        .fails(2, "percentage below 100");
    env.run(&["prune", "--max-unused", "lots"])
        .fails(2, "percentage below 100");
    let f = tree.to_str().unwrap();
    env.run(&["create", "--files", f, "--time", "yesterday"])
        .fails(2, "YYYY-MM-DD HH:MM:SS");
    env.run(&["create", "--files", f, "--time", "2021-02-30 00:00:00"])
        .fails(2, "YYYY-MM-DD HH:MM:SS");
    env.run(&["create", "--files", f, "--host", ""])
        .fails(2, "--host");
    assert_eq!(env.listed_snapshots(), 1);
}

#[test]
fn a_damaged_snapshot_is_reported_and_never_removed() {
    let env = Env::local();
    env.init();
    let tree = tiny_tree(&env);
    let ids = create_at(
        &env,
        &tree,
        &[
            "2021-01-01 00:00:00",
            "2021-01-02 00:00:00",
            "2021-01-03 00:00:00",
        ],
        &[],
    );
    let damaged = Path::new(&env.repo)
        .join("snapshots")
        .join(&ids["2021-01-01 00:00:00"]);
    flip_byte(&damaged, 20);
    env.run(&["forget", "--keep-last", "1"])
        .fails(3, "cannot be read");
    assert!(damaged.exists());
    // The readable ones were decided: the older one is gone.
    let names: Vec<String> = std::fs::read_dir(Path::new(&env.repo).join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&ids["2021-01-03 00:00:00"]));
}

/// `restic ARGS` on the repository `repo`, with a fixed password, in UTC.
fn restic(repo: &Path, args: &[&str]) -> Run {
    let out = Command::new("restic")
        .arg("-r")
        .arg(repo)
        .arg("--no-cache")
        .args(args)
        .env("RESTIC_PASSWORD", "oracle")
        .env("TZ", "UTC")
        .output()
        .expect("restic is installed");
    Run::from(out)
}

/// restic's (major, minor) version.
fn restic_version() -> (u32, u32) {
    let out = Command::new("restic")
        .arg("version")
        .output()
        .expect("restic is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = text.split_whitespace().nth(1).unwrap_or("");
    let mut parts = v.split('.').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Our reasons for keeping the snapshot at `time` (empty if removed).
fn reasons_at(v: &Value, time: &str) -> Vec<String> {
    v[0]["keep"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| plain_time(&s["time"]) == time)
        .map(|s| {
            s["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Compares with restic on every policy. restic keeps the oldest
/// snapshot of a group when a rule has count left only from version 0.16
/// on (restic PR #4366); with an older restic the one allowed difference
/// is that snapshot, which we must then keep for "oldest …" reasons only.
/// Counts of -1 (unlimited) are only compared with restic 0.16 and later.
#[test]
fn restic_keeps_the_same_snapshots_for_the_same_flags() {
    let env = Env::local();
    env.init();
    let tree = tiny_tree(&env);
    create_at(&env, &tree, &CALENDAR, &[]);
    let rrepo = env.path("restic");
    restic(&rrepo, &["init", "-q"]).ok();
    for t in CALENDAR {
        restic(
            &rrepo,
            &[
                "backup",
                "-q",
                "--time",
                t,
                "--host",
                "h",
                tree.to_str().unwrap(),
            ],
        )
        .ok();
    }
    let keeps_oldest = restic_version() >= (0, 16);
    let mut differences = 0;
    for (policy, _) in policies() {
        let v = forget_json(&env, &policy);
        let (mut ours, mut ours_removed) = kept_of(&v);
        // restic spells unlimited `unlimited` (0.16 on); before 0.16 it took
        // -1 as a rule that keeps nothing, so there is nothing to compare.
        if policy.contains(&"-1") && !keeps_oldest {
            continue;
        }
        let mut args = vec!["forget", "--dry-run", "--json"];
        args.extend(
            policy
                .iter()
                .map(|p| if *p == "-1" { "unlimited" } else { p }),
        );
        let (theirs, theirs_removed) = kept_of(&restic(&rrepo, &args).ok().json());
        let oldest = CALENDAR[0].to_string();
        if !keeps_oldest && ours.contains(&oldest) && !theirs.contains(&oldest) {
            let why = reasons_at(&v, &oldest);
            assert!(
                !why.is_empty() && why.iter().all(|r| r.starts_with("oldest ")),
                "policy {policy:?}: we keep the oldest for {why:?}, restic does not"
            );
            ours.retain(|t| *t != oldest);
            ours_removed += 1;
            differences += 1;
        }
        assert_eq!(
            (ours, ours_removed),
            (theirs, theirs_removed),
            "policy {policy:?}: ours, then restic's"
        );
    }
    // --keep-monthly 10 is the one policy where the oldest rule applies.
    if !keeps_oldest {
        assert_eq!(differences, 1);
    }
}
