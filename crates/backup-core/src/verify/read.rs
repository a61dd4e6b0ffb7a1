//! Reading packs back: which packs (a subset that rotates), and checking
//! each one's name, header and blobs.

use super::ReadData;
use super::{Error, Id, Progress, Repository, Result};
use crate::repository::{decode_blob, parse_pack, BlobLocation};
use crate::store::Kind;
use std::collections::HashMap;
use std::sync::Mutex;

pub(super) fn select_subset(
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

/// What reading one pack back found.
pub(super) struct PackResult {
    /// The pack.
    pub id: Id,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Blobs that checked out.
    pub blobs_ok: u64,
    /// What is wrong with it, if anything.
    pub problem: Option<String>,
    /// Damaged blobs, with why.
    pub damaged: Vec<(Id, String)>,
}

pub(super) fn read_packs(
    repo: &Repository,
    packs: &[(Id, u64)],
    workers: usize,
    progress: &dyn Progress,
) -> Vec<PackResult> {
    let out = Mutex::new(Vec::new());
    // The blobs of each pack, from one pass over the index.
    let blobs: HashMap<Id, Vec<(Id, BlobLocation)>> = {
        let index = repo.index();
        index
            .by_pack()
            .into_iter()
            .enumerate()
            .map(|(pos, v)| (index.pack_id(pos as u32), v))
            .collect()
    };
    let all = crate::parallel::for_each_parallel(
        packs,
        workers,
        || Ok(()),
        |_, (id, size)| {
            if progress.cancelled() {
                return Ok(());
            }
            let r = check_pack(
                repo,
                id,
                blobs.get(id).map(Vec::as_slice).unwrap_or_default(),
            );
            progress.inc(*size);
            out.lock().expect("lock").push(r);
            Ok(())
        },
    );
    debug_assert!(all.is_ok(), "pack checks report problems, not errors");
    out.into_inner().expect("lock")
}

/// Reads one pack back and checks it: its name, its header, and each blob
/// the index places in it (`entries`).
fn check_pack(repo: &Repository, id: &Id, entries: &[(Id, BlobLocation)]) -> PackResult {
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
    for &(b, l) in entries {
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
    use std::collections::HashSet;

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
