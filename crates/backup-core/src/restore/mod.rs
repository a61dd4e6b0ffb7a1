//! Restores: staged, verified, then moved into place.

mod files;
mod place;

pub use files::{restore_files, RestoreOptions, RestoreReport};
pub use place::{exchange_or_move, StagingDir};
