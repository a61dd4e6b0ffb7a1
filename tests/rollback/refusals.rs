//! What a rollback refuses, and that a refusal touches nothing.

use super::files::deployed;
use super::support::*;
use crate::common::*;

#[test]
fn refusals_leave_the_system_as_it_is() {
    let sys = System::new(&[], &Hooks::default());
    let (_, v2, _) = deployed(&sys);
    // No --yes without a terminal.
    sys.run(&["rollback", "latest"]).fails(2, "pass --yes");
    // No system description.
    sys.env
        .run(&["rollback", "latest", "--yes"])
        .fails(2, "--config");
    // A snapshot that lacks a component the file names.
    let other = sys.env.path("other");
    std::fs::create_dir_all(&other).unwrap();
    let partial = sys
        .env
        .run(&[
            "create",
            "--json",
            "--files",
            &format!("web={}", sys.path("web").display()),
        ])
        .ok()
        .json();
    sys.run(&["rollback", partial["id"].as_str().unwrap(), "--yes"])
        .fails(2, "lacks component(s) api, config, nginx");
    // Nothing ran, nothing changed, nothing is left.
    assert_trees("after refusals", &v2, &sys.trees());
    assert!(sys.take_log().is_empty());
    assert!(sys.staging_left().is_empty());
    assert!(sys
        .run(&["rollback", "history", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn damaged_data_stops_the_rollback_while_staging_and_nothing_changes() {
    let sys = System::new(&[], &Hooks::default());
    let (_, v2, _) = deployed(&sys);
    // Damage every pack: staging reads and checks every byte.
    for p in files_under(&std::path::Path::new(&sys.env.repo).join("data")) {
        let len = std::fs::metadata(&p).unwrap().len() as i64;
        flip_byte(&p, len / 2);
    }
    let r = sys.run(&["rollback", "latest", "--yes"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("nothing was changed"), "{}", r.stderr);
    assert_trees("after damage", &v2, &sys.trees());
    assert!(sys.take_log().is_empty(), "the application was stopped");
    assert!(sys.staging_left().is_empty(), "{:?}", sys.staging_left());
    let status = sys.run(&["rollback", "status", "--json"]).ok().json();
    assert!(status["unfinished"].is_null());
}
