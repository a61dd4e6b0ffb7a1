//! Exit codes and messages of everyday mistakes: each names what was wrong
//! and what to do, with the exit code the README lists.

use crate::common::*;
use std::path::Path;

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
