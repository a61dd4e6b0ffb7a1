//! backup-core: the library behind the `backup` command.
//!
//! A repository holds snapshots of file trees as content-defined,
//! deduplicated, compressed and (by default) encrypted blobs in packs on an
//! object store: a local directory or S3. See `docs/FORMAT.md` for the
//! on-storage format.

mod create;
mod crypto;
mod diff;
mod durable;
mod error;
mod export;
mod export_db;
mod failpoint;
mod forget;
mod id;
mod parallel;
pub mod plan;
pub mod process;
mod progress;
pub mod prune;
mod references;
pub mod repository;
pub mod restore;
pub mod retention;
pub mod rollback;
pub mod salvage;
pub mod snapshot;
pub mod source;
pub mod store;
pub mod system;
mod verify;

pub use create::{
    create_snapshot, CreateOptions, CreateResult, FileSource, KnownParents, PostgresSource,
};
pub use crypto::{Cipher, MasterKey};
pub use diff::{diff_live, diff_live_component, diff_snapshots, Change, ChangeKind, LiveDiff};
pub use error::{Error, ErrorKind, Result};
pub use export::{export_snapshot, import_bundle, ExportReport};
pub use forget::{forget, Decided, ForgetGroup, ForgetOptions, ForgetReport};
pub use id::Id;
pub use progress::{check_cancelled, NoProgress, Progress};
pub use prune::{prune, PruneOptions, PruneReport};
pub use repository::{InitOptions, Repository};
pub use verify::{verify, Problem, ProblemKind, ReadData, VerifyOptions, VerifyReport};
