//! Deciding, pack by pack, what a prune keeps, deletes and repacks.

use super::{PruneOptions, PruneReport};
use crate::error::Result;
use crate::id::Id;
use crate::repository::{BlobLocation, Repository};
use crate::store::Kind;
use std::collections::{HashMap, HashSet};

/// What happens to one indexed pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Stays as it is (indexed again with all its blobs).
    Keep,
    /// Nothing in it is used: deleted.
    Delete,
    /// Its used blobs are copied into new packs, then it is deleted.
    Repack,
}

/// One indexed pack.
#[derive(Debug, Clone)]
pub(super) struct PackPlan {
    /// The pack.
    pub id: Id,
    /// Its size.
    pub size: u64,
    /// Every blob the index places in it, by offset.
    pub blobs: Vec<(Id, BlobLocation)>,
    /// The used ones.
    pub used: Vec<(Id, BlobLocation)>,
    /// Sealed bytes of the unused ones.
    pub unused_bytes: u64,
    /// What happens to it.
    pub action: Action,
}

impl PackPlan {
    fn used_bytes(&self) -> u64 {
        self.used.iter().map(|(_, l)| l.length as u64).sum()
    }
}

/// The whole plan.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// Every indexed pack.
    pub packs: Vec<PackPlan>,
    /// Packs in storage but in no index, with their sizes.
    pub unindexed: Vec<(String, u64)>,
    /// The index objects at the start.
    pub index_objects: Vec<String>,
}

/// Classifies every pack, then picks the partly used ones to repack.
pub(super) fn plan(repo: &Repository, used: &HashSet<Id>, options: &PruneOptions) -> Result<Plan> {
    let (mut packs, indexed): (Vec<PackPlan>, HashSet<String>) = {
        let index = repo.index();
        let packs: Vec<PackPlan> = index
            .by_pack()
            .into_iter()
            .enumerate()
            .map(|(pos, blobs)| classify(index.packs[pos], blobs, used))
            .collect();
        let names = packs.iter().map(|p| p.id.to_hex()).collect();
        (packs, names)
    };
    choose_repacks(&mut packs, options);
    let listed: HashMap<String, u64> = repo
        .store()
        .list(Kind::Pack)?
        .into_iter()
        .map(|o| (o.name, o.size))
        .collect();
    let mut unindexed: Vec<(String, u64)> = listed
        .into_iter()
        .filter(|(n, _)| !indexed.contains(n))
        .collect();
    unindexed.sort();
    let index_objects = repo
        .store()
        .list(Kind::Index)?
        .into_iter()
        .map(|o| o.name)
        .collect();
    Ok(Plan {
        packs,
        unindexed,
        index_objects,
    })
}

fn classify((id, size): (Id, u64), blobs: Vec<(Id, BlobLocation)>, used: &HashSet<Id>) -> PackPlan {
    let used_blobs: Vec<(Id, BlobLocation)> = blobs
        .iter()
        .filter(|(b, _)| used.contains(b))
        .copied()
        .collect();
    let unused_bytes = blobs
        .iter()
        .filter(|(b, _)| !used.contains(b))
        .map(|(_, l)| l.length as u64)
        .sum();
    let action = if used_blobs.is_empty() {
        Action::Delete
    } else {
        Action::Keep
    };
    PackPlan {
        id,
        size,
        blobs,
        used: used_blobs,
        unused_bytes,
        action,
    }
}

/// Marks partly used packs for repacking, most unused bytes first, until
/// the unused bytes left are at most `max_unused` of what stays, and the
/// bytes copied stay within `max_repack`.
fn choose_repacks(packs: &mut [PackPlan], options: &PruneOptions) {
    let used_total: u64 = packs.iter().map(PackPlan::used_bytes).sum();
    let allowed = (used_total as f64 * options.max_unused / (1.0 - options.max_unused)) as u64;
    let mut unused_left: u64 = packs
        .iter()
        .filter(|p| p.action == Action::Keep)
        .map(|p| p.unused_bytes)
        .sum();
    let mut order: Vec<usize> = (0..packs.len())
        .filter(|&i| packs[i].action == Action::Keep && packs[i].unused_bytes > 0)
        .collect();
    order.sort_by_key(|&i| std::cmp::Reverse(packs[i].unused_bytes));
    let mut copied = 0u64;
    for i in order {
        if unused_left <= allowed {
            break;
        }
        let cost = packs[i].used_bytes();
        if options.max_repack.is_some_and(|m| copied + cost > m) {
            continue;
        }
        packs[i].action = Action::Repack;
        copied += cost;
        unused_left -= packs[i].unused_bytes;
    }
}

impl Plan {
    /// The report of this plan (figures of the result before it is
    /// carried out).
    pub fn report(&self, snapshots: usize, blobs_used: u64, dry_run: bool) -> PruneReport {
        let count = |a: Action| self.packs.iter().filter(|p| p.action == a).count();
        let sum = |a: Action, f: fn(&PackPlan) -> u64| {
            self.packs
                .iter()
                .filter(|p| p.action == a)
                .map(f)
                .sum::<u64>()
        };
        let unindexed_bytes: u64 = self.unindexed.iter().map(|(_, s)| s).sum();
        let indexed_bytes: u64 = self.packs.iter().map(|p| p.size).sum();
        let removed_bytes =
            sum(Action::Delete, |p| p.size) + sum(Action::Repack, |p| p.size) + unindexed_bytes;
        let repacked = sum(Action::Repack, PackPlan::used_bytes);
        let blobs_total: u64 = self.packs.iter().map(|p| p.blobs.len() as u64).sum();
        let kept_blobs: u64 = self
            .packs
            .iter()
            .map(|p| match p.action {
                Action::Keep => p.blobs.len() as u64,
                Action::Repack => p.used.len() as u64,
                Action::Delete => 0,
            })
            .sum();
        let before = indexed_bytes + unindexed_bytes;
        PruneReport {
            dry_run,
            snapshots,
            blobs_used,
            blobs_removed: blobs_total - kept_blobs,
            packs_before: self.packs.len(),
            packs_deleted: count(Action::Delete),
            packs_repacked: count(Action::Repack),
            packs_written: 0,
            unindexed_deleted: self.unindexed.len(),
            bytes_before: before,
            // Estimated until carried out: what goes, plus the copies.
            bytes_after: before - removed_bytes + repacked,
            bytes_freed: removed_bytes.saturating_sub(repacked),
            bytes_repacked: repacked,
            unused_bytes_after: sum(Action::Keep, |p| p.unused_bytes),
            index_objects_before: self.index_objects.len(),
            index_objects_after: 0,
        }
    }
}
