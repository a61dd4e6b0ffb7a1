//! Restoring file components: every blob is checked as it is read, every
//! file against its SHA-256 in the staging directory, and only then is the
//! staged copy moved into place.

use super::place::{exchange_or_move, occupied, StagingDir};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::progress::Progress;
use crate::repository::{decode_blob, BlobLocation, Lock, Repository};
use crate::snapshot::{load_tree, Node, NodeKind, Snapshot};
use crate::store::Kind;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of a file restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Where to restore: captured paths are recreated under it.
    pub target: PathBuf,
    /// Only restore these captured paths (absolute) and what lies below.
    pub include: Vec<String>,
    /// Replace an existing non-empty target (its content is kept aside).
    pub overwrite: bool,
    /// Parallel pack readers (0: one per core).
    pub workers: usize,
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    /// The target.
    pub target: PathBuf,
    /// Files restored.
    pub files: u64,
    /// Directories and links restored.
    pub other: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Where the previous content of the target was kept, if any.
    pub previous: Option<PathBuf>,
    /// Wall time in seconds.
    pub duration_secs: f64,
}

struct Item {
    node: Node,
    staged: PathBuf,
}

fn full_path(component: &str, rel: &str) -> String {
    if rel.is_empty() {
        component.to_string()
    } else if component == "/" {
        format!("/{rel}")
    } else {
        format!("{component}/{rel}")
    }
}

fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix || prefix.is_empty() || path.starts_with(&format!("{prefix}/"))
}

fn target_err(what: String, e: std::io::Error) -> Error {
    Error::io(what, e).with_kind(ErrorKind::Target)
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
        listings.push((fc.path.clone(), load_tree(repo, &fc.tree)?));
    }
    let staging = StagingDir::next_to(&target)?;
    let mut items = Vec::new();
    let mut matched = false;
    for (cpath, nodes) in listings {
        let selected: Vec<&Node> = nodes
            .iter()
            .filter(|n| {
                let full = full_path(&cpath, &n.path);
                options.include.is_empty()
                    || options.include.iter().any(|inc| {
                        under(&full, inc) || (n.kind == NodeKind::Dir && under(inc, &full))
                    })
            })
            .collect();
        matched |= options.include.is_empty()
            || nodes.iter().any(|n| {
                options
                    .include
                    .iter()
                    .any(|inc| under(&full_path(&cpath, &n.path), inc))
            });
        let base = staging.path().join(cpath.trim_start_matches('/'));
        for n in selected {
            let staged = if n.path.is_empty() {
                base.clone()
            } else {
                base.join(&n.path)
            };
            items.push(Item {
                node: n.clone(),
                staged,
            });
        }
    }
    if items.is_empty() || !matched {
        return Err(Error::usage(format!(
            "nothing in the snapshot matches --include {}: paths are absolute, as `backup show` lists them",
            options.include.join(", ")
        )));
    }
    // Create the skeleton: directories, links, files of the right size.
    for it in &items {
        if let Some(parent) = it.staged.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| target_err(format!("cannot create {}", parent.display()), e))?;
        }
        match it.node.kind {
            NodeKind::Dir => std::fs::create_dir_all(&it.staged)
                .map_err(|e| target_err(format!("cannot create {}", it.staged.display()), e))?,
            NodeKind::Symlink => {
                std::os::unix::fs::symlink(it.node.target.as_deref().unwrap_or(""), &it.staged)
                    .map_err(|e| {
                        target_err(format!("cannot create link {}", it.staged.display()), e)
                    })?
            }
            NodeKind::File => {
                let f = File::create(&it.staged)
                    .map_err(|e| target_err(format!("cannot create {}", it.staged.display()), e))?;
                f.set_len(it.node.size)
                    .map_err(|e| target_err(format!("cannot size {}", it.staged.display()), e))?;
            }
        }
    }
    let total: u64 = items.iter().map(|i| i.node.size).sum();
    progress.phase("restoring", Some(total));
    write_contents(repo, &items, options.workers, progress)?;
    progress.phase("verifying restored files", Some(total));
    verify_staged(&items, progress)?;
    apply_metadata(&items)?;
    let mut staging = staging;
    let previous = exchange_or_move(staging.path(), &target)?;
    staging.disarm();
    let files = items
        .iter()
        .filter(|i| i.node.kind == NodeKind::File)
        .count() as u64;
    Ok(RestoreReport {
        target,
        files,
        other: items.len() as u64 - files,
        bytes: total,
        previous,
        duration_secs: start.elapsed().as_secs_f64(),
    })
}

/// Reads every needed pack region once and writes each blob wherever it
/// occurs.
fn write_contents(
    repo: &Repository,
    items: &[Item],
    workers: usize,
    progress: &dyn Progress,
) -> Result<()> {
    let mut uses: HashMap<Id, Vec<(usize, u64)>> = HashMap::new();
    for (i, it) in items.iter().enumerate() {
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
    let workers = if workers == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2)
    } else {
        workers
    };
    crate::parallel::for_each_parallel(
        &packs,
        workers,
        || Ok(()),
        |_, (pack, blobs)| restore_pack(repo, pack, blobs, &uses, items, progress),
    )
}

/// Largest gap between two needed blobs that is read through rather than
/// requested separately.
const MAX_GAP: u64 = 1024 * 1024;

fn restore_pack(
    repo: &Repository,
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
            .map_err(|e| e.context(format!("reading pack {name}")))?;
        for (id, loc) in &blobs[i..j] {
            let a = (loc.offset as u64 - start) as usize;
            let sealed = &region[a..a + loc.length as usize];
            let plain = decode_blob(repo.cipher(), &loc.packed(*id), sealed, pack)?;
            for (item, off) in &uses[id] {
                let it = &items[*item];
                let f = OpenOptions::new()
                    .write(true)
                    .open(&it.staged)
                    .map_err(|e| target_err(format!("cannot open {}", it.staged.display()), e))?;
                f.write_all_at(&plain, *off)
                    .map_err(|e| target_err(format!("cannot write {}", it.staged.display()), e))?;
                progress.inc(plain.len() as u64);
            }
        }
        i = j;
    }
    Ok(())
}

fn verify_staged(items: &[Item], progress: &dyn Progress) -> Result<()> {
    let mut buf = vec![0u8; 1024 * 1024];
    for it in items.iter().filter(|i| i.node.kind == NodeKind::File) {
        let mut f = File::open(&it.staged)
            .map_err(|e| target_err(format!("cannot reopen {}", it.staged.display()), e))?;
        let mut h = Sha256::new();
        let mut n = 0u64;
        loop {
            let r = f
                .read(&mut buf)
                .map_err(|e| target_err(format!("cannot read back {}", it.staged.display()), e))?;
            if r == 0 {
                break;
            }
            h.update(&buf[..r]);
            n += r as u64;
            progress.inc(r as u64);
        }
        let got = hex::encode(h.finalize());
        if n != it.node.size || Some(&got) != it.node.sha256.as_ref() {
            return Err(Error::corrupt(format!(
                "restored {} does not match its SHA-256 in the snapshot (got {got}, want {}): \
                 nothing was moved into place",
                it.node.path,
                it.node.sha256.as_deref().unwrap_or("?")
            )));
        }
    }
    Ok(())
}

fn apply_metadata(items: &[Item]) -> Result<()> {
    let is_root = rustix::process::geteuid().is_root();
    // Deepest first, so that setting a directory's times is not undone by
    // changes inside it.
    let mut order: Vec<&Item> = items.iter().collect();
    order.sort_by_key(|i| std::cmp::Reverse(i.staged.components().count()));
    for it in order {
        let p: &Path = &it.staged;
        let n = &it.node;
        if is_root {
            std::os::unix::fs::lchown(p, Some(n.uid), Some(n.gid))
                .map_err(|e| target_err(format!("cannot set the owner of {}", p.display()), e))?;
        }
        let mtime = filetime::FileTime::from_unix_time(n.mtime, n.mtime_nsec);
        if n.kind == NodeKind::Symlink {
            filetime::set_symlink_file_times(p, mtime, mtime)
                .map_err(|e| target_err(format!("cannot set times of {}", p.display()), e))?;
            continue;
        }
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(n.mode))
            .map_err(|e| target_err(format!("cannot set the mode of {}", p.display()), e))?;
        filetime::set_file_times(p, mtime, mtime)
            .map_err(|e| target_err(format!("cannot set times of {}", p.display()), e))?;
    }
    Ok(())
}
