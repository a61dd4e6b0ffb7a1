//! An in-memory store, for unit tests.

use super::{Kind, ObjectInfo, ObjectStore};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A store that keeps objects in memory; for unit tests only.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces an object's bytes in place (for corruption tests).
    pub fn tamper(&self, kind: Kind, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        if let Some(v) = self.map().get_mut(&kind.path(name)) {
            f(v);
        }
    }
}

impl ObjectStore for MemoryStore {
    fn location(&self) -> String {
        "memory://".into()
    }
    fn exists(&self, kind: Kind, name: &str) -> Result<bool> {
        Ok(self.map().contains_key(&kind.path(name)))
    }
    fn put(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        self.map().insert(kind.path(name), data.to_vec());
        Ok(())
    }
    fn get(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        self.map()
            .get(&kind.path(name))
            .cloned()
            .ok_or_else(|| Error::not_found(format!("object {} not found", kind.path(name))))
    }
    fn get_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let data = self.get(kind, name)?;
        let end = offset
            .checked_add(length)
            .filter(|e| *e <= data.len() as u64);
        match end {
            Some(end) => Ok(data[offset as usize..end as usize].to_vec()),
            None => Err(Error::corrupt(format!(
                "object {} is shorter than expected",
                kind.path(name)
            ))),
        }
    }
    fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>> {
        let prefix = format!("{}/", kind.dir());
        Ok(self
            .map()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| ObjectInfo {
                name: k.rsplit('/').next().unwrap_or_default().to_string(),
                size: v.len() as u64,
            })
            .collect())
    }
    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        self.map().remove(&kind.path(name));
        Ok(())
    }
    fn create(&self) -> Result<()> {
        Ok(())
    }
}
