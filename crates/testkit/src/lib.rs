//! Test harness for the backup engine: throwaway servers on loopback.
//!
//! - [`Garage`]: a single-node Garage S3 server with a bucket and a key;
//! - [`GarageCluster`]: several Garage nodes (replication factor 3) with a
//!   bucket and a key, whose nodes a test may kill and restart;
//! - [`Postgres`]: a PostgreSQL cluster made with `initdb` and run with
//!   `pg_ctl`.
//!
//! Every server lives in its own temporary directory, listens on free
//! 127.0.0.1 ports only, and is stopped when its handle is dropped. The
//! constructors panic with the server's log when something goes wrong: they
//! are meant for tests.

mod garage;
mod garage_cluster;
mod postgres;

pub use garage::Garage;
pub use garage_cluster::GarageCluster;
pub use postgres::Postgres;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// Sets `path`'s access time far before its modification time, so that
/// any read of the file moves it (`relatime`), and returns that time.
pub fn unread_since_long_ago(path: &Path) -> std::time::SystemTime {
    let long_ago = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open to set its access time");
    f.set_times(std::fs::FileTimes::new().set_accessed(long_ago))
        .expect("set the access time");
    long_ago
}

/// When the file at `path` was last read (its access time).
pub fn read_at(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.accessed())
        .expect("the access time")
}

/// Deterministic pseudo-random bytes (xorshift), so that test data neither
/// compresses nor deduplicates by accident; the same seed gives the same bytes.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot bind a port on 127.0.0.1")
}

/// Finds an executable on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs a command, panicking with its output when it fails.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// The last `max` bytes of a log file, for panic messages.
fn log_tail(path: &Path, max: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Waits up to `timeout` for a child to exit; returns whether it did.
fn wait_timeout(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
