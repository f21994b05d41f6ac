//! Health endpoints: small JSON bodies, no auth, nothing secret.

use std::sync::Arc;

use axum::{Json, extract::State, http::StatusCode};
use serde_json::{Value, json};

use crate::{
    shutdown::{Phase, Shutdown},
    state::{OnTrouble, Redis},
};

/// What readiness looks at: the drain, and Redis when replicas share state.
#[derive(Clone)]
pub struct Readiness {
    pub shutdown: Shutdown,
    pub redis: Option<Arc<Redis>>,
}

/// Liveness: the process is up and its HTTP server answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: 200 while serving; 503 while starting or draining, so load balancers stop
/// sending new work before the process goes away. With Redis, the body says whether it
/// answers (`"redis": "up"` or `"down"`); a replica failing closed is not ready without it.
pub async fn readyz(State(ready): State<Readiness>) -> (StatusCode, Json<Value>) {
    let (mut status, mut body) = match ready.shutdown.phase() {
        Phase::Serving => (StatusCode::OK, json!({ "status": "ready" })),
        Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "starting" })),
        Phase::Draining => (StatusCode::SERVICE_UNAVAILABLE, json!({ "status": "draining" })),
    };
    if let Some(redis) = &ready.redis {
        body["redis"] = json!(if redis.is_up() { "up" } else { "down" });
        if !redis.is_up() && redis.on_trouble == OnTrouble::Closed && status == StatusCode::OK {
            (status, body["status"]) = (StatusCode::SERVICE_UNAVAILABLE, json!("redis_down"));
        }
    }
    (status, Json(body))
}
