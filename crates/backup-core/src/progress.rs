//! Progress reporting hooks; the CLI draws bars, the daemon exports metrics.

/// Receives progress of long operations. All methods have empty defaults.
pub trait Progress: Sync {
    /// A new phase starts, with its total in bytes when known.
    fn phase(&self, _name: &str, _total_bytes: Option<u64>) {}
    /// Bytes done in the current phase.
    fn inc(&self, _bytes: u64) {}
    /// A warning to show the user now.
    fn warn(&self, _message: &str) {}
    /// Whether the caller asked to stop (a daemon shutting down): long
    /// operations check it between files, table parts and packs, and stop
    /// with [`crate::ErrorKind::Interrupted`] before they commit anything.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Fails with [`crate::ErrorKind::Interrupted`] when `progress` says the
/// caller asked to stop.
pub fn check_cancelled(progress: &dyn Progress) -> crate::Result<()> {
    if progress.cancelled() {
        return Err(crate::Error::new(
            crate::ErrorKind::Interrupted,
            "cancelled: the operation was stopped before it committed anything",
        ));
    }
    Ok(())
}

/// A progress sink that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
