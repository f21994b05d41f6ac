//! The Streamable HTTP transport under axum: `/mcp` for MCP, `/healthz` and `/readyz` for
//! orchestrators (also on a listener of their own with `--health-bind`), and the
//! protected-resource metadata when authentication is on.
//! Connections are bounded in `connections`; every check before rmcp is one layer, `edge`,
//! which reads in the order a request meets the checks.

mod auth;
mod body;
mod connections;
mod drain;
mod edge;
mod health;
mod metadata;
pub mod origin;
pub mod sessions;

use std::{sync::Arc, time::Duration};

use axum::{Router, middleware, routing::get};
use reqwest::Url;
use rmcp::transport::{
    StreamableHttpServerConfig, StreamableHttpService, streamable_http_server::session::store::SessionStore,
};
use tokio::sync::Semaphore;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use self::{
    connections::ConnectionLimits,
    sessions::{SessionLimits, Sessions},
};
use crate::{
    auth::Verifier,
    config::ServeConfig,
    mcp_app::McpApp,
    parse_budget::InFlightBudget,
    refusals::Refusals,
    server::McpServer,
    shutdown::{self, Shutdown},
    state::sessions::RedisSessions,
};

/// How long open connections get to finish after the drain before the process exits anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Open connections on the health listener (MCP_HEALTH_BIND). Probes come a few at a time from
/// a kubelet or a container runtime and send their request at once, so its bounds are small
/// and fixed; a flood on the MCP port never counts against them.
pub const HEALTH_CONNECTIONS: usize = 64;
const HEALTH_LIMITS: ConnectionLimits = ConnectionLimits {
    max_total: HEALTH_CONNECTIONS,
    max_per_client: HEALTH_CONNECTIONS / 4,
    header_timeout: Duration::from_secs(5),
    idle_timeout: Duration::from_secs(10),
};

/// This server's MCP resource URL: the public URL with `/mcp` appended to its path.
pub fn resource_url(public_url: &Url) -> Url {
    let mut url = public_url.clone();
    url.set_path(&format!("{}/mcp", public_url.path().trim_end_matches('/')));
    url
}

/// The health endpoints, open: on the MCP listener and on the health listener.
fn health_routes(readiness: health::Readiness) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(readiness)
}

/// Builds the router: MCP behind its edge layer; health endpoints and metadata open.
#[allow(clippy::too_many_arguments, reason = "each is one part of the server, built once")]
pub fn app<A: McpApp>(
    config: &ServeConfig,
    public_url: &Url,
    server: McpServer<A>,
    shutdown: Shutdown,
    health: Router,
    verifier: Option<Arc<Verifier>>,
    stop: CancellationToken,
    refusals: Arc<Refusals>,
) -> Result<Router, String> {
    let http = &config.http;
    let max_body = http.max_body_bytes as usize;
    let resource = resource_url(public_url);
    let required_scopes = config.auth.required_scopes();
    // Only with an authorization server (JWTs, introspection) is there OAuth metadata to point
    // clients at.
    let oauth = verifier.as_deref().is_some_and(Verifier::is_oauth);
    let gate = auth::Gate::new(
        verifier,
        required_scopes.clone(),
        server.guard().clone(),
        oauth.then(|| metadata::url_for(&resource).to_string()),
        http.http_rate_limit,
        http.auth_failure_limit,
    );
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
    let metadata = metadata::Metadata::new(A::NAME, &resource, &authorization_servers, &scopes);
    // With Redis, sessions are shared: their owners and caps, the `initialize` another replica
    // replays to restore one, and the events a dropped stream resumes from.
    let shared_sessions = server
        .shared()
        .map(|redis| Arc::new(RedisSessions::new(redis.clone(), http.session_idle_timeout)));
    let sessions = Arc::new(Sessions::new(
        SessionLimits {
            max_total: http.max_sessions as usize,
            max_per_owner: http.max_sessions_per_client as usize,
            idle_timeout: http.session_idle_timeout,
        },
        shared_sessions.clone(),
    ));

    // Host/Origin are checked by our own edge, first; rmcp's copy of that check is off.
    let mut rmcp_config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_max_request_body_bytes(max_body)
        .disable_allowed_hosts()
        .with_cancellation_token(stop);
    rmcp_config.session_store = shared_sessions.map(|s| s as Arc<dyn SessionStore>);
    let mcp = StreamableHttpService::new(move || Ok(server.clone()), sessions.clone(), rmcp_config);

    let edge = Arc::new(edge::Edge {
        host_origin: origin::HostOriginPolicy::new(http, config.bind),
        shutdown: shutdown.clone(),
        gate,
        sessions,
        event_streams: Arc::new(Semaphore::new(http.max_event_streams as usize)),
        max_event_streams: http.max_event_streams as usize,
        max_body,
        budget: InFlightBudget::new(http.max_body_bytes_in_flight as usize),
        parse_limits: config.parse_limits(),
        body_timeout: http.body_read_timeout,
        session_retry_after: http.session_idle_timeout.min(Duration::from_secs(60)),
        refusals,
    });
    let mcp = Router::new()
        .route_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(edge, edge::handle));
    let mut app = health.merge(mcp);
    if oauth {
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
    } else {
        // No OAuth here: a client looking for its metadata learns so plainly, before any token.
        let none = || async {
            (
                axum::http::StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({
                    "error": "not_found",
                    "error_description": "this server takes static bearer tokens and has no OAuth authorization server; send Authorization: Bearer <token>"
                })),
            )
        };
        for path in [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ] {
            app = app.route(path, get(none));
        }
    }
    Ok(app)
}

/// Listens on `bind`.
pub async fn bind(bind: std::net::SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (setting: --bind, env MCP_BIND): {e}"))
}

/// Listens on `bind` for the health endpoints alone; logs the address bound (port 0 resolved).
pub async fn bind_health(bind: std::net::SocketAddr) -> Result<tokio::net::TcpListener, String> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (setting: --health-bind, env MCP_HEALTH_BIND): {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(event = "health_listening", %addr, "serving /healthz and /readyz on a listener of their own");
    Ok(listener)
}

/// The URL of the address `listener` holds (port 0 resolved): a loopback server's own URL
/// when no public URL is set.
pub fn bound_url(listener: &tokio::net::TcpListener) -> Result<Url, String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Url::parse(&format!("http://{addr}")).map_err(|e| e.to_string())
}

/// Serves HTTP on `listener` (and the health endpoints on `health_listener`, when given)
/// until a signal, then drains and exits.
pub async fn run<A: McpApp>(
    config: &ServeConfig,
    listener: tokio::net::TcpListener,
    health_listener: Option<tokio::net::TcpListener>,
    server: McpServer<A>,
    shutdown: Shutdown,
    verifier: Option<Arc<Verifier>>,
) -> Result<(), String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let public_url = config
        .http
        .public_url
        .clone()
        .expect("`serve` sets the public URL when it binds");
    let stop = CancellationToken::new();
    let refusals = Refusals::start();
    let health = health_routes(health::Readiness {
        shutdown: shutdown.clone(),
        redis: server.shared().cloned(),
    });
    let app = app(
        config,
        &public_url,
        server,
        shutdown.clone(),
        health.clone(),
        verifier,
        stop.clone(),
        refusals.clone(),
    )?;
    let http = &config.http;
    let limits = ConnectionLimits {
        max_total: http.max_connections as usize,
        max_per_client: http.max_connections_per_client as usize,
        header_timeout: http.header_read_timeout,
        idle_timeout: http.idle_timeout,
    };
    let closing = CancellationToken::new();
    let open = TaskTracker::new();
    // The health listener answers through the drain (`/readyz` says 503) and stops with the
    // MCP one.
    let health_accepting = health_listener.map(|listener| {
        tokio::spawn(connections::serve(
            listener,
            health,
            HEALTH_LIMITS,
            refusals.clone(),
            closing.clone(),
            TaskTracker::new(),
        ))
    });
    let accepting = tokio::spawn(connections::serve(
        listener,
        app,
        limits,
        refusals.clone(),
        closing.clone(),
        open.clone(),
    ));
    let signalled = shutdown::signal();
    shutdown.mark_serving();
    tracing::info!(event = "listening", transport = "http", %addr, url = %format!("http://{addr}/mcp"), "serving MCP over Streamable HTTP");

    let signal = signalled.await;
    shutdown.drain(signal).await;
    // Close MCP sessions and streams (rmcp flushes answers already produced), then stop
    // accepting and let open connections finish writing.
    stop.cancel();
    closing.cancel();
    let _ = accepting.await;
    if let Some(health_accepting) = health_accepting {
        let _ = health_accepting.await;
    }
    if tokio::time::timeout(CLOSE_TIMEOUT, open.wait()).await.is_err() {
        tracing::warn!("open connections did not close in time; exiting anyway");
    }
    // Refusals counted since the last summary are summed up before the process ends.
    refusals.summarise();
    Ok(())
}
