//! `/healthz` (the process is up) and `/readyz` (the database answers and every migration of this
//! build is applied).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

/// `GET /healthz`.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match migration::schema_status(&state.db).await {
        Ok(status) if status.is_current() => (
            StatusCode::OK,
            Json(json!({"status": "ready", "schema_version": status.version()})),
        ),
        Ok(status) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "reason": "schema is not at this build's version",
                "pending_migrations": status.pending,
                "unknown_migrations": status.unknown,
            })),
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness check cannot read the database");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not_ready", "reason": "database unreachable"})),
            )
        }
    }
}
