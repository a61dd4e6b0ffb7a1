//! Carrying out a prune plan, in the order that keeps every intermediate
//! state valid: new packs, new index, old index objects deleted, obsolete
//! packs deleted.

use super::plan::{Action, Plan};
use super::PruneReport;
use crate::error::Result;
use crate::failpoint::failpoint;
use crate::id::Id;
use crate::progress::Progress;
use crate::repository::{
    decode_blob, pack_read_error, IndexFile, IndexPack, PackBuilder, Repository,
};
use crate::store::Kind;

/// Packs per index object written.
const PACKS_PER_INDEX: usize = 2000;

/// Carries out `plan`, filling in what it wrote and freed.
pub(super) fn execute(
    repo: &Repository,
    plan: &Plan,
    report: &mut PruneReport,
    progress: &dyn Progress,
) -> Result<()> {
    let written = repack(repo, plan, progress)?;
    report.packs_written = written.len();
    failpoint("prune:repacked");
    // Past here the prune finishes: stopping now would leave work for the
    // next one, never damage, but a cancelled prune should change nothing.
    crate::progress::check_cancelled(progress)?;
    report.index_objects_after = write_index(repo, plan, &written)?;
    failpoint("prune:indexed");
    for name in &plan.index_objects {
        repo.store().delete(Kind::Index, name)?;
    }
    failpoint("prune:index-replaced");
    delete_packs(repo, plan, progress)?;
    let new_bytes: u64 = written.iter().map(|p| p.size).sum();
    let gone: u64 = plan
        .packs
        .iter()
        .filter(|p| p.action != Action::Keep)
        .map(|p| p.size)
        .sum::<u64>()
        + plan.unindexed.iter().map(|(_, s)| s).sum::<u64>();
    report.bytes_after = report.bytes_before - gone + new_bytes;
    report.bytes_freed = report.bytes_before - report.bytes_after;
    repo.load_index()
}

/// Copies the used blobs of the packs to repack into new packs, each blob
/// checked (decrypted and hashed) before it is copied; returns the new
/// packs, stored.
fn repack(repo: &Repository, plan: &Plan, progress: &dyn Progress) -> Result<Vec<IndexPack>> {
    let todo: Vec<_> = plan
        .packs
        .iter()
        .filter(|p| p.action == Action::Repack)
        .collect();
    let total: u64 = todo.iter().map(|p| p.size).sum();
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    progress.phase("repacking", Some(total));
    let target = repo.config().pack_size as usize;
    let mut written = Vec::new();
    let mut builder = PackBuilder::with_capacity(target);
    for p in todo {
        crate::progress::check_cancelled(progress)?;
        let name = p.id.to_hex();
        let data = repo
            .store()
            .get(Kind::Pack, &name)
            .map_err(|e| pack_read_error(e, &name))?;
        for (id, l) in &p.used {
            let sealed = data
                .get(l.offset as usize..(l.offset + l.length) as usize)
                .ok_or_else(|| {
                    crate::Error::corrupt(format!(
                        "blob {id} lies beyond the end of pack {name}: run `backup verify`"
                    ))
                })?;
            decode_blob(repo.cipher(), &l.packed(*id), sealed, &p.id)?;
            builder.add(
                *id,
                l.kind,
                sealed,
                l.raw_length,
                crate::repository::Coding::of(l.compressed, l.rows),
            );
            if builder.len() >= target {
                written.push(store_pack(
                    repo,
                    std::mem::replace(&mut builder, PackBuilder::with_capacity(target)),
                )?);
            }
        }
        progress.inc(p.size);
    }
    if !builder.is_empty() {
        written.push(store_pack(repo, builder)?);
    }
    Ok(written)
}

fn store_pack(repo: &Repository, builder: PackBuilder) -> Result<IndexPack> {
    let (bytes, id, blobs) = builder.finish(repo.cipher());
    let size = bytes.len() as u64;
    repo.store().put(Kind::Pack, &id.to_hex(), &bytes)?;
    Ok(IndexPack { id, size, blobs })
}

/// Writes index objects for every kept pack (with all its blobs) and the
/// new ones; returns how many.
fn write_index(repo: &Repository, plan: &Plan, written: &[IndexPack]) -> Result<usize> {
    let kept = plan
        .packs
        .iter()
        .filter(|p| p.action == Action::Keep)
        .map(|p| IndexPack {
            id: p.id,
            size: p.size,
            blobs: p.blobs.iter().map(|(id, l)| l.packed(*id)).collect(),
        });
    let all: Vec<IndexPack> = kept.chain(written.iter().cloned()).collect();
    let mut count = 0;
    for chunk in all.chunks(PACKS_PER_INDEX) {
        let sealed = IndexFile {
            packs: chunk.to_vec(),
        }
        .encode(repo.cipher())?;
        let name = Id::sha256(&sealed).to_hex();
        repo.store().put(Kind::Index, &name, &sealed)?;
        count += 1;
    }
    Ok(count)
}

/// Deletes the packs that are wholly unused, repacked, or in no index.
fn delete_packs(repo: &Repository, plan: &Plan, progress: &dyn Progress) -> Result<()> {
    let doomed: Vec<String> = plan
        .packs
        .iter()
        .filter(|p| p.action != Action::Keep)
        .map(|p| p.id.to_hex())
        .chain(plan.unindexed.iter().map(|(n, _)| n.clone()))
        .collect();
    progress.phase("deleting unused packs", Some(doomed.len() as u64));
    for (i, name) in doomed.iter().enumerate() {
        if i == doomed.len() / 2 {
            failpoint("prune:deleting");
        }
        repo.store().delete(Kind::Pack, name)?;
        progress.inc(1);
    }
    Ok(())
}
