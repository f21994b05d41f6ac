//! The Streamable HTTP transport under axum: `/mcp` for MCP, `/healthz` and `/readyz` for
//! orchestrators. Cross-cutting HTTP concerns are layers, composed in `app` top to bottom.

mod health;
mod malformed;

use std::{
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes, HttpBody},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use http_body::{Frame, SizeHint};
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService,
    streamable_http_server::session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

use crate::{
    server::{McpServer, REFUSED_WHILE_DRAINING, SHUTTING_DOWN},
    shutdown::{self, InFlight, Shutdown},
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
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        config,
    );
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
        .with_graceful_shutdown(async {
            let _ = close_rx.await;
        });
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

/// The HTTP edge of the drain: refuses every MCP request while draining (503 + Retry-After,
/// with a JSON-RPC error body), and counts each POST in flight until its response body has
/// been sent, so a drain waits for answers to leave, not only for handlers to return.
async fn drain_gate(State(shutdown): State<Shutdown>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        // GET streams and DELETEs carry no call to wait for; refuse them once draining.
        return if shutdown.is_draining() {
            refused()
        } else {
            next.run(request).await
        };
    }
    let Some(in_flight) = shutdown.track() else {
        return refused();
    };
    next.run(request).await.map(|body| {
        Body::new(CountedBody {
            body,
            _in_flight: in_flight,
        })
    })
}

fn refused() -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": SHUTTING_DOWN.0, "message": REFUSED_WHILE_DRAINING }
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    response
}

/// A response body that keeps its request counted in flight until it is sent or dropped.
struct CountedBody {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
