//! Rollback end to end: the real `backup` binary, real directories (a
//! release tree with a `current` symlink, a web tree, a secret config
//! directory, a single config file) and, in `postgres`, a real cluster.
//! Hooks write what they see to a log, so their order is checked too.

mod crash;
pub(crate) mod files;
mod postgres;
mod refusals;
mod salvage;
mod salvage_fallbacks;
pub(crate) mod support;
