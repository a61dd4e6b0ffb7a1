//! Sources: what a snapshot captures.

pub mod files;
pub mod live;
pub mod postgres;
mod xattrs;
