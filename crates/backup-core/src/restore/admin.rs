//! Database-level steps shared by restores and rollbacks: a session on the
//! server's `postgres` database, and looking up, closing, renaming and
//! dropping databases.

use crate::error::{ErrorKind, Result};
use crate::source::postgres::catalog::ident;
use crate::source::postgres::conninfo::{db_error, ConnInfo};
use std::time::Duration;

/// A session on the `postgres` database of the target's server.
pub(crate) fn maintenance(target: &ConnInfo) -> Result<postgres::Client> {
    target
        .with_dbname("postgres")
        .connect()
        .map_err(|e| e.with_kind(ErrorKind::Target))
}

/// Whether database `name` exists.
pub(crate) fn database_exists(maint: &mut postgres::Client, name: &str) -> Result<bool> {
    Ok(maint
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .map_err(|e| db_error("looking up the target database", e))?
        .is_some())
}

/// Drops a database, ending its sessions first.
pub fn drop_database(maint: &mut postgres::Client, name: &str) -> Result<()> {
    terminate_sessions(maint, name);
    maint
        .batch_execute(&format!("DROP DATABASE IF EXISTS {}", ident(name)))
        .map_err(|e| db_error(format!("dropping database {name}"), e))
}

/// Opens or closes database `db` to new sessions.
pub(crate) fn allow_connections(c: &mut postgres::Client, db: &str, allow: bool) -> Result<()> {
    let stmt = format!(
        "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {allow}",
        ident(db)
    );
    c.batch_execute(&stmt)
        .map_err(|e| db_error(stmt.clone(), e).with_kind(ErrorKind::Target))
}

/// Renames database `from` to `to` (nobody may be connected to `from`).
pub(crate) fn rename(c: &mut postgres::Client, from: &str, to: &str) -> Result<()> {
    let stmt = format!("ALTER DATABASE {} RENAME TO {}", ident(from), ident(to));
    c.batch_execute(&stmt)
        .map_err(|e| db_error(stmt.clone(), e).with_kind(ErrorKind::Target))
}

/// Renames `from` to `to`, first closing `from` to new sessions and
/// ending the ones it has (a rename needs a database nobody uses). On
/// failure `from` is opened again.
pub(crate) fn rename_closed(c: &mut postgres::Client, from: &str, to: &str) -> Result<()> {
    allow_connections(c, from, false)?;
    let mut last = None;
    // A terminated session is gone within milliseconds: retry soon, as
    // the application is down meanwhile, for five seconds in all.
    for _ in 0..500 {
        terminate_sessions(c, from);
        match rename(c, from, to) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = allow_connections(c, from, true);
    Err(last.expect("a failure").context(format!(
        "cannot rename database {from} to {to}: its sessions keep coming back; stop what \
         reconnects to it and run the command again"
    )))
}

/// Ends every other session on database `db` (best effort: a failure shows
/// in the statement that needed them gone).
fn terminate_sessions(c: &mut postgres::Client, db: &str) {
    let _ = c.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
        &[&db],
    );
}
