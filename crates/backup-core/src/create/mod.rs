//! `create`: capture sources into one snapshot.

mod sources;

use crate::error::{Error, Result};
use crate::id::Id;
use crate::progress::Progress;
use crate::repository::{Lock, Repository, Saver};
use crate::snapshot::{default_component_name, list_snapshots, save_snapshot, Node, Snapshot};
use crate::source::files::{absolute_source, build_excludes, parent_of, FilesOptions, Parent};
use crate::source::postgres::conninfo::ConnInfo;
use crate::source::postgres::PostgresOptions;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// One file source: a tree or a single file, with the component name it
/// gets in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSource {
    /// The component name; empty for the default (the path's last element).
    pub name: String,
    /// The tree or file.
    pub path: PathBuf,
    /// Glob patterns left out of this source only, in addition to
    /// [`FilesOptions::excludes`].
    pub excludes: Vec<String>,
    /// The contents are secret (recorded on the component).
    pub secret: bool,
    /// Record the component under this path instead of the one read (a
    /// copy kept aside, captured as what it was).
    pub record_as: Option<PathBuf>,
}

impl FileSource {
    /// Parses `NAME=PATH` or a plain `PATH`. A name is letters, digits,
    /// `.`, `_` and `-`, not starting with `.`; an argument that exists as
    /// a path is always taken as a path.
    pub fn parse(arg: &str) -> FileSource {
        let plain = FileSource::from(PathBuf::from(arg));
        let Some((name, path)) = arg.split_once('=') else {
            return plain;
        };
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid || path.is_empty() || std::fs::symlink_metadata(arg).is_ok() {
            return plain;
        }
        FileSource {
            name: name.to_string(),
            ..FileSource::from(PathBuf::from(path))
        }
    }
}

impl From<PathBuf> for FileSource {
    fn from(path: PathBuf) -> Self {
        FileSource {
            name: String::new(),
            path,
            excludes: Vec::new(),
            secret: false,
            record_as: None,
        }
    }
}

/// One database source: a connection string, with the component name it
/// gets in the snapshot (empty: none, the database name identifies it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSource {
    /// The component name; empty for none.
    pub name: String,
    /// The libpq connection string or URI.
    pub connection: String,
    /// Record the database under this name instead of the one read (a
    /// database kept aside, captured as what it was).
    pub record_as: Option<String>,
}

impl From<String> for PostgresSource {
    fn from(connection: String) -> Self {
        PostgresSource {
            name: String::new(),
            connection,
            record_as: None,
        }
    }
}

/// What to capture and how.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// File trees or single files.
    pub files: Vec<FileSource>,
    /// File source options.
    pub files_options: FilesOptions,
    /// PostgreSQL databases.
    pub postgres: Vec<PostgresSource>,
    /// PostgreSQL source options.
    pub postgres_options: PostgresOptions,
    /// Tags for the snapshot.
    pub tags: Vec<String>,
    /// A label for the snapshot.
    pub label: Option<String>,
    /// Compression threads (0: one per core).
    pub workers: usize,
    /// The snapshot's time, for a capture made elsewhere or earlier
    /// (default: now).
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// The snapshot's host name (default: this host's). Unchanged files
    /// are looked up in the newest earlier snapshot of this host.
    pub host: Option<String>,
    /// Listings already in memory, which need not be read again when one
    /// of them is a tree's parent.
    pub parents: KnownParents,
}

/// Listings already read, each as a [`Parent`] by its tree's blob ids: a
/// rollback hands the ones it staged from to its safety snapshot, whose
/// parents they usually are.
#[derive(Clone, Default)]
pub struct KnownParents(HashMap<Vec<Id>, Arc<Parent>>);

impl KnownParents {
    /// The listing `nodes` mapped by path, ready to be kept with
    /// [`KnownParents::insert`] (built apart, so that it can be built
    /// before a lock is taken).
    pub fn ready(nodes: impl IntoIterator<Item = Node>) -> Arc<Parent> {
        Arc::new(parent_of(nodes))
    }

    /// Keeps `listing` ([`KnownParents::ready`]), stored as `tree`.
    pub fn insert(&mut self, tree: &[Id], listing: Arc<Parent>) {
        self.0.insert(tree.to_vec(), listing);
    }

    /// The listing stored as `tree`, if kept.
    pub fn get(&self, tree: &[Id]) -> Option<Arc<Parent>> {
        self.0.get(tree).cloned()
    }
}

impl std::fmt::Debug for KnownParents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KnownParents({} listings)", self.0.len())
    }
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

fn check_overlaps(roots: &[PathBuf]) -> Result<()> {
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
    Ok(())
}

/// The name of each file component, checked to be unique.
fn component_names(sources: &[FileSource], roots: &[PathBuf]) -> Result<Vec<String>> {
    let names: Vec<String> = sources
        .iter()
        .zip(roots)
        .map(|(s, root)| {
            if s.name.is_empty() {
                default_component_name(&root.to_string_lossy()).to_string()
            } else {
                s.name.clone()
            }
        })
        .collect();
    for (i, n) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|m| m == n) {
            return Err(Error::usage(format!(
                "--files {} and --files {} would both be named {n:?}: name them, e.g. --files api={}",
                roots[j].display(),
                roots[i].display(),
                roots[i].display()
            )));
        }
    }
    Ok(names)
}

/// Every readable snapshot, oldest first (read once for all parent look-ups).
fn earlier_snapshots(repo: &Repository) -> Vec<Snapshot> {
    list_snapshots(repo)
        .map(|v| v.into_iter().filter_map(|(_, s)| s.ok()).collect())
        .unwrap_or_default()
}

/// Checks every source and pattern before any work: the file roots (made
/// absolute) and their component names, and that no database is given twice.
fn check_sources(options: &CreateOptions) -> Result<(Vec<PathBuf>, Vec<String>)> {
    build_excludes(&options.files_options.excludes)?;
    let mut roots = Vec::new();
    for f in &options.files {
        build_excludes(&f.excludes)?;
        roots.push(absolute_source(&f.path)?);
    }
    check_overlaps(&roots)?;
    let names = component_names(&options.files, &roots)?;
    let mut dbs = Vec::new();
    for c in &options.postgres {
        let info = ConnInfo::parse(&c.connection)?;
        if dbs.contains(&info.redacted()) {
            return Err(Error::usage(format!(
                "--postgres {} is given twice",
                info.redacted()
            )));
        }
        dbs.push(info.redacted());
    }
    Ok((roots, names))
}

/// Captures the sources and writes one snapshot. Nothing is committed
/// until every source is read and every pack and index object is stored:
/// the snapshot manifest is written last.
pub fn create_snapshot(
    repo: &Repository,
    options: &CreateOptions,
    progress: &dyn Progress,
) -> Result<CreateResult> {
    if options.host.as_deref().is_some_and(|h| h.trim().is_empty()) {
        return Err(Error::usage("--host is empty: give a host name"));
    }
    if options.files.is_empty() && options.postgres.is_empty() {
        return Err(Error::usage(
            "nothing to capture: name at least one source with --files PATH or --postgres CONNINFO",
        ));
    }
    // Check every source and pattern before any work.
    let (roots, names) = check_sources(options)?;
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
    if let Some(time) = options.time {
        snap.time = time;
    }
    if let Some(host) = &options.host {
        snap.host = host.clone();
    }
    // --force reads everything again: no parent at all.
    let earlier = if options.files_options.force {
        Vec::new()
    } else {
        earlier_snapshots(repo)
    };
    let sources = sources::Sources {
        repo,
        saver: &saver,
        options,
        earlier: &earlier,
        host: &snap.host,
        roots: &roots,
        names,
    };
    let (databases, trees) = sources.capture(progress)?;
    snap.components.extend(databases);
    snap.components.extend(trees);
    let stats = saver.finish()?;
    // The manifest is the commit point: a cancelled run leaves no snapshot.
    crate::progress::check_cancelled(progress)?;
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
