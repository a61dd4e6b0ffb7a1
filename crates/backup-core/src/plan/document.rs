//! The plan as a file: JSON, written atomically, hashed over its canonical
//! form so that an edited or damaged plan is refused before it is applied.

use super::{Plan, PLAN_VERSION};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::repository::canonical_json;
use std::io::Write;
use std::path::Path;

/// What every refusal of a plan file says to do.
const REMAKE: &str = "make a new plan with `backup rollback plan`";

impl Plan {
    /// SHA-256 (hex) of the canonical JSON (members sorted, no whitespace)
    /// of the plan without its `hash` member.
    pub fn compute_hash(&self) -> Result<String> {
        Ok(hash_of(&serde_json::to_value(self)?))
    }

    /// Refuses (kind [`ErrorKind::Corrupt`]) a plan whose `hash` does not
    /// match its content. A loaded plan is checked as it was read, unknown
    /// members included, so that no edit goes unnoticed.
    pub fn check_hash(&self) -> Result<()> {
        let want = match &self.loaded_from {
            Some(v) => hash_of(v),
            None => self.compute_hash()?,
        };
        if self.hash != want {
            return Err(Error::corrupt(format!(
                "the plan file was edited or damaged: its hash {} does not match its content \
                 ({want}); {REMAKE}",
                if self.hash.is_empty() {
                    "(none)"
                } else {
                    &self.hash
                }
            )));
        }
        Ok(())
    }

    /// Reads a plan file. Refuses one that is not a plan, of an unknown
    /// version, or malformed; the hash is checked by [`Plan::check_hash`].
    pub fn load(path: &Path) -> Result<Plan> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::io(format!("cannot read the plan {}", path.display()), e))?;
        let damaged = |why: String| {
            Error::corrupt(format!(
                "the plan file {} was edited or damaged: {why}; {REMAKE}",
                path.display()
            ))
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| damaged(format!("it is not JSON ({e})")))?;
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == PLAN_VERSION as u64 => {}
            Some(v) => {
                return Err(Error::new(
                    ErrorKind::UnsupportedFormat,
                    format!(
                    "the plan {} has version {v}, unknown to this tool (it knows {PLAN_VERSION})",
                    path.display()
                ),
                ))
            }
            None => return Err(damaged("it has no plan version".into())),
        }
        let mut plan: Plan = serde_json::from_value(value.clone())
            .map_err(|e| damaged(format!("it is not a valid plan ({e})")))?;
        plan.loaded_from = Some(value);
        Ok(plan)
    }

    /// Writes the plan as pretty JSON: to a temporary file next to `path`,
    /// synced, then renamed over it, so a reader never sees half a plan.
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = crate::durable::parent_of(path);
        let context = |what: &str| format!("{what} the plan {}", path.display());
        let mut tmp = tempfile::Builder::new()
            .prefix(".plan-")
            .tempfile_in(dir)
            .map_err(|e| Error::io(context("cannot write"), e))?;
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        tmp.write_all(&json)
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| Error::io(context("cannot write"), e))?;
        tmp.persist(path)
            .map_err(|e| Error::io(context("cannot rename into place"), e.error))?;
        crate::durable::sync_dir(dir)
            .map_err(|e| Error::io(context("cannot sync the folder of"), e))
    }
}

/// The hash of a plan's JSON: its canonical form without `hash`.
fn hash_of(value: &serde_json::Value) -> String {
    let mut v = value.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("hash");
    }
    Id::sha256(canonical_json(&v).as_bytes()).to_hex()
}

#[cfg(test)]
mod tests {
    use super::super::Fingerprints;
    use super::*;

    fn plan() -> Plan {
        let t = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut p = Plan {
            version: PLAN_VERSION,
            created: t,
            host: "vm".into(),
            snapshot: "ab".repeat(32),
            snapshot_time: t,
            snapshot_tags: vec!["pre-deploy".into()],
            snapshot_label: None,
            databases: Vec::new(),
            files: Vec::new(),
            not_rolled_back: Vec::new(),
            bytes_to_restore: 10,
            free_space_needed: 16,
            estimated_duration_secs: 1.25,
            estimated_downtime_secs: 0.1,
            fingerprints: Fingerprints::default(),
            hash: String::new(),
            loaded_from: None,
        };
        p.hash = p.compute_hash().unwrap();
        p
    }

    #[test]
    fn a_saved_plan_loads_and_checks_and_an_edit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let p = plan();
        p.check_hash().unwrap();
        p.save(&path).unwrap();
        let loaded = Plan::load(&path).unwrap();
        loaded.check_hash().unwrap();
        assert_eq!(loaded.snapshot, p.snapshot);

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("\"bytes_to_restore\": 10", "\"bytes_to_restore\": 11"),
        )
        .unwrap();
        let e = Plan::load(&path).unwrap().check_hash().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(e.to_string().contains("edited or damaged"), "{e}");

        // An unknown member is an edit too, though the struct ignores it.
        std::fs::write(&path, text.replacen('{', "{\"extra\": 1,", 1)).unwrap();
        assert!(Plan::load(&path).unwrap().check_hash().is_err());
        std::fs::write(&path, text.replace("\"version\": 1", "\"version\": 2")).unwrap();
        assert_eq!(
            Plan::load(&path).unwrap_err().kind(),
            ErrorKind::UnsupportedFormat
        );
    }
}
