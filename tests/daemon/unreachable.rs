//! A repository that becomes unreachable at a scheduled time: the run
//! fails as retryable and is retried with back-off, the daemon stays up,
//! `/healthz` says what failed; once the store is back, the next run
//! succeeds and the daemon is healthy again.

use super::support::*;
use crate::common::*;
use crate::postgres::support::new_database;
use std::time::Duration;
use testkit::{Garage, Postgres};

#[test]
fn an_unreachable_repository_fails_the_run_which_is_retried_and_the_daemon_stays_up() {
    let pg = Postgres::start();
    new_database(
        &pg,
        "dms",
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1);",
    );
    let mut garage = Garage::start();
    let mut env = Env::local();
    env.repo = format!("s3://{}/unreachable", garage.bucket());
    env.extra = garage.env();
    app_tree(&env);
    let config = write_config(
        &env,
        &pg.conninfo("dms"),
        "[[schedule]]\nname = \"snap\"\njob = \"create\"\ncron = \"0 0 0 1 1 *\"\n",
    );
    env.run(&["init"]).ok();
    let d = Daemon::start(&env, &config);
    garage.kill();
    assert_eq!(
        d.request("POST", "/v1/jobs/snap/run", Some(TOKEN))
            .unwrap()
            .0,
        202
    );
    let failures = || {
        Daemon::job(&d.json("/v1/status"), "snap")["totals"]["failure"]
            .as_u64()
            .unwrap_or(0)
    };
    d.wait_for("the run to fail", Duration::from_secs(120), || {
        failures() >= 1
    });
    let job = Daemon::job(&d.json("/v1/status"), "snap").clone();
    let last = &job["last"];
    assert_eq!(last["retryable"], true, "{job}");
    // Retried after the first back-off (30 s), long before next year's run.
    let end = chrono::DateTime::parse_from_rfc3339(last["end"].as_str().unwrap()).unwrap();
    let next = chrono::DateTime::parse_from_rfc3339(job["next_run"].as_str().unwrap()).unwrap();
    let wait = (next - end).num_seconds();
    assert!(
        (29..=31).contains(&wait),
        "next run {wait} s after the failure: {job}"
    );
    let (code, body) = d.get("/healthz").unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("the last run of snap failed"), "{body}");
    // The store comes back: the next run succeeds, the daemon is healthy.
    garage.restart();
    assert_eq!(
        d.request("POST", "/v1/jobs/snap/run", Some(TOKEN))
            .unwrap()
            .0,
        202
    );
    d.wait_for(
        "a run after the store came back",
        Duration::from_secs(120),
        || d.successes("snap") >= 1,
    );
    assert_eq!(d.get("/healthz").unwrap().0, 200);
    env.run(&["verify", "--read-data"]).ok();
}
