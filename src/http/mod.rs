//! The Streamable HTTP transport under axum: `/mcp` for MCP, `/healthz` and `/readyz` for
//! orchestrators. Cross-cutting HTTP concerns are layers, composed in `app` top to bottom.

mod health;
mod malformed;

use std::{net::SocketAddr, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService, streamable_http_server::session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

use crate::{
    server::{McpServer, SHUTTING_DOWN},
    shutdown::{self, Shutdown},
};

/// How long open connections get to finish after the drain before the process exits anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// What a refused client is told to wait before retrying (another replica may answer sooner).
const RETRY_AFTER_SECS: &str = "5";

/// Builds the router: MCP behind its edge layers, health endpoints open.
pub fn app(server: McpServer, shutdown: Shutdown, stop: CancellationToken) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_max_request_body_bytes(malformed::MAX_BODY_BYTES)
        .with_cancellation_token(stop);
    let mcp = StreamableHttpService::new(move || Ok(server.clone()), LocalSessionManager::default().into(), config);
    let mcp = Router::new()
        .route_service("/mcp", mcp)
        // Layers run bottom to top: the drain gate first, then body diagnosis.
        .layer(middleware::from_fn(malformed::answer_malformed_json))
        .layer(middleware::from_fn_with_state(shutdown.clone(), drain_gate));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(shutdown)
        .merge(mcp)
}

/// Serves HTTP on `bind` until a signal, then drains and exits.
pub async fn run(bind: SocketAddr, server: McpServer, shutdown: Shutdown) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (setting: --bind, env MCP_BIND): {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let stop = CancellationToken::new();
    let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = axum::serve(listener, app(server, shutdown.clone(), stop.clone()))
        .with_graceful_shutdown(async { let _ = close_rx.await; });
    let serving = tokio::spawn(async move { serving.await });
    shutdown.mark_serving();
    tracing::info!(event = "listening", transport = "http", %addr, url = %format!("http://{addr}/mcp"), "serving MCP over Streamable HTTP");

    let signal = shutdown::signal().await;
    shutdown.drain(signal).await;
    // Close MCP sessions and streams (rmcp flushes answers already produced), then stop
    // accepting and let open connections finish writing.
    stop.cancel();
    let _ = close_tx.send(());
    match tokio::time::timeout(CLOSE_TIMEOUT, serving).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server ended with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("open connections did not close in time; exiting anyway"),
    }
    Ok(())
}

/// Refuses new MCP requests while draining: 503 + Retry-After, with a JSON-RPC error body.
async fn drain_gate(State(shutdown): State<Shutdown>, request: Request, next: Next) -> Response {
    if !shutdown.is_draining() {
        return next.run(request).await;
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": SHUTTING_DOWN.0, "message": "the server is shutting down; retry on another instance" }
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    response
}
