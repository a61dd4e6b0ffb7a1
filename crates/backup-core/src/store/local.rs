//! The embedded default: a repository in a local directory.

use super::{Kind, ObjectInfo, ObjectStore};
use crate::durable;
use crate::error::{Error, ErrorKind, Result};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A repository in a local directory. Writes go to a temporary file in the
/// destination folder, are fsynced, then renamed into place.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Writes `data` to a new temporary file in the object's folder
    /// (created, and its parent synced, when new).
    fn write_temp(&self, path: &Path, data: &[u8]) -> Result<tempfile::NamedTempFile> {
        let dir = path.parent().expect("object paths have a parent");
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(|e| self.map_err("create folder", dir, e))?;
            if let Some(parent) = dir.parent() {
                durable::sync_dir(parent).map_err(|e| self.map_err("sync folder", parent, e))?;
            }
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(|e| self.map_err("create a temporary file in", dir, e))?;
        tmp.write_all(data)
            .map_err(|e| self.map_err("write", path, e))?;
        Ok(tmp)
    }

    /// Makes a written temporary file durable and renames it into place.
    fn commit(&self, tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
        tmp.as_file()
            .sync_all()
            .map_err(|e| self.map_err("write", path, e))?;
        tmp.persist(path)
            .map_err(|e| self.map_err("rename into place", path, e.error))?;
        let dir = path.parent().expect("object paths have a parent");
        durable::sync_dir(dir).map_err(|e| self.map_err("sync folder", dir, e))
    }

    /// A store rooted at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    fn full(&self, kind: Kind, name: &str) -> PathBuf {
        self.root.join(kind.path(name))
    }

    fn map_err(&self, action: &str, path: &Path, err: std::io::Error) -> Error {
        if err.kind() == std::io::ErrorKind::NotADirectory && self.root_is_not_a_directory() {
            return self.not_a_directory();
        }
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Storage,
        };
        Error::new(kind, format!("cannot {action} {}", path.display())).with_source(err)
    }
}

impl LocalStore {
    fn root_is_not_a_directory(&self) -> bool {
        fs::metadata(&self.root).is_ok_and(|m| !m.is_dir())
    }

    fn not_a_directory(&self) -> Error {
        Error::new(
            ErrorKind::NotARepository,
            format!(
                "{} is a file, not a backup repository (a local repository is a directory): \
                 check --repo or BACKUP_REPOSITORY",
                self.root.display()
            ),
        )
    }
}

impl ObjectStore for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn exists(&self, kind: Kind, name: &str) -> Result<bool> {
        Ok(self.full(kind, name).exists())
    }

    fn put(&self, kind: Kind, name: &str, data: &[u8]) -> Result<()> {
        let path = self.full(kind, name);
        let tmp = self.write_temp(&path, data)?;
        self.commit(tmp, &path)
    }

    fn put_owned(
        &self,
        kind: Kind,
        name: &str,
        data: Vec<u8>,
        release: &mut dyn FnMut(Vec<u8>),
    ) -> Result<()> {
        let path = self.full(kind, name);
        let written = self.write_temp(&path, &data);
        release(data);
        self.commit(written?, &path)
    }

    fn releases_early(&self) -> bool {
        true
    }

    fn get(&self, kind: Kind, name: &str) -> Result<Vec<u8>> {
        let path = self.full(kind, name);
        fs::read(&path).map_err(|e| self.map_err("read", &path, e))
    }

    fn get_range(&self, kind: Kind, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let path = self.full(kind, name);
        let mut f = File::open(&path).map_err(|e| self.map_err("open", &path, e))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| self.map_err("seek in", &path, e))?;
        let mut buf = vec![0u8; length as usize];
        f.read_exact(&mut buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corrupt(format!(
                    "{} is shorter than expected (wanted {length} bytes at offset {offset})",
                    path.display()
                ))
            } else {
                self.map_err("read", &path, e)
            }
        })?;
        Ok(buf)
    }

    fn list(&self, kind: Kind) -> Result<Vec<ObjectInfo>> {
        let dir = self.root.join(kind.dir());
        let mut out = Vec::new();
        if !dir.exists() {
            return Ok(out);
        }
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            let entries = fs::read_dir(&d).map_err(|e| self.map_err("list", &d, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| self.map_err("list", &d, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let meta = entry
                    .metadata()
                    .map_err(|e| self.map_err("stat", &entry.path(), e))?;
                if meta.is_dir() {
                    if kind == Kind::Pack {
                        stack.push(entry.path());
                    }
                    continue;
                }
                if name.starts_with(".tmp-") {
                    continue;
                }
                out.push(ObjectInfo {
                    name,
                    size: meta.len(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn delete(&self, kind: Kind, name: &str) -> Result<()> {
        let path = self.full(kind, name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.map_err("delete", &path, e)),
        }
    }

    fn parallel_puts(&self) -> usize {
        // A local write is one buffered copy and an fsync: one writer keeps
        // up, and a second would hold a second pack.
        1
    }

    fn create(&self) -> Result<()> {
        if self.root_is_not_a_directory() {
            return Err(Error::usage(format!(
                "{} is a file: choose a new or empty directory for the repository",
                self.root.display()
            )));
        }
        if self.root.exists() {
            let non_empty = fs::read_dir(&self.root)
                .map_err(|e| self.map_err("read", &self.root, e))?
                .next()
                .is_some();
            if non_empty {
                return Err(Error::usage(format!(
                    "{} exists and is not empty: choose a new or empty directory for the repository",
                    self.root.display()
                )));
            }
        }
        fs::create_dir_all(&self.root).map_err(|e| self.map_err("create", &self.root, e))?;
        for kind in [
            Kind::Key,
            Kind::Pack,
            Kind::Index,
            Kind::Snapshot,
            Kind::Lock,
            Kind::Audit,
            Kind::Salvage,
        ] {
            let d = self.root.join(kind.dir());
            fs::create_dir_all(&d).map_err(|e| self.map_err("create", &d, e))?;
        }
        Ok(())
    }
}
