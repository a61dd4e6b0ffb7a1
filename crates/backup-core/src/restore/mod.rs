//! Restores: staged, verified, then moved into place.

mod database;
mod database_check;
mod files;
mod handle;
mod place;
mod seed;
mod selection;

pub use database::{
    component_blobs, drop_database, restore_database, DatabaseRestoreOptions, DatabaseRestoreReport,
};
pub(crate) use database::{
    database_exists, derived_name, maintenance, stage_database, StageOptions,
};
pub use database_check::{restore_test, Mismatch, RestoreTestReport};
pub(crate) use files::stage_component;
pub use files::{restore_files, RestoreOptions, RestoreReport};
pub use place::{exchange_or_move, put_in_place, StagingDir};
