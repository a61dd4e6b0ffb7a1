//! The `backupd` daemon.
fn main() {}
