//! Restores: staged, verified, then moved into place.

mod database;
mod files;
mod place;

pub use database::{
    component_blobs, drop_database, restore_database, restore_test, DatabaseRestoreOptions,
    DatabaseRestoreReport, Mismatch, RestoreTestReport, VerifiedStream,
};
pub use files::{restore_files, RestoreOptions, RestoreReport};
pub use place::{exchange_or_move, StagingDir};
