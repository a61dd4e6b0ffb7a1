//! The HTTP side of planned rollbacks: `POST /v1/rollbacks` hands over a
//! reviewed plan and the time to apply it (bearer token), `GET
//! /v1/rollbacks` lists them, `DELETE /v1/rollbacks/{id}` withdraws a
//! pending one (bearer token).

use crate::http::authorized;
use crate::planned::MISSED_AFTER;
use crate::shared::Shared;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The body of `POST /v1/rollbacks`.
#[derive(Debug, Deserialize)]
pub struct PlanRequest {
    /// The plan, exactly as `backup rollback plan -o` wrote it.
    pub plan: serde_json::Value,
    /// When to apply it.
    pub at: DateTime<Utc>,
    /// Skip the safety snapshot.
    #[serde(default)]
    pub no_safety_snapshot: bool,
}

fn refuse(code: StatusCode, why: String) -> Response {
    (code, Json(json!({ "error": why }))).into_response()
}

/// `POST /v1/rollbacks`.
pub async fn submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Json<PlanRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err((code, why)) = authorized(&shared, &headers) {
        tracing::warn!(
            status = code.as_u16(),
            "refused a request to plan a rollback: {why}"
        );
        return refuse(code, why.into());
    }
    let req = match body {
        Ok(Json(r)) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!(
                "the body is not a plan request ({e}): send {{\"plan\": PLAN, \"at\": RFC3339}}"
            ),
            )
        }
    };
    let late = chrono::Duration::from_std(MISSED_AFTER).unwrap_or_default();
    if shared.now() - req.at > late {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{} is past: give a time to come", req.at.to_rfc3339()),
        );
    }
    match shared.plan_rollback(&req.plan, req.at, req.no_safety_snapshot) {
        Ok(p) => {
            tracing::info!(rollback = %p.id, at = %p.at.to_rfc3339(), snapshot = %p.snapshot, "rollback planned");
            (StatusCode::ACCEPTED, Json(json!(p))).into_response()
        }
        Err(e) => refuse(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")),
    }
}

/// `GET /v1/rollbacks`.
pub async fn list(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!(shared.planned())).into_response()
}

/// `DELETE /v1/rollbacks/{id}`.
pub async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err((code, why)) = authorized(&shared, &headers) {
        tracing::warn!(rollback = %id, status = code.as_u16(), "refused a request to cancel a rollback: {why}");
        return refuse(code, why.into());
    }
    match shared.cancel_rollback(&id) {
        Ok(true) => {
            tracing::info!(rollback = %id, "planned rollback cancelled");
            (StatusCode::OK, Json(json!({ "cancelled": id }))).into_response()
        }
        Ok(false) => refuse(StatusCode::NOT_FOUND, format!("no planned rollback {id:?}")),
        Err(e) => refuse(StatusCode::CONFLICT, format!("{e:#}")),
    }
}
