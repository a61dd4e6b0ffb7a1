//! `kill -9` of a rollback at every step in turn: running the command
//! again, or `rollback resume`, leaves the system wholly at the snapshot
//! (the switch was complete) or wholly as it was (it was not), never a mix,
//! with no staging left behind and no lock to remove by hand.

use super::files::{deployed, Trees};
use super::support::*;
use std::time::{Duration, Instant};

/// Every point a rollback can be killed at, in order, whether the switch
/// was complete there (resume then finishes rather than reverts), and the
/// phase the journal holds: while the application is down it is written
/// only before the stop hook and once everything is switched, the phases
/// in between being resumed as the one written before them.
const POINTS: [(&str, bool, &str); 10] = [
    ("staging", false, "staging"),
    ("staged", false, "staged"),
    ("stopping", false, "stopping"),
    ("switching", false, "stopping"),
    ("switch:config", false, "stopping"),
    ("switched", true, "switched"),
    ("starting", true, "switched"),
    ("checking", true, "switched"),
    ("done", true, "done"),
    ("safety", true, "done"),
];

fn killed_at(sys: &System, point: &str, written: &str) {
    let r = sys.roll_back_failing_at(point);
    assert_eq!(r.code, -1, "{point}: not killed: {} {}", r.stdout, r.stderr);
    let status = sys.run(&["rollback", "status", "--json"]).ok().json();
    assert!(
        status["unfinished"].is_object(),
        "{point}: no unfinished journal: {status}"
    );
    assert_eq!(
        status["unfinished"]["phase"], written,
        "{point}: the journal holds another phase: {status}"
    );
}

/// Back to v2 if a round ended at v1.
fn back_to_v2(sys: &System, v1: &Trees) {
    if sys.trees() == *v1 {
        sys.run(&["rollback", "undo", "--yes"]).ok();
    }
    sys.take_log();
}

#[test]
fn a_killed_rollback_is_finished_or_reverted_never_mixed() {
    let sys = System::new(&[], &Hooks::default());
    let (v1, v2, _) = deployed(&sys);
    for (i, (point, switched, written)) in POINTS.iter().enumerate() {
        killed_at(&sys, point, written);
        // Each tree on its own is whole: the old one or the new one.
        let now = sys.trees();
        for (name, tree) in &now {
            assert!(
                *tree == v1[name] || *tree == v2[name],
                "{point}: tree {name} is half switched"
            );
        }
        if i % 2 == 0 {
            // `rollback resume`: finished or reverted, by the journal.
            let r = sys.run(&["rollback", "resume", "--yes", "--json"]);
            let j = r.json();
            let want = if *switched { &v1 } else { &v2 };
            assert_trees(
                &format!("resume after a kill at {point}"),
                want,
                &sys.trees(),
            );
            assert_eq!(
                j["result"],
                if *switched { "rolled-back" } else { "reverted" },
                "{point}: {j}"
            );
            assert_eq!(
                r.code,
                if *switched { 0 } else { 11 },
                "{point}: {}",
                r.stderr
            );
        } else {
            // The same command again: the rollback happens, whole.
            sys.run(&["rollback", "latest", "--tag", "pre-deploy", "--yes"])
                .ok();
            assert_trees(
                &format!("rollback again after a kill at {point}"),
                &v1,
                &sys.trees(),
            );
        }
        assert!(
            sys.staging_left().is_empty(),
            "{point}: staging left: {:?}",
            sys.staging_left()
        );
        let status = sys.run(&["rollback", "status", "--json"]).ok().json();
        assert!(status["unfinished"].is_null(), "{point}: {status}");
        back_to_v2(&sys, &v1);
        assert_trees(&format!("reset after {point}"), &v2, &sys.trees());
    }
}

#[test]
fn a_rollback_killed_from_outside_during_the_stop_hook_is_reverted() {
    let sys = System::new(&[], &Hooks::default());
    let marker = sys.env.path("in-stop");
    let release = sys.env.path("release-stop");
    let hooks = Hooks {
        stop: format!(
            "touch {m}; while [ ! -e {r} ]; do sleep 0.05; done",
            m = marker.display(),
            r = release.display()
        ),
        ..Hooks::default()
    };
    sys.write_config(&[], &hooks);
    let (v1, v2, _) = deployed(&sys);
    let mut child = sys.cmd(&["rollback", "latest", "--yes"]).spawn().unwrap();
    let t0 = Instant::now();
    while !marker.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the stop hook never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A second rollback meanwhile is refused: the system is locked.
    sys.run(&["rollback", "latest", "--yes"])
        .fails(7, "another rollback");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::fs::write(&release, b"").unwrap(); // ends the orphaned hook
    assert_trees("killed in the stop hook", &v2, &sys.trees());
    // No lock outlives the killed process; resume reverts.
    let r = sys.run(&["rollback", "resume", "--yes", "--json"]);
    assert_eq!(r.json()["result"], "reverted", "{}", r.stdout);
    assert_trees("resumed after the kill", &v2, &sys.trees());
    assert!(sys.staging_left().is_empty());
    let log = sys.take_log();
    assert_eq!(
        log.last().map(String::as_str),
        Some("health"),
        "resume brings the application up: {log:?}"
    );
    sys.run(&["rollback", "latest", "--yes"]).ok();
    assert_trees("rollback after the killed one", &v1, &sys.trees());
}
