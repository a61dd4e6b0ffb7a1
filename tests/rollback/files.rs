//! Rollback of file trees: every tree back to the snapshot in one step,
//! hooks in order, undo, a failing health check or start hook switched
//! back, cleanup, history.

use super::support::*;
use crate::common::*;

/// v1 captured, then v2 deployed; returns (v1 trees, v2 trees, snapshot id).
pub fn deployed(sys: &System) -> (Trees, Trees, String) {
    sys.v1();
    sys.run(&["init"]).ok();
    let v1 = sys.trees();
    let snap = sys
        .run(&["create", "--json", "--tag", "pre-deploy", "--label", "v1.4"])
        .ok()
        .json();
    sys.v2();
    let v2 = sys.trees();
    assert_ne!(v1, v2);
    (v1, v2, snap["id"].as_str().unwrap().to_string())
}

/// Trees by component name.
pub type Trees = std::collections::BTreeMap<String, std::collections::BTreeMap<String, Entry>>;

#[test]
fn rollback_puts_every_tree_back_and_undo_returns_the_deployment() {
    let sys = System::new(&[], &Hooks::default());
    let (v1, v2, snap) = deployed(&sys);
    let r = sys.roll_back_to_pre_deploy();
    assert_trees("after rollback", &v1, &sys.trees());
    assert_eq!(r["result"], "rolled-back", "{r}");
    assert_eq!(r["snapshot"], snap.as_str());
    let down = r["downtime_secs"].as_f64().expect("downtime");
    assert!(
        down > 0.0 && down < r["duration_secs"].as_f64().unwrap(),
        "{r}"
    );
    let steps: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for want in [
        "preflight",
        "stage api",
        "stage nginx",
        "stop",
        "switch api",
        "switch config",
        "start",
        "health check",
        "safety snapshot",
    ] {
        assert!(steps.contains(&want), "no step {want} in {steps:?}");
    }
    assert!(r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["duration_secs"].as_f64().is_some() && s["ok"] == true));
    assert_eq!(
        sys.take_log(),
        ["stop rollback api web config nginx", "start", "health"],
        "hooks ran out of order"
    );
    assert!(sys.staging_left().is_empty(), "{:?}", sys.staging_left());

    // The replaced state is kept next to each live path, and captured.
    let kept = r["kept"].as_array().unwrap();
    assert_eq!(kept.len(), 4, "{r}");
    for k in kept {
        let name = k["component"].as_str().unwrap();
        let path = std::path::PathBuf::from(k["kept"].as_str().unwrap());
        assert!(path.to_string_lossy().contains(".before-rollback-"), "{k}");
        assert_eq!(digest(&path), v2[name], "kept copy of {name}");
    }
    let safety = r["safety_snapshot"]
        .as_str()
        .expect("safety snapshot")
        .to_string();
    let list = sys.run(&["snapshots", "--json"]).ok().json();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == safety.as_str())
        .expect("listed");
    assert_eq!(
        entry["tags"],
        serde_json::json!(["pre-rollback"]),
        "{entry}"
    );
    // It restores the replaced state at the live paths' names.
    let target = sys.env.path("from-safety");
    sys.run(&[
        "restore",
        &safety,
        "--component",
        "web",
        "--target",
        target.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(digest(&target), v2["web"]);

    // Undo: the deployment comes back through the same steps.
    let u = sys
        .run(&["rollback", "undo", "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(u["result"], "undone", "{u}");
    assert_trees("after undo", &v2, &sys.trees());
    assert_eq!(
        sys.take_log(),
        ["stop undo api web config nginx", "start", "health"]
    );
    sys.run(&["rollback", "undo", "--yes"])
        .fails(2, "was an undo already");

    // The history in the repository has both, with who and what.
    let h = sys.run(&["rollback", "history", "--json"]).ok().json();
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[0]["operation"], "rollback");
    assert_eq!(h[0]["result"], "rolled-back");
    assert_eq!(h[0]["safety_snapshot"], safety.as_str());
    assert_eq!(h[1]["operation"], "undo");
    assert_eq!(h[1]["undoes"], h[0]["id"]);
    assert!(
        h[0]["user"].as_str().is_some_and(|u| !u.is_empty()) && h[0]["host"].as_str().is_some()
    );
    let text = sys.run(&["rollback", "history"]).ok().stdout;
    assert!(
        text.contains("rolled-back") && text.contains("undone"),
        "{text}"
    );

    // Cleanup removes every kept copy, and only those.
    let c = sys.run(&["rollback", "cleanup", "--json"]).ok().json();
    assert_eq!(c["removed"].as_array().unwrap().len(), 8, "{c}");
    for k in kept {
        assert!(
            std::fs::symlink_metadata(k["kept"].as_str().unwrap()).is_err(),
            "{k} still there"
        );
    }
    assert_trees("after cleanup", &v2, &sys.trees());
}

#[test]
fn a_failing_health_check_switches_everything_back() {
    // The application only comes up on the deployed version.
    let sys = System::new(&[], &Hooks::default());
    let hooks = Hooks {
        health: format!("grep -q 'dms v2' {}/index.html", sys.path("web").display()),
        health_timeout: Some("1s"),
        ..Hooks::default()
    };
    sys.write_config(&[], &hooks);
    let (_, v2, _) = deployed(&sys);
    let r = sys.run(&["rollback", "latest", "--yes", "--json"]);
    assert_eq!(r.code, 11, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["result"], "reverted", "{j}");
    assert!(
        j["failure"].as_str().unwrap().contains("health check"),
        "{j}"
    );
    assert_trees("after a failed health check", &v2, &sys.trees());
    assert!(sys.staging_left().is_empty(), "{:?}", sys.staging_left());
    let log = sys.take_log();
    assert_eq!(log[..2], ["stop rollback api web config nginx", "start"]);
    let back = log.iter().rposition(|l| l.starts_with("stop")).unwrap();
    assert!(
        back > 2 && log[back + 1] == "start",
        "no stop, start after the failure: {log:?}"
    );
    assert!(
        log.iter().filter(|l| *l == "health").count() >= 2,
        "{log:?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("health"), "{log:?}");
    assert!(
        j["downtime_secs"].as_f64().is_some(),
        "up again on the old state: {j}"
    );
    // Nothing is kept, no safety snapshot, and the history says so.
    assert!(j["kept"].as_array().unwrap().is_empty());
    assert!(j["safety_snapshot"].is_null());
    let h = sys.run(&["rollback", "history", "--json"]).ok().json();
    assert_eq!(h[0]["result"], "reverted");
    let status = sys.run(&["rollback", "status"]).ok().stdout;
    assert!(status.contains("no unfinished"), "{status}");
}

#[test]
fn a_failing_start_hook_switches_everything_back() {
    // The start hook fails the first time only (the second start, on the
    // old state, passes).
    let marker = "started-once";
    let hooks = Hooks {
        start: format!(
            "if [ -e {marker} ]; then exit 0; fi; touch {marker}; echo cannot bind >&2; exit 3"
        ),
        ..Hooks::default()
    };
    let sys = System::new(&[], &hooks);
    let (_, v2, _) = deployed(&sys);
    let mut cmd = sys.cmd(&["rollback", "latest", "--yes", "--json"]);
    cmd.current_dir(sys.env.path(""));
    let r = Run::from(cmd.output().unwrap());
    assert_eq!(r.code, 11, "{}", r.stderr);
    let j = r.json();
    assert!(
        j["failure"].as_str().unwrap().contains("cannot bind"),
        "the hook's output is in the report: {j}"
    );
    assert_trees("after a failed start", &v2, &sys.trees());
    assert_eq!(
        sys.take_log(),
        [
            "stop rollback api web config nginx",
            "start",
            "stop rollback api web config nginx",
            "start",
            "health"
        ]
    );
    assert!(j["downtime_secs"].as_f64().is_some(), "{j}");
}

#[test]
fn forget_keeps_what_a_kept_rollback_refers_to_until_cleanup() {
    let sys = System::new(&[], &Hooks::default());
    let (_, _, snap) = deployed(&sys);
    sys.run(&["create", "--tag", "nightly"]).ok();
    sys.run(&["rollback", &snap, "--yes"]).ok();
    // keep-last 1 would keep only the safety snapshot; the rollback's
    // target is pinned by the kept state.
    let all = sys
        .run(&["forget", "--keep-last", "1", "--json"])
        .ok()
        .json();
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "one group (host and paths): {all}"
    );
    let f = &all[0];
    let keep: Vec<&str> = f["keep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(keep.contains(&snap.as_str()), "{f}");
    let pinned = f["keep"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == snap.as_str())
        .unwrap();
    assert!(
        pinned["reasons"]
            .to_string()
            .contains("kept state of rollback"),
        "{pinned}"
    );
    assert_eq!(
        f["remove"].as_array().unwrap().len(),
        1,
        "only the nightly goes: {f}"
    );
    // Once the kept copies are cleaned up, the pin is gone.
    sys.run(&["rollback", "cleanup"]).ok();
    let all = sys
        .run(&["forget", "--keep-last", "1", "--dry-run", "--json"])
        .ok()
        .json();
    let f = &all[0];
    let remove: Vec<&str> = f["remove"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(remove.contains(&snap.as_str()), "{f}");
}
