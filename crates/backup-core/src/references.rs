//! One walk over what snapshots reference: every database stream, every
//! file listing and every file's blobs. `verify` checks sizes and
//! missing blobs along it; `prune` collects the blobs still in use.

use crate::error::Result;
use crate::id::Id;
use crate::repository::Repository;
use crate::snapshot::{full_path, load_tree, NodeKind, Snapshot};

/// One referenced run of blobs.
#[derive(Debug)]
pub(crate) struct Reference<'a> {
    /// The snapshot.
    pub snapshot: &'a Id,
    /// What it is: a stream label, `<path> (file listing)` or a file path.
    pub what: String,
    /// Its blobs.
    pub blobs: &'a [Id],
    /// The bytes its blobs must hold (file contents and streams; `None`
    /// for listings and non-files).
    pub size: Option<u64>,
}

/// What the walk tells its caller.
pub(crate) trait Visitor {
    /// One reference.
    fn reference(&mut self, r: Reference<'_>);
    /// A file listing that cannot be read: `Err` stops the walk, `Ok`
    /// goes on without its files.
    fn unreadable_listing(
        &mut self,
        snapshot: &Id,
        component: &str,
        tree: &[Id],
        error: crate::Error,
    ) -> Result<()>;
}

/// Visits every reference of `snaps`, in order.
pub(crate) fn walk(repo: &Repository, snaps: &[(Id, Snapshot)], v: &mut dyn Visitor) -> Result<()> {
    for (sid, snap) in snaps {
        for db in snap.databases() {
            for (label, stream) in db.streams() {
                v.reference(Reference {
                    snapshot: sid,
                    what: label,
                    blobs: &stream.blobs,
                    size: Some(stream.size),
                });
            }
        }
        for fc in snap.file_components() {
            v.reference(Reference {
                snapshot: sid,
                what: format!("{} (file listing)", fc.path),
                blobs: &fc.tree,
                size: None,
            });
            let nodes = match load_tree(repo, &fc.tree) {
                Ok(n) => n,
                Err(e) => {
                    v.unreadable_listing(sid, &fc.path, &fc.tree, e)?;
                    continue;
                }
            };
            for n in &nodes {
                v.reference(Reference {
                    snapshot: sid,
                    what: full_path(&fc.path, &n.path),
                    blobs: &n.blobs,
                    size: (n.kind == NodeKind::File).then_some(n.size),
                });
            }
        }
    }
    Ok(())
}
