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
mod losses;
mod read;

use crate::references::{walk, Reference, Visitor};
use crate::repository::{Lock, Repository};
use crate::snapshot::{list_snapshots, Snapshot};
use crate::store::Kind;
use losses::report_losses;
use read::{read_packs, select_subset};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

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

/// What kind of problem a [`Problem`] is (a daemon counts them by kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// An index object cannot be read.
    DamagedIndex,
    /// A snapshot manifest cannot be read.
    DamagedSnapshot,
    /// An indexed pack is not in storage.
    MissingPack,
    /// An indexed pack has another size than the index says.
    PackSize,
    /// A pack read back does not check out (name, header or blobs).
    DamagedPack,
    /// A file listing cannot be read.
    UnreadableListing,
    /// A file or stream is listed with another size than its blobs hold.
    SizeMismatch,
    /// A referenced blob is in no index.
    MissingBlob,
}

/// One damaged or missing object.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
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

    /// How many problems of each kind were found.
    pub fn counts(&self) -> HashMap<ProblemKind, usize> {
        let mut out = HashMap::new();
        for p in &self.problems {
            *out.entry(p.kind).or_insert(0) += 1;
        }
        out
    }

    fn push(&mut self, kind: ProblemKind, object: String, problem: String, affected: Vec<String>) {
        self.problems.push(Problem {
            kind,
            object,
            problem,
            affected,
        });
    }
}

fn pack_path(id: &str) -> String {
    Kind::Pack.path(id)
}

/// Packs found bad so far, with why.
type BadPacks = HashMap<Id, (ProblemKind, String)>;

/// Runs the checks: index objects, snapshots, pack presence and sizes,
/// references, then the data read back, and which files the damage hits.
pub fn verify(
    repo: &Repository,
    options: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let _lock = Lock::acquire(repo, false, "verify")?;
    let mut report = VerifyReport::default();
    check_indexes(repo, &mut report)?;
    let snaps = checked_snapshots(repo, options, &mut report)?;
    let (indexed, mut bad_packs) = check_packs(repo, &mut report)?;
    progress.phase("checking snapshots", None);
    let refs = check_references(repo, &snaps, &mut report)?;
    let to_read = packs_to_read(repo, options, &indexed, &refs, &bad_packs)?;
    let damaged_blobs = read_data(
        repo,
        &to_read,
        options.workers,
        &mut bad_packs,
        &mut report,
        progress,
    );
    crate::progress::check_cancelled(progress)?;
    report_losses(
        repo,
        &snaps,
        &to_read,
        &bad_packs,
        &damaged_blobs,
        &refs.missing_blobs,
        &mut report,
    );
    Ok(report)
}

/// Index objects that cannot be read.
fn check_indexes(repo: &Repository, report: &mut VerifyReport) -> Result<()> {
    for (name, err) in repo.damaged_indexes() {
        report.push(
            ProblemKind::DamagedIndex,
            format!("index/{name}"),
            err,
            vec!["packs it lists may be unreachable; every snapshot may be affected".into()],
        );
    }
    report.index_objects = repo.store().list(Kind::Index)?.len();
    Ok(())
}

/// The snapshots to check (all, or those asked for); damaged ones are
/// problems.
fn checked_snapshots(
    repo: &Repository,
    options: &VerifyOptions,
    report: &mut VerifyReport,
) -> Result<Vec<(Id, Snapshot)>> {
    let mut snaps = Vec::new();
    for (id, s) in list_snapshots(repo)? {
        if !options.snapshots.is_empty() && !options.snapshots.contains(&id) {
            continue;
        }
        match s {
            Ok(s) => snaps.push((id, s)),
            Err(e) => report.push(
                ProblemKind::DamagedSnapshot,
                format!("snapshots/{id}"),
                e.to_string(),
                vec![format!(
                    "snapshot {} cannot be read or restored",
                    id.short()
                )],
            ),
        }
    }
    report.snapshots = snaps.len();
    Ok(snaps)
}

/// Every indexed pack is stored, with the size the index says.
fn check_packs(repo: &Repository, report: &mut VerifyReport) -> Result<(Vec<(Id, u64)>, BadPacks)> {
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
    let mut bad = BadPacks::new();
    for (id, size) in &indexed {
        match listed.get(&id.to_hex()) {
            None => {
                bad.insert(
                    *id,
                    (
                        ProblemKind::MissingPack,
                        "pack is missing from storage".into(),
                    ),
                );
            }
            Some(s) if s != size => {
                bad.insert(
                    *id,
                    (
                        ProblemKind::PackSize,
                        format!("pack has {s} bytes, the index says {size}"),
                    ),
                );
            }
            _ => {}
        }
    }
    Ok((indexed, bad))
}

/// Walks every reference: sizes against what the blobs hold, blobs in no
/// index, listings that cannot be read.
fn check_references(
    repo: &Repository,
    snaps: &[(Id, Snapshot)],
    report: &mut VerifyReport,
) -> Result<References> {
    let mut checker = ReferenceCheck {
        repo,
        refs: References::default(),
        report,
    };
    walk(repo, snaps, &mut checker)?;
    Ok(checker.refs)
}

struct ReferenceCheck<'a> {
    repo: &'a Repository,
    refs: References,
    report: &'a mut VerifyReport,
}

impl Visitor for ReferenceCheck<'_> {
    fn reference(&mut self, r: Reference<'_>) {
        let held = self.refs.note(&self.repo.index(), r.blobs);
        if let (Some(held), Some(size)) = (held, r.size) {
            if held != size {
                self.report.push(
                    ProblemKind::SizeMismatch,
                    format!("snapshots/{}", r.snapshot),
                    format!(
                        "{} is listed with {size} bytes but its blobs hold {held}",
                        r.what
                    ),
                    vec![format!("snapshot {}: {}", r.snapshot.short(), r.what)],
                );
            }
        }
    }

    fn unreadable_listing(
        &mut self,
        sid: &Id,
        component: &str,
        tree: &[Id],
        e: Error,
    ) -> Result<()> {
        let index = self.repo.index();
        let pack = tree
            .iter()
            .find_map(|b| index.get(b).map(|l| index.pack_id(l.pack)));
        self.report.push(
            ProblemKind::UnreadableListing,
            pack.map(|p| pack_path(&p.to_hex()))
                .unwrap_or_else(|| format!("snapshots/{sid}")),
            format!("the file listing of {component} cannot be read: {e}"),
            vec![format!(
                "snapshot {}: {component} (every file)",
                sid.short()
            )],
        );
        Ok(())
    }
}

/// The packs to read back: of all (or of those the checked snapshots
/// need), the chosen subset, leaving out packs already known bad.
fn packs_to_read(
    repo: &Repository,
    options: &VerifyOptions,
    indexed: &[(Id, u64)],
    refs: &References,
    bad: &BadPacks,
) -> Result<Vec<(Id, u64)>> {
    let candidates: Vec<(Id, u64)> = if options.snapshots.is_empty() {
        indexed.to_vec()
    } else {
        let index = repo.index();
        let mut v: Vec<(Id, u64)> = refs
            .needed_packs
            .iter()
            .map(|p| index.packs[*p as usize])
            .collect();
        v.sort();
        v
    };
    let candidates = candidates
        .into_iter()
        .filter(|(id, _)| !bad.contains_key(id))
        .collect();
    select_subset(
        candidates,
        &options.read_data,
        options.cursor_file.as_deref(),
    )
}

/// Reads the packs back; returns the damaged blobs.
fn read_data(
    repo: &Repository,
    to_read: &[(Id, u64)],
    workers: usize,
    bad: &mut BadPacks,
    report: &mut VerifyReport,
    progress: &dyn Progress,
) -> HashMap<Id, String> {
    let mut damaged = HashMap::new();
    if to_read.is_empty() {
        return damaged;
    }
    let total: u64 = to_read.iter().map(|(_, s)| *s).sum();
    progress.phase("reading data", Some(total));
    for r in read_packs(repo, to_read, workers, progress) {
        report.packs_read += 1;
        report.read_pack_ids.push(r.id.to_hex());
        report.bytes_read += r.bytes;
        report.blobs_read += r.blobs_ok;
        if let Some(p) = r.problem {
            bad.insert(r.id, (ProblemKind::DamagedPack, p));
        }
        damaged.extend(r.damaged);
    }
    damaged
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
