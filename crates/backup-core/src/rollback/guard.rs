//! The system lock: one rollback, undo or restore of a system at a time.
//! It is an `flock` on a file in the state directory, so the kernel drops
//! it when its holder exits, however it exits: a killed rollback never
//! leaves a lock behind.

use crate::error::{Error, ErrorKind, Result};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// A held system lock; released on drop.
#[derive(Debug)]
pub struct SystemLock {
    _file: std::fs::File,
}

impl SystemLock {
    /// Takes the lock at `path` for `operation`, or fails at once with
    /// [`ErrorKind::Locked`] naming the holder.
    pub fn acquire(path: &Path, operation: &str) -> Result<SystemLock> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(format!("cannot open the lock file {}", path.display()), e))?;
        if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "another rollback, undo or restore of this system is running ({}): wait for it to end",
                    holder.trim()
                ),
            ));
        }
        let note = format!(
            "{operation}, pid {}, since {}",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        );
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = file.write_all(note.as_bytes());
        Ok(SystemLock { _file: file })
    }
}
