//! Carrying out a staged operation: stop, switch, start, health check,
//! and on any failure the same steps backwards. Every phase is written to
//! the journal before it acts.

use super::journal::{Journal, Operation, Phase, StepRecord, JOURNAL_VERSION};
use super::switch::Switch;
use super::{RollbackOptions, RollbackReport, Session};
use crate::error::{Error, ErrorKind, Result};
pub(crate) use crate::failpoint::failpoint;
use crate::id::Id;
use crate::process::{hook_failure, run_health_check, run_hook, HookRun};
use crate::salvage::{CompareStats, Salvage};
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

/// How long a hook may run when the file does not say.
const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the health check may take to pass when the file does not say.
const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two tries of the health check.
const HEALTH_INTERVAL: Duration = Duration::from_millis(200);

/// A fresh journal.
pub(crate) fn new_journal(op: Operation, snapshot: String, options: &RollbackOptions) -> Journal {
    let started = Utc::now();
    let mut rnd = [0u8; 3];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut rnd);
    Journal {
        version: JOURNAL_VERSION,
        id: format!("{}-{}", started.format("%Y%m%dT%H%M%SZ"), hex::encode(rnd)),
        operation: op,
        snapshot,
        undoes: None,
        plan_hash: options.plan_hash.clone(),
        user: std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "root".into()),
        host: crate::repository::hostname(),
        started,
        finished: None,
        phase: Phase::Staging,
        down_since: None,
        started_on_new: false,
        downtime_secs: None,
        components: Vec::new(),
        steps: Vec::new(),
        failure: None,
        reverted: false,
        no_safety_snapshot: options.no_safety_snapshot,
        safety_snapshot: None,
        undone_by: None,
        cleaned: false,
        salvage: None,
        staged_xids: Default::default(),
    }
}

/// Records a step that ran from `started`/`t0` with `result`.
pub(crate) fn record<T: AsRef<str>>(
    j: &mut Journal,
    name: &str,
    started: DateTime<Utc>,
    t0: Instant,
    result: &Result<T>,
    output: Option<String>,
) {
    record_secs(j, name, started, t0.elapsed().as_secs_f64(), result);
    if let Some(step) = j.steps.last_mut() {
        step.output = output.filter(|o| !o.is_empty());
    }
}

/// Records a step that ran from `started` for `secs` with `result`.
pub(crate) fn record_secs<T: AsRef<str>>(
    j: &mut Journal,
    name: &str,
    started: DateTime<Utc>,
    secs: f64,
    result: &Result<T>,
) {
    let (ok, detail) = match result {
        Ok(d) => (true, d.as_ref().to_string()),
        Err(e) => (false, e.to_string()),
    };
    j.steps.push(StepRecord {
        name: name.to_string(),
        started,
        duration_secs: secs,
        ok,
        detail,
        output: None,
    });
}

/// Records a step that succeeded and took no measurable time of its own.
pub(crate) fn record_ok(j: &mut Journal, name: &str, started: DateTime<Utc>, detail: &str) {
    let secs = (Utc::now() - started).num_microseconds().unwrap_or(0) as f64 / 1e6;
    j.steps.push(StepRecord {
        name: name.to_string(),
        started,
        duration_secs: secs,
        ok: true,
        detail: detail.to_string(),
        output: None,
    });
}

/// Sets the phase and writes the journal, then passes the failpoint of
/// that phase.
fn enter(session: &Session, j: &mut Journal, phase: Phase) -> Result<()> {
    j.phase = phase;
    session.state.save(j)?;
    failpoint(phase_name(phase));
    Ok(())
}

/// Sets a phase that a resume treats as the one written before it
/// (switching as stopping; starting and checking as switched) without
/// writing the journal: the application is down, and each durable write
/// then waits on the disk (tens of milliseconds when it is busy writing a
/// freshly staged database back) for nothing a resume would do otherwise.
fn pass(j: &mut Journal, phase: Phase) {
    j.phase = phase;
    failpoint(phase_name(phase));
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Staging => "staging",
        Phase::Staged => "staged",
        Phase::Stopping => "stopping",
        Phase::Switching => "switching",
        Phase::Switched => "switched",
        Phase::Starting => "starting",
        Phase::Checking => "checking",
        Phase::Reverting => "reverting",
        Phase::Done => "done",
    }
}

/// The environment hooks get.
fn hook_env(j: &Journal, step: &str) -> Vec<(String, String)> {
    let names: Vec<&str> = j.components.iter().map(|c| c.name()).collect();
    vec![
        ("BACKUP_SNAPSHOT".into(), j.snapshot.clone()),
        ("BACKUP_STEP".into(), step.into()),
        ("BACKUP_COMPONENTS".into(), names.join(" ")),
        ("BACKUP_OPERATION".into(), j.operation.word().into()),
        ("BACKUP_ROLLBACK_ID".into(), j.id.clone()),
    ]
}

/// Runs the hook `step` (`stop` or `start`) if the file sets one.
fn hook(session: &Session, j: &mut Journal, step: &str) -> Result<()> {
    let hooks = &session.system.hooks;
    let command = match step {
        "stop" => hooks.stop.clone(),
        _ => hooks.start.clone(),
    };
    let started = Utc::now();
    let t0 = Instant::now();
    let Some(command) = command else {
        record_ok(j, step, started, &format!("no hooks.{step} set"));
        return Ok(());
    };
    let timeout = hooks.hook_timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT);
    let run = run_hook(&command, &hook_env(j, step), timeout)?;
    let result = if run.passed() {
        Ok(format!("`{command}` passed"))
    } else {
        Err(hook_failure(
            &format!("the {step} hook"),
            &run,
            ErrorKind::Target,
        ))
    };
    record(j, step, started, t0, &result, Some(run.output));
    result.map(|_| ())
}

/// Runs the health check until it passes (or its time runs out).
fn health(session: &Session, j: &mut Journal) -> Result<()> {
    let hooks = &session.system.hooks;
    let started = Utc::now();
    let t0 = Instant::now();
    let Some(command) = hooks.health_check.clone() else {
        record_ok(j, "health check", started, "no hooks.health_check set");
        return Ok(());
    };
    let per_try = hooks.hook_timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT);
    let total = hooks.health_timeout.unwrap_or(DEFAULT_HEALTH_TIMEOUT);
    let runs = run_health_check(
        &command,
        &hook_env(j, "health_check"),
        per_try,
        total,
        HEALTH_INTERVAL,
    )?;
    let last: &HookRun = runs.last().expect("at least one try");
    let result = if last.passed() {
        Ok(format!("`{command}` passed after {} tries", runs.len()))
    } else {
        let e = hook_failure("health check", last, ErrorKind::Target);
        Err(e.context(format!(
            "the health check failed ({} tries in {:.0}s)",
            runs.len(),
            t0.elapsed().as_secs_f64()
        )))
    };
    record(
        j,
        "health check",
        started,
        t0,
        &result,
        Some(last.output.clone()),
    );
    result.map(|_| ())
}

/// Switches every component, in order.
fn switch_all(session: &Session, j: &mut Journal) -> Result<()> {
    for i in 0..j.components.len() {
        let c = j.components[i].clone();
        failpoint(&format!("switch:{}", c.name()));
        let started = Utc::now();
        let t0 = Instant::now();
        let result = switch_one(session, &c, true)
            .map(|()| format!("switched; the replaced copy is {}", c.kept()));
        record(
            j,
            &format!("switch {}", c.name()),
            started,
            t0,
            &result,
            None,
        );
        result?;
    }
    Ok(())
}

fn switch_one(session: &Session, c: &Switch, forward: bool) -> Result<()> {
    match (c, forward) {
        (Switch::Files(f), true) => f.forward(),
        (Switch::Files(f), false) => f.revert(),
        (Switch::Postgres(d), true) => d.forward(&session.connection(&d.name)?),
        (Switch::Postgres(d), false) => d.revert(&session.connection(&d.name)?),
    }
}

fn remove_staging(session: &Session, c: &Switch) -> Result<()> {
    match c {
        Switch::Files(f) => f.remove_staging(),
        Switch::Postgres(d) => d.remove_staging(&session.connection(&d.name)?),
    }
}

/// Stop, switch, start, health check; any failure switches back.
pub(crate) fn execute(session: &Session, mut j: Journal) -> Result<RollbackReport> {
    if j.operation == Operation::Rollback {
        note_staged_xids(session, &mut j);
    }
    enter(session, &mut j, Phase::Staged)?;
    j.down_since = Some(Utc::now());
    enter(session, &mut j, Phase::Stopping)?;
    if let Err(e) = hook(session, &mut j, "stop") {
        return revert(session, j, e);
    }
    pass(&mut j, Phase::Switching);
    if let Err(e) = switch_all(session, &mut j) {
        return revert(session, j, e);
    }
    enter(session, &mut j, Phase::Switched)?;
    bring_up(session, j)
}

/// Notes, before the downtime, the cluster's next transaction id for every
/// staged database: tuples written to it later are the application's, not
/// the snapshot's (the salvage step needs to tell them apart). Best
/// effort: a server that does not answer leaves no entry.
fn note_staged_xids(session: &Session, j: &mut Journal) {
    for c in &j.components {
        let Switch::Postgres(d) = c else { continue };
        let xid = session.connection(&d.name).and_then(|conn| {
            let mut client = conn.with_dbname(&d.staged).connect()?;
            let row = client
                .query_one(
                    "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8",
                    &[],
                )
                .map_err(|e| {
                    crate::source::postgres::conninfo::db_error("reading the next xid", e)
                })?;
            Ok(row.get::<_, i64>(0) as u64)
        });
        if let Ok(x) = xid {
            j.staged_xids.insert(d.name.clone(), x);
        }
    }
}

/// Start and health check on the switched state; a failure switches back.
fn bring_up(session: &Session, mut j: Journal) -> Result<RollbackReport> {
    j.started_on_new = true;
    pass(&mut j, Phase::Starting);
    if let Err(e) = hook(session, &mut j, "start") {
        return revert(session, j, e);
    }
    pass(&mut j, Phase::Checking);
    if let Err(e) = health(session, &mut j) {
        return revert(session, j, e);
    }
    up_again(&mut j);
    enter(session, &mut j, Phase::Done)?;
    finish(session, j)
}

/// The application is up: downtime ends.
fn up_again(j: &mut Journal) {
    if let Some(since) = j.down_since {
        j.downtime_secs = Some((Utc::now() - since).num_microseconds().unwrap_or(0) as f64 / 1e6);
    }
}

/// The tail of a successful operation: staging removed, salvage and safety
/// snapshot, audit record, journal into the history.
fn finish(session: &Session, mut j: Journal) -> Result<RollbackReport> {
    for c in j.components.clone() {
        remove_staging(session, &c)?;
    }
    if j.operation == Operation::Rollback {
        after_rollback(session, &mut j)?;
    }
    if j.operation == Operation::Undo {
        super::undo::mark_undone(session, &j)?;
    }
    close(session, j)
}

/// What a step that runs after the application is up gave: start, seconds
/// and result.
type Outcome<T> = (DateTime<Utc>, f64, Result<T>);

/// A computed salvage: its id, the delta, and what computing it read.
type SalvageResult = (Id, Salvage, CompareStats);

/// Runs `f`, timed.
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Outcome<T> {
    let started = Utc::now();
    let t0 = Instant::now();
    let result = f();
    (started, t0.elapsed().as_secs_f64(), result)
}

/// The salvage step and the safety snapshot, each unless already done.
/// Both only read the kept copies (no longer live), so they run side by
/// side; their results are recorded together before either failpoint, so
/// a resumed rollback never takes a second safety snapshot.
fn after_rollback(session: &Session, j: &mut Journal) -> Result<()> {
    let salvage_due = !j.steps.iter().any(|s| s.name == "salvage")
        && j.components
            .iter()
            .any(|c| matches!(c, Switch::Postgres(_)));
    let safety_due = !j.no_safety_snapshot && j.safety_snapshot.is_none();
    let journal: &Journal = j;
    let (salvage, safety) = std::thread::scope(|scope| {
        let safety = scope.spawn(move || {
            safety_due.then(|| timed(|| super::audit::safety_snapshot(session, journal)))
        });
        let salvage = salvage_due.then(|| {
            timed(|| {
                crate::salvage::compute_for(session.repo, session.system, journal, session.jobs)
            })
        });
        (salvage, safety.join().expect("the safety snapshot thread"))
    });
    if let Some(outcome) = salvage {
        record_salvage(j, outcome);
    }
    if let Some(outcome) = safety {
        record_safety(j, outcome);
    }
    session.state.save(j)?;
    failpoint("salvage");
    failpoint("safety");
    Ok(())
}

/// Records the safety snapshot; its failure leaves the rollback done (the
/// kept copies are still there) with the failure noted.
fn record_safety(j: &mut Journal, (started, secs, result): Outcome<Id>) {
    let shown = result
        .as_ref()
        .map(|id| format!("the replaced state is snapshot {}", id.short()))
        .map_err(|e| Error::new(e.kind(), e.to_string()));
    record_secs(j, "safety snapshot", started, secs, &shown);
    match result {
        Ok(id) => j.safety_snapshot = Some(id.to_hex()),
        Err(e) => j.failure = Some(format!("the safety snapshot failed: {e}")),
    }
}

/// Records the data written since the snapshot (the delta between the
/// kept and the rolled-back databases). Its failure is a failed step,
/// never a failed rollback.
fn record_salvage(j: &mut Journal, (started, secs, result): Outcome<SalvageResult>) {
    let shown = result.as_ref().map(|(id, s, stats)| {
        let summary = crate::salvage::store::summary(&id.to_hex(), s);
        format!(
            "{}; {} tables unchanged unread, {} rows read; stored as salvage {}",
            summary.line(),
            stats.skipped,
            stats.rows_read,
            id.short()
        )
    });
    let shown = shown.map_err(|e| Error::new(e.kind(), e.to_string()));
    record_secs(j, "salvage", started, secs, &shown);
    if let Ok((id, s, _)) = result {
        j.salvage = Some(crate::salvage::store::summary(&id.to_hex(), &s));
    }
}

/// Ends the operation: audit record, journal into the history.
fn close(session: &Session, mut j: Journal) -> Result<RollbackReport> {
    j.finished = Some(Utc::now());
    session.state.save(&j)?;
    super::audit::record(session.repo, &j)?;
    session.state.archive(&j)?;
    Ok(RollbackReport::of(&j))
}

/// Switches everything back after `why`, and brings the application up on
/// the old state. The report's result is then `reverted`, with `why` as
/// its failure.
fn revert(session: &Session, mut j: Journal, why: Error) -> Result<RollbackReport> {
    j.failure = Some(why.to_string());
    undo_switch(session, &mut j)
}

/// The revert itself: stop (the application may run on the new state),
/// every component back, start, health check.
fn undo_switch(session: &Session, j: &mut Journal) -> Result<RollbackReport> {
    let was_down = j.down_since.is_some();
    enter(session, j, Phase::Reverting)?;
    if was_down && j.started_on_new {
        let _ = hook(session, j, "stop");
    }
    for c in j.components.clone().iter().rev() {
        let started = Utc::now();
        let t0 = Instant::now();
        let result = switch_one(session, c, false).map(|()| "back as it was");
        record(
            j,
            &format!("switch back {}", c.name()),
            started,
            t0,
            &result,
            None,
        );
        result.map_err(|e| {
            e.context("switching back failed: the journal is kept; fix the cause and run `backup rollback resume`")
        })?;
    }
    for c in j.components.clone() {
        remove_staging(session, &c)?;
    }
    if was_down {
        // Everything is back; an application that does not come up on its
        // old state is reported, not switched again.
        match hook(session, j, "start").and_then(|()| health(session, j)) {
            Ok(()) => up_again(j),
            Err(e) => {
                let first = j.failure.take().unwrap_or_default();
                j.failure = Some(format!(
                    "{first}; after everything was switched back the application is still not up: {e}"
                ));
            }
        }
    }
    j.reverted = true;
    close(session, j.clone())
}

/// Abandons an operation that failed while staging: the staged copies are
/// removed, nothing else was touched.
pub(crate) fn abandon(session: &Session, j: &mut Journal, why: &Error) -> Result<()> {
    j.failure = Some(why.to_string());
    for c in j.components.clone() {
        remove_staging(session, &c)?;
    }
    j.reverted = true;
    close(session, j.clone()).map(|_| ())
}

/// Finishes or reverts an operation a killed run left.
pub(crate) fn recover(session: &Session, mut j: Journal) -> Result<RollbackReport> {
    let found = format!("found unfinished in phase {}", phase_name(j.phase));
    record_ok(&mut j, "resume", Utc::now(), &found);
    match j.phase {
        Phase::Staging | Phase::Staged => {
            let why = Error::new(
                ErrorKind::Interrupted,
                "the operation was interrupted before the switch",
            );
            abandon(session, &mut j, &why)?;
            Ok(RollbackReport::of(&j))
        }
        Phase::Stopping | Phase::Switching | Phase::Reverting => {
            if j.failure.is_none() {
                j.failure = Some(
                    "the operation was interrupted before every component was switched".into(),
                );
            }
            undo_switch(session, &mut j)
        }
        Phase::Switched | Phase::Starting | Phase::Checking => bring_up(session, j),
        Phase::Done => finish(session, j),
    }
}
