//! Timed runs of the tools: wall time, client and server CPU, peak memory, phases.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Instant, SystemTime};

use crate::bench::Bench;
use crate::sampler::Sampler;
use crate::support::process::{announce, check, timed_command, TimeOutput};
use crate::support::Result;
use crate::PASSWORD;

/// The outcome of one timed child process.
pub struct Timed {
    pub secs: f64,
    pub stdout: String,
    pub max_rss_kib: Option<u64>,
    /// User + system CPU of the child and its children.
    pub cpu_secs: Option<f64>,
    /// CPU of the PostgreSQL server processes meanwhile.
    pub server_cpu_secs: Option<f64>,
    /// Phases seen in `pg_stat_activity`.
    pub phases: String,
    /// Of several runs: how many, and the slowest (`best` keeps the fastest).
    pub runs: usize,
    pub worst_secs: f64,
}

impl Timed {
    pub fn summary(&self) -> String {
        let mut s = format!("{:.2} s", self.secs);
        if self.runs > 1 {
            let _ = write!(
                s,
                " (best of {}, worst {:.2} s)",
                self.runs, self.worst_secs
            );
        }
        if let Some(c) = self.cpu_secs {
            let _ = write!(s, ", client CPU {c:.1} s");
        }
        if let Some(c) = self.server_cpu_secs {
            let _ = write!(s, ", server CPU {c:.1} s");
        }
        if let Some(k) = self.max_rss_kib {
            let _ = write!(s, ", max RSS {:.0} MiB", k as f64 / 1024.0);
        }
        s
    }
}

impl Timed {
    /// Adds a step that belongs to the same operation (times, CPU; the larger RSS).
    pub fn add(&mut self, other: &Timed) {
        self.secs += other.secs;
        self.worst_secs = self.secs;
        let sum = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a + b);
        self.cpu_secs = sum(self.cpu_secs, other.cpu_secs);
        self.server_cpu_secs = sum(self.server_cpu_secs, other.server_cpu_secs);
        self.max_rss_kib = self.max_rss_kib.max(other.max_rss_kib);
    }
}

/// The fastest of several runs of the same operation, which least felt other work on the
/// machine; it remembers the slowest.
pub fn best(mut runs: Vec<Timed>) -> Timed {
    let worst = runs.iter().map(|t| t.secs).fold(0.0, f64::max);
    let n = runs.len();
    runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let mut b = runs.swap_remove(0);
    b.runs = n;
    b.worst_secs = worst;
    b
}

impl Bench<'_> {
    /// CPU seconds used so far by the postmaster and all its children (backends, workers),
    /// exited ones included.
    fn server_cpu(&self) -> Option<f64> {
        let pid = self.postmaster?;
        let (_, own) = proc_times(pid)?;
        let mut ticks = own;
        for entry in fs::read_dir("/proc").ok()?.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some((ppid, t)) = proc_times(child) {
                if ppid == pid {
                    ticks += t;
                }
            }
        }
        Some(ticks as f64 / self.clock_ticks)
    }

    /// Runs one timed child: wall time, GNU time's max RSS and user+sys, server CPU and the
    /// phases seen in `pg_stat_activity`.
    pub fn run_timed(&self, name: &str, program: &Path, args: &[&OsStr]) -> Result<Timed> {
        let unset = ["PGPASSWORD", "PGSERVICE", "PGOPTIONS", "PGDATABASE"];
        let time_file = self.time_file.as_deref();
        let mut cmd = timed_command(program, time_file, "%M %U %S", &unset, PASSWORD);
        cmd.args(args)
            .env("PGHOST", self.pg.socket_dir())
            .env("PGPORT", self.pg.port().to_string())
            .env("PGUSER", self.pg.user());
        announce(name)?;
        let sampler = Sampler::start(self)?;
        let cpu_before = self.server_cpu();
        let started = SystemTime::now();
        let t = Instant::now();
        let out = cmd.output()?;
        let secs = t.elapsed().as_secs_f64();
        let cpu_after = self.server_cpu();
        let phases = sampler.finish(started);
        check(name, &out)?;
        let (max_rss_kib, cpu_secs) = match time_file {
            Some(file) => {
                let time = TimeOutput::read(file, 3)?;
                let rss = time.field(0)?;
                let user: f64 = time.field(1)?;
                let sys: f64 = time.field(2)?;
                (Some(rss), Some(user + sys))
            }
            None => (None, None),
        };
        let server_cpu_secs = match (cpu_before, cpu_after) {
            (Some(a), Some(b)) => Some((b - a).max(0.0)),
            _ => None,
        };
        let timed = Timed {
            secs,
            stdout: String::from_utf8(out.stdout)?,
            max_rss_kib,
            cpu_secs,
            server_cpu_secs,
            phases,
            runs: 1,
            worst_secs: secs,
        };
        println!("{}", timed.summary());
        Ok(timed)
    }
}

/// `(ppid, utime + stime + cutime + cstime)` of a process, in clock ticks.
fn proc_times(pid: u32) -> Option<(u32, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let mut ticks = 0u64;
    for i in 11..=14 {
        ticks += f.get(i)?.parse::<u64>().ok()?;
    }
    Some((ppid, ticks))
}

/// The first three fields of `/proc/loadavg`: other work on the machine skews the timings.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}
