//! Repository locks: shared for create, restore and verify; exclusive for
//! operations that delete data. A lock is a small JSON object in `locks/`
//! that its holder refreshes; a lock whose holder is gone (same host, dead
//! pid) or that was not refreshed for [`STALE_AFTER`] is removed by the next
//! process that meets it, so no one ever has to unlock by hand.

use super::{hostname, Repository};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Kind, ObjectStore};
use crossbeam_channel::{bounded, Sender};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A lock not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// Pause between two tries while waiting for a lock.
const RETRY_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockInfo {
    exclusive: bool,
    operation: String,
    host: String,
    pid: u32,
    created: i64,
    refreshed: i64,
}

impl LockInfo {
    fn is_stale(&self, now: i64, host: &str) -> bool {
        if now - self.refreshed > STALE_AFTER.as_secs() as i64 {
            return true;
        }
        if self.host == host {
            // Only "no such process" proves the holder is gone; EPERM means
            // it lives under another user.
            let alive = rustix::process::Pid::from_raw(self.pid as i32)
                .map(|p| rustix::process::test_kill_process(p) != Err(rustix::io::Errno::SRCH))
                .unwrap_or(false);
            return !alive;
        }
        false
    }
}

/// A held lock; released on drop.
pub struct Lock {
    store: Arc<dyn ObjectStore>,
    name: String,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lock({})", self.name)
    }
}

fn conflicts(want_exclusive: bool, other: &LockInfo) -> bool {
    want_exclusive || other.exclusive
}

impl Lock {
    /// Takes a lock for `operation`, waiting up to the repository's
    /// [`Repository::lock_wait`] for conflicting locks to go.
    pub fn acquire(repo: &Repository, exclusive: bool, operation: &str) -> Result<Lock> {
        let deadline = std::time::Instant::now() + repo.lock_wait();
        loop {
            match Self::try_acquire(repo, exclusive, operation) {
                Err(e) if e.kind() == ErrorKind::Locked && std::time::Instant::now() < deadline => {
                    std::thread::sleep(RETRY_EVERY);
                }
                other => return other,
            }
        }
    }

    /// Takes a lock for `operation`, or fails at once.
    fn try_acquire(repo: &Repository, exclusive: bool, operation: &str) -> Result<Lock> {
        let store = repo.store().clone();
        let host = hostname();
        let now = chrono::Utc::now().timestamp();
        check_others(store.as_ref(), exclusive, &host, now, None)?;
        let info = LockInfo {
            exclusive,
            operation: operation.to_string(),
            host: host.clone(),
            pid: std::process::id(),
            created: now,
            refreshed: now,
        };
        let mut rnd = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut rnd);
        let name = hex::encode(rnd);
        store.put(Kind::Lock, &name, &serde_json::to_vec(&info)?)?;
        // Someone may have locked at the same time: check again, and back off.
        if let Err(e) = check_others(store.as_ref(), exclusive, &host, now, Some(&name)) {
            let _ = store.delete(Kind::Lock, &name);
            return Err(e);
        }
        let (tx, rx) = bounded::<()>(1);
        let thread = {
            let store = store.clone();
            let name = name.clone();
            std::thread::spawn(move || {
                let mut info = info;
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(REFRESH_EVERY)
                {
                    info.refreshed = chrono::Utc::now().timestamp();
                    if let Ok(bytes) = serde_json::to_vec(&info) {
                        let _ = store.put(Kind::Lock, &name, &bytes);
                    }
                }
            })
        };
        let lock = Lock {
            store,
            name,
            stop: Some(tx),
            thread: Some(thread),
        };
        // What the repository held before the lock may have been pruned:
        // read the index as it is now.
        repo.refresh_index()?;
        Ok(lock)
    }
}

fn check_others(
    store: &dyn ObjectStore,
    exclusive: bool,
    host: &str,
    now: i64,
    own: Option<&str>,
) -> Result<()> {
    for obj in store.list(Kind::Lock)? {
        if Some(obj.name.as_str()) == own {
            continue;
        }
        let Ok(bytes) = store.get(Kind::Lock, &obj.name) else {
            continue;
        };
        let Ok(other) = serde_json::from_slice::<LockInfo>(&bytes) else {
            continue;
        };
        if other.is_stale(now, host) {
            let _ = store.delete(Kind::Lock, &obj.name);
            continue;
        }
        if conflicts(exclusive, &other) {
            let since = chrono::DateTime::from_timestamp(other.created, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "the repository is locked ({}) by `{}` on {} (pid {}) since {since}; \
                     wait for it to finish (a lock left by a dead process is removed \
                     automatically)",
                    if other.exclusive {
                        "exclusive"
                    } else {
                        "shared"
                    },
                    other.operation,
                    other.host,
                    other.pid
                ),
            ));
        }
    }
    Ok(())
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.store.delete(Kind::Lock, &self.name);
    }
}
