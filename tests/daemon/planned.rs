//! Planned rollbacks through the daemon: `backup rollback apply PLAN --at
//! TIME` hands a reviewed plan over; the daemon applies it at that time
//! and records it in the audit history; a plan whose live state moved
//! after it was handed over is refused then, and recorded so; a pending
//! one can be withdrawn; the token guards both.

use super::support::{Daemon, TOKEN};
use crate::common::*;
use crate::postgres::support::new_database;
use crate::rollback::support::{assert_trees, Hooks, System};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use testkit::Postgres;

/// Adds the daemon's token to the system file.
fn with_daemon(sys: &System) {
    let token = sys.env.path("token");
    std::fs::write(&token, TOKEN).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut text = std::fs::read_to_string(&sys.config).unwrap();
    text += &format!(
        "\n[daemon]\ntoken_file = {:?}\n\n[[schedule]]\nname = \"yearly\"\njob = \"verify\"\ncron = \"0 0 0 1 1 *\"\n",
        token.display().to_string()
    );
    std::fs::write(&sys.config, text).unwrap();
}

fn planned(d: &Daemon, id: &str) -> Value {
    d.json("/v1/rollbacks")
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

fn wait_state(d: &Daemon, id: &str, want: &str) -> Value {
    d.wait_for(
        &format!("planned rollback {id} to be {want}"),
        Duration::from_secs(90),
        || planned(d, id)["state"] == want,
    );
    planned(d, id)
}

/// `rollback plan` of the pre-deploy snapshot into `file`; its path.
fn make_plan(sys: &System, file: &str) -> String {
    let plan = sys.env.path(file).to_str().unwrap().to_string();
    sys.run(&[
        "rollback",
        "plan",
        "latest",
        "--tag",
        "pre-deploy",
        "-o",
        &plan,
    ])
    .ok();
    plan
}

/// `rollback plan` of the pre-deploy snapshot into `file`, handed to the
/// daemon at `at`; the planned rollback's id.
fn plan_and_hand(sys: &System, addr: &str, file: &str, at: &str) -> String {
    let plan = make_plan(sys, file);
    let plan = plan.as_str();
    let handed = sys
        .run(&[
            "rollback", "apply", plan, "--at", at, "--yes", "--daemon", addr, "--json",
        ])
        .ok()
        .json();
    assert_eq!(handed["state"], "pending", "{handed}");
    handed["id"].as_str().unwrap().to_string()
}

fn in_secs(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs)).to_rfc3339()
}

#[test]
fn a_planned_rollback_runs_at_its_time_and_one_whose_state_moved_is_refused() {
    let pg = Postgres::start();
    new_database(&pg, "dms", "CREATE TABLE deals (id int PRIMARY KEY, note text); INSERT INTO deals SELECT i, 'v1' FROM generate_series(1, 300) i;");
    let sys = System::new(&[("dms", pg.conninfo("dms"))], &Hooks::default());
    with_daemon(&sys);
    sys.v1();
    sys.run(&["init"]).ok();
    let v1 = sys.trees();
    sys.run(&["create", "--tag", "pre-deploy"]).ok();
    sys.v2();
    pg.psql(
        "dms",
        "INSERT INTO deals SELECT i, 'v2' FROM generate_series(301, 340) i;",
    );
    let d = Daemon::start(&sys.env, &sys.config);
    let addr = format!("127.0.0.1:{}", d.port);
    let plan = make_plan(&sys, "plan.json");
    let plan_s = plan.as_str();
    let apply = |plan: &str, at: &str| {
        sys.cmd(&[
            "rollback", "apply", plan, "--at", at, "--yes", "--daemon", &addr, "--json",
        ])
    };
    // A wrong token is refused by the daemon, and said so.
    Run::from(
        apply(plan_s, &in_secs(3))
            .env("BACKUPD_TOKEN", "wrong")
            .output()
            .unwrap(),
    )
    .fails(2, "401");
    assert!(d.json("/v1/rollbacks").as_array().unwrap().is_empty());
    // A time that is not one is refused before anything is sent.
    Run::from(apply(plan_s, "at dawn").output().unwrap()).fails(2, "not a time");
    // Handed over, applied at its time.
    let at = in_secs(3);
    let handed = Run::from(apply(plan_s, &at).output().unwrap()).ok().json();
    let id = handed["id"].as_str().unwrap().to_string();
    assert_eq!(handed["state"], "pending");
    let status = sys.run(&["status", "--daemon", &addr]).stdout.clone();
    assert!(
        status.contains(&id) && status.contains("pending"),
        "{status}"
    );
    let done = wait_state(&d, &id, "rolled-back");
    assert!(
        done["detail"].as_str().unwrap().contains("rolled back"),
        "{done}"
    );
    assert_trees("after the planned rollback", &v1, &sys.trees());
    assert_eq!(pg.psql("dms", "SELECT count(*) FROM deals").trim(), "300");
    let plan_hash = serde_json::from_str::<Value>(&std::fs::read_to_string(&plan).unwrap())
        .unwrap()["hash"]
        .clone();
    let history = sys.run(&["rollback", "history", "--json"]).ok().json();
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["result"], "rolled-back");
    assert_eq!(last["plan_hash"], plan_hash);
    assert_eq!(
        Some(last["id"].as_str().unwrap()),
        done["rollback_id"].as_str()
    );
    // A plan whose live state moves after it was handed over is refused
    // at its time, nothing touched, and the refusal is in the history.
    let id2 = plan_and_hand(&sys, &addr, "plan2.json", &in_secs(4));
    let hotfix = sys.path("api").join("hotfix.js");
    std::fs::write(&hotfix, "patched at night\n").unwrap();
    let refused = wait_state(&d, &id2, "refused");
    assert!(
        refused["detail"].as_str().unwrap().contains("api"),
        "{refused}"
    );
    assert!(hotfix.exists(), "a refused plan touched the live tree");
    let history = sys.run(&["rollback", "history", "--json"]).ok().json();
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["result"], "refused");
    assert!(
        last["failure"].as_str().unwrap().contains("moved"),
        "{last}"
    );
    // A pending one is withdrawn with the token only.
    let id3 = plan_and_hand(&sys, &addr, "plan3.json", &in_secs(3600));
    let path = format!("/v1/rollbacks/{id3}");
    assert_eq!(d.request("DELETE", &path, None).unwrap().0, 401);
    assert_eq!(d.request("DELETE", &path, Some(TOKEN)).unwrap().0, 200);
    assert_eq!(planned(&d, &id3)["state"], "cancelled");
    assert_eq!(d.request("DELETE", &path, Some(TOKEN)).unwrap().0, 409);
    // Records survive a restart.
    drop(d);
    let d = Daemon::start(&sys.env, &sys.config);
    assert_eq!(planned(&d, &id)["state"], "rolled-back");
    assert_eq!(planned(&d, &id2)["state"], "refused");
}
