//! The real `backupd` process end to end, with schedules seconds apart,
//! against a real PostgreSQL cluster and Garage S3 (a local repository in
//! the others): snapshots appear, retention keeps the newest, prune runs,
//! a restore drill reports, `/metrics` passes `promtool check metrics` and
//! a real Prometheus server scrapes it,
//! the token guards `POST`, SIGHUP with a broken file keeps the old one,
//! SIGTERM stops a running job cleanly, `kill -9` mid-snapshot leaves a
//! repository that verifies, a flipped byte turns `/healthz` unhealthy.

use super::support::*;
use crate::common::*;
use crate::postgres::support::new_database;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use testkit::{Garage, Postgres};

const SCHEDULES: &str = r#"
[[schedule]]
name = "snap"
job = "create"
cron = "*/2 * * * * *"
tags = ["auto"]

[[schedule]]
name = "check"
job = "verify"
cron = "*/3 * * * * *"
read_data_subset = "50%"

[[schedule]]
name = "tidy"
job = "forget"
cron = "*/4 * * * * *"

[[schedule]]
name = "shrink"
job = "prune"
cron = "*/5 * * * * *"

[[schedule]]
name = "drill"
job = "restore-drill"
cron = "0 0 0 1 1 *"
"#;

#[test]
fn the_daemon_snapshots_verifies_forgets_prunes_drills_and_reports() {
    let pg = Postgres::start();
    new_database(&pg, "dms", "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, 500) i;");
    let garage = Garage::start();
    let mut env = Env::local();
    env.repo = format!("s3://{}/daemon", garage.bucket());
    env.extra = garage.env();
    app_tree(&env);
    let config = write_config(&env, &pg.conninfo("dms"), SCHEDULES);
    Run::from(
        env.cmd(&["init", "--config", config.to_str().unwrap()])
            .env_remove("BACKUP_REPOSITORY")
            .output()
            .unwrap(),
    )
    .ok();
    let d = Daemon::start(&env, &config);
    let prometheus = Prometheus::start(&env, d.port);
    // Metrics are there from the start, before any run.
    let m = d.get("/metrics").unwrap().1;
    promtool(&m);
    assert_eq!(metric(&m, "backup_snapshots"), 0.0);
    assert_eq!(metric(&m, r#"backup_build_info{version="0.1.0"}"#), 1.0);
    // Snapshots appear; forget keeps the newest two (prune beside them).
    d.wait_for(
        "three creates, a forget and a prune",
        Duration::from_secs(90),
        || {
            d.successes("snap") >= 3
                && d.successes("tidy") >= 1
                && d.successes("shrink") >= 1
                && d.successes("check") >= 1
        },
    );
    // Creates by the command run beside the daemon's prunes and forgets (a
    // create waits for their exclusive lock, and they, finding a create's
    // lock, fail as retryable and run again): every create succeeds, and the
    // repository verifies at the end (below).
    let (prunes_before, forgets_before) = (d.successes("shrink"), d.successes("tidy"));
    for _ in 0..3 {
        Run::from(
            env.cmd(&[
                "create",
                "--config",
                config.to_str().unwrap(),
                "--retry-lock",
                "2m",
                "--tag",
                "manual",
            ])
            .env_remove("BACKUP_REPOSITORY")
            .output()
            .unwrap(),
        )
        .ok();
    }
    // A prune or forget that found a manual create's lock failed (retryable,
    // /healthz says so) and is retried: wait for both to pass again.
    d.wait_for(
        "a prune and a forget after the manual creates",
        Duration::from_secs(90),
        || d.successes("shrink") > prunes_before && d.successes("tidy") > forgets_before,
    );
    // The drill is run on request, with the token only.
    assert_eq!(
        d.request("POST", "/v1/jobs/drill/run", None).unwrap().0,
        401
    );
    assert_eq!(
        d.request("POST", "/v1/jobs/drill/run", Some("wrong"))
            .unwrap()
            .0,
        401
    );
    assert!(
        d.log().contains("refused a request to run a job"),
        "{}",
        d.log()
    );
    assert_eq!(
        d.request("POST", "/v1/jobs/nosuch/run", Some(TOKEN))
            .unwrap()
            .0,
        404
    );
    assert_eq!(
        d.request("POST", "/v1/jobs/drill/run", Some(TOKEN))
            .unwrap()
            .0,
        202
    );
    d.wait_for("the drill", Duration::from_secs(60), || {
        d.successes("drill") >= 1
    });
    let status = d.json("/v1/status");
    let drill = Daemon::job(&status, "drill");
    assert!(
        drill["last"]["detail"]
            .as_str()
            .unwrap()
            .contains("500 rows"),
        "{drill}"
    );
    assert!(status["healthy"] == true, "{status}");
    let m = d.get("/metrics").unwrap().1;
    promtool(&m);
    assert!(
        metric(&m, "backup_restore_drill_duration_seconds") > 0.0,
        "{m}"
    );
    assert!(metric(&m, r#"backup_runs_total{job="snap",result="success"}"#) >= 3.0);
    assert!(metric(&m, r#"backup_last_success_timestamp_seconds{job="snap"}"#) > 1.7e9);
    assert!(
        metric(
            &m,
            r#"backup_verify_last_success_timestamp_seconds{kind="read-data"}"#
        ) > 1.7e9
    );
    assert!(metric(&m, "backup_repository_size_bytes") > 0.0);
    // Retention: every forget kept the newest two (keep_last = 2) once
    // there were two; the daemon lists what is left.
    let tidy = Daemon::job(&status, "tidy");
    let kept: Vec<u64> = tidy["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["detail"].as_str())
        .filter_map(|d| d.strip_suffix(" kept")?.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(!kept.is_empty() && kept.iter().all(|k| *k <= 2), "{tidy}");
    assert!(kept.contains(&2), "{tidy}");
    let snaps = d.json("/v1/snapshots");
    assert!(!snaps.as_array().unwrap().is_empty());
    // `backup status` reads the same.
    let s = Run::from(
        env.cmd(&["status", "--daemon", &format!("127.0.0.1:{}", d.port)])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(
        s.stdout.contains("healthy") && s.stdout.contains("snap"),
        "{}",
        s.stdout
    );
    // A real Prometheus server scrapes the same (the target's own `job`
    // label wins, so the daemon's is kept as `exported_job`).
    let t0 = Instant::now();
    while prometheus.query("up{job=\"backupd\"}") != Some(1.0)
        || !prometheus
            .query("backup_runs_total{exported_job=\"snap\",result=\"success\"}")
            .is_some_and(|v| v >= 3.0)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "Prometheus did not scrape backupd:\n{}",
            prometheus.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // SIGTERM: stops within the deadline; the repository verifies.
    d.signal("TERM");
    let mut d = d;
    let t0 = Instant::now();
    while d.child.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "backupd did not stop on SIGTERM:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.log().contains("backupd stopped"), "{}", d.log());
    env.run(&["verify", "--read-data"]).ok();
}

#[test]
fn bad_config_reload_keeps_the_old_one_and_bad_files_are_refused_at_start() {
    let pg = Postgres::start();
    new_database(&pg, "dms", "CREATE TABLE t (id int);");
    let env = Env::local();
    app_tree(&env);
    let good = "[[schedule]]\nname = \"snap\"\njob = \"create\"\ncron = \"*/2 * * * * *\"\n";
    write_config(&env, &pg.conninfo("dms"), good);
    env.run(&["init"]).ok();
    // A bad cron expression is refused at start, naming key and field.
    let bad = write_config(
        &env,
        &pg.conninfo("dms"),
        "[[schedule]]\nname = \"snap\"\njob = \"create\"\ncron = \"0 0 25 * * *\"\n",
    );
    let out = Command::new(daemon_bin())
        .args(["--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("schedule[0].cron") && err.contains("Hours"),
        "{err}"
    );
    // A world-readable token file is refused.
    let config = write_config(&env, &pg.conninfo("dms"), good);
    std::fs::set_permissions(env.path("token"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(daemon_bin())
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by every user"));
    std::fs::set_permissions(env.path("token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    // A port in use is a clear error.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(daemon_bin())
        .args(["--config", config.to_str().unwrap(), "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
    // SIGHUP with a broken file: logged, the old schedule keeps running.
    let d = Daemon::start(&env, &config);
    d.wait_for("a snapshot", Duration::from_secs(30), || {
        d.successes("snap") >= 1
    });
    std::fs::write(&config, "this is = not [valid toml").unwrap();
    d.signal("HUP");
    d.wait_for("the reload to be refused", Duration::from_secs(10), || {
        d.log().contains("the old one stays in force")
    });
    let before = d.successes("snap");
    d.wait_for(
        "a snapshot after the refused reload",
        Duration::from_secs(30),
        || d.successes("snap") > before,
    );
}

#[test]
fn a_killed_daemon_leaves_a_repository_that_verifies_and_damage_turns_it_unhealthy() {
    let pg = Postgres::start();
    new_database(&pg, "dms", "CREATE TABLE t (id int, v text); INSERT INTO t SELECT i, repeat('x', 200) FROM generate_series(1, 20000) i;");
    let env = Env::local();
    app_tree(&env);
    std::fs::write(env.path("app/big.bin"), random_bytes(9, 30_000_000)).unwrap();
    let schedules = "[[schedule]]\nname = \"snap\"\njob = \"create\"\ncron = \"*/1 * * * * *\"\n\n\
                     [[schedule]]\nname = \"check\"\njob = \"verify\"\ncron = \"0 0 0 1 1 *\"\nread_data_subset = \"100%\"\n";
    let config = write_config(&env, &pg.conninfo("dms"), schedules);
    env.run(&["init"]).ok();
    let mut d = Daemon::start(&env, &config);
    // kill -9 while a snapshot is being taken.
    d.wait_for("a create to start", Duration::from_secs(30), || {
        d.log().contains("job started")
    });
    std::thread::sleep(Duration::from_millis(300));
    d.child.kill().unwrap();
    d.child.wait().unwrap();
    env.run(&["verify", "--read-data"]).ok();
    // After a restart the next run succeeds (the killed one's lock is gone).
    let d = Daemon::start(&env, &config);
    d.wait_for(
        "a snapshot after the restart",
        Duration::from_secs(60),
        || d.successes("snap") >= 1,
    );
    // A flipped byte in a pack: the verify job fails, /healthz says so.
    drop(d);
    let packs = files_under(&Path::new(&env.repo).join("data"));
    let biggest = packs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    flip_byte(biggest, 100);
    let d = Daemon::start(&env, &config);
    assert_eq!(
        d.request("POST", "/v1/jobs/check/run", Some(TOKEN))
            .unwrap()
            .0,
        202
    );
    d.wait_for("the verify to fail", Duration::from_secs(60), || {
        Daemon::job(&d.json("/v1/status"), "check")["totals"]["failure"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    });
    let (code, body) = d.get("/healthz").unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("verification"), "{body}");
    let m = d.get("/metrics").unwrap().1;
    assert!(
        metric(&m, r#"backup_verify_failures_total{kind="read-data"}"#) >= 1.0,
        "{m}"
    );
    // Straight after a restart, /healthz is still unhealthy (from the state).
    drop(d);
    let d = Daemon::start(&env, &config);
    assert_eq!(d.get("/healthz").unwrap().0, 503);
}
