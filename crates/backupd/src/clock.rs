//! The daemon's idea of now. The process reads the wall clock; the
//! scheduler's tests read a clock that moves with tokio's (paused) time,
//! so that a day of schedules runs in milliseconds and every time a job
//! started at is exact.

use chrono::{DateTime, Utc};

/// Where the time comes from.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock.
    Wall,
    /// `base` plus the tokio time elapsed since `start` (paused in tests).
    Virtual {
        /// The wall time the clock starts at.
        base: DateTime<Utc>,
        /// The tokio instant that `base` stands for.
        start: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock at `base` now, moving with tokio's time.
    pub fn starting_at(base: DateTime<Utc>) -> Clock {
        Clock::Virtual {
            base,
            start: tokio::time::Instant::now(),
        }
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::Wall => Utc::now(),
            Clock::Virtual { base, start } => {
                *base + chrono::Duration::from_std(start.elapsed()).unwrap_or(chrono::Duration::MAX)
            }
        }
    }
}
