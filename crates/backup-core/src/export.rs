//! `export` and `import`: a self-contained tar bundle of one snapshot.
//!
//! The bundle holds plain files that any machine can use without this tool:
//! `README.txt`, `manifest.json` (the snapshot metadata and the full file
//! listings), `files/<captured path>/...` with modes, owners and times in
//! the tar headers, and `SHA256SUMS` that `sha256sum -c` accepts.

use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::progress::Progress;
use crate::repository::{
    BlobKind, Content, Lock, Repository, Saver, StoredStream, StreamError, StreamReader,
};
use crate::snapshot::{
    load_tree, save_snapshot, save_tree, Component, FilesComponent, Node, NodeKind, Snapshot,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The bundle format name.
pub const BUNDLE_FORMAT: &str = "backup-bundle";

#[derive(Serialize, Deserialize)]
struct BundleManifest {
    format: String,
    version: u32,
    snapshot_id: String,
    snapshot: Snapshot,
    listings: Vec<BundleListing>,
}

#[derive(Serialize, Deserialize)]
struct BundleListing {
    path: String,
    nodes: Vec<Node>,
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The bundle path.
    pub path: PathBuf,
    /// Files in the bundle.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
}

fn member(component: &str, rel: &str) -> String {
    let c = component.trim_start_matches('/');
    let base = if c.is_empty() {
        "files".to_string()
    } else {
        format!("files/{c}")
    };
    if rel.is_empty() {
        base
    } else {
        format!("{base}/{rel}")
    }
}

/// Escapes a name the way `sha256sum` does (a leading backslash marks an
/// escaped line).
fn sums_line(hash: &str, name: &str) -> String {
    if name.contains('\\') || name.contains('\n') || name.contains('\r') {
        let esc = name
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\r', "\\r");
        format!("\\{hash}  {esc}\n")
    } else {
        format!("{hash}  {name}\n")
    }
}

/// Appends one stored stream to the bundle, checked against its SHA-256;
/// returns that SHA-256.
fn append_stream<W: Write>(
    tar: &mut tar::Builder<W>,
    header: &mut tar::Header,
    name: &str,
    reader: StreamReader<'_>,
) -> Result<String> {
    let mut reader = reader;
    tar.append_data(header, name, &mut reader)
        .map_err(|e| Error::corrupt(format!("cannot export {name}: {e}")))?;
    reader.check()
}

fn header_for(n: &Node, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(n.mode);
    h.set_uid(n.uid as u64);
    h.set_gid(n.gid as u64);
    h.set_mtime(n.mtime.max(0) as u64);
    h.set_size(size);
    h
}

/// The header of a FIFO or device node.
fn special_header(n: &Node) -> tar::Header {
    let kind = match n.kind {
        NodeKind::Chardev => tar::EntryType::Char,
        NodeKind::Blockdev => tar::EntryType::Block,
        _ => tar::EntryType::Fifo,
    };
    let mut h = header_for(n, kind, 0);
    // Device numbers always fit the header's fields.
    let _ = h.set_device_major(rustix::fs::major(n.rdev));
    let _ = h.set_device_minor(rustix::fs::minor(n.rdev));
    h
}

const README: &str = r#"This bundle holds one snapshot made by `backup`, as plain files.

Restore it without the tool:

  mkdir bundle && tar -xpf BUNDLE.tar -C bundle && cd bundle
  sha256sum -c SHA256SUMS          # every line must say OK
  cp -a files/. /                  # or copy just the trees you need

files/ holds each captured path under its absolute location (files/srv/app
is /srv/app); tar keeps modes, owners (with -p as root), times and links.
databases/<n>-<name>/ holds each captured PostgreSQL database: its
RESTORE.txt says how to rebuild it with createdb, pg_restore and psql.
manifest.json lists the snapshot's metadata and every file with its size
and SHA-256. With the tool: `backup import BUNDLE.tar` stores it in a
repository again.
"#;

/// Writes a bundle of snapshot `snap` to `out` (atomically: a temporary file
/// renamed into place once complete and verified).
pub fn export_snapshot(
    repo: &Repository,
    id: &Id,
    snap: &Snapshot,
    out: &Path,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    let _lock = Lock::acquire(repo, false, "export")?;
    let mut listings = Vec::new();
    for fc in snap.file_components() {
        let mut nodes = load_tree(repo, &fc.tree)?;
        listings.push((fc.path.clone(), std::mem::take(&mut nodes)));
    }
    let manifest = BundleManifest {
        format: BUNDLE_FORMAT.into(),
        version: 1,
        snapshot_id: id.to_hex(),
        snapshot: snap.clone(),
        listings: listings
            .iter()
            .map(|(p, nodes)| BundleListing {
                path: p.clone(),
                nodes: nodes
                    .iter()
                    .map(|n| Node {
                        blobs: vec![],
                        ..n.clone()
                    })
                    .collect(),
            })
            .collect(),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".export-")
        .tempfile_in(dir)
        .map_err(|e| {
            Error::io(format!("cannot create a file in {}", dir.display()), e)
                .with_kind(ErrorKind::Target)
        })?;
    let werr = |e: std::io::Error| {
        Error::io(format!("cannot write {}", out.display()), e).with_kind(ErrorKind::Target)
    };
    let mut sums = String::new();
    let mut files = 0u64;
    let mut bytes = 0u64;
    let total: u64 = listings
        .iter()
        .flat_map(|(_, n)| n.iter())
        .map(|n| n.size)
        .sum();
    progress.phase("exporting", Some(total));
    {
        let mut tar = tar::Builder::new(std::io::BufWriter::new(tmp.as_file()));
        tar.mode(tar::HeaderMode::Complete);
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(README.len() as u64);
        h.set_mtime(snap.time.timestamp().max(0) as u64);
        tar.append_data(&mut h, "README.txt", README.as_bytes())
            .map_err(werr)?;
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(manifest_bytes.len() as u64);
        h.set_mtime(snap.time.timestamp().max(0) as u64);
        tar.append_data(&mut h, "manifest.json", &manifest_bytes[..])
            .map_err(werr)?;
        sums.push_str(&sums_line(
            &hex::encode(Sha256::digest(&manifest_bytes)),
            "manifest.json",
        ));
        for (cpath, nodes) in &listings {
            for n in nodes {
                let name = member(cpath, &n.path);
                match n.kind {
                    NodeKind::Dir => {
                        let mut h = header_for(n, tar::EntryType::Directory, 0);
                        tar.append_data(&mut h, &name, std::io::empty())
                            .map_err(werr)?;
                    }
                    NodeKind::Symlink => {
                        let mut h = header_for(n, tar::EntryType::Symlink, 0);
                        tar.append_link(&mut h, &name, n.target.as_deref().unwrap_or(""))
                            .map_err(werr)?;
                    }
                    NodeKind::Fifo | NodeKind::Chardev | NodeKind::Blockdev => {
                        let mut h = special_header(n);
                        tar.append_data(&mut h, &name, std::io::empty())
                            .map_err(werr)?;
                    }
                    NodeKind::File => {
                        let mut h = header_for(n, tar::EntryType::Regular, n.size);
                        let sha = n.sha256.as_deref().unwrap_or_default();
                        let r = StreamReader::new(repo, &n.blobs, n.size, sha, name.clone());
                        let got = append_stream(&mut tar, &mut h, &name, r)?;
                        sums.push_str(&sums_line(&got, &name));
                        files += 1;
                        bytes += n.size;
                        progress.inc(n.size);
                    }
                }
            }
        }
        for m in crate::export_db::members(snap) {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o600);
            h.set_size(m.stream.size);
            h.set_mtime(snap.time.timestamp().max(0) as u64);
            let r = StreamReader::new(
                repo,
                &m.stream.blobs,
                m.stream.size,
                &m.stream.sha256,
                m.name.clone(),
            );
            let got = append_stream(&mut tar, &mut h, &m.name, r)?;
            sums.push_str(&sums_line(&got, &m.name));
            files += 1;
            bytes += m.stream.size;
            progress.inc(m.stream.size);
        }
        for (name, text) in crate::export_db::scripts(snap) {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(text.len() as u64);
            h.set_mtime(snap.time.timestamp().max(0) as u64);
            tar.append_data(&mut h, &name, text.as_bytes())
                .map_err(werr)?;
            sums.push_str(&sums_line(
                &hex::encode(Sha256::digest(text.as_bytes())),
                &name,
            ));
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(sums.len() as u64);
        h.set_mtime(snap.time.timestamp().max(0) as u64);
        tar.append_data(&mut h, "SHA256SUMS", sums.as_bytes())
            .map_err(werr)?;
        let mut w = tar.into_inner().map_err(werr)?;
        w.flush().map_err(werr)?;
    }
    tmp.as_file().sync_all().map_err(werr)?;
    tmp.persist(out).map_err(|e| werr(e.error))?;
    Ok(ExportReport {
        path: out.to_path_buf(),
        files,
        bytes,
    })
}

fn parse_sums(text: &str) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for line in text.lines() {
        let (escaped, line) = match line.strip_prefix('\\') {
            Some(l) => (true, l),
            None => (false, line),
        };
        if let Some((hash, name)) = line.split_once("  ") {
            let name = if escaped {
                name.replace("\\n", "\n")
                    .replace("\\r", "\r")
                    .replace("\\\\", "\\")
            } else {
                name.to_string()
            };
            m.insert(name, hash.to_string());
        }
    }
    m
}

/// Reads a bundle written by [`export_snapshot`] into the repository as a
/// new snapshot with the original metadata. Every file is checked against
/// the manifest and `SHA256SUMS`; on any mismatch nothing is committed.
pub fn import_bundle(
    repo: &Repository,
    bundle: &Path,
    progress: &dyn Progress,
) -> Result<(Id, Snapshot)> {
    let bad = |what: String| {
        Error::usage(format!(
            "{} is not a valid bundle: {what}",
            bundle.display()
        ))
    };
    let file = std::fs::File::open(bundle)
        .map_err(|e| Error::io(format!("cannot open {}", bundle.display()), e))?;
    let _lock = Lock::acquire(repo, false, "import")?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut manifest: Option<BundleManifest> = None;
    let mut manifest_hash = String::new();
    let mut wanted: HashMap<String, (usize, usize)> = HashMap::new();
    let mut computed: HashMap<String, String> = HashMap::new();
    let mut sums: Option<HashMap<String, String>> = None;
    let mut db_wanted: HashMap<String, crate::export_db::Member> = HashMap::new();
    let mut db_done: Vec<(crate::export_db::Member, Vec<Id>)> = Vec::new();
    let saver = Saver::new(repo, 0);
    // Stores one member and checks it against the manifest's size and SHA-256.
    let save_member = |entry: &mut tar::Entry<'_, _>,
                       name: &str,
                       content: Content,
                       size: u64,
                       sha256: Option<&String>|
     -> Result<StoredStream> {
        let stored = saver
            .save_content(entry, BlobKind::Data, content, |n| progress.inc(n))
            .map_err(|e| match e {
                StreamError::Read(io) => bad(format!("reading {name}: {io}")),
                StreamError::Repo(r) => r,
            })?;
        if Some(&stored.sha256) != sha256 || stored.size != size {
            return Err(Error::corrupt(format!(
                "{name} in {} does not match its SHA-256 in the manifest: the bundle is damaged",
                bundle.display()
            )));
        }
        Ok(stored)
    };
    let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        if name == "README.txt" {
            continue;
        }
        if name == "manifest.json" {
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| bad(e.to_string()))?;
            manifest_hash = hex::encode(Sha256::digest(&buf));
            let m: BundleManifest =
                serde_json::from_slice(&buf).map_err(|e| bad(format!("manifest.json: {e}")))?;
            if m.format != BUNDLE_FORMAT || m.version != 1 {
                return Err(bad(format!(
                    "unknown bundle format {} version {}",
                    m.format, m.version
                )));
            }
            for (ci, l) in m.listings.iter().enumerate() {
                for (ni, n) in l.nodes.iter().enumerate() {
                    if n.kind == NodeKind::File {
                        wanted.insert(member(&l.path, &n.path), (ci, ni));
                    }
                }
            }
            let total: u64 = m
                .listings
                .iter()
                .flat_map(|l| l.nodes.iter())
                .map(|n| n.size)
                .sum();
            progress.phase("importing", Some(total));
            db_wanted = crate::export_db::members(&m.snapshot)
                .into_iter()
                .map(|x| (x.name.clone(), x))
                .collect();
            manifest = Some(m);
            continue;
        }
        if name == "SHA256SUMS" {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| bad(e.to_string()))?;
            sums = Some(parse_sums(&text));
            continue;
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let m = manifest
            .as_mut()
            .ok_or_else(|| bad("manifest.json must come before the files".into()))?;
        if let Some(member) = db_wanted.get(&name) {
            // Table parts keep the row layout they had in the repository.
            let content = match member.slot {
                crate::export_db::Slot::Table(..) => Content::Rows,
                _ => Content::General,
            };
            let stored = save_member(
                &mut entry,
                &name,
                content,
                member.stream.size,
                Some(&member.stream.sha256),
            )?;
            computed.insert(name.clone(), stored.sha256);
            db_done.push((member.clone(), stored.blobs));
            continue;
        }
        if name.starts_with("databases/") && (name.ends_with(".sql") || name.ends_with(".txt")) {
            continue;
        }
        let Some(&(ci, ni)) = wanted.get(&name) else {
            return Err(bad(format!("{name} is not in the manifest")));
        };
        let node = &mut m.listings[ci].nodes[ni];
        let stored = save_member(
            &mut entry,
            &name,
            Content::General,
            node.size,
            node.sha256.as_ref(),
        )?;
        node.blobs = stored.blobs;
        computed.insert(name, stored.sha256);
    }
    let mut m = manifest.ok_or_else(|| bad("it has no manifest.json".into()))?;
    let sums = sums.ok_or_else(|| bad("it has no SHA256SUMS".into()))?;
    if sums.get("manifest.json") != Some(&manifest_hash) {
        return Err(Error::corrupt(
            "manifest.json does not match SHA256SUMS: the bundle is damaged",
        ));
    }
    for name in wanted.keys().chain(db_wanted.keys()) {
        match (computed.get(name), sums.get(name)) {
            (Some(c), Some(s)) if c == s => {}
            (None, _) => return Err(bad(format!("{name} is listed in the manifest but missing"))),
            _ => {
                return Err(Error::corrupt(format!(
                    "{name} does not match SHA256SUMS: the bundle is damaged"
                )))
            }
        }
    }
    let mut snap = m.snapshot.clone();
    snap.imported_from = Some(m.snapshot_id.clone());
    for (member, blobs) in db_done {
        if let Component::Postgres(db) = &mut snap.components[member.component] {
            crate::export_db::set_blobs(db, member.slot, blobs);
        }
    }
    let databases: Vec<Component> = snap
        .components
        .iter()
        .filter(|c| c.postgres().is_some())
        .cloned()
        .collect();
    snap.components = databases;
    for l in &mut m.listings {
        let original = m
            .snapshot
            .file_components()
            .find(|fc| fc.path == l.path)
            .cloned();
        let tree = save_tree(&saver, &l.nodes)?;
        let Some(original) = original else {
            return Err(Error::corrupt(format!(
                "the bundle lists files at {} that its snapshot does not name: it is damaged",
                l.path
            )));
        };
        snap.components.push(Component::Files(FilesComponent {
            path: l.path.clone(),
            tree,
            ..original
        }));
    }
    saver.finish()?;
    let id = save_snapshot(repo, &snap)?;
    Ok((id, snap))
}
