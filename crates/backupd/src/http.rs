//! The HTTP side (loopback by default): `/healthz`, `/metrics`,
//! `/v1/status`, `/v1/snapshots`, `POST /v1/jobs/{name}/run`, and the
//! planned rollbacks of `planned_http`; what changes state needs
//! `Authorization: Bearer <token>`.

use crate::schedule::overdue;
use crate::shared::Shared;
use crate::state::Outcome;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;

/// The routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/snapshots", get(snapshots))
        .route("/v1/jobs/{name}/run", post(run_job))
        .route(
            "/v1/rollbacks",
            get(crate::planned_http::list).post(crate::planned_http::submit),
        )
        .route("/v1/rollbacks/{id}", delete(crate::planned_http::cancel))
        .with_state(shared)
}

/// Why the daemon is unhealthy: overdue jobs, a failed verification, a
/// job whose last run failed. Empty when healthy.
pub fn problems(shared: &Shared) -> Vec<String> {
    let config = shared.config();
    let state = shared.state();
    let running = shared.running();
    let now = shared.now();
    let mut out = Vec::new();
    for s in &config.system.schedules {
        let Some(job) = state.jobs.get(&s.name) else {
            continue;
        };
        if overdue(
            s,
            config.daemon.timezone,
            job,
            now,
            running.as_deref() == Some(s.name.as_str()),
        ) {
            out.push(format!(
                "job {} is overdue (due {})",
                s.name,
                job.next_run.map(|t| t.to_rfc3339()).unwrap_or_default()
            ));
        }
        if let Some(r) = job.last().filter(|r| r.result == Outcome::Failure) {
            out.push(format!(
                "the last run of {} failed: {}",
                s.name,
                r.error.as_deref().unwrap_or("")
            ));
        }
    }
    if state.verify.last_failed {
        out.push("the last verification found problems".into());
    }
    out
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let p = problems(&shared);
    if p.is_empty() {
        (StatusCode::OK, Json(json!({"healthy": true}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"healthy": false, "problems": p})),
        )
            .into_response()
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let body = crate::metrics::render(&shared);
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The status document (`backup status` prints it).
pub fn status_json(shared: &Shared) -> Value {
    let config = shared.config();
    let state = shared.state();
    let running = shared.running();
    let problems = problems(shared);
    let jobs: Vec<Value> = config
        .system
        .schedules
        .iter()
        .map(|s| {
            let job = state.jobs.get(&s.name).cloned().unwrap_or_default();
            json!({
                "name": s.name,
                "job": s.job.word(),
                "cron": s.cron,
                "running": running.as_deref() == Some(s.name.as_str()),
                "next_run": job.next_run,
                "last_success": job.last_success,
                "last": job.last(),
                "runs": job.runs,
                "totals": job.totals,
            })
        })
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "timezone": config.daemon.timezone.name(),
        "healthy": problems.is_empty(),
        "problems": problems,
        "jobs": jobs,
        "verify": {
            "last_success": state.verify.last_success,
            "failures": state.verify.failures,
            "last_failed": state.verify.last_failed,
            "coverage_ratio": shared.coverage(),
        },
        "restore_drill_secs": state.drill_secs,
        "rollbacks": shared.planned(),
        "repository": {"size_bytes": shared.repo_stats().size_bytes, "snapshots": shared.repo_stats().snapshots},
    })
}

async fn status(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(status_json(&shared))
}

async fn snapshots(State(shared): State<Arc<Shared>>) -> Response {
    let system = shared.config().system.clone();
    let listed = tokio::task::spawn_blocking(move || -> backup_core::Result<Vec<Value>> {
        let repo = crate::jobs::open_repository(&system)?;
        Ok(backup_core::snapshot::list_snapshots(&repo)?
            .into_iter()
            .filter_map(|(id, s)| s.ok().map(|s| (id, s)))
            .map(|(id, s)| json!({"id": id.to_hex(), "time": s.time, "host": s.host, "tags": s.tags, "label": s.label}))
            .collect())
    })
    .await;
    match listed {
        Ok(Ok(v)) => Json(Value::Array(v)).into_response(),
        Ok(Err(e)) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// Whether the request carries the configured token.
pub(crate) fn authorized(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, &'static str)> {
    let Some(token) = shared.config().token.clone() else {
        return Err((StatusCode::FORBIDDEN, "no token is configured (daemon.token_file or BACKUPD_TOKEN): state-changing requests are off"));
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err((StatusCode::UNAUTHORIZED, "missing or wrong bearer token")),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn run_job(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((code, why)) = authorized(&shared, &headers) {
        tracing::warn!(job = %name, status = code.as_u16(), "refused a request to run a job: {why}");
        return (code, Json(json!({"error": why}))).into_response();
    }
    if !shared.request(&name) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no job named {name:?}")})),
        )
            .into_response();
    }
    tracing::info!(job = %name, "run requested over HTTP");
    (StatusCode::ACCEPTED, Json(json!({"requested": name}))).into_response()
}
