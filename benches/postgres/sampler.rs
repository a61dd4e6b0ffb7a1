//! Phases, sampled from `pg_stat_activity` while a tool runs.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bench::Bench;
use crate::support::Result;

/// A `psql` session that asks `pg_stat_activity` for the active client queries every 0.2 s,
/// fed by a thread; its output is read when it ends.
pub struct Sampler {
    child: Child,
    stop: Arc<AtomicBool>,
    feeder: std::thread::JoinHandle<()>,
    /// Collects psql's output while it runs.
    reader: std::thread::JoinHandle<Vec<u8>>,
}

const SAMPLE_SQL: &str = "SELECT extract(epoch FROM clock_timestamp())::text || '|' || \
     coalesce(string_agg(regexp_replace(left(query, 120) || ' ... ' || right(query, 80), '\\s+', ' ', 'g'), \
     '^'), '') \
     FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend' \
     AND pid <> pg_backend_pid();\n";

/// Whether a statement (upper-cased) belongs to a phase.
type PhaseTest = fn(&str) -> bool;

/// Kinds of statements, in report order: (label, test).
const PHASES: &[(&str, PhaseTest)] = &[
    ("COPY TO", |q| {
        q.starts_with("COPY") && q.contains("TO STDOUT")
    }),
    ("COPY FROM", |q| {
        q.starts_with("COPY") && q.contains("FROM STDIN")
    }),
    ("indexes", |q| {
        q.starts_with("CREATE INDEX")
            || q.starts_with("CREATE UNIQUE INDEX")
            || (q.starts_with("ALTER TABLE")
                && (q.contains("PRIMARY KEY") || q.contains(" UNIQUE")))
    }),
    ("FKs", |q| {
        q.starts_with("ALTER TABLE") && q.contains("FOREIGN KEY")
    }),
];

impl Sampler {
    pub fn start(bench: &Bench) -> Result<Sampler> {
        let mut child = bench
            .pg
            .client_command("psql")
            .args(["-X", "-q", "-A", "-t", "-d", "postgres"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut stdin = child.stdin.take().ok_or("psql: no stdin")?;
        // Read as it comes: psql blocks once the pipe is full, and then
        // stops reading the queries the feeder sends (both would hang).
        let mut stdout = child.stdout.take().ok_or("psql: no stdout")?;
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.read_to_end(&mut out);
            out
        });
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let feeder = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                if stdin.write_all(SAMPLE_SQL.as_bytes()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Ok(Sampler {
            child,
            stop,
            feeder,
            reader,
        })
    }

    /// Stops sampling; returns the phases as "name first-last s" relative to `started`.
    pub fn finish(self, started: SystemTime) -> String {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.feeder.join();
        // The feeder dropped stdin: psql ends after the queries it has.
        let mut child = self.child;
        let out = self.reader.join().unwrap_or_default();
        if child.wait().is_err() {
            return "n/a".into();
        }
        let t0 = started
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut spans: Vec<Option<(f64, f64)>> = vec![None; PHASES.len()];
        for line in String::from_utf8_lossy(&out).lines() {
            let Some((at, queries)) = line.split_once('|') else {
                continue;
            };
            let Ok(at) = at.parse::<f64>() else { continue };
            let at = at - t0;
            for q in queries.split('^') {
                let q = q.trim_start().to_ascii_uppercase();
                for (i, (_, test)) in PHASES.iter().enumerate() {
                    if test(&q) {
                        let span = spans[i].get_or_insert((at, at));
                        span.0 = span.0.min(at);
                        span.1 = span.1.max(at);
                    }
                }
            }
        }
        let parts: Vec<String> = PHASES
            .iter()
            .zip(spans)
            .filter_map(|((name, _), span)| {
                span.map(|(a, b)| format!("{name} {:.1}-{:.1} s", a.max(0.0), b.max(0.0)))
            })
            .collect();
        if parts.is_empty() {
            "none seen".into()
        } else {
            parts.join(", ")
        }
    }
}
