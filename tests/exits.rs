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
