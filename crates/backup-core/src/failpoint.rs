//! Failpoints for the crash and failure tests: `BACKUP_FAILPOINT=<point>`
//! kills the process with SIGKILL when it reaches `<point>`, as `kill -9`
//! or a power loss would, at a moment a test could not hit by timing; or,
//! at the points [`armed`] checks, makes a call fail as the server or the
//! kernel could.

/// Kills this process with SIGKILL if `BACKUP_FAILPOINT` names `point`.
pub fn failpoint(point: &str) {
    if armed(point) {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::Kill);
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
}

/// Whether `BACKUP_FAILPOINT` names `point`: for the tests of fallbacks
/// and failure paths, the code there then fails the way the server or the
/// kernel could make it fail (a failed `syncfs` or directory sync, which a
/// test cannot provoke on a healthy disk).
pub fn armed(point: &str) -> bool {
    std::env::var("BACKUP_FAILPOINT").is_ok_and(|p| p == point)
}
