//! `create`: capture sources into one snapshot.

use crate::error::{Error, Result};
use crate::id::Id;
use crate::progress::Progress;
use crate::repository::{Lock, Repository, Saver};
use crate::snapshot::{save_snapshot, Component, Snapshot};
use crate::source::files::{absolute_source, build_excludes, capture_files, FilesOptions};
use std::path::PathBuf;
use std::time::Instant;

/// What to capture and how.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// File trees or single files.
    pub files: Vec<PathBuf>,
    /// File source options.
    pub files_options: FilesOptions,
    /// Tags for the snapshot.
    pub tags: Vec<String>,
    /// A label for the snapshot.
    pub label: Option<String>,
    /// Compression threads (0: one per core).
    pub workers: usize,
}

/// The result of a create run.
#[derive(Debug, Clone)]
pub struct CreateResult {
    /// The new snapshot's id.
    pub id: Id,
    /// The manifest.
    pub snapshot: Snapshot,
    /// Packs recovered from an interrupted earlier run.
    pub recovered_packs: usize,
}

/// Captures the sources and writes one snapshot. Nothing is committed
/// until every source is read and every pack and index object is stored:
/// the snapshot manifest is written last.
pub fn create_snapshot(
    repo: &Repository,
    options: &CreateOptions,
    progress: &dyn Progress,
) -> Result<CreateResult> {
    if options.files.is_empty() {
        return Err(Error::usage(
            "nothing to capture: name at least one source with --files PATH",
        ));
    }
    // Check every source and pattern before any work.
    build_excludes(&options.files_options.excludes)?;
    let mut roots = Vec::new();
    for f in &options.files {
        roots.push(absolute_source(f)?);
    }
    for (i, a) in roots.iter().enumerate() {
        for b in &roots[i + 1..] {
            if a == b {
                return Err(Error::usage(format!(
                    "--files {} is given twice",
                    a.display()
                )));
            }
            let (outer, inner) = if b.starts_with(a) { (a, b) } else { (b, a) };
            if inner.starts_with(outer) {
                return Err(Error::usage(format!(
                    "--files {} lies inside --files {}: capture only the outer path",
                    inner.display(),
                    outer.display()
                )));
            }
        }
    }
    let _lock = Lock::acquire(repo, false, "create")?;
    let start = Instant::now();
    let recovered_packs = repo.recover_orphan_packs()?;
    let workers = if options.workers == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        options.workers
    };
    let saver = Saver::new(repo, workers);
    let mut snap = Snapshot::new(options.tags.clone(), options.label.clone());
    for f in &options.files {
        let c = capture_files(&saver, f, &options.files_options, progress)?;
        snap.components.push(Component::Files(c));
    }
    let stats = saver.finish()?;
    snap.summary.bytes_read = stats.bytes_in;
    snap.summary.new_bytes = stats.new_bytes;
    snap.summary.stored_bytes = stats.stored_bytes;
    snap.summary.duration_secs = start.elapsed().as_secs_f64();
    let id = save_snapshot(repo, &snap)?;
    Ok(CreateResult {
        id,
        snapshot: snap,
        recovered_packs,
    })
}
