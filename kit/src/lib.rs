//! The kit of an MCP server on rmcp, served over stdio or Streamable HTTP in both protocol
//! generations: transports, the HTTP edge, auth, the guard chain, state and Redis, tasks,
//! progress, logs, metrics and traces, the upstream client, shutdown and health.
//!
//! It serves an app: a type implementing [`McpApp`] (its tools, prompts, resources and
//! settings). The app's `main.rs` calls [`run`] with it. The kit never depends on an app.

mod allocator;
pub mod auth;
#[cfg(feature = "bench")]
pub mod bench;
pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod guard;
pub mod healthcheck;
#[allow(
    clippy::result_large_err,
    reason = "the HTTP edge's checks return their refusal as the response itself: the rare path"
)]
pub mod http;
pub mod kit_tools;
pub mod mcp_app;
pub mod metrics;
mod open_files;
#[cfg(feature = "otel")]
pub mod otel;
pub mod parse_budget;
mod periodic;
pub mod progress;
mod refusals;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod stdio;
pub mod tasks;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod upstream;

use std::{process::ExitCode, sync::Arc};

use auth::{JwtSettings, JwtVerifier, Principal, StaticTokens, Verifier};
use config::{AuthMode, CONFIG_ERROR_EXIT, Cli, Command, ServeConfig, Transport};
pub use mcp_app::{Kit, McpApp};

/// Why the server could not run.
pub enum StartError {
    /// A setting is wrong: exit code 2, like any usage error.
    Config(String),
    /// Something failed at runtime, e.g. the address is in use: exit code 1.
    Runtime(String),
}

/// The whole program of a server serving app `A`: parses the command line (the kit's settings
/// and the app's), then serves, or probes health for a container's HEALTHCHECK.
pub fn run<A: McpApp>() -> ExitCode {
    let cli = Cli::<A::Settings>::parse_or_exit(A::NAME, A::VERSION, A::DESCRIPTION);
    // stdio serves one client over one pipe: a runtime on this thread alone starts in a quarter
    // of the time and hands no message from thread to thread. HTTP serves many, on every core.
    let stdio = matches!(&cli.command, Command::Serve(serve) if serve.config.transport == Transport::Stdio);
    let mut runtime = if stdio {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = runtime.enable_all().build().expect("starting the tokio runtime");
    match cli.command {
        Command::Serve(serve_command) => {
            // Inside the runtime: the trace exporter, when configured, sends on it.
            let logging = {
                let _runtime = runtime.enter();
                telemetry::init(&serve_command.config.log)
            };
            if let Err(message) = logging {
                eprintln!("{message}");
                return ExitCode::from(CONFIG_ERROR_EXIT as u8);
            }
            #[cfg(feature = "bench")]
            if let Err(error) = runtime.block_on(async { bench::report_allocations_on_sigusr1() }) {
                eprintln!("error: cannot count allocations: {error}");
                return ExitCode::FAILURE;
            }
            runtime.spawn(allocator::start_giving_memory_back());
            let code = match runtime.block_on(serve::<A>(serve_command.config, serve_command.app)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(StartError::Config(message)) => {
                    telemetry::flush();
                    eprintln!("{message}");
                    ExitCode::from(CONFIG_ERROR_EXIT as u8)
                }
                Err(StartError::Runtime(message)) => {
                    tracing::error!(event = "fatal", "{message}");
                    ExitCode::FAILURE
                }
            };
            // Spans still queued for the collector, then log lines still waiting for their batch.
            #[cfg(feature = "otel")]
            runtime.block_on(async { tokio::task::spawn_blocking(otel::shutdown).await.ok() });
            telemetry::flush();
            code
        }
        Command::Healthcheck(config) => ExitCode::from(runtime.block_on(healthcheck::run(&config)) as u8),
    }
}

/// Runs the server for app `A` until its transport ends (stdin closed) or a signal has
/// drained it.
pub async fn serve<A: McpApp>(mut config: ServeConfig, settings: A::Settings) -> Result<(), StartError> {
    config.validate().map_err(StartError::Config)?;
    let upstream_hosts = config.upstream_hosts(A::upstream_hosts(&settings));
    let open_file_limit = open_files::raise();
    // Over HTTP the connection caps must fit under the open-file limit, and the address is
    // bound first: without a public URL (loopback only), the address bound, port 0 resolved,
    // is the server's URL and the audience its tokens name.
    let (listener, health_listener) = match config.transport {
        Transport::Http => {
            let health = config.health_bind.map_or(0, |_| http::HEALTH_CONNECTIONS);
            if let Some(limit) = open_file_limit {
                let upstream = config.upstream.upstream_max_connections;
                open_files::check(config.http.max_connections, health, upstream, limit).map_err(StartError::Config)?;
            }
            let listener = http::bind(config.bind).await.map_err(StartError::Runtime)?;
            if config.http.public_url.is_none() {
                config.http.public_url = Some(http::bound_url(&listener).map_err(StartError::Runtime)?);
            }
            let health_listener = match config.health_bind {
                Some(bind) => Some(http::bind_health(bind).await.map_err(StartError::Runtime)?),
                None => None,
            };
            (Some(listener), health_listener)
        }
        Transport::Stdio => (None, None),
    };
    let shutdown = shutdown::Shutdown::new(config.drain_timeout);
    let verifier = verifier(&config).map_err(StartError::Config)?.map(Arc::new);
    if let Some(current) = &verifier {
        reload_on_sighup(config.clone(), current.clone());
    }
    let stdio_principal = match (&config.auth.auth_token, &verifier) {
        (Some(token), Some(verifier)) => verifier
            .verify(token.expose())
            .await
            .map_err(|e| StartError::Config(format!("error: MCP_AUTH_TOKEN (--auth-token) is not accepted: {e}")))?,
        _ => Principal::anonymous("stdio"),
    };
    // Shared state for replicas, when configured; otherwise everything stays in this process.
    let redis_url = config
        .redis
        .url()
        .map_err(|e| StartError::Config(format!("error: {e}")))?;
    let redis = match &redis_url {
        Some(url) => Some(
            state::Redis::connect(
                url,
                &config.redis.redis_key_prefix,
                config.redis.redis_timeout,
                config.redis.redis_on_failure,
            )
            .map_err(|e| StartError::Config(format!("error: {e}")))?,
        ),
        None => None,
    };
    let task_store: Arc<dyn tasks::TaskStore> = match &redis {
        Some(redis) => Arc::new(state::tasks::RedisTaskStore::new(redis.clone())),
        None => Arc::new(tasks::MemoryStore::default()),
    };
    let server = assemble::<A>(
        &config,
        &settings,
        &shutdown,
        task_store,
        redis.clone(),
        stdio_principal,
    )?;
    server
        .guard()
        .limits()
        .spawn_eviction(config.policy.rate_limit_eviction);
    #[cfg(feature = "otel")]
    otel::catalogue(server.guard().tool_names());
    if config.metrics_bind.is_some() || metrics::exported() {
        let hosts = upstream_hosts.iter().map(ToString::to_string).collect();
        let (shutdown, guard) = (shutdown.clone(), server.guard().clone());
        let sample: metrics::Sample = Box::new(move |metrics| {
            metrics.in_flight.set(shutdown.in_flight() as i64);
            metrics.rate_limit_buckets.set(guard.limits().live_keys() as i64);
        });
        metrics::init(
            server.guard().tool_names(),
            hosts,
            sample,
            config.metrics_bind.is_some(),
        );
    }
    if let Some(bind) = config.metrics_bind {
        metrics::serve(bind).await.map_err(StartError::Runtime)?;
    }
    tracing::info!(
        event = "starting",
        version = A::VERSION,
        transport = config.transport.name(),
        auth = ?config.auth.auth,
        drain_timeout_s = config.drain_timeout.as_secs(),
        shared_state = if redis.is_some() { "redis" } else { "memory" },
        open_file_limit,
        "starting"
    );
    let served = match config.transport {
        Transport::Stdio => {
            let budget = parse_budget::InFlightBudget::new(config.http.max_body_bytes_in_flight as usize);
            stdio::run(server, shutdown, config.parse_limits(), budget).await;
            Ok(())
        }
        Transport::Http => http::run(
            &config,
            listener.expect("bound above for HTTP"),
            health_listener,
            server,
            shutdown,
            verifier,
        )
        .await
        .map_err(StartError::Runtime),
    };
    // Refusals counted since the last summary are summed up before the process ends.
    refusals::Refusals::server().summarise();
    served
}

/// App `A` and the server around it, from the settings: the upstream client the app is given
/// (allowed the app's hosts, named as the app), the app, its tasks and the guard. What [`serve`]
/// runs on its transports and [`testing`] connects to in process.
fn assemble<A: McpApp>(
    config: &ServeConfig,
    settings: &A::Settings,
    shutdown: &shutdown::Shutdown,
    task_store: Arc<dyn tasks::TaskStore>,
    shared: Option<Arc<state::Redis>>,
    stdio_principal: Principal,
) -> Result<server::McpServer<A>, StartError> {
    let hosts = config.upstream_hosts(A::upstream_hosts(settings));
    let upstream =
        upstream::Upstream::new(&config.upstream, hosts).with_user_agent(&format!("{}/{}", A::NAME, A::VERSION));
    let app = A::new(
        settings,
        &Kit {
            upstream: upstream.clone(),
        },
    )
    .map_err(StartError::Config)?;
    let machinery = server::Machinery {
        upstream,
        shutdown: shutdown.clone(),
        tasks: tasks::Tasks::new(task_store, config.tasks.limits(), shutdown.clone()),
        shared,
        stdio_principal,
    };
    server::McpServer::new(app, machinery, &config.overrides())
        .map_err(|e| StartError::Config(format!("error: {e} (settings: MCP_RATE_LIMITS, MCP_TOOL_TIMEOUTS)")))
}

/// On SIGHUP, reads the static tokens (or the JWT public key file) again and swaps them in;
/// a file that does not parse keeps the old ones and says why. Calls under way keep the
/// principal they were given.
fn reload_on_sighup(config: ServeConfig, current: Arc<Verifier>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!(
            event = "auth_reload_unavailable",
            "cannot listen for SIGHUP; reloads need a restart"
        );
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let reloaded = verifier(&config).and_then(|fresh| match fresh {
                Some(fresh) => current.reload_from(fresh),
                None => Err("authentication is off".into()),
            });
            match reloaded {
                Ok(what) => tracing::info!(
                    event = "auth_reloaded",
                    reloaded = what.as_str(),
                    "SIGHUP: reloaded {what}"
                ),
                Err(error) => tracing::warn!(
                    event = "auth_reload_failed",
                    error = error.as_str(),
                    "SIGHUP: kept the current credentials"
                ),
            }
        }
    });
}

/// The configured token verifier, if any; errors are config errors naming the setting.
fn verifier(config: &ServeConfig) -> Result<Option<Verifier>, String> {
    let auth = &config.auth;
    Ok(match auth.auth {
        AuthMode::None => None,
        AuthMode::Static => {
            let mut entries = auth
                .auth_tokens
                .as_ref()
                .map(|t| t.expose().to_owned())
                .unwrap_or_default();
            if let Some(path) = &auth.auth_tokens_file {
                let file = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "error: cannot read MCP_AUTH_TOKENS_FILE (--auth-tokens-file) {}: {e}",
                        path.display()
                    )
                })?;
                entries = format!("{entries}\n{file}");
            }
            let tokens = StaticTokens::parse(&entries)
                .map_err(|e| format!("error: static tokens (MCP_AUTH_TOKENS / MCP_AUTH_TOKENS_FILE): {e}"))?;
            Some(Verifier::Static(tokens))
        }
        AuthMode::Jwt => {
            let settings = JwtSettings {
                issuer: auth.jwt_issuer.clone().unwrap_or_default(),
                audience: resource_audience(config),
                algorithms: auth.jwt_algorithms.clone(),
                leeway: auth.jwt_leeway,
            };
            let jwt = match (&auth.jwt_jwks_url, &auth.jwt_public_key_file) {
                (Some(url), _) => {
                    // One short attempt per fetch: the refetch cooldown is the retry.
                    let http = identity_provider_client(config, url, 1, auth::JWKS_FETCH_TIMEOUT);
                    JwtVerifier::with_jwks(settings, url.clone(), http, auth.jwks_refetch_cooldown)
                }
                (None, Some(path)) => {
                    let pem = std::fs::read(path).map_err(|e| {
                        format!(
                            "error: cannot read MCP_JWT_PUBLIC_KEY_FILE (--jwt-public-key-file) {}: {e}",
                            path.display()
                        )
                    })?;
                    JwtVerifier::with_public_key(settings, &pem)
                        .map_err(|e| format!("error: MCP_JWT_PUBLIC_KEY_FILE (--jwt-public-key-file): {e}"))?
                }
                (None, None) => unreachable!("validated: one key source"),
            };
            Some(Verifier::Jwt(Box::new(jwt)))
        }
        AuthMode::Introspection => {
            let url = auth
                .introspection_url
                .clone()
                .expect("validated: introspection has a URL");
            let client_secret = match (&auth.introspection_client_secret_file, &auth.introspection_client_secret) {
                (Some(path), _) => std::fs::read_to_string(path)
                    .map_err(|e| {
                        format!(
                            "error: cannot read MCP_INTROSPECTION_CLIENT_SECRET_FILE (--introspection-client-secret-file) {}: {e}",
                            path.display()
                        )
                    })?
                    .trim()
                    .to_owned(),
                (None, Some(secret)) => secret.expose().to_owned(),
                (None, None) => unreachable!("validated: one client secret"),
            };
            if client_secret.is_empty() {
                return Err(
                    "error: the introspection client secret is empty (MCP_INTROSPECTION_CLIENT_SECRET[_FILE])".into(),
                );
            }
            let settings = auth::IntrospectionSettings {
                client_id: auth.introspection_client_id.clone().unwrap_or_default(),
                client_secret,
                audience: resource_audience(config),
                issuers: auth.authorization_servers.iter().map(ToString::to_string).collect(),
                leeway: auth.jwt_leeway,
                cache_ttl: auth.introspection_cache_ttl,
                url: url.clone(),
            };
            let http = identity_provider_client(config, &url, 2, auth::INTROSPECTION_TIMEOUT);
            Some(Verifier::Introspection(auth::IntrospectionVerifier::new(
                settings, http,
            )))
        }
    })
}

/// The tools' hardened client, for calls to the identity provider at `url`: allowed to reach
/// its host only, with at most `attempts`, all within `limit` (a caller waits on them).
fn identity_provider_client(
    config: &ServeConfig,
    url: &reqwest::Url,
    attempts: u32,
    limit: std::time::Duration,
) -> upstream::Upstream {
    let mut idp = config.upstream.clone();
    idp.upstream_attempts = idp.upstream_attempts.min(attempts);
    idp.upstream_timeout = idp.upstream_timeout.min(limit);
    idp.upstream_deadline = idp.upstream_deadline.min(limit);
    upstream::Upstream::new(&idp, url.host().map(|h| h.to_owned()).into_iter().collect())
}

/// This server's resource URL, `<public-url>/mcp`: the audience its tokens must name.
fn resource_audience(config: &ServeConfig) -> String {
    let public_url = config
        .http
        .public_url
        .as_ref()
        .expect("validated: OAuth modes have a public URL");
    http::resource_url(public_url).to_string()
}
