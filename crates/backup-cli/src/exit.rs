//! Exit codes (documented in the README and in `backup --help`).

use backup_core::ErrorKind;

/// Success.
pub const OK: i32 = 0;
/// Any failure not listed below.
pub const FAILURE: i32 = 1;
/// Bad usage: flags, arguments, the `--config` file, an ambiguous or unknown
/// snapshot id.
pub const USAGE: i32 = 2;
/// Damage found: `verify` problems, or a damaged object (`config` and key
/// objects included) met elsewhere.
pub const DAMAGED: i32 = 3;
/// Wrong or missing password (a password file that is missing, unreadable
/// or empty included).
pub const PASSWORD: i32 = 4;
/// Not a repository (a repository path that is a file included), or a format
/// this tool does not know.
pub const NOT_A_REPOSITORY: i32 = 5;
/// Storage unreachable or refusing (network, credentials, bucket).
pub const STORAGE: i32 = 6;
/// The repository is locked by another process.
pub const LOCKED: i32 = 7;
/// A source could not be read completely (no snapshot was written).
pub const SOURCE: i32 = 8;
/// The restore target cannot take the restore (not empty, read-only, full).
pub const TARGET: i32 = 9;
/// The run finished but with warnings (e.g. files skipped with --skip-unreadable).
pub const WARNINGS: i32 = 10;
/// A rollback or undo failed (start hook, health check, switch) and was
/// switched back: the system is as it was before.
pub const REVERTED: i32 = 11;
/// The live state moved since a rollback plan was made (`rollback plan
/// --check`, `rollback apply`), or rows changed in the target since the
/// rollback stopped `salvage apply`.
pub const MOVED: i32 = 12;

/// The help text that lists the exit codes.
pub const HELP: &str = "Exit codes:
  0  success
  1  failure not listed below
  2  bad usage: flags, arguments, the --config file, unknown or ambiguous snapshot id,
     unknown rollback id, a rollback whose kept database was cleaned up (salvage compute)
  3  damage found (verify problems, a damaged object, config and keys/ included)
  4  wrong or missing password (or the password file missing, unreadable, empty)
  5  not a repository (also a repository path that is a file), or an unknown format version
  6  storage unreachable or refusing (network, credentials, bucket)
  7  repository locked by another process
  8  a source could not be read (no snapshot was written)
  9  restore target unusable (not empty, read-only, full)
 10  finished with warnings (entries left out, files that changed while read)
 11  rollback failed and was reverted: the system is as it was before
 12  the live state moved since the plan was made (rollback plan --check, rollback apply),
     or rows changed in the target since the rollback stopped salvage apply";

/// The exit code for an error.
pub fn code_for(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<backup_core::Error>() {
            return match e.kind() {
                ErrorKind::Usage | ErrorKind::Ambiguous | ErrorKind::NotFound => USAGE,
                ErrorKind::Corrupt => DAMAGED,
                ErrorKind::WrongPassword => PASSWORD,
                ErrorKind::NotARepository | ErrorKind::UnsupportedFormat => NOT_A_REPOSITORY,
                ErrorKind::Storage => STORAGE,
                ErrorKind::Locked => LOCKED,
                ErrorKind::Source => SOURCE,
                ErrorKind::Target => TARGET,
                ErrorKind::Io | ErrorKind::Interrupted => FAILURE,
            };
        }
    }
    FAILURE
}
