//! Typed settings from flags and `MCP_*` environment variables, and all startup validation.
//!
//! Every setting is parsed into its final type here, so a bad value stops startup with one
//! line naming the setting (exit code 2) instead of failing later at runtime.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum, error::ContextKind};
use jsonwebtoken::Algorithm;
use reqwest::Url;

use crate::{
    guard::Rate,
    http::origin::{AllowedHost, AllowedOrigin},
};

/// Exit code for a configuration error, as for any command-line usage error.
pub const CONFIG_ERROR_EXIT: i32 = 2;

/// The command line of a server built on the kit: the kit's settings and the app's own
/// (`S`), flattened into one set of flags and `MCP_*` variables.
#[derive(Debug, Parser)]
#[command(long_about = None)]
pub struct Cli<S: Args> {
    #[command(subcommand)]
    pub command: Command<S>,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at startup; its size does not matter"
)]
pub enum Command<S: Args> {
    /// Serve MCP over stdio (for clients that spawn the process) or Streamable HTTP.
    Serve(Serve<S>),
    /// Probe the HTTP health endpoint: exit 0 when healthy, 1 otherwise (for container
    /// HEALTHCHECKs, which have no shell or curl).
    Healthcheck(HealthcheckConfig),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Newline-delimited JSON-RPC on stdin/stdout.
    Stdio,
    /// Streamable HTTP at /mcp, with /healthz and /readyz.
    Http,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines (for a terminal).
    Pretty,
}

/// `serve`'s settings: the kit's and the app's.
#[derive(Debug, Clone, Args)]
pub struct Serve<S: Args> {
    #[command(flatten)]
    pub config: ServeConfig,
    #[command(flatten)]
    pub app: S,
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Transport to serve on.
    #[arg(long, env = "MCP_TRANSPORT", value_enum, default_value_t = Transport::Stdio)]
    pub transport: Transport,

    /// Address the HTTP transport listens on (host:port; port 0 picks a free port).
    #[arg(long, env = "MCP_BIND", default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: SocketAddr,

    /// Address of the Prometheus metrics listener (`GET /metrics`), never the MCP port; off when unset.
    #[arg(long, env = "MCP_METRICS_BIND", value_name = "ADDR")]
    pub metrics_bind: Option<SocketAddr>,

    /// Address of a listener of its own for /healthz and /readyz (HTTP transport), with a small
    /// connection cap of its own, so a flood of MCP connections cannot starve the probes; off
    /// when unset (they are always served on the MCP port too).
    #[arg(long, env = "MCP_HEALTH_BIND", value_name = "ADDR")]
    pub health_bind: Option<SocketAddr>,

    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT before they are cancelled.
    #[arg(long, env = "MCP_DRAIN_TIMEOUT", default_value = "25", value_name = "SECONDS",
          value_parser = seconds_in(0..=3600))]
    pub drain_timeout: Duration,

    /// JSON values one message may hold (every number, string, array and object counts), on
    /// every transport; past it, the message is refused before it is parsed.
    #[arg(long, env = "MCP_MAX_JSON_VALUES", default_value = "20000", value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(16..=10_000_000))]
    pub max_json_values: u32,

    /// How deep arrays and objects may nest in one message, on every transport.
    #[arg(long, env = "MCP_MAX_JSON_DEPTH", default_value = "64", value_name = "LEVELS",
          value_parser = clap::value_parser!(u32).range(8..=128))]
    pub max_json_depth: u32,

    #[command(flatten)]
    pub log: LogConfig,

    #[command(flatten)]
    pub http: HttpConfig,

    #[command(flatten)]
    pub auth: AuthConfig,

    #[command(flatten)]
    pub policy: PolicyConfig,

    #[command(flatten)]
    pub tasks: TaskConfig,

    #[command(flatten)]
    pub redis: RedisConfig,

    #[command(flatten)]
    pub upstream: UpstreamConfig,
}

#[derive(Debug, Clone, Args)]
pub struct HttpConfig {
    /// Base URL clients reach this server at, e.g. https://mcp.example.com; the MCP resource
    /// is <public-url>/mcp, the audience of its tokens [default: http://<the address bound>;
    /// required off loopback].
    #[arg(long, env = "MCP_PUBLIC_URL", value_parser = http_url)]
    pub public_url: Option<Url>,

    /// Host header values accepted, comma-separated `host` or `host:port` [default: localhost,
    /// 127.0.0.1, ::1 when bound to loopback; required otherwise].
    #[arg(long, env = "MCP_ALLOWED_HOSTS", value_delimiter = ',', value_name = "HOSTS")]
    pub allowed_hosts: Vec<AllowedHost>,

    /// Browser origins accepted, comma-separated, e.g. https://app.example.com (`:*` for any
    /// port); requests without an Origin header are unaffected [default: loopback origins when
    /// bound to loopback, none otherwise].
    #[arg(long, env = "MCP_ALLOWED_ORIGINS", value_delimiter = ',', value_name = "ORIGINS")]
    pub allowed_origins: Vec<AllowedOrigin>,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "MCP_MAX_BODY_BYTES", default_value = "4194304", value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1024..=67_108_864))]
    pub max_body_bytes: u32,

    /// Memory held at once by all requests being read or answered, in bytes: each counts its
    /// body and what parsing it builds; past it, 503 with Retry-After (on stdio, an error to
    /// retry) [at least --max-body-bytes].
    #[arg(long, env = "MCP_MAX_BODY_BYTES_IN_FLIGHT", default_value = "67108864", value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_body_bytes_in_flight: u32,

    /// Per-caller limit on all MCP requests, `initialize` included, e.g. 50/s:100 (rate, then
    /// burst); over it, 429 with Retry-After [default: off].
    #[arg(long, env = "MCP_HTTP_RATE_LIMIT", value_name = "RATE", value_parser = rate)]
    pub http_rate_limit: Option<Rate>,

    /// Failed authentications allowed per client address (rate, then burst); past it, 429 with
    /// Retry-After instead of 401, so a flood of bad tokens stays cheap.
    #[arg(long, env = "MCP_AUTH_FAILURE_LIMIT", default_value = "1/s:20", value_name = "RATE", value_parser = rate)]
    pub auth_failure_limit: Rate,

    /// Seconds a client gets to send a request body; slower ones get 408.
    #[arg(long, env = "MCP_BODY_READ_TIMEOUT", default_value = "10", value_name = "SECONDS",
          value_parser = seconds_in(1..=300))]
    pub body_read_timeout: Duration,

    /// Seconds a client gets to send a request's headers, from opening the connection or from
    /// its first byte after the previous answer; slower connections are closed.
    #[arg(long, env = "MCP_HEADER_READ_TIMEOUT", default_value = "10", value_name = "SECONDS",
          value_parser = seconds_in(1..=300))]
    pub header_read_timeout: Duration,

    /// Seconds a kept-alive connection may stay silent between requests before it is closed.
    #[arg(long, env = "MCP_IDLE_TIMEOUT", default_value = "75", value_name = "SECONDS",
          value_parser = seconds_in(1..=3600))]
    pub idle_timeout: Duration,

    /// Open connections in all; past it, new ones are closed at once.
    #[arg(long, env = "MCP_MAX_CONNECTIONS", default_value = "1024", value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Open connections per client address; past it, that address's new ones are closed at once.
    #[arg(long, env = "MCP_MAX_CONNECTIONS_PER_CLIENT", default_value = "256", value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_client: u32,

    /// Open GET event streams in all (handshake revisions); past it, 503 with Retry-After.
    #[arg(long, env = "MCP_MAX_EVENT_STREAMS", default_value = "512", value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_event_streams: u32,

    /// Live sessions in all (handshake revisions); past it, `initialize` gets 503 with Retry-After.
    #[arg(long, env = "MCP_MAX_SESSIONS", default_value = "1000", value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_sessions: u32,

    /// Live sessions per caller (per client address when anonymous); past it, `initialize`
    /// gets 429 with Retry-After.
    #[arg(long, env = "MCP_MAX_SESSIONS_PER_CLIENT", default_value = "100", value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_sessions_per_client: u32,

    /// Seconds a session may go unused before it is closed and its memory given back.
    #[arg(long, env = "MCP_SESSION_IDLE_TIMEOUT", default_value = "300", value_name = "SECONDS",
          value_parser = seconds_in(1..=86_400))]
    pub session_idle_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// No authentication: every caller is anonymous (loopback binds only).
    None,
    /// Bearer tokens from a static list (MCP_AUTH_TOKENS or MCP_AUTH_TOKENS_FILE).
    Static,
    /// Bearer JWTs signed by a JWKS (MCP_JWT_JWKS_URL) or a public key (MCP_JWT_PUBLIC_KEY_FILE).
    Jwt,
    /// Opaque bearer tokens, checked at the authorization server's RFC 7662 introspection
    /// endpoint (MCP_INTROSPECTION_URL).
    Introspection,
}

#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// How callers authenticate.
    #[arg(long, env = "MCP_AUTH", value_enum, default_value_t = AuthMode::None)]
    pub auth: AuthMode,

    /// Static tokens: `<token> <subject> [scope ...]` entries separated by `;` or newlines; a
    /// token may be given as `sha256:<hex>`.
    #[arg(long, env = "MCP_AUTH_TOKENS", hide_env_values = true, value_name = "ENTRIES")]
    pub auth_tokens: Option<Secret>,

    /// File of static token entries, in the same format.
    #[arg(long, env = "MCP_AUTH_TOKENS_FILE", value_name = "PATH")]
    pub auth_tokens_file: Option<PathBuf>,

    /// Scopes every caller needs, space- or comma-separated [default: none].
    #[arg(long, env = "MCP_REQUIRED_SCOPES", value_name = "SCOPES")]
    pub required_scopes: Option<String>,

    /// JWKS URL of the keys that sign accepted JWTs.
    #[arg(long, env = "MCP_JWT_JWKS_URL", value_parser = http_url, value_name = "URL")]
    pub jwt_jwks_url: Option<Url>,

    /// PEM public key that signs accepted JWTs (instead of a JWKS).
    #[arg(long, env = "MCP_JWT_PUBLIC_KEY_FILE", value_name = "PATH")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// The `iss` accepted JWTs must carry.
    #[arg(long, env = "MCP_JWT_ISSUER", value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,

    /// JWT signature algorithms accepted, comma-separated (HMAC and `none` never are).
    #[arg(long, env = "MCP_JWT_ALGORITHMS", value_delimiter = ',', default_value = "RS256,ES256",
          value_parser = jwt_algorithm, value_name = "ALGS")]
    pub jwt_algorithms: Vec<Algorithm>,

    /// Seconds of clock skew allowed on JWT `exp` and `nbf`.
    #[arg(long, env = "MCP_JWT_LEEWAY", default_value = "30", value_name = "SECONDS", value_parser = seconds_in(0..=300))]
    pub jwt_leeway: Duration,

    /// Least seconds between two JWKS fetches caused by an unknown key id.
    #[arg(long, env = "MCP_JWKS_REFETCH_COOLDOWN", default_value = "10", value_name = "SECONDS",
          value_parser = seconds_in(0..=3600))]
    pub jwks_refetch_cooldown: Duration,

    /// Token introspection endpoint (RFC 7662) of the authorization server, for opaque tokens.
    #[arg(long, env = "MCP_INTROSPECTION_URL", value_parser = http_url, value_name = "URL")]
    pub introspection_url: Option<Url>,

    /// Client id this server introspects tokens as.
    #[arg(long, env = "MCP_INTROSPECTION_CLIENT_ID", value_name = "ID")]
    pub introspection_client_id: Option<String>,

    /// Its client secret; prefer MCP_INTROSPECTION_CLIENT_SECRET_FILE.
    #[arg(
        long,
        env = "MCP_INTROSPECTION_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub introspection_client_secret: Option<Secret>,

    /// File holding the client secret (a mounted secret; re-read on SIGHUP).
    #[arg(long, env = "MCP_INTROSPECTION_CLIENT_SECRET_FILE", value_name = "PATH")]
    pub introspection_client_secret_file: Option<PathBuf>,

    /// Most seconds an active token's introspection answer is reused (never past the token's
    /// expiry); 0 asks for every request.
    #[arg(long, env = "MCP_INTROSPECTION_CACHE_TTL", default_value = "300", value_name = "SECONDS",
          value_parser = seconds_in(0..=3600))]
    pub introspection_cache_ttl: Duration,

    /// Authorization servers listed in the protected-resource metadata, comma-separated
    /// [default: the JWT issuer]; with introspection, also the issuers an answer may name.
    #[arg(long, env = "MCP_AUTHORIZATION_SERVERS", value_delimiter = ',', value_parser = http_url, value_name = "URLS")]
    pub authorization_servers: Vec<Url>,

    /// Bearer token for a stdio session, checked like an HTTP one; without it a stdio session
    /// gets only the tools that need no scope. Prefer the environment variable.
    #[arg(long, env = "MCP_AUTH_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub auth_token: Option<Secret>,
}

impl AuthConfig {
    pub fn required_scopes(&self) -> Vec<String> {
        self.required_scopes
            .as_deref()
            .map(|s| {
                s.split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Args)]
pub struct PolicyConfig {
    /// Per-tool rate quotas replacing the declared ones, e.g. convert_temperature=30/m:10,server_status=5/s.
    #[arg(long, env = "MCP_RATE_LIMITS", value_delimiter = ',', value_parser = tool_rate, value_name = "TOOL=RATE")]
    pub rate_limits: Vec<(String, Rate)>,

    /// Per-tool timeouts in seconds replacing the declared ones, e.g. convert_temperature=5.
    #[arg(long, env = "MCP_TOOL_TIMEOUTS", value_delimiter = ',', value_parser = tool_timeout, value_name = "TOOL=SECONDS")]
    pub tool_timeouts: Vec<(String, Duration)>,

    /// Seconds between sweeps that forget idle callers' rate-limit buckets.
    #[arg(long, env = "MCP_RATE_LIMIT_EVICTION", default_value = "60", value_name = "SECONDS",
          value_parser = seconds_in(1..=3600))]
    pub rate_limit_eviction: Duration,

    /// Benchmarking only: skip the guard chain, to measure what it costs (`make bench`). Exists
    /// only in builds with the `bench` feature, never in a production build.
    #[cfg(feature = "bench")]
    #[arg(long, env = "MCP_BENCH_GUARD_OFF", hide = true)]
    pub bench_guard_off: bool,
}

/// Tasks: tool calls that run on after their request (tools whose policy allows it).
#[derive(Debug, Clone, Args)]
pub struct TaskConfig {
    /// Seconds a task's result stays readable beyond its tool's timeout: a task is kept (its
    /// `ttlMs`) for the tool's timeout plus this.
    #[arg(long, env = "MCP_TASK_RESULT_TTL", default_value = "600", value_name = "SECONDS",
          value_parser = seconds_in(1..=86_400))]
    pub task_result_ttl: Duration,

    /// Tasks the server holds at once, running or holding a result.
    #[arg(long, env = "MCP_MAX_TASKS", default_value_t = 1000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tasks: u32,

    /// Tasks one caller holds at once.
    #[arg(long, env = "MCP_MAX_TASKS_PER_CLIENT", default_value_t = 20, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tasks_per_client: u32,

    /// Largest task result kept, in bytes of its JSON; a larger one is replaced by an error
    /// result saying how large it was.
    #[arg(long, env = "MCP_MAX_TASK_RESULT_BYTES", default_value = "1048576", value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_task_result_bytes: u32,

    /// Task result bytes held at once in all (at least --max-task-result-bytes); when full, new
    /// tasks are refused with a retryable error until results expire. 32 MiB: with 1,000 tasks
    /// running besides, the server stays under 128 MiB (`make abuse`).
    #[arg(long, env = "MCP_MAX_TASK_RESULT_BYTES_IN_ALL", default_value = "33554432", value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_task_result_bytes_in_all: u32,
}

/// Shared state for replicas: with a Redis URL, rate limits, sessions and tasks live there.
#[derive(Clone, Args)]
pub struct RedisConfig {
    /// Redis for state shared by replicas: redis://[user:password@]host:port[/db], or rediss:// for TLS.
    #[arg(long, env = "MCP_REDIS_URL", hide_env_values = true, value_name = "URL")]
    pub redis_url: Option<String>,

    /// A file holding the Redis URL (a mounted secret), instead of MCP_REDIS_URL.
    #[arg(long, env = "MCP_REDIS_URL_FILE", value_name = "PATH", conflicts_with = "redis_url")]
    pub redis_url_file: Option<std::path::PathBuf>,

    /// Prefix of every key this server writes, so several servers can share one Redis.
    #[arg(long, env = "MCP_REDIS_KEY_PREFIX", default_value = "mcp:", value_name = "PREFIX")]
    pub redis_key_prefix: String,

    /// Milliseconds a Redis command may take before the request goes on without it.
    #[arg(long, env = "MCP_REDIS_TIMEOUT", default_value = "250", value_name = "MILLISECONDS",
          value_parser = millis_in(10..=10_000))]
    pub redis_timeout: Duration,

    /// While Redis cannot answer: `open` carries on with this replica's own state (limits per
    /// replica), `closed` refuses tool calls and new sessions with a retryable error.
    #[arg(long, env = "MCP_REDIS_ON_FAILURE", value_enum, default_value_t = crate::state::OnTrouble::Open)]
    pub redis_on_failure: crate::state::OnTrouble,
}

impl RedisConfig {
    /// The Redis URL, from the setting or its file; `None` keeps all state in this process.
    pub fn url(&self) -> Result<Option<String>, String> {
        match (&self.redis_url, &self.redis_url_file) {
            (Some(url), _) => Ok(Some(url.trim().to_owned())),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|url| Some(url.trim().to_owned()))
                .map_err(|e| {
                    format!(
                        "cannot read MCP_REDIS_URL_FILE (--redis-url-file) {}: {e}",
                        path.display()
                    )
                }),
            (None, None) => Ok(None),
        }
    }
}

/// The URL holds a password: never printed.
/// A setting that is a credential: printed `<redacted>`, so a debug print of the settings
/// cannot leak it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<set>"))
            .field("redis_url_file", &self.redis_url_file)
            .field("redis_key_prefix", &self.redis_key_prefix)
            .field("redis_timeout", &self.redis_timeout)
            .field("redis_on_failure", &self.redis_on_failure)
            .finish()
    }
}

impl TaskConfig {
    pub fn limits(&self) -> crate::tasks::TaskLimits {
        crate::tasks::TaskLimits {
            result_ttl: self.task_result_ttl,
            poll_interval: Duration::from_secs(1),
            max_total: self.max_tasks as usize,
            max_per_caller: self.max_tasks_per_client as usize,
            max_result_bytes: self.max_task_result_bytes as usize,
            max_result_bytes_in_all: self.max_task_result_bytes_in_all as usize,
        }
    }
}

impl ServeConfig {
    /// Cross-setting rules that fail closed: exposure needs authentication and explicit
    /// allow-lists; each auth mode needs its inputs. The message names what to set.
    pub fn validate(&self) -> Result<(), String> {
        let auth = &self.auth;
        let exposed = self.transport == Transport::Http && !self.bind.ip().is_loopback();
        if exposed && auth.auth == AuthMode::None {
            return Err(format!(
                "error: refusing to serve on {} (not loopback) without authentication: set MCP_AUTH (--auth) to static, jwt or introspection",
                self.bind
            ));
        }
        if exposed && self.http.allowed_hosts.is_empty() {
            return Err(format!(
                "error: refusing to serve on {} (not loopback) without an allowed-hosts list: set MCP_ALLOWED_HOSTS (--allowed-hosts) to the host names clients use",
                self.bind
            ));
        }
        if self.http.max_body_bytes_in_flight < self.http.max_body_bytes {
            return Err(format!(
                "error: MCP_MAX_BODY_BYTES_IN_FLIGHT (--max-body-bytes-in-flight) is {} but must be at least MCP_MAX_BODY_BYTES (--max-body-bytes), {}",
                self.http.max_body_bytes_in_flight, self.http.max_body_bytes
            ));
        }
        if self.tasks.max_task_result_bytes_in_all < self.tasks.max_task_result_bytes {
            return Err(format!(
                "error: MCP_MAX_TASK_RESULT_BYTES_IN_ALL (--max-task-result-bytes-in-all) is {} but must be at least MCP_MAX_TASK_RESULT_BYTES (--max-task-result-bytes), {}",
                self.tasks.max_task_result_bytes_in_all, self.tasks.max_task_result_bytes
            ));
        }
        if exposed && self.http.public_url.is_none() {
            return Err("error: a non-loopback server needs its public URL: set MCP_PUBLIC_URL (--public-url)".into());
        }
        match auth.auth {
            AuthMode::None if auth.auth_token.is_some() => {
                return Err(
                    "error: MCP_AUTH_TOKEN (--auth-token) is set but MCP_AUTH (--auth) is none: nothing can verify it"
                        .into(),
                );
            }
            AuthMode::None if auth.required_scopes.is_some() => {
                return Err("error: MCP_REQUIRED_SCOPES (--required-scopes) is set but MCP_AUTH (--auth) is none: no caller could have a scope".into());
            }
            AuthMode::None => {}
            AuthMode::Static if auth.auth_tokens.is_none() && auth.auth_tokens_file.is_none() => {
                return Err("error: MCP_AUTH=static needs tokens: set MCP_AUTH_TOKENS (--auth-tokens) or MCP_AUTH_TOKENS_FILE (--auth-tokens-file)".into());
            }
            AuthMode::Static => {}
            AuthMode::Jwt => {
                if auth.jwt_issuer.is_none() {
                    return Err("error: MCP_AUTH=jwt needs the token issuer: set MCP_JWT_ISSUER (--jwt-issuer)".into());
                }
                if auth.jwt_jwks_url.is_some() == auth.jwt_public_key_file.is_some() {
                    return Err("error: MCP_AUTH=jwt needs exactly one key source: set MCP_JWT_JWKS_URL (--jwt-jwks-url) or MCP_JWT_PUBLIC_KEY_FILE (--jwt-public-key-file)".into());
                }
                // Over HTTP on loopback, the URL is the address bound.
                if self.http.public_url.is_none() && self.transport == Transport::Stdio {
                    return Err("error: MCP_AUTH=jwt over stdio needs the public URL of the server its tokens are for, the audience they name: set MCP_PUBLIC_URL (--public-url)".into());
                }
            }
            AuthMode::Introspection => {
                let Some(url) = &auth.introspection_url else {
                    return Err("error: MCP_AUTH=introspection needs the endpoint: set MCP_INTROSPECTION_URL (--introspection-url)".into());
                };
                // Every token checked, and the client secret, travel to it.
                let loopback = match url.host() {
                    Some(url::Host::Domain(name)) => name == "localhost",
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                };
                if url.scheme() != "https" && !loopback {
                    return Err(format!(
                        "error: MCP_INTROSPECTION_URL (--introspection-url) {url} must be https: tokens and the client secret are sent to it"
                    ));
                }
                if auth.introspection_client_id.is_none() {
                    return Err("error: MCP_AUTH=introspection needs this server's client id: set MCP_INTROSPECTION_CLIENT_ID (--introspection-client-id)".into());
                }
                if auth.introspection_client_secret.is_some() == auth.introspection_client_secret_file.is_some() {
                    return Err("error: MCP_AUTH=introspection needs exactly one client secret: set MCP_INTROSPECTION_CLIENT_SECRET_FILE (--introspection-client-secret-file) or MCP_INTROSPECTION_CLIENT_SECRET".into());
                }
                if auth.authorization_servers.is_empty() {
                    return Err("error: MCP_AUTH=introspection needs the authorization server clients are sent to: set MCP_AUTHORIZATION_SERVERS (--authorization-servers)".into());
                }
                // Over HTTP on loopback, the URL is the address bound.
                if self.http.public_url.is_none() && self.transport == Transport::Stdio {
                    return Err("error: MCP_AUTH=introspection over stdio needs the public URL of the server its tokens are for, the audience they name: set MCP_PUBLIC_URL (--public-url)".into());
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Log line format (logs always go to stderr; stdout is reserved for JSON-RPC).
    #[arg(long, env = "MCP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `debug,hyper=warn` [default: RUST_LOG, else info].
    #[arg(long, env = "MCP_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct UpstreamConfig {
    /// Seconds one attempt at an upstream request may take: connecting, sending, and reading
    /// the whole answer.
    #[arg(long, env = "MCP_UPSTREAM_TIMEOUT", default_value = "10", value_name = "SECONDS",
          value_parser = seconds_in(1..=300))]
    pub upstream_timeout: Duration,

    /// Seconds one upstream call may take in all: every attempt and the waits between them.
    #[arg(long, env = "MCP_UPSTREAM_DEADLINE", default_value = "30", value_name = "SECONDS",
          value_parser = seconds_in(1..=600))]
    pub upstream_deadline: Duration,

    /// Attempts per upstream call, the first included; 1 turns retries off.
    #[arg(long, env = "MCP_UPSTREAM_ATTEMPTS", default_value = "3", value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub upstream_attempts: u32,

    /// Milliseconds the first retry waits at most; each later one waits up to twice as long
    /// as the one before (a random share of it, so clients do not retry in step).
    #[arg(long, env = "MCP_UPSTREAM_BACKOFF", default_value = "250", value_name = "MILLISECONDS",
          value_parser = millis_in(1..=60_000))]
    pub upstream_backoff: Duration,

    /// Hosts upstream calls may reach, comma-separated, e.g. api.example.com [default: the
    /// hosts of the APIs the app calls]
    #[arg(long, env = "MCP_UPSTREAM_ALLOW_HOSTS", value_name = "HOSTS", value_delimiter = ',',
          value_parser = host_name)]
    pub upstream_allow_hosts: Vec<url::Host>,

    /// Networks upstream calls may reach although they are not public (loopback, private,
    /// link-local, ...), as comma-separated CIDRs or addresses, e.g. 127.0.0.0/8 for a
    /// service on this machine [default: none].
    #[arg(long, env = "MCP_UPSTREAM_ALLOW_PRIVATE", value_name = "CIDRS", value_delimiter = ',',
          value_parser = network)]
    pub upstream_allow_private: Vec<ipnet::IpNet>,

    /// Upstream requests in flight at once, to all hosts; past it, a request waits for one to
    /// end, within its attempt's time limit, then fails as busy (retryable).
    #[arg(long, env = "MCP_UPSTREAM_MAX_CONNECTIONS", default_value = "256", value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub upstream_max_connections: u32,

    /// Upstream requests in flight at once to one host, and idle connections kept open to it;
    /// past it, a request waits as for MCP_UPSTREAM_MAX_CONNECTIONS.
    #[arg(long, env = "MCP_UPSTREAM_MAX_CONNECTIONS_PER_HOST", default_value = "64", value_name = "COUNT",
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub upstream_max_connections_per_host: u32,
}

impl ServeConfig {
    /// What one message may hold, on every transport.
    pub fn parse_limits(&self) -> crate::parse_budget::ParseLimits {
        crate::parse_budget::ParseLimits {
            max_values: self.max_json_values as usize,
            max_depth: self.max_json_depth as usize,
        }
    }

    /// The tool quotas and timeouts the settings override.
    pub fn overrides(&self) -> crate::guard::Overrides {
        crate::guard::Overrides {
            quotas: self.policy.rate_limits.iter().cloned().collect(),
            timeouts: self.policy.tool_timeouts.iter().cloned().collect(),
            #[cfg(feature = "bench")]
            off: self.policy.bench_guard_off,
        }
    }

    /// The hosts upstream calls may reach: the explicit list, else `apis`, those of the APIs
    /// the app calls.
    pub fn upstream_hosts(&self, apis: Vec<url::Host>) -> Vec<url::Host> {
        if !self.upstream.upstream_allow_hosts.is_empty() {
            return self.upstream.upstream_allow_hosts.clone();
        }
        apis
    }
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckConfig {
    /// Health URL to probe [default: /healthz on MCP_HEALTH_BIND when set, else on MCP_BIND,
    /// through loopback when it binds all interfaces].
    #[arg(long, env = "MCP_HEALTHCHECK_URL", value_parser = http_url)]
    pub url: Option<Url>,

    /// Address the server listens on; used to build the default URL.
    #[arg(long, env = "MCP_BIND", default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: SocketAddr,

    /// Address of the server's health listener; when set, the default URL is on it.
    #[arg(long, env = "MCP_HEALTH_BIND", value_name = "ADDR")]
    pub health_bind: Option<SocketAddr>,

    /// Seconds to wait for an answer.
    #[arg(long, env = "MCP_HEALTHCHECK_TIMEOUT", default_value = "3", value_name = "SECONDS",
          value_parser = seconds_in(1..=60))]
    pub timeout: Duration,
}

impl HealthcheckConfig {
    /// The URL to probe: the explicit one, or `/healthz` on the health listener, else on the
    /// bind address.
    pub fn target(&self) -> Url {
        if let Some(url) = &self.url {
            return url.clone();
        }
        let mut addr = self.health_bind.unwrap_or(self.bind);
        if addr.ip().is_unspecified() {
            // A server bound to 0.0.0.0 / [::] is reachable through loopback.
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        Url::parse(&format!("http://{addr}/healthz")).expect("a socket address makes a valid URL")
    }
}

impl<S: Args> Cli<S> {
    /// The command line, named and described as the app is.
    pub fn command(name: &'static str, version: &'static str, about: &'static str) -> clap::Command {
        <Self as clap::CommandFactory>::command()
            .name(name)
            .bin_name(name)
            .version(version)
            .about(about)
    }

    /// Parses flags and environment; on a bad setting prints one line naming it and exits 2.
    pub fn parse_or_exit(name: &'static str, version: &'static str, about: &'static str) -> Self {
        let parsed = Self::command(name, version, about)
            .try_get_matches()
            .and_then(|matches| <Self as clap::FromArgMatches>::from_arg_matches(&matches));
        match parsed {
            Ok(cli) => cli,
            Err(err) if !err.use_stderr() => err.exit(), // --help, --version
            Err(err) => {
                eprintln!("{}", one_line(&err, &<Self as clap::CommandFactory>::command()));
                std::process::exit(CONFIG_ERROR_EXIT);
            }
        }
    }
}

/// Folds clap's multi-line message into one line and adds the setting's environment variable.
fn one_line(err: &clap::Error, cli: &clap::Command) -> String {
    let text = err.to_string();
    let mut line = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:"))
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(flag) = err.get(ContextKind::InvalidArg).map(ToString::to_string)
        && let Some(env) = env_of_flag(cli, &flag)
    {
        line.push_str(&format!(" (env {env})"));
    }
    line
}

/// The environment variable behind a flag such as `--bind <ADDR>`, looked up in the CLI itself.
fn env_of_flag(cli: &clap::Command, flag: &str) -> Option<String> {
    let long = flag.trim_start_matches('-').split([' ', '=']).next()?;
    cli.get_subcommands()
        .flat_map(|sub| sub.get_arguments())
        .find(|arg| arg.get_long() == Some(long))
        .and_then(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
}

/// A value parser for a whole number of seconds within `range`.
fn seconds_in(
    range: std::ops::RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    whole_units_in(range, "seconds", Duration::from_secs)
}

/// A value parser for a whole number of milliseconds within `range`.
fn millis_in(
    range: std::ops::RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    whole_units_in(range, "milliseconds", Duration::from_millis)
}

/// A value parser for a whole number of `unit`s within `range`, made a duration by `make`.
fn whole_units_in(
    range: std::ops::RangeInclusive<u64>,
    unit: &'static str,
    make: fn(u64) -> Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |raw| {
        let n: u64 = raw
            .trim()
            .parse()
            .map_err(|_| format!("expected a whole number of {unit}, got '{raw}'"))?;
        if !range.contains(&n) {
            return Err(format!(
                "{n} is out of range ({}..={} {unit})",
                range.start(),
                range.end()
            ));
        }
        Ok(make(n))
    }
}

/// A value parser for a rate such as `30/m` or `10/s:20`.
fn rate(raw: &str) -> Result<Rate, String> {
    raw.parse()
}

/// A value parser for `tool=rate`.
fn tool_rate(raw: &str) -> Result<(String, Rate), String> {
    let (tool, rate) = raw.split_once('=').ok_or_else(|| format!("'{raw}' is not TOOL=RATE"))?;
    Ok((tool.trim().to_owned(), rate.parse()?))
}

/// A value parser for `tool=seconds`.
fn tool_timeout(raw: &str) -> Result<(String, Duration), String> {
    let (tool, secs) = raw
        .split_once('=')
        .ok_or_else(|| format!("'{raw}' is not TOOL=SECONDS"))?;
    Ok((tool.trim().to_owned(), seconds_in(1..=3600)(secs)?))
}

/// A value parser for an accepted JWT algorithm: asymmetric only.
fn jwt_algorithm(raw: &str) -> Result<Algorithm, String> {
    let alg: Algorithm = raw
        .trim()
        .parse()
        .map_err(|_| format!("'{raw}' is not a JWT algorithm"))?;
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Err(format!(
            "{raw} is HMAC (a shared secret); only public-key algorithms are accepted"
        )),
        alg => Ok(alg),
    }
}

/// A value parser for a host name or IP address (no scheme, port or path).
fn host_name(raw: &str) -> Result<url::Host, String> {
    let raw = raw.trim();
    let bare = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(raw);
    let host = match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => url::Host::Ipv4(ip),
        Ok(std::net::IpAddr::V6(ip)) => url::Host::Ipv6(ip),
        Err(_) if raw.contains([':', '/', '@']) => {
            return Err(format!(
                "expected a host name or IP address, without scheme, port or path, got '{raw}'"
            ));
        }
        Err(_) => url::Host::parse(raw).map_err(|e| format!("not a host name: {e}"))?,
    };
    Ok(host)
}

/// A value parser for a network in CIDR notation, or one address.
fn network(raw: &str) -> Result<ipnet::IpNet, String> {
    let raw = raw.trim();
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("expected a network such as 127.0.0.0/8 or an address, got '{raw}'"))
}

/// A value parser for an absolute http(s) URL.
pub fn http_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err("expected an http:// or https:// URL with a host".into()),
    }
}

/// The settings of an app that has none of its own.
#[derive(Debug, Clone, Args)]
pub struct NoAppSettings {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parser_enforces_range() {
        let parse = seconds_in(1..=5);
        assert_eq!(parse("3").unwrap(), Duration::from_secs(3));
        assert!(parse("0").unwrap_err().contains("out of range"));
        assert!(parse("x").unwrap_err().contains("whole number"));
    }

    #[test]
    fn healthcheck_targets_loopback_for_wildcard_bind() {
        let cfg = HealthcheckConfig {
            url: None,
            bind: "0.0.0.0:9000".parse().unwrap(),
            health_bind: None,
            timeout: Duration::from_secs(1),
        };
        assert_eq!(cfg.target().as_str(), "http://127.0.0.1:9000/healthz");
        let cfg = HealthcheckConfig {
            health_bind: Some("0.0.0.0:9001".parse().unwrap()),
            ..cfg
        };
        assert_eq!(cfg.target().as_str(), "http://127.0.0.1:9001/healthz");
    }

    #[test]
    fn host_and_network_parsers_normalise_what_they_accept() {
        use url::Host;
        assert_eq!(
            host_name(" API.Example.com ").unwrap(),
            Host::Domain("api.example.com".to_owned())
        );
        assert_eq!(host_name("[::1]").unwrap(), host_name("::1").unwrap());
        assert_eq!(
            host_name("127.0.0.1").unwrap(),
            Host::<String>::Ipv4([127, 0, 0, 1].into())
        );
        for bad in ["example.com:443", "https://example.com", "example.com/x", ""] {
            assert!(host_name(bad).is_err(), "{bad}");
        }
        assert_eq!(network("127.0.0.1").unwrap(), "127.0.0.1/32".parse().unwrap());
        assert!(network("fd00::/8").is_ok());
        assert!(network("10.0.0.0/33").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::<NoAppSettings>::command("server", "0", "a server").debug_assert();
    }
}
