//! Object storage: one trait, a local-directory and an S3 implementation.
//!
//! The rest of the library only talks to [`ObjectStore`]; it never knows
//! which backend it uses. Objects are addressed by a [`Kind`] (the folder)
//! and a name. Writes are whole-object and atomic: an object is either
//! absent or complete.

mod local;
mod memory;
mod s3;

pub use local::LocalStore;
pub use memory::MemoryStore;
pub use s3::{S3Settings, S3Store};

use crate::error::{Error, Result};
use std::sync::Arc;

/// The folders of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The repository `config` object (a single object, name ignored).
    Config,
    /// Wrapped master keys.
    Key,
    /// Packs of blobs.
    Pack,
    /// Index objects.
    Index,
    /// Snapshot manifests.
    Snapshot,
    /// Lock objects.
    Lock,
    /// Audit records of rollbacks and undos.
    Audit,
    /// The data written since the snapshot a rollback restored.
    Salvage,
}

impl Kind {
    /// The folder name used on storage.
    pub fn dir(self) -> &'static str {
        match self {
            Kind::Config => "",
            Kind::Key => "keys",
            Kind::Pack => "data",
            Kind::Index => "index",
            Kind::Snapshot => "snapshots",
            Kind::Lock => "locks",
            Kind::Audit => "audit",
            Kind::Salvage => "salvage",
        }
    }

    /// The relative path of an object of this kind.
    ///
    /// Packs are spread over 256 sub-folders by the first two hex digits of
    /// their name, so that no folder grows too large.
    pub fn path(self, name: &str) -> String {
        match self {
            Kind::Config => "config".to_string(),
            Kind::Pack => {
                let prefix = name.get(..2).unwrap_or("00");
                format!("data/{prefix}/{name}")
            }
            other => format!("{}/{}", other.dir(), name),
        }
    }
}

/// One listed object: its name and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object name (no folder).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A place where repository objects live.
///
/// Implementations must make `put` atomic (a reader sees the whole object or
/// nothing) and must return [`crate::ErrorKind::NotFound`] for absent objects.
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// A human-readable location, for messages.
    fn location(&self) -> String;
    /// Whether the `config` object exists (is this a repository?).
    fn exists(&self, kind: Kind, name: &str) -> Result<bool>;
    /// Writes a whole object atomically.
    fn put(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()>;
    /// Reads a whole object.
    fn get(&self, kind: Kind, name: &str) -> Result<Vec<u8>>;
    /// Reads `length` bytes from `offset`.
    fn get_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>>;
    /// Lists the objects of one kind.
    fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>>;
    /// Deletes an object; deleting an absent object is not an error.
    fn delete(&self, kind: Kind, name: &str) -> Result<()>;
    /// Prepares an empty location for a new repository (creates the
    /// directory or checks that the bucket is reachable).
    fn create(&self) -> Result<()>;
    /// How many pack uploads pay to run side by side: more hide network
    /// latency; each holds a whole pack in memory.
    fn parallel_puts(&self) -> usize {
        2
    }
    /// Like [`ObjectStore::put`], taking the buffer and handing it to
    /// `release` as soon as the store no longer needs it, which may be before
    /// the write is durable (a local directory releases it once written,
    /// before the fsync). `release` is called exactly once, also on error.
    fn put_owned(
        &self,
        kind: Kind,
        name: &str,
        data: Vec<u8>,
        release: &mut dyn FnMut(Vec<u8>),
    ) -> Result<()> {
        let r = self.put(kind, name, &data);
        release(data);
        r
    }
    /// Whether [`ObjectStore::put_owned`] releases the buffer early, so that
    /// a writer should wait for it rather than allocate another.
    fn releases_early(&self) -> bool {
        false
    }
}

/// Options for opening a store from a URL.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// S3 settings that are not part of the URL.
    pub s3: S3Settings,
}

/// Opens a store from a repository URL: a plain path, `file://PATH` or
/// `s3://bucket/prefix`.
pub fn open_store(url: &str, options: &StoreOptions) -> Result<Arc<dyn ObjectStore>> {
    if url.is_empty() {
        return Err(Error::usage(
            "no repository given: pass --repo PATH or s3://bucket/prefix, or set BACKUP_REPOSITORY",
        ));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b.to_string(), p.trim_matches('/').to_string()),
            None => (rest.to_string(), String::new()),
        };
        if bucket.is_empty() {
            return Err(Error::usage(format!(
                "repository URL {url:?} names no bucket: use s3://BUCKET/PREFIX"
            )));
        }
        return Ok(Arc::new(S3Store::new(bucket, prefix, options.s3.clone())?));
    }
    if let Some(rest) = url.strip_prefix("memory://") {
        let _ = rest;
        return Ok(Arc::new(MemoryStore::default()));
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    if url.contains("://") && !url.starts_with("file://") {
        return Err(Error::usage(format!(
            "unsupported repository URL {url:?}: use a path, file://PATH or s3://BUCKET/PREFIX"
        )));
    }
    Ok(Arc::new(LocalStore::new(path)))
}
