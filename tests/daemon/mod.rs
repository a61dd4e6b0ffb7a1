//! The real `backupd` process end to end.

mod jobs;
mod notify;
mod planned;
mod support;
mod unreachable;
