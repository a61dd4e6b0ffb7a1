//! One module per command.

pub mod config;
pub mod create;
pub mod daemon_client;
pub mod diff;
pub mod docs;
pub mod export;
pub mod forget;
pub mod import;
pub mod init;
pub mod prune;
pub mod restore;
pub mod rollback;
pub mod rollback_apply;
pub mod rollback_plan;
pub mod salvage;
pub mod show;
pub mod snapshots;
pub mod status;
pub mod verify;

use anyhow::Result;
use backup_core::snapshot::{resolve_snapshot, Snapshot};
use backup_core::{Id, Repository};

/// Resolves `latest`, an id or a prefix, narrowed by tags.
pub fn pick(repo: &Repository, spec: &str, tags: &[String]) -> Result<(Id, Snapshot)> {
    Ok(resolve_snapshot(repo, spec, tags)?)
}
