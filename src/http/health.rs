//! Health endpoints: small JSON bodies, no auth, nothing secret.

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::shutdown::{Phase, Shutdown};

/// Liveness: the process is up and its HTTP server answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: 200 while serving; 503 while starting or draining, so load balancers stop
/// sending new work before the process goes away.
pub async fn readyz(State(shutdown): State<Shutdown>) -> (StatusCode, Json<Value>) {
    match shutdown.phase() {
        Phase::Serving => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "starting" }))),
        Phase::Draining => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "draining" }))),
    }
}
