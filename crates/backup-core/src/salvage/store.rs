//! Salvage objects in the repository: `salvage/<id>`, the zstd-compressed
//! JSON of a [`Salvage`], sealed like every other object (encrypted with
//! the master key when the repository is), named by the SHA-256 of the
//! stored bytes. Computing a delta again writes a new object; readers take
//! the newest for a rollback.

use super::{Salvage, SalvageSummary, SALVAGE_VERSION};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repository::Repository;
use crate::store::Kind;

/// Stores `s`; returns the object's id.
pub fn save(repo: &Repository, s: &Salvage) -> Result<Id> {
    let json = serde_json::to_vec(s)?;
    let z = zstd::bulk::compress(&json, 3).map_err(|e| Error::io("compressing a salvage", e))?;
    repo.put_sealed(Kind::Salvage, &z)
}

/// Reads the salvage object `name`.
pub fn load(repo: &Repository, name: &str) -> Result<Salvage> {
    let z = repo.get_sealed(Kind::Salvage, name)?;
    let json = zstd::stream::decode_all(&z[..])
        .map_err(|e| Error::corrupt(format!("salvage {name} cannot be decompressed: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&json)
        .map_err(|e| Error::corrupt(format!("salvage {name} is malformed: {e}")))?;
    if v.get("version").and_then(|x| x.as_u64()) != Some(SALVAGE_VERSION as u64) {
        return Err(Error::new(
            crate::ErrorKind::UnsupportedFormat,
            format!("salvage {name} has a version this tool does not know"),
        ));
    }
    serde_json::from_value(v)
        .map_err(|e| Error::corrupt(format!("salvage {name} is malformed: {e}")))
}

/// Every stored salvage with its object name, oldest computation first.
pub fn all(repo: &Repository) -> Result<Vec<(String, Salvage)>> {
    let mut out = Vec::new();
    for obj in repo.store().list(Kind::Salvage)? {
        let s = load(repo, &obj.name)?;
        out.push((obj.name, s));
    }
    out.sort_by(|a, b| a.1.computed.cmp(&b.1.computed).then(a.0.cmp(&b.0)));
    Ok(out)
}

/// The newest salvage of rollback `id`, with its object name.
pub fn latest_for(repo: &Repository, id: &str) -> Result<Option<(String, Salvage)>> {
    Ok(all(repo)?.into_iter().rev().find(|(_, s)| s.rollback == id))
}

/// The newest salvage of the rollback whose id is or starts with `spec`;
/// a usage error when none or several match.
pub fn find(repo: &Repository, spec: &str) -> Result<(String, Salvage)> {
    let all = all(repo)?;
    let mut ids: Vec<&str> = all
        .iter()
        .map(|(_, s)| s.rollback.as_str())
        .filter(|id| id.starts_with(spec))
        .collect();
    ids.sort();
    ids.dedup();
    match ids.as_slice() {
        [] => Err(Error::not_found(format!(
            "no delta of a rollback {spec} in this repository (`backup salvage compute` computes one; \
             `backup rollback history` lists the rollbacks)"
        ))),
        [id] => {
            let id = id.to_string();
            Ok(all.into_iter().rev().find(|(_, s)| s.rollback == id).expect("found"))
        }
        _ => Err(Error::new(
            crate::ErrorKind::Ambiguous,
            format!("{spec} names more than one rollback: {}", ids.join(", ")),
        )),
    }
}

/// The summary of the newest salvage of every rollback that has one.
pub fn summaries(repo: &Repository) -> Result<Vec<SalvageSummary>> {
    let mut by_id: std::collections::BTreeMap<String, SalvageSummary> = Default::default();
    for (name, s) in all(repo)? {
        by_id.insert(s.rollback.clone(), summary(&name, &s));
    }
    Ok(by_id.into_values().collect())
}

/// The summary of salvage `s` stored as `name`.
pub fn summary(name: &str, s: &Salvage) -> SalvageSummary {
    SalvageSummary {
        rollback: s.rollback.clone(),
        object: name.to_string(),
        tables: s.counts(),
    }
}
