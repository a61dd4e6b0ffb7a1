//! Undo (the kept copies of the last rollback switched back in, through
//! the same stop, switch, start and health check) and cleanup (kept copies
//! dropped once they are no longer wanted).

use super::journal::{Journal, Operation};
use super::stage::{free_name, kept_stamp};
use super::switch::{inode, remove_path, DatabaseSwitch, FilesSwitch, Switch};
use super::{run, Kept, RollbackOptions, RollbackReport, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::restore::{database_exists, derived_name, maintenance};
use serde::Serialize;
use std::time::Duration;

/// The newest rollback that is neither reverted, undone nor cleaned up.
fn last_rollback(session: &Session) -> Result<Journal> {
    let history = session.state.history()?;
    let last = history.iter().rev().find(|j| !j.reverted);
    match last {
        Some(j) if j.operation == Operation::Rollback && j.undone_by.is_none() && !j.cleaned => {
            Ok(j.clone())
        }
        Some(j) if j.operation == Operation::Undo => Err(Error::usage(format!(
            "the last operation ({}) was an undo already: nothing to undo",
            j.id
        ))),
        Some(j) if j.cleaned => Err(Error::usage(format!(
            "the kept copies of rollback {} were cleaned up: restore its safety snapshot {} instead",
            j.id,
            j.safety_snapshot.as_deref().unwrap_or("(none was taken)")
        ))),
        _ => Err(Error::usage("no rollback to undo in this state directory")),
    }
}

/// How an undo switches one component: the kept copy is the staged one.
fn undo_switch(session: &Session, c: &Switch, stamp: &str) -> Result<Switch> {
    match c {
        Switch::Files(f) => {
            let staged_inode = inode(&f.kept).ok_or_else(|| {
                Error::new(
                    ErrorKind::Target,
                    format!(
                        "the kept copy {} is gone: it cannot be switched back",
                        f.kept.display()
                    ),
                )
            })?;
            let name = f
                .live
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok(Switch::Files(FilesSwitch {
                name: f.name.clone(),
                live: f.live.clone(),
                staged: f.kept.clone(),
                staging_dir: None,
                staged_inode: Some(staged_inode),
                live_existed: std::fs::symlink_metadata(&f.live).is_ok(),
                kept: free_name(&f.live.with_file_name(format!("{name}.before-undo-{stamp}"))),
                secret: f.secret,
            }))
        }
        Switch::Postgres(d) => {
            let mut conn = maintenance(&session.connection(&d.name)?)?;
            if !database_exists(&mut conn, &d.kept)? {
                return Err(Error::new(
                    ErrorKind::Target,
                    format!(
                        "the kept database {} is gone: it cannot be switched back",
                        d.kept
                    ),
                ));
            }
            Ok(Switch::Postgres(DatabaseSwitch {
                name: d.name.clone(),
                live: d.live.clone(),
                staged: d.kept.clone(),
                owned: false,
                kept: derived_name(&d.live, &format!("__before_undo_{stamp}")),
            }))
        }
    }
}

/// Switches the state the last rollback replaced back in. The restored
/// state is kept in turn (`.before-undo-<time>`, `__before_undo_<time>`).
pub fn undo(session: &Session) -> Result<RollbackReport> {
    // An unfinished operation is finished or reverted first.
    super::resume(session)?;
    let last = last_rollback(session)?;
    let mut j = run::new_journal(
        Operation::Undo,
        last.snapshot.clone(),
        &RollbackOptions::default(),
    );
    j.undoes = Some(last.id.clone());
    let stamp = kept_stamp(&j.started);
    for c in &last.components {
        j.components.push(undo_switch(session, c, &stamp)?);
    }
    let started = j.started;
    run::record_ok(
        &mut j,
        "preflight",
        started,
        &format!("the kept copies of rollback {} are in place", last.id),
    );
    run::execute(session, j)
}

/// Marks the rollback an undo undid.
pub(crate) fn mark_undone(session: &Session, undo: &Journal) -> Result<()> {
    let Some(id) = &undo.undoes else {
        return Ok(());
    };
    let history = session.state.history()?;
    if let Some(mut j) = history.into_iter().find(|j| &j.id == id) {
        j.undone_by = Some(undo.id.clone());
        session.state.save_history(&j)?;
    }
    Ok(())
}

/// What cleanup removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanupReport {
    /// Kept copies removed.
    pub removed: Vec<Kept>,
    /// Operations whose kept copies are younger than the limit.
    pub left: usize,
}

/// Drops the kept databases and removes the kept directories of finished
/// operations that ended more than `older_than` ago (all with `None`).
pub fn cleanup(session: &Session, older_than: Option<Duration>) -> Result<CleanupReport> {
    if let Some(j) = session.state.current()? {
        return Err(Error::usage(format!(
            "operation {} is unfinished: run `backup rollback resume` first",
            j.id
        )));
    }
    let now = chrono::Utc::now();
    let limit = older_than.map(|d| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX));
    let mut report = CleanupReport::default();
    for mut j in session.state.history()? {
        if j.reverted || j.cleaned {
            continue;
        }
        let ended = j.finished.unwrap_or(j.started);
        if limit.is_some_and(|l| now - ended < l) {
            report.left += 1;
            continue;
        }
        for c in &j.components {
            remove_kept(session, c)?;
            report.removed.push(Kept {
                component: c.name().to_string(),
                kind: match c {
                    Switch::Files(_) => "files",
                    Switch::Postgres(_) => "postgres",
                },
                kept: c.kept(),
            });
        }
        j.cleaned = true;
        session.state.save_history(&j)?;
    }
    Ok(report)
}

fn remove_kept(session: &Session, c: &Switch) -> Result<()> {
    match c {
        Switch::Files(f) => remove_path(&f.kept),
        Switch::Postgres(d) => d.remove_kept(&session.connection(&d.name)?),
    }
}
