//! Output: progress bars on a terminal, quiet and JSON modes for scripts.

use backup_core::Progress;
use indicatif::{ProgressBar, ProgressStyle};
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
            show,
            bar: Mutex::new(None),
            warnings: Mutex::new(Vec::new()),
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

/// Progress bars on stderr (hidden when not a terminal).
pub struct Bars {
    show: bool,
    bar: Mutex<Option<ProgressBar>>,
    warnings: Mutex<Vec<String>>,
}

impl Bars {
    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = self.bar.lock().expect("lock").take() {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bars {
    fn phase(&self, name: &str, total: Option<u64>) {
        if !self.show {
            return;
        }
        let mut g = self.bar.lock().expect("lock");
        if let Some(b) = g.take() {
            b.finish_and_clear();
        }
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
        bar.set_message(name.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        *g = Some(bar);
    }

    fn inc(&self, bytes: u64) {
        if let Some(b) = self.bar.lock().expect("lock").as_ref() {
            b.inc(bytes);
        }
    }

    fn warn(&self, message: &str) {
        self.warnings
            .lock()
            .expect("lock")
            .push(message.to_string());
        // Warnings say what a snapshot lacks: shown even with --quiet and --json.
        match self.bar.lock().expect("lock").as_ref() {
            Some(b) => b.println(format!("warning: {message}")),
            None => eprintln!("warning: {message}"),
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
