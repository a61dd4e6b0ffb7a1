//! `prune`: remove the data no snapshot references.
//!
//! Under an **exclusive** repository lock (every `create`, `restore`,
//! `verify` and rollback holds a shared one, so a blob that a running
//! create relies on can never be deleted; locks are refreshed and a dead
//! holder's lock is removed by the next process that meets it), prune
//!
//! 1. walks every snapshot's references (refusing when a manifest or a
//!    file listing cannot be read: what it references is unknown);
//! 2. plans per pack ([`plan`]): wholly unused packs go, partly used ones
//!    are repacked, most unused first, until the unused space left is
//!    within `max_unused` (and the bytes copied within `max_repack`);
//! 3. carries it out ([`execute`]) in an order where every intermediate
//!    state is a valid repository: new packs, a new index of everything
//!    kept, the old index objects deleted, then the obsolete packs.
//!
//! A prune killed at any point leaves packs that are in no index (the next
//! prune deletes them) or index objects that overlap (harmless); nothing
//! a snapshot needs is ever missing.

mod execute;
mod plan;

use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::progress::Progress;
use crate::references::{walk, Reference, Visitor};
use crate::repository::{Lock, Repository};
use crate::snapshot::list_snapshots;
use serde::Serialize;
use std::collections::HashSet;

/// What to prune.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Plan and report, change nothing.
    pub dry_run: bool,
    /// Unused space tolerated after the prune, as a fraction of the used
    /// space plus it (0.05: 5%).
    pub max_unused: f64,
    /// At most this many bytes of still-used blobs are copied.
    pub max_repack: Option<u64>,
    /// Snapshots counted as gone (a `forget --dry-run` decided to remove
    /// them), so that a dry run shows what forget and prune together free.
    pub forgotten: Vec<Id>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            dry_run: false,
            max_unused: 0.05,
            max_repack: None,
            forgotten: Vec::new(),
        }
    }
}

/// What a prune did (or, with a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// Snapshots whose references were kept.
    pub snapshots: usize,
    /// Blobs still referenced.
    pub blobs_used: u64,
    /// Blobs no snapshot references any more, removed.
    pub blobs_removed: u64,
    /// Indexed packs before.
    pub packs_before: usize,
    /// Packs deleted because nothing in them is used.
    pub packs_deleted: usize,
    /// Partly used packs whose used blobs were copied into new packs.
    pub packs_repacked: usize,
    /// New packs written by the repack.
    pub packs_written: usize,
    /// Packs in no index (left by interrupted runs), deleted.
    pub unindexed_deleted: usize,
    /// Bytes of packs before (indexed and not).
    pub bytes_before: u64,
    /// Bytes of packs after.
    pub bytes_after: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Bytes of used blobs copied.
    pub bytes_repacked: u64,
    /// Bytes of unused blobs left in partly used packs.
    pub unused_bytes_after: u64,
    /// Index objects before and after.
    pub index_objects_before: usize,
    /// Index objects written.
    pub index_objects_after: usize,
}

/// Removes what no snapshot references; see the module documentation.
pub fn prune(
    repo: &Repository,
    options: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    if !(0.0..1.0).contains(&options.max_unused) {
        return Err(Error::usage("--max-unused must be below 100%: e.g. 5%"));
    }
    let _lock = Lock::acquire(repo, true, "prune")?;
    progress.phase("finding the data snapshots use", None);
    let (snapshots, used) = used_blobs(repo, &options.forgotten)?;
    let plan = plan::plan(repo, &used, options)?;
    let mut report = plan.report(snapshots, used.len() as u64, options.dry_run);
    if !options.dry_run {
        execute::execute(repo, &plan, &mut report, progress)?;
    }
    Ok(report)
}

/// Every blob any snapshot references; refuses when a snapshot or a
/// listing cannot be read.
fn used_blobs(repo: &Repository, forgotten: &[Id]) -> Result<(usize, HashSet<Id>)> {
    let mut snaps = Vec::new();
    for (id, s) in list_snapshots(repo)? {
        if forgotten.contains(&id) {
            continue;
        }
        match s {
            Ok(s) => snaps.push((id, s)),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(refusal(&format!("snapshot {}", id.short()), e)),
        }
    }
    let mut collect = Collect::default();
    walk(repo, &snaps, &mut collect)?;
    let index = repo.index();
    if let Some(b) = collect.used.iter().find(|b| !index.contains(b)) {
        return Err(Error::corrupt(format!(
            "blob {b}, which a snapshot references, is in no index: the repository is damaged; \
             run `backup verify` before pruning (nothing was deleted)"
        )));
    }
    Ok((snaps.len(), collect.used))
}

fn refusal(what: &str, e: Error) -> Error {
    Error::corrupt(format!(
        "{what} cannot be read ({e}), so what it references is unknown: prune deletes nothing \
         while that is so; run `backup verify`, then forget or repair it"
    ))
}

#[derive(Default)]
struct Collect {
    used: HashSet<Id>,
}

impl Visitor for Collect {
    fn reference(&mut self, r: Reference<'_>) {
        self.used.extend(r.blobs.iter().copied());
    }

    fn unreadable_listing(
        &mut self,
        sid: &Id,
        component: &str,
        _tree: &[Id],
        e: Error,
    ) -> Result<()> {
        Err(refusal(
            &format!(
                "the file listing of {component} in snapshot {}",
                sid.short()
            ),
            e,
        ))
    }
}
