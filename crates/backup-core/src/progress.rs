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
    /// A sink of its own (a second bar) for work that runs at the same
    /// time as the work reported here. `None`, the default, means the sink
    /// draws one thing at a time: [`beside`] then keeps that work's
    /// warnings and cancellation and drops its phases and bytes.
    fn lane(&self) -> Option<Box<dyn Progress + '_>> {
        None
    }
}

/// The progress of work that runs beside the work `progress` reports (the
/// databases of a capture while its trees are read): the sink's own lane
/// when it has one, else one that passes on warnings and cancellation only.
pub(crate) fn beside(progress: &dyn Progress) -> Box<dyn Progress + '_> {
    progress
        .lane()
        .unwrap_or_else(|| Box::new(WarningsOnly(progress)))
}

/// Passes on warnings and cancellation, nothing else.
struct WarningsOnly<'a>(&'a dyn Progress);

impl Progress for WarningsOnly<'_> {
    fn warn(&self, message: &str) {
        self.0.warn(message);
    }

    fn cancelled(&self) -> bool {
        self.0.cancelled()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    /// Draws one thing at a time and records what reached it.
    #[derive(Default)]
    struct Single {
        seen: Mutex<Vec<String>>,
        stop: AtomicBool,
    }

    impl Progress for Single {
        fn phase(&self, name: &str, _: Option<u64>) {
            self.seen.lock().unwrap().push(format!("phase {name}"));
        }
        fn inc(&self, bytes: u64) {
            self.seen.lock().unwrap().push(format!("inc {bytes}"));
        }
        fn warn(&self, message: &str) {
            self.seen.lock().unwrap().push(format!("warn {message}"));
        }
        fn cancelled(&self) -> bool {
            self.stop.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn work_beside_a_single_bar_keeps_its_warnings_and_cancellation_only() {
        let single = Single::default();
        let side = beside(&single);
        side.phase("reading database dms", Some(10));
        side.inc(10);
        side.warn("table t skipped");
        assert_eq!(*single.seen.lock().unwrap(), ["warn table t skipped"]);
        assert!(!side.cancelled());
        single.stop.store(true, Ordering::SeqCst);
        assert!(side.cancelled());
    }
}
