//! The configuration the daemon runs with: the system description, its
//! `[daemon]` table, the state directory and the bearer token, read and
//! checked together so that a bad file is refused whole (at start-up, and
//! on SIGHUP, when the old one stays in force).

use anyhow::Result;
use backup_core::system::{DaemonSection, System};
use std::path::{Path, PathBuf};

/// A loaded, checked configuration.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file it came from.
    pub path: PathBuf,
    /// The system description.
    pub system: System,
    /// Its `[daemon]` table (defaults when absent).
    pub daemon: DaemonSection,
    /// Where the daemon keeps its state.
    pub state_dir: PathBuf,
    /// The bearer token state-changing requests need, if one is set.
    pub token: Option<String>,
}

impl Loaded {
    /// Reads and checks the file, and the token (`BACKUPD_TOKEN`, else
    /// `daemon.token_file`, which must not be world-readable).
    pub fn load(path: &Path) -> Result<Loaded> {
        let system = System::load(path)?;
        let daemon = system.daemon.clone().unwrap_or_default();
        let state_dir = daemon
            .state_dir
            .clone()
            .unwrap_or_else(|| system.state_dir.clone());
        let token = daemon.token()?;
        Ok(Loaded {
            path: path.to_path_buf(),
            system,
            daemon,
            state_dir,
            token,
        })
    }
}
