//! Which rollback a salvage is about, and computing it: the journal in the
//! system's state directory names the live and kept databases; the
//! repository holds the snapshot restored.

use super::compare::{compute_component, kept_gone, CompareStats};
use super::{store, Salvage, SALVAGE_VERSION};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repository::Repository;
use crate::rollback::journal::{Journal, Operation, StateDir};
use crate::rollback::switch::Switch;
use crate::snapshot::load_snapshot;
use crate::source::postgres::conninfo::ConnInfo;
use crate::system::System;
use std::time::Instant;

/// A finished rollback whose replaced state is kept.
pub type RollbackRef = Journal;

/// The finished rollback `id` (a unique prefix will do) of this system,
/// or its newest when `id` is `None`. Refused when it was reverted or its
/// kept copies were cleaned up.
pub fn find_rollback(system: &System, id: Option<&str>) -> Result<RollbackRef> {
    let history = StateDir::new(&system.state_dir).history()?;
    let mut rollbacks: Vec<Journal> = history
        .into_iter()
        .filter(|j| j.operation == Operation::Rollback)
        .collect();
    rollbacks.sort_by_key(|a| a.started);
    let j = match id {
        None => rollbacks.pop().ok_or_else(|| {
            Error::not_found("this system has no finished rollback in its state directory")
        })?,
        Some(id) => {
            let mut hits: Vec<Journal> = rollbacks
                .into_iter()
                .filter(|j| j.id.starts_with(id))
                .collect();
            match hits.len() {
                0 => {
                    return Err(Error::not_found(format!(
                        "no rollback {id} in the history of this system (see `backup rollback history`)"
                    )))
                }
                1 => hits.pop().expect("one"),
                _ => return Err(Error::new(crate::ErrorKind::Ambiguous, format!("{id} names more than one rollback"))),
            }
        }
    };
    if j.reverted {
        return Err(Error::usage(format!(
            "rollback {} was reverted: nothing was replaced, there is no delta",
            j.id
        )));
    }
    if j.cleaned {
        let kept = databases(&j)
            .next()
            .map(|d| d.1.to_string())
            .unwrap_or_default();
        return Err(kept_gone(&kept, &j.id));
    }
    Ok(j)
}

/// `(component, kept, live)` of every database the journal switched.
fn databases(j: &Journal) -> impl Iterator<Item = (&str, &str, &str)> {
    j.components.iter().filter_map(|c| match c {
        Switch::Postgres(d) => Some((d.name.as_str(), d.kept.as_str(), d.live.as_str())),
        Switch::Files(_) => None,
    })
}

/// Computes the delta of rollback `j` on `jobs` pairs of connections per
/// database and stores it; returns the object id, the salvage and what it
/// cost.
pub fn compute_for(
    repo: &Repository,
    system: &System,
    j: &Journal,
    jobs: usize,
) -> Result<(Id, Salvage, CompareStats)> {
    let t0 = Instant::now();
    let computed = chrono::Utc::now();
    let snap_id = Id::from_hex(&j.snapshot)?;
    let snap = load_snapshot(repo, &snap_id)?;
    let mut out = Vec::new();
    let mut stats = CompareStats::default();
    for (name, kept, live) in databases(j) {
        let entry = system
            .postgres
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                Error::usage(format!(
                    "the system description has no [[postgres]] entry named {name:?}"
                ))
            })?;
        let conn = ConnInfo::parse(&entry.connection)?;
        let component = snap.databases().find(|d| d.name == name).ok_or_else(|| {
            Error::not_found(format!(
                "snapshot {} has no database component {name:?}",
                snap_id.short()
            ))
        })?;
        if !database_exists(&conn.with_dbname(live), kept)? {
            return Err(kept_gone(kept, &j.id));
        }
        let (d, s) = compute_component(
            name,
            &conn.with_dbname(live),
            &conn.with_dbname(kept),
            component,
            j.staged_xids.get(name).copied(),
            jobs,
        )
        .map_err(|e| e.context(format!("computing the delta of {name}")))?;
        let mut d = d;
        d.secret = entry.secret;
        d.secret_columns = entry.secret_columns.clone();
        stats.skipped += s.skipped;
        stats.rows_read += s.rows_read;
        out.push(d);
    }
    let salvage = Salvage {
        version: SALVAGE_VERSION,
        rollback: j.id.clone(),
        snapshot: j.snapshot.clone(),
        computed,
        duration_secs: t0.elapsed().as_secs_f64(),
        databases: out,
    };
    let id = store::save(repo, &salvage)?;
    Ok((id, salvage, stats))
}

fn database_exists(conn: &ConnInfo, name: &str) -> Result<bool> {
    crate::restore::database_exists(&mut conn.connect()?, name)
}
