//! `verify`: structural checks and reading back data.
//!
//! Structural: every index object and snapshot opens, every indexed pack
//! exists with its size, every blob a snapshot references is indexed.
//! Read-data: every (or a rotating subset of) pack is downloaded, checked
//! against its name, its header parsed, and every blob decrypted,
//! decompressed and hashed. Problems name the damaged object and the
//! snapshots and files they affect.

use crate::error::{Error, Result};
use crate::id::Id;
use crate::progress::Progress;
use crate::repository::{decode_blob, parse_pack, Lock, Repository};
use crate::snapshot::{list_snapshots, load_tree, Snapshot};
use crate::store::Kind;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

/// How much data to read back.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadData {
    /// Structural checks only.
    None,
    /// Every pack.
    All,
    /// A fraction (0 < f <= 1) of the packs, continuing where the last run
    /// stopped, so that repeated runs cover everything.
    Fraction(f64),
    /// Part `n` of `t` (1-based), as restic's `n/t`.
    Part(u32, u32),
}

impl ReadData {
    /// Parses `10%`, `0.1` or `n/t`.
    pub fn parse_subset(s: &str) -> Result<ReadData> {
        let bad = || {
            Error::usage(format!(
                "bad subset {s:?}: use a percentage like 10%, or n/t like 1/5"
            ))
        };
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(bad());
            }
            return Ok(ReadData::Fraction(v / 100.0));
        }
        if let Some((n, t)) = s.split_once('/') {
            let n: u32 = n.trim().parse().map_err(|_| bad())?;
            let t: u32 = t.trim().parse().map_err(|_| bad())?;
            if n == 0 || t == 0 || n > t {
                return Err(bad());
            }
            return Ok(ReadData::Part(n, t));
        }
        let v: f64 = s.parse().map_err(|_| bad())?;
        if !(v > 0.0 && v <= 1.0) {
            return Err(bad());
        }
        Ok(ReadData::Fraction(v))
    }
}

/// Options of a verify run.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Snapshots to check; empty means the whole repository.
    pub snapshots: Vec<Id>,
    /// How much data to read.
    pub read_data: ReadData,
    /// File holding the rotation cursor for [`ReadData::Fraction`].
    pub cursor_file: Option<PathBuf>,
    /// Parallel pack readers.
    pub workers: usize,
}

/// One damaged or missing object.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The object, as a path in the repository (`data/ab/ab12...`).
    pub object: String,
    /// What is wrong.
    pub problem: String,
    /// Affected snapshots and files (`<snapshot>: <path>`).
    pub affected: Vec<String>,
}

/// The outcome of a verify run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Snapshots checked.
    pub snapshots: usize,
    /// Index objects read.
    pub index_objects: usize,
    /// Packs in the index.
    pub packs: usize,
    /// Packs read back.
    pub packs_read: usize,
    /// Ids of the packs read back.
    pub read_pack_ids: Vec<String>,
    /// Blobs decrypted and hashed.
    pub blobs_read: u64,
    /// Bytes downloaded.
    pub bytes_read: u64,
    /// Packs stored but in no index (left by an interrupted run; harmless).
    pub unindexed_packs: usize,
    /// What was found.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether everything checked out.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn pack_path(id: &str) -> String {
    Kind::Pack.path(id)
}

/// Runs the checks.
pub fn verify(
    repo: &Repository,
    options: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let _lock = Lock::acquire(repo, false, "verify")?;
    let mut report = VerifyReport::default();
    for (name, err) in repo.damaged_indexes() {
        report.problems.push(Problem {
            object: format!("index/{name}"),
            problem: err,
            affected: vec![
                "packs it lists may be unreachable; every snapshot may be affected".into(),
            ],
        });
    }
    report.index_objects = repo.store().list(Kind::Index)?.len();
    // Snapshots.
    let mut snaps: Vec<(Id, Snapshot)> = Vec::new();
    for (id, s) in list_snapshots(repo)? {
        match s {
            Ok(s) => {
                if options.snapshots.is_empty() || options.snapshots.contains(&id) {
                    snaps.push((id, s))
                }
            }
            Err(e) => {
                if options.snapshots.is_empty() || options.snapshots.contains(&id) {
                    report.problems.push(Problem {
                        object: format!("snapshots/{id}"),
                        problem: e.to_string(),
                        affected: vec![format!(
                            "snapshot {} cannot be read or restored",
                            id.short()
                        )],
                    })
                }
            }
        }
    }
    report.snapshots = snaps.len();
    // Packs: present and of the right size.
    let listed: HashMap<String, u64> = repo
        .store()
        .list(Kind::Pack)?
        .into_iter()
        .map(|o| (o.name, o.size))
        .collect();
    let indexed: Vec<(Id, u64)> = repo.index().packs.clone();
    report.packs = indexed.len();
    let indexed_names: HashSet<String> = indexed.iter().map(|(id, _)| id.to_hex()).collect();
    report.unindexed_packs = listed
        .keys()
        .filter(|n| !indexed_names.contains(*n))
        .count();
    let mut bad_packs: HashMap<Id, String> = HashMap::new();
    for (id, size) in &indexed {
        match listed.get(&id.to_hex()) {
            None => {
                bad_packs.insert(*id, "pack is missing from storage".into());
            }
            Some(s) if s != size => {
                bad_packs.insert(*id, format!("pack has {s} bytes, the index says {size}"));
            }
            _ => {}
        }
    }
    // Listings and references.
    progress.phase("checking snapshots", None);
    let mut refs = References::default();
    let size_problem = |sid: &Id, what: &str, listed: u64, held: u64| Problem {
        object: format!("snapshots/{sid}"),
        problem: format!("{what} is listed with {listed} bytes but its blobs hold {held}"),
        affected: vec![format!("snapshot {}: {what}", sid.short())],
    };
    for (sid, snap) in &snaps {
        for db in snap.databases() {
            for (label, stream) in db.streams() {
                match refs.note(&repo.index(), &stream.blobs) {
                    Some(held) if held != stream.size => {
                        report
                            .problems
                            .push(size_problem(sid, &label, stream.size, held))
                    }
                    _ => {}
                }
            }
        }
        for fc in snap.file_components() {
            refs.note(&repo.index(), &fc.tree);
            let nodes = match load_tree(repo, &fc.tree) {
                Ok(n) => n,
                Err(e) => {
                    let pack = fc
                        .tree
                        .iter()
                        .find_map(|b| repo.index().get(b).map(|l| repo.index().pack_id(l.pack)));
                    report.problems.push(Problem {
                        object: pack
                            .map(|p| pack_path(&p.to_hex()))
                            .unwrap_or_else(|| format!("snapshots/{sid}")),
                        problem: format!("the file listing of {} cannot be read: {e}", fc.path),
                        affected: vec![format!(
                            "snapshot {}: {} (every file)",
                            sid.short(),
                            fc.path
                        )],
                    });
                    continue;
                }
            };
            let index = repo.index();
            for n in &nodes {
                match refs.note(&index, &n.blobs) {
                    Some(held) if n.kind == crate::snapshot::NodeKind::File && held != n.size => {
                        let what = format!("{}/{}", fc.path, n.path);
                        report.problems.push(size_problem(sid, &what, n.size, held));
                    }
                    _ => {}
                }
            }
        }
    }
    let References {
        needed_packs,
        missing_blobs,
    } = refs;
    // Read data.
    let to_read: Vec<(Id, u64)> = {
        let candidates: Vec<(Id, u64)> = if options.snapshots.is_empty() {
            indexed.clone()
        } else {
            let index = repo.index();
            let mut v: Vec<(Id, u64)> = needed_packs
                .iter()
                .map(|p| index.packs[*p as usize])
                .collect();
            v.sort();
            v
        };
        let candidates: Vec<(Id, u64)> = candidates
            .into_iter()
            .filter(|(id, _)| !bad_packs.contains_key(id))
            .collect();
        select_subset(
            candidates,
            &options.read_data,
            options.cursor_file.as_deref(),
        )?
    };
    let mut damaged_blobs: HashMap<Id, String> = HashMap::new();
    if !to_read.is_empty() {
        let total: u64 = to_read.iter().map(|(_, s)| *s).sum();
        progress.phase("reading data", Some(total));
        let results = read_packs(repo, &to_read, options.workers, progress);
        for r in results {
            report.packs_read += 1;
            report.read_pack_ids.push(r.id.to_hex());
            report.bytes_read += r.bytes;
            report.blobs_read += r.blobs_ok;
            if let Some(p) = r.problem {
                bad_packs.insert(r.id, p);
            }
            for (b, why) in r.damaged {
                damaged_blobs.insert(b, why);
            }
        }
    }
    // Which blobs each bad pack loses: the damaged ones of a pack that was
    // read, every one of a pack that is missing or has the wrong size.
    let read_set: HashSet<Id> = to_read.iter().map(|(id, _)| *id).collect();
    let mut lost: HashMap<Id, Vec<Id>> = HashMap::new();
    {
        let index = repo.index();
        for (b, l) in index.iter() {
            let p = index.pack_id(l.pack);
            if bad_packs.contains_key(&p)
                && (!read_set.contains(&p) || damaged_blobs.contains_key(b))
            {
                lost.entry(p).or_default().push(*b);
            }
        }
    }
    let mut affected_blobs: HashSet<Id> = missing_blobs.clone();
    lost.values()
        .for_each(|v| affected_blobs.extend(v.iter().copied()));
    let affected = if affected_blobs.is_empty() {
        HashMap::new()
    } else {
        who_uses(repo, &snaps, &affected_blobs)
    };
    let mut pack_problems: BTreeMap<Id, Problem> = BTreeMap::new();
    for (p, why) in &bad_packs {
        let mut list: Vec<String> = Vec::new();
        for b in lost.get(p).map(|v| v.as_slice()).unwrap_or_default() {
            if let Some(v) = affected.get(b) {
                list.extend(v.iter().cloned());
            }
        }
        list.sort();
        list.dedup();
        if list.is_empty() {
            list.push("no file of a checked snapshot uses its damaged parts".into());
        }
        pack_problems.insert(
            *p,
            Problem {
                object: pack_path(&p.to_hex()),
                problem: why.clone(),
                affected: list,
            },
        );
    }
    report.problems.extend(pack_problems.into_values());
    for b in &missing_blobs {
        let mut list = affected.get(b).cloned().unwrap_or_default();
        list.sort();
        report.problems.push(Problem {
            object: format!("blob {b}"),
            problem: "referenced by a snapshot but in no index (its pack is lost)".into(),
            affected: list,
        });
    }
    Ok(report)
}

/// Blobs that checked snapshots reference: the packs they need, and those
/// missing from the index.
#[derive(Default)]
struct References {
    needed_packs: HashSet<u32>,
    missing_blobs: HashSet<Id>,
}

impl References {
    /// Records a stream's blobs; returns the bytes they hold when all are
    /// indexed.
    fn note(&mut self, index: &crate::repository::Index, blobs: &[Id]) -> Option<u64> {
        let mut held = Some(0u64);
        for b in blobs {
            match index.get(b) {
                Some(l) => {
                    self.needed_packs.insert(l.pack);
                    held = held.map(|h| h + l.raw_length as u64);
                }
                None => {
                    self.missing_blobs.insert(*b);
                    held = None;
                }
            }
        }
        held
    }
}

fn who_uses(
    repo: &Repository,
    snaps: &[(Id, Snapshot)],
    blobs: &HashSet<Id>,
) -> HashMap<Id, Vec<String>> {
    let mut out: HashMap<Id, Vec<String>> = HashMap::new();
    for (sid, snap) in snaps {
        for db in snap.databases() {
            for (label, stream) in db.streams() {
                for b in &stream.blobs {
                    if blobs.contains(b) {
                        out.entry(*b)
                            .or_default()
                            .push(format!("snapshot {}: {label}", sid.short()));
                    }
                }
            }
        }
        for fc in snap.file_components() {
            for b in &fc.tree {
                if blobs.contains(b) {
                    out.entry(*b).or_default().push(format!(
                        "snapshot {}: {} (file listing)",
                        sid.short(),
                        fc.path
                    ));
                }
            }
            let Ok(nodes) = load_tree(repo, &fc.tree) else {
                continue;
            };
            for n in nodes {
                for b in &n.blobs {
                    if blobs.contains(b) {
                        let full = crate::snapshot::full_path(&fc.path, &n.path);
                        out.entry(*b)
                            .or_default()
                            .push(format!("snapshot {}: {full}", sid.short()));
                    }
                }
            }
        }
    }
    out
}

fn select_subset(
    mut packs: Vec<(Id, u64)>,
    mode: &ReadData,
    cursor_file: Option<&std::path::Path>,
) -> Result<Vec<(Id, u64)>> {
    packs.sort();
    match mode {
        ReadData::None => Ok(Vec::new()),
        ReadData::All => Ok(packs),
        ReadData::Part(n, t) => Ok(packs
            .into_iter()
            .filter(|(id, _)| (u32::from(id.0[0]) % t) + 1 == *n)
            .collect()),
        ReadData::Fraction(f) => {
            if packs.is_empty() {
                return Ok(packs);
            }
            let count = ((packs.len() as f64) * f).ceil().max(1.0) as usize;
            let count = count.min(packs.len());
            let cursor: usize = cursor_file
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
                % packs.len();
            let chosen: Vec<(Id, u64)> = (0..count)
                .map(|i| packs[(cursor + i) % packs.len()])
                .collect();
            if let Some(p) = cursor_file {
                if let Some(dir) = p.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = std::fs::write(p, format!("{}\n", (cursor + count) % packs.len()));
            }
            Ok(chosen)
        }
    }
}

struct PackResult {
    id: Id,
    bytes: u64,
    blobs_ok: u64,
    problem: Option<String>,
    damaged: Vec<(Id, String)>,
}

fn read_packs(
    repo: &Repository,
    packs: &[(Id, u64)],
    workers: usize,
    progress: &dyn Progress,
) -> Vec<PackResult> {
    let out = Mutex::new(Vec::new());
    let all = crate::parallel::for_each_parallel(
        packs,
        workers,
        || Ok(()),
        |_, (id, size)| {
            let r = check_pack(repo, id);
            progress.inc(*size);
            out.lock().expect("lock").push(r);
            Ok(())
        },
    );
    debug_assert!(all.is_ok(), "pack checks report problems, not errors");
    out.into_inner().expect("lock")
}

fn check_pack(repo: &Repository, id: &Id) -> PackResult {
    let mut r = PackResult {
        id: *id,
        bytes: 0,
        blobs_ok: 0,
        problem: None,
        damaged: Vec::new(),
    };
    let data = match repo.store().get(Kind::Pack, &id.to_hex()) {
        Ok(d) => d,
        Err(e) => {
            r.problem = Some(format!("cannot read pack: {e}"));
            return r;
        }
    };
    r.bytes = data.len() as u64;
    let mut problems = Vec::new();
    if Id::sha256(&data) != *id {
        problems.push("pack content does not match its name (SHA-256)".to_string());
    }
    if let Err(e) = parse_pack(repo.cipher(), &data, id) {
        problems.push(format!("pack header is unreadable: {e}"));
    }
    // Check every blob the index places in this pack.
    let entries: Vec<(Id, crate::repository::BlobLocation)> = {
        let index = repo.index();
        index
            .iter()
            .filter(|(_, l)| index.pack_id(l.pack) == *id)
            .map(|(b, l)| (*b, *l))
            .collect()
    };
    for (b, l) in entries {
        let end = l.offset as usize + l.length as usize;
        let result = if end <= data.len() {
            decode_blob(
                repo.cipher(),
                &l.packed(b),
                &data[l.offset as usize..end],
                id,
            )
            .map(|_| ())
        } else {
            Err(Error::corrupt("blob lies beyond the end of the pack"))
        };
        match result {
            Ok(()) => r.blobs_ok += 1,
            Err(e) => r.damaged.push((b, e.to_string())),
        }
    }
    if !r.damaged.is_empty() {
        problems.push(format!("{} blob(s) damaged", r.damaged.len()));
    }
    if !problems.is_empty() {
        r.problem = Some(problems.join("; "));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_parsing() {
        assert_eq!(
            ReadData::parse_subset("10%").unwrap(),
            ReadData::Fraction(0.1)
        );
        assert_eq!(ReadData::parse_subset("2/5").unwrap(), ReadData::Part(2, 5));
        assert_eq!(
            ReadData::parse_subset("0.5").unwrap(),
            ReadData::Fraction(0.5)
        );
        for bad in ["0%", "101%", "6/5", "0/3", "x", "1.5"] {
            assert!(ReadData::parse_subset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rotation_covers_every_pack() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = dir.path().join("c");
        let packs: Vec<(Id, u64)> = (0..10u8).map(|i| (Id([i; 32]), 1)).collect();
        let mut seen = HashSet::new();
        for _ in 0..4 {
            let got =
                select_subset(packs.clone(), &ReadData::Fraction(0.25), Some(&cursor)).unwrap();
            assert_eq!(got.len(), 3);
            seen.extend(got.into_iter().map(|(id, _)| id));
        }
        assert_eq!(seen.len(), 10);
        let parts: usize = (1..=3)
            .map(|n| {
                select_subset(packs.clone(), &ReadData::Part(n, 3), None)
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(parts, 10);
    }
}
