//! Whether the live state is still the one a plan saw: each component's
//! fingerprint is computed again and compared, and where the plan kept
//! enough detail, what moved is said (rows written to a table, files
//! added, removed or changed).

use super::database::delta;
use super::files::{entry_digests, listing_fingerprint, live_listing};
use super::live_db::{self, LiveDatabaseState};
use super::Plan;
use crate::error::Result;
use crate::system::System;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One component whose live state is not the plan's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Moved {
    /// The component name.
    pub component: String,
    /// What moved, e.g. `table public.orders: 3 rows written`.
    pub what: String,
}

/// The components whose live state differs from the plan's fingerprints;
/// empty when the live state is what the plan saw.
pub fn live_moved(system: &System, plan: &Plan) -> Result<Vec<Moved>> {
    let mut out = Vec::new();
    let planned = |name: &str| plan.fingerprints.components.get(name).cloned();
    for d in &plan.databases {
        let Some(entry) = system.postgres.iter().find(|e| e.name == d.name) else {
            out.push(gone(&d.name));
            continue;
        };
        let live = live_db::probe(&entry.connection)
            .map_err(|e| e.context(format!("database {}", d.name)))?;
        if Some(live_db::fingerprint(&live.state)?) != planned(&d.name) {
            out.extend(database_moves(&d.name, &d.live, &live.state));
        }
    }
    for f in &plan.files {
        let Some(entry) = system.files.iter().find(|e| e.name == f.name) else {
            out.push(gone(&f.name));
            continue;
        };
        let live = live_listing(&entry.path, &f.excludes)?;
        if Some(listing_fingerprint(&live)) != planned(&f.name) {
            let what = match &f.live_listing {
                Some(then) => files_moved(then, &entry_digests(&live)),
                None => format!(
                    "files: the listing changed since the plan ({} entries then, {} now)",
                    f.live_entries,
                    live.len()
                ),
            };
            out.push(Moved {
                component: f.name.clone(),
                what,
            });
        }
    }
    Ok(out)
}

/// A reviewed plan checked against the repository and the live system:
/// the snapshot it rolls back to, and what moved since it was made.
#[derive(Debug, Clone)]
pub struct CheckedPlan {
    /// The snapshot's id.
    pub id: crate::id::Id,
    /// The snapshot.
    pub snapshot: crate::snapshot::Snapshot,
    /// What moved since the plan was made; empty when it may be applied.
    pub moved: Vec<Moved>,
}

/// Checks a plan before it is carried out, by the command and the daemon
/// alike: refuses an edited or damaged plan and one made for another
/// snapshot (errors), and says what moved in the live state since.
pub fn check_plan(
    repo: &crate::repository::Repository,
    system: &System,
    plan: &Plan,
) -> Result<CheckedPlan> {
    plan.check_hash()?;
    let id = crate::id::Id::from_hex(&plan.snapshot)?;
    let snapshot = crate::snapshot::load_snapshot(repo, &id)?;
    plan.check_snapshot(id, &snapshot)?;
    let moved = live_moved(system, plan)?;
    Ok(CheckedPlan {
        id,
        snapshot,
        moved,
    })
}

/// A component the system description no longer names.
fn gone(name: &str) -> Moved {
    Moved {
        component: name.to_string(),
        what: "the system description no longer names this component".into(),
    }
}

/// What differs between a database's state then and now; never empty.
fn database_moves(name: &str, then: &LiveDatabaseState, now: &LiveDatabaseState) -> Vec<Moved> {
    let mut whats = Vec::new();
    if then.schema_sha256 != now.schema_sha256 {
        whats.push("the schema changed".to_string());
    }
    for (table, t) in &then.tables {
        match now.tables.get(table) {
            None => whats.push(format!("table {table} was dropped")),
            Some(n) if n.oid != t.oid => whats.push(format!("table {table} was created again")),
            Some(n) if n != t => whats.push(format!("table {table}: {}", rows_moved(t, n))),
            Some(_) => {}
        }
    }
    for table in now.tables.keys().filter(|k| !then.tables.contains_key(*k)) {
        whats.push(format!("table {table} was created"));
    }
    whats.extend(map_moves("sequence", &then.sequences, &now.sequences));
    if then.large_objects != now.large_objects {
        whats.push("large objects were written".into());
    }
    if whats.is_empty() {
        whats.push("the live state differs from the plan's".into());
    }
    whats
        .into_iter()
        .map(|what| Moved {
            component: name.to_string(),
            what,
        })
        .collect()
}

/// Rows written to a table, as far as the counters tell.
fn rows_moved(then: &live_db::LiveTable, now: &live_db::LiveTable) -> String {
    match delta(&then.counters, &now.counters).filter(|w| w.total() > 0) {
        Some(w) => format!(
            "{} row(s) written ({} inserted, {} updated, {} deleted)",
            w.total(),
            w.inserted,
            w.updated,
            w.deleted
        ),
        // The tuples moved before the writer reported its counts.
        None => "rows were written".into(),
    }
}

/// Keys added, removed or changed between two maps.
fn map_moves<V: PartialEq>(
    what: &str,
    then: &BTreeMap<String, V>,
    now: &BTreeMap<String, V>,
) -> Vec<String> {
    let mut v = Vec::new();
    for (k, a) in then {
        match now.get(k) {
            None => v.push(format!("{what} {k} was dropped")),
            Some(b) if b != a => v.push(format!("{what} {k} moved")),
            Some(_) => {}
        }
    }
    for k in now.keys().filter(|k| !then.contains_key(*k)) {
        v.push(format!("{what} {k} was created"));
    }
    v
}

/// Counts entries added, removed and changed between two entry digest
/// lists (`hash(path):hash(entry)`).
fn files_moved(then: &[String], now: &[String]) -> String {
    let split = |v: &[String]| -> BTreeMap<String, String> {
        v.iter()
            .filter_map(|e| e.split_once(':'))
            .map(|(p, m)| (p.to_string(), m.to_string()))
            .collect()
    };
    let (a, b) = (split(then), split(now));
    let added = b.keys().filter(|k| !a.contains_key(*k)).count();
    let removed = a.keys().filter(|k| !b.contains_key(*k)).count();
    let changed = a
        .iter()
        .filter(|(k, m)| b.get(*k).is_some_and(|n| n != *m))
        .count();
    format!("files: {added} added, {removed} removed, {changed} changed since the plan")
}
