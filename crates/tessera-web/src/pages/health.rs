//! Liveness and readiness.

use crate::AppState;
use axum::extract::State;
use http::StatusCode;

/// Alive: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the database answers, and writes work if the last one failed for want of it
/// (disk full, database down or locked).
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.accounts().ready().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the database does not answer or refuses writes");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
