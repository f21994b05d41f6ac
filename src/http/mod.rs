//! The Streamable HTTP transport under axum: `/mcp` for MCP, `/healthz` and `/readyz` for
//! orchestrators, and the protected-resource metadata when authentication is on.
//! Cross-cutting concerns are layers, composed in `app` in the order a request meets them.

mod auth;
mod body;
mod drain;
mod health;
mod metadata;
pub mod origin;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, middleware, routing::get, serve::ListenerExt};
use reqwest::Url;
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService, streamable_http_server::session::local::LocalSessionManager,
};
use tokio_util::sync::CancellationToken;

use crate::{
    auth::Verifier,
    config::ServeConfig,
    server::McpServer,
    shutdown::{self, Shutdown},
};

/// How long open connections get to finish after the drain before the process exits anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// This server's MCP resource URL: the public URL with `/mcp` appended to its path.
pub fn resource_url(public_url: &Url) -> Url {
    let mut url = public_url.clone();
    url.set_path(&format!("{}/mcp", public_url.path().trim_end_matches('/')));
    url
}

/// Builds the router: MCP behind its edge layers; health endpoints and metadata open.
pub fn app(
    config: &ServeConfig,
    public_url: &Url,
    server: McpServer,
    shutdown: Shutdown,
    verifier: Option<Arc<Verifier>>,
    stop: CancellationToken,
) -> Result<Router, String> {
    let max_body = config.http.max_body_bytes as usize;
    let resource = resource_url(public_url);
    let required_scopes = config.auth.required_scopes();
    let authenticated = verifier.is_some();
    let gate = auth::Gate::new(
        verifier,
        required_scopes.clone(),
        server.guard().clone(),
        metadata::url_for(&resource).to_string(),
        config.http.http_rate_limit,
    );
    let host_origin = origin::HostOriginPolicy::new(&config.http, config.bind);
    let mut scopes = required_scopes;
    scopes.extend(server.guard().scopes().into_iter().map(str::to_owned));
    let authorization_servers = match &config.auth.authorization_servers {
        servers if !servers.is_empty() => servers.clone(),
        _ => config
            .auth
            .jwt_issuer
            .iter()
            .filter_map(|iss| Url::parse(iss).ok())
            .collect(),
    };
    let metadata = metadata::Metadata::new(&resource, &authorization_servers, &scopes);

    // Host/Origin are checked by our own layer, first; rmcp's copy of that check is off.
    let rmcp_config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_max_request_body_bytes(max_body)
        .disable_allowed_hosts()
        .with_cancellation_token(stop);
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        rmcp_config,
    );

    // `layer` wraps what is above it: the last layer added is the first a request meets.
    let mcp = Router::new()
        .route_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(gate, auth::authenticate))
        .layer(middleware::from_fn_with_state(max_body, body::limit_and_diagnose))
        .layer(middleware::from_fn_with_state(shutdown.clone(), drain::drain_gate))
        .layer(middleware::from_fn_with_state(
            host_origin,
            origin::check_host_and_origin,
        ));
    let mut app = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(shutdown)
        .merge(mcp);
    if authenticated {
        let documents = Router::new()
            .route(
                "/.well-known/oauth-protected-resource",
                get(metadata::protected_resource),
            )
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(metadata::protected_resource),
            )
            .with_state(metadata);
        app = app.merge(documents);
    }
    Ok(app)
}

/// Serves HTTP until a signal, then drains and exits.
pub async fn run(
    config: &ServeConfig,
    server: McpServer,
    shutdown: Shutdown,
    verifier: Option<Arc<Verifier>>,
) -> Result<(), String> {
    let bind = config.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (setting: --bind, env MCP_BIND): {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    // Without a configured public URL, the address actually bound (port 0 resolved).
    let public_url = config
        .http
        .public_url
        .clone()
        .unwrap_or_else(|| Url::parse(&format!("http://{addr}")).expect("an address makes a URL"));
    let stop = CancellationToken::new();
    let app = app(config, &public_url, server, shutdown.clone(), verifier, stop.clone())?;
    let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
    // Send each write at once: an answer streamed in small pieces (a session's event stream)
    // would otherwise wait on the client's delayed ACK, ~40 ms per call on a kept-alive connection.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "could not set TCP_NODELAY");
        }
    });
    let serving = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
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
