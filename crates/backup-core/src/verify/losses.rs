//! What damage costs: the blobs each bad pack loses, and the snapshots and
//! files that use them.

use super::{pack_path, BadPacks, Id, Problem, ProblemKind, Repository, VerifyReport};
use crate::snapshot::{load_tree, Snapshot};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Which blobs each bad pack loses (the damaged ones of a pack that was
/// read, every one of a pack that is missing or has the wrong size), and
/// the problems naming the files they belong to.
pub(super) fn report_losses(
    repo: &Repository,
    snaps: &[(Id, Snapshot)],
    to_read: &[(Id, u64)],
    bad: &BadPacks,
    damaged: &HashMap<Id, String>,
    missing: &HashSet<Id>,
    report: &mut VerifyReport,
) {
    let read_set: HashSet<Id> = to_read.iter().map(|(id, _)| *id).collect();
    let mut lost: HashMap<Id, Vec<Id>> = HashMap::new();
    {
        let index = repo.index();
        for (pos, blobs) in index.by_pack().into_iter().enumerate() {
            let p = index.pack_id(pos as u32);
            if !bad.contains_key(&p) {
                continue;
            }
            let hit = blobs
                .into_iter()
                .map(|(b, _)| b)
                .filter(|b| !read_set.contains(&p) || damaged.contains_key(b));
            lost.entry(p).or_default().extend(hit);
        }
    }
    let mut affected_blobs: HashSet<Id> = missing.clone();
    lost.values()
        .for_each(|v| affected_blobs.extend(v.iter().copied()));
    let affected = if affected_blobs.is_empty() {
        HashMap::new()
    } else {
        who_uses(repo, snaps, &affected_blobs)
    };
    let mut pack_problems: BTreeMap<Id, Problem> = BTreeMap::new();
    for (p, (kind, why)) in bad {
        let mut list: Vec<String> = lost
            .get(p)
            .into_iter()
            .flatten()
            .filter_map(|b| affected.get(b))
            .flatten()
            .cloned()
            .collect();
        list.sort();
        list.dedup();
        if list.is_empty() {
            list.push("no file of a checked snapshot uses its damaged parts".into());
        }
        pack_problems.insert(
            *p,
            Problem {
                kind: *kind,
                object: pack_path(&p.to_hex()),
                problem: why.clone(),
                affected: list,
            },
        );
    }
    report.problems.extend(pack_problems.into_values());
    for b in missing {
        let mut list = affected.get(b).cloned().unwrap_or_default();
        list.sort();
        report.push(
            ProblemKind::MissingBlob,
            format!("blob {b}"),
            "referenced by a snapshot but in no index (its pack is lost)".into(),
            list,
        );
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
