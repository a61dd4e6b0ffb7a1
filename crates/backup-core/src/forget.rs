//! `forget`: remove the snapshot manifests a retention policy does not keep.
//!
//! Only `snapshots/<id>` objects are deleted; the packs they referenced stay
//! until a prune (not built yet) removes data no snapshot uses. Deleting
//! runs under an exclusive lock, so no `verify`, `restore` or `latest`
//! lookup sees a snapshot vanish between listing and reading it.

use crate::error::{ErrorKind, Result};
use crate::id::Id;
use crate::repository::{Lock, Repository};
use crate::retention::{apply, group, GroupBy, GroupKey, Policy};
use crate::snapshot::{list_snapshots, Snapshot};
use crate::store::Kind;
use chrono::{DateTime, Utc};

/// What to forget.
#[derive(Debug, Clone, Default)]
pub struct ForgetOptions {
    /// The retention policy applied to each group.
    pub policy: Policy,
    /// How snapshots are grouped.
    pub group_by: GroupBy,
    /// Only snapshots carrying all of these tags are considered.
    pub tags: Vec<String>,
    /// Only snapshots from one of these hosts are considered (all when
    /// empty).
    pub hosts: Vec<String>,
    /// Decide, but delete nothing.
    pub dry_run: bool,
    /// Snapshots never removed, whatever the policy, with the reason (the
    /// ones an unfinished or a kept rollback refers to, see
    /// [`crate::rollback::pinned_snapshots`]).
    pub pinned: Vec<(Id, String)>,
}

/// One snapshot in a forget report.
#[derive(Debug, Clone)]
pub struct Decided {
    /// Its id.
    pub id: Id,
    /// Its time.
    pub time: DateTime<Utc>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Why it is kept (empty for removed ones).
    pub reasons: Vec<String>,
}

/// The decisions for one group.
#[derive(Debug, Clone)]
pub struct ForgetGroup {
    /// The group.
    pub key: GroupKey,
    /// Kept snapshots, newest first.
    pub keep: Vec<Decided>,
    /// Removed snapshots (to be removed with a dry run), newest first.
    pub remove: Vec<Decided>,
}

/// The result of a forget run.
#[derive(Debug, Clone, Default)]
pub struct ForgetReport {
    /// Every group of the considered snapshots.
    pub groups: Vec<ForgetGroup>,
    /// Snapshot manifests that could not be read: never removed.
    pub damaged: Damaged,
    /// How many snapshot manifests were deleted (0 with a dry run).
    pub removed: usize,
}

impl ForgetReport {
    /// Every snapshot the policy removes.
    pub fn removals(&self) -> impl Iterator<Item = &Decided> {
        self.groups.iter().flat_map(|g| g.remove.iter())
    }
}

/// Snapshots with their ids.
type Listed = Vec<(Id, Snapshot)>;

/// Damaged snapshot manifests with what is wrong.
type Damaged = Vec<(Id, String)>;

/// The readable snapshots that pass the filters, and the damaged ones.
fn candidates(repo: &Repository, options: &ForgetOptions) -> Result<(Listed, Damaged)> {
    let mut ok = Vec::new();
    let mut damaged = Vec::new();
    for (id, snap) in list_snapshots(repo)? {
        match snap {
            Ok(s) => {
                let tags = options.tags.iter().all(|t| s.tags.contains(t));
                let host = options.hosts.is_empty() || options.hosts.contains(&s.host);
                if tags && host {
                    ok.push((id, s));
                }
            }
            // Deleted since it was listed: nothing to decide.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => damaged.push((id, e.to_string())),
        }
    }
    Ok((ok, damaged))
}

/// Applies the policy to each group.
fn decide(snaps: &[(Id, Snapshot)], options: &ForgetOptions) -> Result<Vec<ForgetGroup>> {
    let only: Vec<Snapshot> = snaps.iter().map(|(_, s)| s.clone()).collect();
    let now = Some(Utc::now());
    let mut out = Vec::new();
    for (key, members) in group(&only, options.group_by) {
        let list: Vec<Snapshot> = members.iter().map(|&i| only[i].clone()).collect();
        let mut g = ForgetGroup {
            key,
            keep: Vec::new(),
            remove: Vec::new(),
        };
        for d in apply(&list, &options.policy, now)? {
            let (id, s) = &snaps[members[d.index]];
            let mut reasons = d.reasons;
            reasons.extend(
                options
                    .pinned
                    .iter()
                    .filter(|(p, _)| p == id)
                    .map(|(_, why)| why.clone()),
            );
            let keep = !reasons.is_empty();
            let entry = Decided {
                id: *id,
                time: s.time,
                tags: s.tags.clone(),
                reasons,
            };
            if keep {
                g.keep.push(entry);
            } else {
                g.remove.push(entry);
            }
        }
        out.push(g);
    }
    Ok(out)
}

/// Applies the retention policy and, unless `dry_run`, deletes the
/// manifests of the snapshots it does not keep (under an exclusive lock).
/// Damaged manifests are never deleted; they are listed in the report.
/// An empty policy is refused before anything is read.
pub fn forget(repo: &Repository, options: &ForgetOptions) -> Result<ForgetReport> {
    options.policy.validate()?;
    let _lock = match options.dry_run {
        true => None,
        false => Some(Lock::acquire(repo, true, "forget")?),
    };
    let (snaps, damaged) = candidates(repo, options)?;
    let mut report = ForgetReport {
        groups: decide(&snaps, options)?,
        damaged,
        removed: 0,
    };
    if !options.dry_run {
        let ids: Vec<Id> = report.removals().map(|d| d.id).collect();
        for id in ids {
            repo.store()
                .delete(Kind::Snapshot, &id.to_hex())
                .map_err(|e| e.context(format!("removing snapshot {id}")))?;
            report.removed += 1;
        }
    }
    Ok(report)
}
