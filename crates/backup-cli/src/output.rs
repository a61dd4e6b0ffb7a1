//! Output: progress bars on a terminal, quiet and JSON modes for scripts.

use backup_core::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

/// How the command talks to its caller.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Print one JSON document on stdout instead of text.
    pub json: bool,
    /// Print nothing but errors and the essential result.
    pub quiet: bool,
}

impl Output {
    /// A progress sink fit for this output mode.
    pub fn progress(&self) -> Bars {
        let show = !self.json && !self.quiet && std::io::stderr().is_terminal();
        Bars {
            main: Lane::new(show, MultiProgress::new()),
        }
    }

    /// Prints a JSON value on stdout.
    pub fn print_json(&self, value: &serde_json::Value) {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }

    /// Prints a line of text unless quiet or JSON.
    pub fn say(&self, text: impl AsRef<str>) {
        if !self.json && !self.quiet {
            println!("{}", text.as_ref());
        }
    }
}

/// Progress bars on stderr (hidden when not a terminal): one for the
/// command's work, and one more for each piece of work it runs beside it
/// (the databases of a capture while its trees are read).
pub struct Bars {
    main: Lane,
}

impl Bars {
    /// Bars drawn on `target` (a test's in-memory terminal).
    #[cfg(test)]
    fn drawn_to(target: indicatif::ProgressDrawTarget) -> Bars {
        Bars {
            main: Lane::new(true, MultiProgress::with_draw_target(target)),
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.main.clear();
    }
}

impl Progress for Bars {
    fn phase(&self, name: &str, total: Option<u64>) {
        self.main.phase(name, total);
    }

    fn inc(&self, bytes: u64) {
        self.main.inc(bytes);
    }

    fn warn(&self, message: &str) {
        self.main.warn(message);
    }

    fn lane(&self) -> Option<Box<dyn Progress + '_>> {
        Some(Box::new(Lane::new(self.main.show, self.main.multi.clone())))
    }
}

/// One line of the display: the bar of the phase it is in.
struct Lane {
    show: bool,
    multi: MultiProgress,
    bar: Mutex<Option<ProgressBar>>,
}

impl Lane {
    /// A line of `multi`'s display, drawn only when `show`; no bar until
    /// its first phase.
    fn new(show: bool, multi: MultiProgress) -> Lane {
        Lane {
            show,
            multi,
            bar: Mutex::new(None),
        }
    }

    /// Removes this line's bar.
    fn clear(&self) {
        if let Some(b) = self.bar.lock().expect("lock").take() {
            b.finish_and_clear();
            self.multi.remove(&b);
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.clear();
    }
}

impl Progress for Lane {
    fn phase(&self, name: &str, total: Option<u64>) {
        if !self.show {
            return;
        }
        self.clear();
        let bar = match total {
            Some(t) => {
                let b = ProgressBar::new(t);
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b
            }
            None => ProgressBar::new_spinner(),
        };
        let bar = self.multi.add(bar);
        bar.set_message(name.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        *self.bar.lock().expect("lock") = Some(bar);
    }

    fn inc(&self, bytes: u64) {
        if let Some(b) = self.bar.lock().expect("lock").as_ref() {
            b.inc(bytes);
        }
    }

    fn warn(&self, message: &str) {
        // Warnings say what a snapshot lacks: shown even with --quiet and --json.
        let line = format!("warning: {message}");
        if !self.show || self.multi.println(&line).is_err() {
            eprintln!("{line}");
        }
    }
}

/// Formats a byte count for people.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// Seconds as `0.42s`, `12.3s` or `3m05s`.
pub fn human_secs(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.2}s")
    } else if secs < 120.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", (secs / 60.0) as u64, (secs as u64) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::{InMemoryTerm, ProgressDrawTarget};

    /// What the terminal shows once the bars' next draw is due.
    fn shown(term: &InMemoryTerm) -> String {
        std::thread::sleep(std::time::Duration::from_millis(300));
        term.contents()
    }

    #[test]
    fn work_beside_gets_a_line_of_its_own_and_takes_it_away_when_done() {
        let term = InMemoryTerm::new(10, 120);
        let bars = Bars::drawn_to(ProgressDrawTarget::term_like_with_hz(
            Box::new(term.clone()),
            100,
        ));
        bars.phase("reading /srv/dms/api", Some(100));
        bars.inc(40);
        let lane = bars.lane().expect("bars draw lanes");
        lane.phase("reading database dms", Some(50));
        lane.inc(10);
        let both = shown(&term);
        assert!(both.contains("reading /srv/dms/api"), "{both}");
        assert!(both.contains("reading database dms"), "{both}");
        lane.warn("table t left out");
        drop(lane);
        bars.inc(10);
        let after = shown(&term);
        assert!(after.contains("warning: table t left out"), "{after}");
        assert!(after.contains("reading /srv/dms/api"), "{after}");
        assert!(!after.contains("reading database dms"), "{after}");
        bars.finish();
        assert!(!shown(&term).contains("reading /srv/dms/api"));
    }
}
