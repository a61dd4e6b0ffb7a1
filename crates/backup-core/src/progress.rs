//! Progress reporting hooks; the CLI draws bars, the daemon exports metrics.

/// Receives progress of long operations. All methods have empty defaults.
pub trait Progress: Sync {
    /// A new phase starts, with its total in bytes when known.
    fn phase(&self, _name: &str, _total_bytes: Option<u64>) {}
    /// Bytes done in the current phase.
    fn inc(&self, _bytes: u64) {}
    /// A warning to show the user now.
    fn warn(&self, _message: &str) {}
}

/// A progress sink that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
