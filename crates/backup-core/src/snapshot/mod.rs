//! Snapshots: one manifest naming everything captured at one time.

mod database;
mod tree;

pub use database::{
    DatabaseProperties, DatabaseSetting, Extension, Grant, LargeObject, MatView, PostgresComponent,
    SequenceValue, StreamRef, TableData, TableStats, TableStream,
};
pub use tree::{load_tree, save_tree, Node, NodeKind, TreeWriter, Xattr};

use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::repository::Repository;
use crate::store::Kind;
use serde::{Deserialize, Serialize};

/// The manifest format version.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Totals of a file component.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileStats {
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Entries left out: unreadable with `--skip-unreadable`, or sockets.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped: u64,
    /// FIFOs and device nodes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub special: u64,
    /// Files that are hard links to an earlier file of the same listing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hardlinks: u64,
    /// Files that changed while they were read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub changed: u64,
}

impl FileStats {
    /// Whether the capture left something out or read something that moved
    /// (the run then ends with warnings).
    pub fn incomplete(&self) -> bool {
        self.skipped > 0 || self.changed > 0
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One captured source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Component {
    /// A file tree or a single file.
    Files(FilesComponent),
    /// A PostgreSQL database.
    Postgres(Box<PostgresComponent>),
}

impl Component {
    /// The file component, if this is one.
    pub fn files(&self) -> Option<&FilesComponent> {
        match self {
            Component::Files(f) => Some(f),
            _ => None,
        }
    }

    /// The database component, if this is one.
    pub fn postgres(&self) -> Option<&PostgresComponent> {
        match self {
            Component::Postgres(p) => Some(p),
            _ => None,
        }
    }
}

/// A captured file tree.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FilesComponent {
    /// The component's name (`--files NAME=PATH`); empty in snapshots of
    /// earlier versions, see [`FilesComponent::name`].
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Absolute path of the captured tree (or file).
    pub path: String,
    /// Blobs of the file listing.
    pub tree: Vec<Id>,
    /// Totals.
    pub stats: FileStats,
    /// Exclude patterns in force (so that a diff against the live tree
    /// leaves out the same paths).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// Set when extended attributes were left out (`--no-xattrs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_xattrs: bool,
    /// Set when the contents are secret (`secret = true` in the system
    /// description): never to be printed in plans, diffs or logs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// Problems met while reading (files that changed, skipped entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl FilesComponent {
    /// The component's name: the given one, else the last element of its
    /// path (`/` for the root).
    pub fn name(&self) -> &str {
        if !self.name.is_empty() {
            return &self.name;
        }
        default_component_name(&self.path)
    }
}

/// A captured absolute path: a component's path joined with a node's
/// relative path (`""` is the component itself).
pub fn full_path(component: &str, rel: &str) -> String {
    if rel.is_empty() {
        component.to_string()
    } else {
        format!("{}/{rel}", component.trim_end_matches('/'))
    }
}

/// The name a file component gets when none is given: the last element of
/// its path.
pub fn default_component_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("/")
}

/// What a create run stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Bytes read from the sources.
    pub bytes_read: u64,
    /// Plaintext bytes that were new to the repository.
    pub new_bytes: u64,
    /// Bytes written to storage.
    pub stored_bytes: u64,
    /// Wall time in seconds.
    pub duration_secs: f64,
}

/// A snapshot manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Manifest format version.
    pub version: u32,
    /// When the capture started (RFC 3339, UTC).
    pub time: chrono::DateTime<chrono::Utc>,
    /// Host name.
    pub host: String,
    /// User that ran the capture.
    pub username: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free-form label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The tool and version that wrote it.
    pub tool_version: String,
    /// The captured sources.
    pub components: Vec<Component>,
    /// Counters of the run.
    #[serde(default)]
    pub summary: Summary,
    /// Set when imported from a bundle: the original snapshot id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
}

impl Snapshot {
    /// A new empty manifest stamped now.
    pub fn new(tags: Vec<String>, label: Option<String>) -> Snapshot {
        Snapshot {
            version: SNAPSHOT_VERSION,
            time: chrono::Utc::now(),
            host: crate::repository::hostname(),
            username: std::env::var("USER").unwrap_or_else(|_| "root".into()),
            tags,
            label,
            tool_version: concat!("backup ", env!("CARGO_PKG_VERSION")).to_string(),
            components: Vec::new(),
            summary: Summary::default(),
            imported_from: None,
        }
    }

    /// The file components.
    pub fn file_components(&self) -> impl Iterator<Item = &FilesComponent> {
        self.components.iter().filter_map(Component::files)
    }

    /// The database components.
    pub fn databases(&self) -> impl Iterator<Item = &PostgresComponent> {
        self.components.iter().filter_map(Component::postgres)
    }

    /// Totals over all file components.
    pub fn file_stats(&self) -> FileStats {
        let mut t = FileStats::default();
        for f in self.components.iter().filter_map(Component::files) {
            t.files += f.stats.files;
            t.dirs += f.stats.dirs;
            t.symlinks += f.stats.symlinks;
            t.bytes += f.stats.bytes;
            t.skipped += f.stats.skipped;
            t.special += f.stats.special;
            t.hardlinks += f.stats.hardlinks;
            t.changed += f.stats.changed;
        }
        t
    }
}

/// Writes a snapshot manifest: the commit point of a create run.
pub fn save_snapshot(repo: &Repository, snap: &Snapshot) -> Result<Id> {
    repo.put_sealed(Kind::Snapshot, &serde_json::to_vec(snap)?)
}

/// Loads one snapshot manifest.
pub fn load_snapshot(repo: &Repository, id: &Id) -> Result<Snapshot> {
    let plain = repo.get_sealed(Kind::Snapshot, &id.to_hex())?;
    let snap: Snapshot = serde_json::from_slice(&plain)
        .map_err(|e| Error::corrupt(format!("snapshot {id} is malformed: {e}")))?;
    if snap.version != SNAPSHOT_VERSION {
        return Err(Error::new(
            ErrorKind::UnsupportedFormat,
            format!(
                "snapshot {id} has manifest version {}, unknown to this tool",
                snap.version
            ),
        ));
    }
    Ok(snap)
}

/// Every snapshot, oldest first. Damaged ones are returned as errors with
/// their name so that callers can report them.
pub fn list_snapshots(repo: &Repository) -> Result<Vec<(Id, Result<Snapshot>)>> {
    let mut out = Vec::new();
    for info in repo.store().list(Kind::Snapshot)? {
        let Ok(id) = Id::from_hex(&info.name) else {
            continue;
        };
        match load_snapshot(repo, &id) {
            // Listed but gone: forgotten meanwhile, or a listing that is
            // behind (an eventually consistent store). Not damage.
            Err(e) if e.kind() == crate::error::ErrorKind::NotFound => continue,
            loaded => out.push((id, loaded)),
        }
    }
    out.sort_by_key(|(_, s)| s.as_ref().map(|s| s.time).ok());
    Ok(out)
}

/// Resolves a user's snapshot reference: `latest`, a full id or a unique
/// prefix; `tags` narrows `latest` to snapshots carrying all of them.
///
/// `latest` fails (kind [`ErrorKind::Corrupt`]) when any snapshot manifest
/// cannot be read: its time and tags are unknown, so it may be the newest,
/// and silently picking an older one would restore the wrong state.
pub fn resolve_snapshot(repo: &Repository, spec: &str, tags: &[String]) -> Result<(Id, Snapshot)> {
    let names: Vec<String> = repo
        .store()
        .list(Kind::Snapshot)?
        .into_iter()
        .map(|i| i.name)
        .collect();
    if spec == "latest" {
        return resolve_latest(repo, &names, tags);
    }
    let spec_l = spec.to_ascii_lowercase();
    if spec_l.is_empty() || !spec_l.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::usage(format!(
            "{spec:?} is not a snapshot id: give a hex id or prefix, or `latest`"
        )));
    }
    let matches: Vec<&String> = names.iter().filter(|n| n.starts_with(&spec_l)).collect();
    match matches.as_slice() {
        [] => Err(Error::not_found(format!(
            "no snapshot id starts with {spec:?}: list them with `backup snapshots`"
        ))),
        [one] => {
            let id = Id::from_hex(one)?;
            let snap = load_snapshot(repo, &id)?;
            Ok((id, snap))
        }
        many => Err(Error::new(
            ErrorKind::Ambiguous,
            format!(
                "{spec:?} matches {} snapshots ({}): give more digits",
                many.len(),
                many.iter()
                    .map(|m| m.get(..12).unwrap_or(m))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// The newest snapshot carrying all of `tags`, refusing to guess past
/// manifests that cannot be read.
fn resolve_latest(repo: &Repository, names: &[String], tags: &[String]) -> Result<(Id, Snapshot)> {
    let mut best: Option<(Id, Snapshot)> = None;
    let mut damaged: Vec<Id> = Vec::new();
    for n in names {
        let Ok(id) = Id::from_hex(n) else { continue };
        let s = match load_snapshot(repo, &id) {
            Ok(s) => s,
            // Removed between the listing and the read: it is not a candidate.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) if e.kind() == ErrorKind::Corrupt => {
                damaged.push(id);
                continue;
            }
            Err(e) => return Err(e),
        };
        if !tags.iter().all(|t| s.tags.contains(t)) {
            continue;
        }
        if best.as_ref().is_none_or(|(_, b)| s.time > b.time) {
            best = Some((id, s));
        }
    }
    if !damaged.is_empty() {
        let which = if tags.is_empty() {
            "`latest`".to_string()
        } else {
            format!("`latest --tag {}`", tags.join(" --tag "))
        };
        let list = damaged
            .iter()
            .map(|id| format!("snapshots/{id}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (these, are, may) = if damaged.len() == 1 {
            ("the snapshot manifest", "is", "it may")
        } else {
            ("the snapshot manifests", "are", "any of them may")
        };
        return Err(Error::corrupt(format!(
            "cannot tell which snapshot is {which}: {these} {list} {are} damaged, and {may} be \
             the newest. Give the id of the snapshot you want instead of `latest`: `backup \
             snapshots` lists the readable ones, `backup verify` reports the damage in detail"
        )));
    }
    best.ok_or_else(|| {
        Error::not_found(if tags.is_empty() {
            "the repository holds no snapshot yet: run `backup create` first".to_string()
        } else {
            format!("no snapshot carries the tag(s) {}", tags.join(", "))
        })
    })
}
