//! Sources: what a snapshot captures.

pub mod files;
pub mod postgres;
mod xattrs;
