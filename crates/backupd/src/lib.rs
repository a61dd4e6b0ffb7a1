//! backupd: scheduled snapshots, continuous verification, retention.
