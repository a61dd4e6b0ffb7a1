//! `/metrics`: the daemon's state in the Prometheus text format, built
//! afresh for every scrape from the state (which survives restarts) and
//! the repository figures read at start-up and after every job, so every
//! metric is present from the first scrape.

use crate::schedule::overdue;
use crate::shared::Shared;
use backup_core::system::JobKind;
use prometheus::{Encoder, GaugeVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("a valid metric");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn int_gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("a valid metric");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

/// The metrics text.
pub fn render(shared: &Shared) -> String {
    let r = Registry::new();
    jobs(&r, shared);
    repository(&r, shared);
    verification(&r, shared);
    let info = gauge_vec(
        &r,
        "backup_build_info",
        "The daemon's version.",
        &["version"],
    );
    info.with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1.0);
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&r.gather(), &mut out)
        .expect("text encoding");
    String::from_utf8(out).expect("UTF-8")
}

fn jobs(r: &Registry, shared: &Shared) {
    let last_success = gauge_vec(
        r,
        "backup_last_success_timestamp_seconds",
        "When the job last succeeded (Unix time).",
        &["job"],
    );
    let next_run = gauge_vec(
        r,
        "backup_next_run_timestamp_seconds",
        "When the job runs next (Unix time).",
        &["job"],
    );
    let runs = counter_vec(
        r,
        "backup_runs_total",
        "Runs of the job by result.",
        &["job", "result"],
    );
    let duration = gauge_vec(
        r,
        "backup_duration_seconds",
        "How long the job's last run took.",
        &["job"],
    );
    let added = gauge_vec(
        r,
        "backup_added_bytes",
        "Bytes the job's last successful run added (create) or freed (prune).",
        &["job"],
    );
    let overdue_g = gauge_vec(
        r,
        "backup_job_overdue",
        "1 when the job's run is late.",
        &["job"],
    );
    let config = shared.config();
    let state = shared.state();
    let running = shared.running();
    let now = shared.now();
    for s in &config.system.schedules {
        let job = state.jobs.get(&s.name).cloned().unwrap_or_default();
        let l = [s.name.as_str()];
        last_success
            .with_label_values(&l)
            .set(job.last_success.map_or(0.0, |t| t.timestamp() as f64));
        next_run
            .with_label_values(&l)
            .set(job.next_run.map_or(0.0, |t| t.timestamp() as f64));
        for result in ["success", "failure", "cancelled"] {
            let n = job.totals.get(result).copied().unwrap_or(0);
            runs.with_label_values(&[s.name.as_str(), result]).inc_by(n);
        }
        duration
            .with_label_values(&l)
            .set(job.last().map_or(0.0, |r| r.duration_secs()));
        if matches!(s.job, JobKind::Create | JobKind::Prune) {
            let ok = job
                .runs
                .iter()
                .rev()
                .find(|r| r.result == crate::state::Outcome::Success);
            added
                .with_label_values(&l)
                .set(ok.and_then(|r| r.bytes).unwrap_or(0) as f64);
        }
        let late = overdue(
            s,
            config.daemon.timezone,
            &job,
            now,
            running.as_deref() == Some(s.name.as_str()),
        );
        overdue_g
            .with_label_values(&l)
            .set(if late { 1.0 } else { 0.0 });
    }
}

fn repository(r: &Registry, shared: &Shared) {
    let stats = shared.repo_stats();
    int_gauge(
        r,
        "backup_repository_size_bytes",
        "Bytes of packs in the repository.",
    )
    .set(stats.size_bytes as i64);
    int_gauge(
        r,
        "backup_snapshots",
        "Readable snapshots in the repository.",
    )
    .set(stats.snapshots as i64);
    let drill = shared.state().drill_secs.unwrap_or(0.0);
    let g = prometheus::Gauge::new(
        "backup_restore_drill_duration_seconds",
        "How long the last restore drill's restore took.",
    )
    .expect("a valid metric");
    r.register(Box::new(g.clone())).expect("registered once");
    g.set(drill);
}

fn verification(r: &Registry, shared: &Shared) {
    let last = gauge_vec(
        r,
        "backup_verify_last_success_timestamp_seconds",
        "When verification of this kind last passed (Unix time).",
        &["kind"],
    );
    let failures = counter_vec(
        r,
        "backup_verify_failures_total",
        "Verification runs of this kind that found problems.",
        &["kind"],
    );
    let state = shared.state();
    for kind in ["structure", "read-data"] {
        let t = state
            .verify
            .last_success
            .get(kind)
            .map_or(0.0, |t| t.timestamp() as f64);
        last.with_label_values(&[kind]).set(t);
        failures
            .with_label_values(&[kind])
            .inc_by(state.verify.failures.get(kind).copied().unwrap_or(0));
    }
    let g = prometheus::Gauge::new(
        "backup_verify_coverage_ratio",
        "Share of the repository's packs read back and found good within the read-data period.",
    )
    .expect("a valid metric");
    r.register(Box::new(g.clone())).expect("registered once");
    g.set(shared.coverage());
}
