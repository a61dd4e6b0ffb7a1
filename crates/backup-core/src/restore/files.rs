//! Restoring file components: every blob is checked as it is read, every
//! file against its SHA-256 in the staging directory, and only then is the
//! staged copy moved into place. Entries are created relative to a handle
//! on the staging directory (see [`super::handle`]).

use super::handle::{shown, DirHandle, Entry};
use super::place::{occupied, put_in_place, StagingDir};
use super::seed::{stage_files, Seed, Seeded, Staging};
use super::selection::{select_all, select_path, Item, Listing, Selection};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::progress::Progress;
use crate::repository::{decode_blob, pack_read_error, BlobLocation, Lock, Repository};
use crate::snapshot::{load_tree, FilesComponent, Node, NodeKind, Snapshot};
use crate::store::Kind;
use crossbeam_channel::RecvTimeoutError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of a file restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Where to restore: captured paths are recreated under it, or with
    /// [`RestoreOptions::source`] that path's content is put at it.
    pub target: PathBuf,
    /// Restore this one captured path (absolute: a component's root or a
    /// path inside one) with its content at the top of the target.
    pub source: Option<String>,
    /// Only restore these captured paths (absolute) and what lies below.
    pub include: Vec<String>,
    /// Replace an existing non-empty target (its content is kept aside).
    pub overwrite: bool,
    /// Parallel pack readers (0: one per core).
    pub workers: usize,
    /// Leave extended attributes out.
    pub no_xattrs: bool,
    /// The copy is only checked, then removed (the daemon's restore drill):
    /// it is not written to disk before the restore returns.
    pub scratch: bool,
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    /// The target.
    pub target: PathBuf,
    /// The captured path whose content was put at the target, if one was.
    pub source: Option<String>,
    /// Files restored.
    pub files: u64,
    /// Directories, links, FIFOs and device nodes restored.
    pub other: u64,
    /// Files whose content was copied from the target's current content
    /// (and checked against the snapshot) instead of read from the
    /// repository: the unchanged files of an in-place restore.
    pub copied: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Where the previous content of the target was kept, if any.
    pub previous: Option<PathBuf>,
    /// Wall time in seconds.
    pub duration_secs: f64,
}

fn target_err(what: String, e: std::io::Error) -> Error {
    Error::io(what, e).with_kind(ErrorKind::Target)
}

/// Which path goes to the target: the one asked for, or with `--overwrite`
/// a target that is itself a captured path (an in-place restore).
fn source_path(
    snap: &Snapshot,
    options: &RestoreOptions,
    target: &std::path::Path,
) -> Option<String> {
    if options.source.is_some() || !options.overwrite {
        return options.source.clone();
    }
    let t = target.to_string_lossy();
    snap.file_components()
        .any(|fc| super::selection::under(&t, &fc.path))
        .then(|| t.into_owned())
}

/// Restores the file components of `snap` to `options.target`.
pub fn restore_files(
    repo: &Repository,
    snap: &Snapshot,
    options: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let start = Instant::now();
    let target = std::path::absolute(&options.target).map_err(|e| {
        target_err(
            format!(
                "cannot resolve the target path {}",
                options.target.display()
            ),
            e,
        )
    })?;
    if occupied(&target) && !options.overwrite {
        return Err(Error::new(
            ErrorKind::Target,
            format!(
                "{} exists and is not empty: restore to a new or empty directory, or pass \
                 --overwrite to replace it (its current content is kept aside)",
                target.display()
            ),
        ));
    }
    let _lock = Lock::acquire(repo, false, "restore")?;
    // Load every listing first: a damaged listing stops us before any write.
    let mut listings = Vec::new();
    for fc in snap.file_components() {
        listings.push(Listing {
            path: fc.path.clone(),
            nodes: load_tree(repo, &fc.tree)?,
        });
    }
    let source = source_path(snap, options, &target);
    let sel = match &source {
        Some(src) => select_path(listings, src, &options.include)?,
        None => select_all(listings, &options.include)?,
    };
    let mut staging = StagingDir::for_target(&target)?;
    // An in-place restore copies what is unchanged from the target itself.
    let current = occupied(&target).then_some(target.as_path());
    let how = HowStaged {
        workers: options.workers,
        no_xattrs: options.no_xattrs,
        durable: !options.scratch,
    };
    let staged = stage_selection(repo, &sel, staging.path(), current, how, progress)?;
    let previous = put_in_place(&mut staging, &target)?;
    Ok(RestoreReport {
        target,
        source,
        files: staged.files,
        other: staged.other,
        copied: staged.copied,
        bytes: staged.bytes,
        previous,
        duration_secs: start.elapsed().as_secs_f64(),
    })
}

/// How a selection is staged.
#[derive(Debug, Clone, Copy)]
struct HowStaged {
    /// Parallel workers (0: one per core).
    workers: usize,
    /// Leave extended attributes out.
    no_xattrs: bool,
    /// Write the staged copy to disk before returning, so that it survives
    /// a power loss once it replaces anything.
    durable: bool,
}

/// What staging wrote.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Staged {
    /// Files written.
    pub files: u64,
    /// Directories, links, FIFOs and device nodes created.
    pub other: u64,
    /// Files copied from the current content (and checked) instead of
    /// read from the repository.
    pub copied: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

/// Restores a selection into entry [`super::selection::STAGED`] of the
/// directory `staging`, checks every file against its SHA-256, applies
/// the metadata and (when `how.durable`) writes it all to disk. With
/// `current` (the path the staged copy will replace), files are first
/// copied from there and only those that do not match are read from the
/// repository. Nothing outside `staging` is written; the
/// caller holds the repository lock.
fn stage_selection(
    repo: &Repository,
    sel: &Selection,
    staging: &std::path::Path,
    current: Option<&std::path::Path>,
    how: HowStaged,
    progress: &dyn Progress,
) -> Result<Staged> {
    let dir = DirHandle::open(staging)?;
    let workers = if how.workers == 0 {
        default_workers()
    } else {
        how.workers
    };
    let seed = current.and_then(Seed::open);
    let files = Staging {
        seed: seed.as_ref(),
        dir: &dir,
        items: &sel.items,
        is_root: rustix::process::geteuid().is_root(),
        no_xattrs: how.no_xattrs,
    };
    let Seeded { finished, rest } = with_flusher(&dir, how.durable, || {
        stage_entries(repo, sel, &files, workers, progress)
    })?;
    if how.durable {
        progress.phase("writing the staged copy to disk", None);
        dir.sync_filesystem(staging)?;
    }
    let items = &sel.items;
    let files = items
        .iter()
        .filter(|i| i.node.kind == NodeKind::File)
        .count() as u64;
    Ok(Staged {
        files,
        other: items.len() as u64 - files,
        copied: finished.len() as u64,
        bytes: content_bytes(items, &finished) + content_bytes(items, &rest),
    })
}

/// How often the file system of a copy being staged durably is written
/// out while the staging goes on.
const WRITE_BACK_EVERY: Duration = Duration::from_millis(250);

/// Runs `work` while, if `on`, a thread writes the file system of `dir`
/// out every [`WRITE_BACK_EVERY`] (`syncfs`). Linux starts writing on its
/// own only once gigabytes are dirty or half a minute has passed, so
/// without it the final `syncfs` would write the whole copy while nothing
/// else runs; with it the disk writes while the cores copy and check. One
/// `syncfs` writes many files per request queue plug, where starting each
/// file's write-back on its own (`POSIX_FADV_DONTNEED` per file) was
/// measured to cost a fifth more CPU for the same wall time.
fn with_flusher<T>(dir: &DirHandle, on: bool, work: impl FnOnce() -> T) -> T {
    if !on {
        return work();
    }
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(WRITE_BACK_EVERY) {
                dir.write_back();
            }
        });
        let out = work();
        drop(stop);
        out
    })
}

/// Creates every entry of `sel` in the staging directory and fills every
/// file (copied from the current copy when unchanged there, else from the
/// repository), checks the files read from the repository, and applies
/// the metadata of the copied ones. Returns the copied files and the rest.
fn stage_entries(
    repo: &Repository,
    sel: &Selection,
    files: &Staging<'_>,
    workers: usize,
    progress: &dyn Progress,
) -> Result<Seeded> {
    let dir = files.dir;
    create_dirs(dir, sel)?;
    let items = &sel.items;
    let contents: Vec<usize> = (0..items.len())
        .filter(|i| items[*i].node.kind == NodeKind::File && items[*i].link.is_none())
        .collect();
    if files.seed.is_some() {
        progress.phase(
            "copying unchanged files from the current copy",
            Some(content_bytes(items, &contents)),
        );
    }
    let seeded = stage_files(files, &contents, workers, progress)?;
    create_links_and_nodes(dir, sel)?;
    progress.phase("restoring", Some(content_bytes(items, &seeded.rest)));
    write_contents(repo, dir, items, &seeded.rest, workers, progress)?;
    progress.phase(
        "verifying restored files",
        Some(content_bytes(items, &seeded.rest)),
    );
    let mismatched = check_staged(dir, items, &seeded.rest, workers, progress)?;
    if let Some(i) = mismatched.first() {
        return Err(mismatch(&items[*i]));
    }
    apply_metadata(files, &seeded.finished, workers)?;
    Ok(seeded)
}

/// Bytes of file content of the items `set` (indices into `items`).
fn content_bytes(items: &[Item], set: &[usize]) -> u64 {
    set.iter().map(|i| items[*i].node.size).sum()
}

/// Stages one file component, whole, into `staging/r` (its content at the
/// top: `r` is the component's directory, file or symlink), verified;
/// `nodes` is its listing, as read by the caller.
/// Files unchanged at `current` (the live path the staged copy will
/// replace) are copied from there. The caller holds the repository lock
/// and owns `staging`.
pub(crate) fn stage_component(
    repo: &Repository,
    fc: &FilesComponent,
    nodes: Vec<Node>,
    staging: &std::path::Path,
    current: Option<&std::path::Path>,
    workers: usize,
    progress: &dyn Progress,
) -> Result<Staged> {
    let listings = vec![Listing {
        path: fc.path.clone(),
        nodes,
    }];
    let sel = select_path(listings, &fc.path, &[])?;
    let how = HowStaged {
        workers,
        no_xattrs: fc.no_xattrs,
        durable: true,
    };
    stage_selection(repo, &sel, staging, current, how, progress)
}

/// Creates every directory, in order (parents before children), private
/// until its mode is applied.
fn create_dirs(dir: &DirHandle, sel: &Selection) -> Result<()> {
    for p in &sel.prefixes {
        dir.create_dir_all(p)?;
    }
    for it in sel.items.iter().filter(|it| it.node.kind == NodeKind::Dir) {
        if !sel.prefixes.contains(&it.rel) {
            dir.create_dir(&it.rel)?;
        }
    }
    Ok(())
}

/// Creates the symlinks, FIFOs and device nodes, and the hard links to
/// their first file (which must exist by then).
fn create_links_and_nodes(dir: &DirHandle, sel: &Selection) -> Result<()> {
    for it in &sel.items {
        match (it.node.kind, it.link) {
            (NodeKind::Dir, _) | (NodeKind::File, None) => {}
            (NodeKind::Symlink, _) => dir.symlink(&it.node.target_bytes()?, &it.rel)?,
            (NodeKind::File, Some(first)) => dir.hardlink(&sel.items[first].rel, &it.rel)?,
            (kind, _) => dir.mknod(&it.rel, kind, it.node.rdev)?,
        }
    }
    Ok(())
}

/// Reads every pack region that the files `files` (indices into `items`)
/// need once and writes each blob wherever it occurs in them.
fn write_contents(
    repo: &Repository,
    dir: &DirHandle,
    items: &[Item],
    files: &[usize],
    workers: usize,
    progress: &dyn Progress,
) -> Result<()> {
    let mut uses: HashMap<Id, Vec<(usize, u64)>> = HashMap::new();
    for &i in files {
        let it = &items[i];
        let mut off = 0u64;
        for b in &it.node.blobs {
            uses.entry(*b).or_default().push((i, off));
            let loc = repo.index().get(b).ok_or_else(|| {
                Error::corrupt(format!(
                    "blob {b} of {} is not in the index: the repository is damaged (run `backup verify`)",
                    it.node.path
                ))
            })?;
            off += loc.raw_length as u64;
        }
    }
    let mut by_pack: HashMap<u32, Vec<(Id, BlobLocation)>> = HashMap::new();
    {
        let index = repo.index();
        for id in uses.keys() {
            let loc = index.get(id).expect("checked above");
            by_pack.entry(loc.pack).or_default().push((*id, loc));
        }
    }
    let mut packs: Vec<(Id, Vec<(Id, BlobLocation)>)> = by_pack
        .into_iter()
        .map(|(p, mut v)| {
            v.sort_by_key(|(_, l)| l.offset);
            (repo.index().pack_id(p), v)
        })
        .collect();
    packs.sort_by_key(|(id, _)| *id);
    crate::parallel::for_each_parallel(
        &packs,
        workers,
        || Ok(()),
        |_, (pack, blobs)| restore_pack(repo, dir, pack, blobs, &uses, items, progress),
    )
}

/// One pack reader per core, at least two.
fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// Largest gap between two needed blobs that is read through rather than
/// requested separately.
const MAX_GAP: u64 = 1024 * 1024;

fn restore_pack(
    repo: &Repository,
    dir: &DirHandle,
    pack: &Id,
    blobs: &[(Id, BlobLocation)],
    uses: &HashMap<Id, Vec<(usize, u64)>>,
    items: &[Item],
    progress: &dyn Progress,
) -> Result<()> {
    let name = pack.to_hex();
    let mut i = 0;
    while i < blobs.len() {
        let start = blobs[i].1.offset as u64;
        let mut end = start + blobs[i].1.length as u64;
        let mut j = i + 1;
        while j < blobs.len()
            && (blobs[j].1.offset as u64) <= end + MAX_GAP
            && end - start < 32 * 1024 * 1024
        {
            end = end.max(blobs[j].1.offset as u64 + blobs[j].1.length as u64);
            j += 1;
        }
        let region = repo
            .store()
            .get_range(Kind::Pack, &name, start, end - start)
            .map_err(|e| pack_read_error(e, &name))?;
        for (id, loc) in &blobs[i..j] {
            let a = (loc.offset as u64 - start) as usize;
            let sealed = &region[a..a + loc.length as usize];
            let plain = decode_blob(repo.cipher(), &loc.packed(*id), sealed, pack)?;
            for (item, off) in &uses[id] {
                let it = &items[*item];
                let f = dir.open_file(&it.rel, true)?;
                write_at(&f, &plain, *off, it.node.sparse)
                    .map_err(|e| target_err(format!("cannot write {}", shown(&it.rel)), e))?;
                progress.inc(plain.len() as u64);
            }
        }
        i = j;
    }
    Ok(())
}

/// Block size below which a sparse file's zero runs are left as holes.
const HOLE_BLOCK: usize = 4096;

/// Writes `data` at `off`; for a sparse file, blocks of zeros aligned to
/// [`HOLE_BLOCK`] are skipped and stay holes (the file was created as one).
fn write_at(f: &std::fs::File, data: &[u8], off: u64, sparse: bool) -> std::io::Result<()> {
    if !sparse {
        return f.write_all_at(data, off);
    }
    let mut pos = 0usize;
    while pos < data.len() {
        let abs = off + pos as u64;
        let block_end = (pos + HOLE_BLOCK - (abs % HOLE_BLOCK as u64) as usize).min(data.len());
        let block = &data[pos..block_end];
        if block.iter().any(|b| *b != 0) {
            f.write_all_at(block, abs)?;
        }
        pos = block_end;
    }
    Ok(())
}

/// Reads the staged files `files` (indices into `items`) back and checks
/// each against its size and SHA-256, on `workers` threads. Returns those
/// that do not match, in order.
fn check_staged(
    dir: &DirHandle,
    items: &[Item],
    files: &[usize],
    workers: usize,
    progress: &dyn Progress,
) -> Result<Vec<usize>> {
    let bad = std::sync::Mutex::new(Vec::new());
    crate::parallel::for_each_parallel(
        files,
        workers,
        || Ok(vec![0u8; 1024 * 1024]),
        |buf, i| {
            if !matches_snapshot(dir, &items[*i], buf, progress)? {
                bad.lock().expect("lock").push(*i);
            }
            Ok(())
        },
    )?;
    let mut bad = bad.into_inner().expect("lock");
    bad.sort_unstable();
    Ok(bad)
}

/// Whether the staged file of `it` has the captured size and SHA-256.
fn matches_snapshot(
    dir: &DirHandle,
    it: &Item,
    buf: &mut [u8],
    progress: &dyn Progress,
) -> Result<bool> {
    let mut f = dir.open_file(&it.rel, false)?;
    content_matches(&mut f, it, buf, progress)
}

/// Whether `f`, read from its current offset to its end, has the size and
/// SHA-256 captured for `it`.
pub(super) fn content_matches(
    f: &mut std::fs::File,
    it: &Item,
    buf: &mut [u8],
    progress: &dyn Progress,
) -> Result<bool> {
    let mut h = Sha256::new();
    let mut n = 0u64;
    loop {
        let r = f
            .read(buf)
            .map_err(|e| target_err(format!("cannot read back {}", shown(&it.rel)), e))?;
        if r == 0 {
            break;
        }
        h.update(&buf[..r]);
        n += r as u64;
        progress.inc(r as u64);
    }
    let got = hex::encode(h.finalize());
    Ok(n == it.node.size && Some(&got) == it.node.sha256.as_ref())
}

/// The error for a file written from the repository that does not match
/// its SHA-256 when read back.
fn mismatch(it: &Item) -> Error {
    Error::corrupt(format!(
        "restored {} does not match its size and SHA-256 in the snapshot ({}): \
         nothing was moved into place; run `backup verify --read-data` to find the damage",
        it.node.path,
        it.node.sha256.as_deref().unwrap_or("?")
    ))
}

/// Owner, extended attributes, mode and times of every entry but the
/// files in `finished` (sorted; already done): the others first, on
/// `workers` threads, then the directories deepest first (so that setting a
/// directory's times or a read-only mode comes after everything inside
/// it).
fn apply_metadata(how: &Staging<'_>, finished: &[usize], workers: usize) -> Result<()> {
    let (mut dirs, others): (Vec<&Item>, Vec<&Item>) = how
        .items
        .iter()
        .enumerate()
        .filter(|(i, it)| it.link.is_none() && finished.binary_search(i).is_err())
        .map(|(_, it)| it)
        .partition(|i| i.node.kind == NodeKind::Dir);
    let (dir, is_root, no_xattrs) = (how.dir, how.is_root, how.no_xattrs);
    crate::parallel::for_each_parallel(
        &others,
        workers,
        || Ok(()),
        |_, it| set_metadata(Entry::At(dir, &it.rel), &it.node, is_root, no_xattrs),
    )?;
    dirs.sort_by_key(|i| std::cmp::Reverse(i.rel.iter().filter(|b| **b == b'/').count()));
    for it in dirs {
        set_metadata(Entry::At(dir, &it.rel), &it.node, is_root, no_xattrs)?;
    }
    Ok(())
}

/// One entry's metadata. Owner first, since a change of owner clears file
/// capabilities; mode after the attributes, since a read-only mode would
/// refuse them.
pub(super) fn set_metadata(e: Entry<'_>, n: &Node, is_root: bool, no_xattrs: bool) -> Result<()> {
    if is_root {
        e.chown(n.uid, n.gid)?;
    }
    if !no_xattrs {
        for (name, value) in n.xattr_values()? {
            e.set_xattr(name, &value)?;
        }
    }
    if n.kind != NodeKind::Symlink {
        e.chmod(n.mode)?;
    }
    e.set_mtime(n.mtime, n.mtime_nsec)
}
