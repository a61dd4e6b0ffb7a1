//! Exit codes and messages of everyday mistakes: each names what was wrong
//! and what to do, with the exit code the README lists.

use crate::common::*;
use std::path::Path;

#[test]
fn a_missing_password_file_is_a_missing_password() {
    let mut env = Env::local();
    env.init();
    env.password = None;
    let missing = env.path("no-such-password");
    env.extra
        .push(("BACKUP_PASSWORD_FILE".into(), missing.display().to_string()));
    let r = env.run(&["snapshots"]).fails(
        4,
        &format!("cannot read the password file {}", missing.display()),
    );
    assert!(r.stderr.contains("check the path"), "{}", r.stderr);
    env.run(&["snapshots", "--password-file", missing.to_str().unwrap()])
        .fails(4, "password file");
    // An empty one gives no password either.
    let empty = env.path("empty-password");
    std::fs::write(&empty, "\n").unwrap();
    std::fs::set_permissions(&empty, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    env.run(&["snapshots", "--password-file", empty.to_str().unwrap()])
        .fails(4, "is empty");
}

#[test]
fn a_repository_path_that_is_a_file_is_not_a_repository() {
    let env = Env::local();
    std::fs::write(&env.repo, b"not a directory").unwrap();
    for args in [vec!["snapshots"], vec!["verify"]] {
        let r = env
            .run(&args)
            .fails(5, "is a file, not a backup repository");
        assert!(r.stderr.contains("--repo"), "{}", r.stderr);
    }
    env.run(&["init"])
        .fails(2, "choose a new or empty directory");
    assert_eq!(std::fs::read(&env.repo).unwrap(), b"not a directory");
}

/// Runs `backup snapshots` with `--config` pointing at a file holding `toml`.
fn with_config_file(env: &Env, toml: &str) -> Run {
    let cfg = env.path("backup.toml");
    std::fs::write(&cfg, toml).unwrap();
    env.run(&["snapshots", "--config", cfg.to_str().unwrap()])
}

#[test]
fn config_file_errors_are_usage_errors_naming_line_and_key() {
    let env = Env::local();
    env.init();
    let r = with_config_file(&env, "# defaults\nrepositry = \"/srv/backup\"\n").fails(2, "line 2");
    for want in ["`repositry`", "repository, password_file, s3"] {
        assert!(r.stderr.contains(want), "no {want:?} in: {}", r.stderr);
    }
    let r = with_config_file(
        &env,
        "password_file = \"/etc/pw\"\n\n[s3]\nregion = \"eu\"\nendpont = \"http://x\"\n",
    )
    .fails(2, "line 5");
    for want in [
        "`s3.endpont`",
        "endpoint, region, path_style, access_key_id, secret_access_key, secret_access_key_file",
    ] {
        assert!(r.stderr.contains(want), "no {want:?} in: {}", r.stderr);
    }
    let r = with_config_file(&env, "[s3]\npath_style = \"yes\"\n").fails(2, "line 2");
    assert!(r.stderr.contains("key `s3.path_style`"), "{}", r.stderr);
    assert!(r.stderr.contains("boolean"), "{}", r.stderr);
    with_config_file(&env, "repository = \"unterminated\n").fails(2, "line 1");
    let gone = env.path("gone.toml");
    env.run(&["snapshots", "--config", gone.to_str().unwrap()])
        .fails(2, "cannot read the config file");
}

#[test]
fn an_os_error_is_printed_once() {
    let env = Env::local();
    env.init();
    let snaps = Path::new(&env.repo).join("snapshots");
    std::fs::remove_dir(&snaps).unwrap();
    std::fs::write(&snaps, b"").unwrap();
    let os = std::io::Error::from_raw_os_error(20).to_string();
    let r = env
        .run(&["snapshots"])
        .fails(6, &snaps.display().to_string());
    assert_eq!(r.stderr.matches(&os).count(), 1, "{}", r.stderr);
    let r = env.run(&["snapshots", "--json"]);
    assert_eq!(
        r.json()["error"].as_str().unwrap().matches(&os).count(),
        1,
        "{r:?}"
    );
}

#[test]
fn jobs_zero_is_refused_by_create_and_restore() {
    let env = Env::local();
    let src = env.path("tree");
    fixture(&src);
    env.init();
    let r = env
        .run(&["create", "--files", src.to_str().unwrap(), "--jobs", "0"])
        .fails(2, "--jobs");
    assert!(r.stderr.contains("0"), "{}", r.stderr);
    assert_eq!(env.listed_snapshots(), 0, "nothing may be captured");
    env.create(&[&src], &["--jobs", "1"]);
    let target = env.path("restore");
    env.run(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--jobs",
        "0",
    ])
    .fails(2, "--jobs");
    assert!(!target.exists());
}

#[test]
fn create_of_a_database_reports_the_bytes_it_read() {
    let pg = testkit::Postgres::start();
    pg.psql("postgres", "CREATE DATABASE dms");
    pg.psql(
        "dms",
        "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g",
    );
    let env = Env::local();
    env.init();
    let r = env.run(&["create", "--postgres", &pg.conninfo("dms")]).ok();
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("snapshot "))
        .unwrap_or_else(|| panic!("no summary line in {}", r.stdout));
    let read = line
        .split(", ")
        .find(|p| p.ends_with(" read"))
        .unwrap_or_else(|| panic!("no \"read\" in {line:?}"));
    assert_ne!(read, "0 B read", "{line}");
    assert!(
        read.ends_with("MiB read") || read.ends_with("KiB read"),
        "{line}"
    );
    // The same figure as --json's bytes_read.
    let json = env
        .run(&[
            "create",
            "--postgres",
            &pg.conninfo("dms"),
            "--force",
            "--json",
        ])
        .ok()
        .json();
    assert!(json["bytes_read"].as_u64().unwrap() > 1_000_000, "{json}");
}
