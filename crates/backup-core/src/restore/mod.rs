//! Restores: staged, verified, then moved into place.

mod admin;
mod database;
mod database_check;
mod files;
mod handle;
mod place;
mod seed;
mod selection;

pub use admin::drop_database;
pub(crate) use admin::{allow_connections, database_exists, maintenance, rename, rename_closed};
pub use database::{
    component_blobs, restore_database, DatabaseRestoreOptions, DatabaseRestoreReport,
};
pub(crate) use database::{derived_name, stage_database, StageOptions};
pub use database_check::{restore_test, Mismatch, RestoreTestReport};
pub(crate) use files::stage_component;
pub use files::{restore_files, RestoreOptions, RestoreReport};
pub use place::{exchange_or_move, put_in_place, StagingDir};
