//! The work directory, and the files in it.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::Result;

/// The work directory: `BENCH_DIR` (only the program's own entries are removed at the end) or
/// a fresh temp dir under `/var/tmp` (removed as a whole); `BENCH_KEEP=1` keeps it.
pub struct WorkDir {
    pub path: PathBuf,
    /// Names the program creates inside the directory, and removes at the end.
    entries: &'static [&'static str],
    owned: bool,
    keep: bool,
}

impl WorkDir {
    /// The work directory of benchmark `bench`, which creates `entries` in it.
    pub fn new(bench: &str, entries: &'static [&'static str]) -> Result<Self> {
        let keep = std::env::var("BENCH_KEEP").is_ok_and(|v| v == "1");
        if let Ok(dir) = std::env::var("BENCH_DIR") {
            let path = PathBuf::from(dir);
            fs::create_dir_all(&path)?;
            for entry in entries {
                if path.join(entry).exists() {
                    return Err(format!(
                        "{} already exists; remove it or choose another BENCH_DIR",
                        path.join(entry).display()
                    )
                    .into());
                }
            }
            return Ok(Self {
                path: fs::canonicalize(path)?,
                entries,
                owned: false,
                keep,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("backup-bench-{bench}-"))
            .tempdir_in("/var/tmp")?;
        Ok(Self {
            path: dir.keep(),
            entries,
            owned: true,
            keep,
        })
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Removes the directory or the program's entries in it, unless `BENCH_KEEP=1`.
    pub fn finish(&self) {
        if self.keep {
            println!(
                "\nBENCH_KEEP=1: kept the work directory {}",
                self.path.display()
            );
            return;
        }
        let removed = if self.owned {
            fs::remove_dir_all(&self.path)
        } else {
            self.entries
                .iter()
                .try_for_each(|e| remove(&self.path.join(e)))
        };
        if let Err(e) = removed {
            eprintln!("warning: could not clean up {}: {e}", self.path.display());
        }
    }
}

/// Removes a file or a directory tree, if it exists.
pub fn remove(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

/// Reads every file under `path` (or `path` itself) once, so the timed runs find it cached.
pub fn warm(path: &Path) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut read_file = |p: &Path| -> io::Result<()> {
        let mut f = fs::File::open(p)?;
        while f.read(&mut buf)? > 0 {}
        Ok(())
    };
    if path.is_file() {
        return Ok(read_file(path)?);
    }
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(entry.path());
            } else if ty.is_file() {
                read_file(&entry.path())?;
            }
        }
    }
    Ok(())
}

/// `du -sb`: the apparent size of every entry under `path`, `path` included.
pub fn du(path: &Path) -> Result<u64> {
    let meta = fs::symlink_metadata(path)?;
    let mut total = meta.len();
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            total += du(&entry?.path())?;
        }
    }
    Ok(total)
}
