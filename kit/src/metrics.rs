//! Metrics in Prometheus's text format, at `GET /metrics` on a listener of their own
//! (`--metrics-bind`, off by default, never the public MCP port): OpenTelemetry's MCP
//! conventions (`mcp.server.operation.duration`, `mcp.server.session.duration`, histograms in
//! seconds with the conventions' bucket boundaries), and the counters and gauges an operator
//! alerts on. They are recorded at the points that write the log lines (`observe` in
//! server.rs, the edge's refusals, the upstream client's attempts), so the two agree.
//!
//! Every label value comes from a bounded set: methods and outcomes this code names, tool
//! names from the catalogue (anything else is `_other`), upstream hosts from the allow-list.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{OnceLock, atomic::AtomicI64},
};

use axum::{Router, extract::State, http::header, response::IntoResponse, routing};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// The conventions' boundaries for MCP durations, in seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The label value for a name outside the bounded set.
pub const OTHER: &str = "_other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    mcp_method_name: &'static str,
    /// The tool (or prompt) called; empty for other methods.
    gen_ai_tool_name: &'static str,
    mcp_protocol_version: &'static str,
    /// `pipe` (stdio) or `tcp` (HTTP).
    network_transport: &'static str,
    /// Empty on success; `tool_error` for an `isError` result, else the JSON-RPC error code.
    error_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Session {
    mcp_protocol_version: &'static str,
    network_transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuardDecision {
    tool: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Refusal {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpansDropped {
    /// `queue_full` or `export_failed`.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamAttempt {
    host: &'static str,
    outcome: &'static str,
}

pub struct Metrics {
    registry: Registry,
    tools: HashSet<&'static str>,
    hosts: Vec<&'static str>,
    operation: Family<Operation, Histogram>,
    session: Family<Session, Histogram>,
    guard: Family<GuardDecision, Counter>,
    refusals: Family<Refusal, Counter>,
    upstream: Family<UpstreamAttempt, Counter>,
    spans_dropped: Family<SpansDropped, Counter>,
    pub in_flight: Gauge<i64, AtomicI64>,
    pub sessions: Gauge<i64, AtomicI64>,
    pub rate_limit_buckets: Gauge<i64, AtomicI64>,
    pub tasks: Gauge<i64, AtomicI64>,
    sampler: Sample,
    /// Whether `/metrics` is served. When it is not (the metrics only leave over OTLP), the
    /// Prometheus families record nothing: a call then pays for one recording, not two.
    served: bool,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

fn histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The metrics, once [`init`] has run (only when they are served or exported); `None` records
/// nothing.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// Turns recording on, with the catalogue's tool names and the allowed upstream hosts as the
/// only label values those labels take; `sampler` sets the gauges before they are read;
/// `served`: whether `/metrics` will be served (else only OTLP is recorded for).
pub fn init(
    tools: impl IntoIterator<Item = &'static str>,
    hosts: Vec<String>,
    sampler: Sample,
    served: bool,
) -> &'static Metrics {
    let metrics = METRICS.get_or_init(|| {
        let mut registry = Registry::default();
        let operation = Family::<Operation, Histogram>::new_with_constructor(histogram as fn() -> Histogram);
        let session = Family::<Session, Histogram>::new_with_constructor(histogram as fn() -> Histogram);
        registry.register_with_unit(
            "mcp_server_operation_duration",
            "MCP request or notification duration as observed on the receiver",
            prometheus_client::registry::Unit::Seconds,
            operation.clone(),
        );
        registry.register_with_unit(
            "mcp_server_session_duration",
            "The duration of the MCP session as observed on the MCP server",
            prometheus_client::registry::Unit::Seconds,
            session.clone(),
        );
        let guard = Family::default();
        registry.register(
            "mcp_guard_decisions",
            "Tool calls by the guard's decision",
            guard.clone(),
        );
        let refusals = Family::default();
        registry.register(
            "mcp_http_refusals",
            "Requests refused at the HTTP edge, by reason",
            refusals.clone(),
        );
        let upstream = Family::default();
        registry.register(
            "mcp_upstream_attempts",
            "Attempts at upstream API calls, by host and outcome",
            upstream.clone(),
        );
        let spans_dropped = Family::default();
        registry.register(
            "mcp_otel_spans_dropped",
            "Trace spans lost before reaching the collector, by reason",
            spans_dropped.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let gauge = Gauge::<i64, AtomicI64>::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let in_flight = gauge(&mut registry, "mcp_requests_in_flight", "Requests being handled");
        let sessions = gauge(&mut registry, "mcp_sessions_live", "Live sessions");
        let rate_limit_buckets = gauge(
            &mut registry,
            "mcp_rate_limit_buckets",
            "Rate-limit buckets held in this process",
        );
        let tasks = gauge(
            &mut registry,
            "mcp_tasks_held",
            "Tasks held, running or keeping a result",
        );
        let hosts = hosts.into_iter().map(|h| &*Box::leak(h.into_boxed_str())).collect();
        Metrics {
            registry,
            tools: tools.into_iter().collect(),
            hosts,
            operation,
            session,
            guard,
            refusals,
            upstream,
            spans_dropped,
            in_flight,
            sessions,
            rate_limit_buckets,
            tasks,
            sampler,
            served,
        }
    });
    #[cfg(feature = "otel")]
    if let Some(otlp) = crate::otel::meters::get() {
        otlp.observe_gauges(metrics);
    }
    metrics
}

/// Whether metrics are exported over OTLP (then they are recorded even with no `/metrics`).
pub fn exported() -> bool {
    #[cfg(feature = "otel")]
    return crate::otel::meters::get().is_some();
    #[cfg(not(feature = "otel"))]
    false
}

impl Metrics {
    /// `name` if the catalogue has it, else `_other`.
    fn tool(&self, name: Option<&str>) -> &'static str {
        match name {
            None => "",
            Some(name) => self.tools.get(name).copied().unwrap_or(OTHER),
        }
    }

    /// One handled request.
    #[allow(clippy::too_many_arguments, reason = "the convention's attributes, each a label")]
    pub fn operation(
        &self,
        method: &'static str,
        tool: Option<&str>,
        protocol: Option<&str>,
        transport: &'static str,
        error_type: &'static str,
        seconds: f64,
    ) {
        let labels = Operation {
            mcp_method_name: method,
            gen_ai_tool_name: if method == "tools/call" { self.tool(tool) } else { "" },
            mcp_protocol_version: protocol_label(protocol),
            network_transport: if transport == "stdio" { "pipe" } else { "tcp" },
            error_type,
        };
        if self.served {
            self.operation.get_or_create(&labels).observe(seconds);
        }
        #[cfg(feature = "otel")]
        if let Some(otlp) = crate::otel::meters::get() {
            otlp.operation(
                labels.mcp_method_name,
                labels.gen_ai_tool_name,
                labels.mcp_protocol_version,
                labels.network_transport,
                labels.error_type,
                seconds,
            );
        }
    }

    /// A session that ended, after `seconds`.
    pub fn session(&self, protocol: Option<&str>, transport: &'static str, seconds: f64) {
        let labels = Session {
            mcp_protocol_version: protocol_label(protocol),
            network_transport: if transport == "stdio" { "pipe" } else { "tcp" },
        };
        if self.served {
            self.session.get_or_create(&labels).observe(seconds);
        }
        #[cfg(feature = "otel")]
        if let Some(otlp) = crate::otel::meters::get() {
            otlp.session(labels.mcp_protocol_version, labels.network_transport, seconds);
        }
    }

    pub fn guard_decision(&self, tool: &str, decision: &'static str) {
        let labels = GuardDecision {
            tool: self.tool(Some(tool)),
            decision,
        };
        if self.served {
            self.guard.get_or_create(&labels).inc();
        }
        #[cfg(feature = "otel")]
        if let Some(otlp) = crate::otel::meters::get() {
            otlp.guard_decision(labels.tool, decision);
        }
    }

    pub fn refusal(&self, reason: &'static str) {
        if self.served {
            self.refusals.get_or_create(&Refusal { reason }).inc();
        }
        #[cfg(feature = "otel")]
        if let Some(otlp) = crate::otel::meters::get() {
            otlp.refusal(reason);
        }
    }

    pub fn upstream_attempt(&self, host: &str, outcome: &'static str) {
        let host = self.hosts.iter().find(|h| **h == host).copied().unwrap_or(OTHER);
        if self.served {
            self.upstream.get_or_create(&UpstreamAttempt { host, outcome }).inc();
        }
        #[cfg(feature = "otel")]
        if let Some(otlp) = crate::otel::meters::get() {
            otlp.upstream_attempt(host, outcome);
        }
    }

    #[cfg_attr(
        not(feature = "otel"),
        allow(dead_code, reason = "spans are made with the `otel` feature")
    )]
    pub fn spans_dropped(&self, reason: &'static str, spans: u64) {
        if self.served {
            self.spans_dropped.get_or_create(&SpansDropped { reason }).inc_by(spans);
        }
        #[cfg(feature = "otel")]
        if let Some(otlp) = crate::otel::meters::get() {
            otlp.spans_dropped(reason, spans);
        }
    }

    /// Sets the gauges to what they read now.
    pub fn sample(&self) {
        (self.sampler)(self);
    }

    fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}

/// A JSON-RPC error code as a label value: the codes this server answers with, else `_other`.
pub fn error_code(code: i32) -> &'static str {
    match code {
        -32700 => "-32700",
        -32600 => "-32600",
        -32601 => "-32601",
        -32602 => "-32602",
        -32603 => "-32603",
        -32000 => "-32000",
        -32002 => "-32002",
        -32021 => "-32021",
        _ => OTHER,
    }
}

/// The revisions served, as label values; anything else (never sent by the server) is `_other`.
pub(crate) fn protocol_label(protocol: Option<&str>) -> &'static str {
    match protocol {
        None => "",
        Some("2026-07-28") => "2026-07-28",
        Some("2025-11-25") => "2025-11-25",
        Some("2025-06-18") => "2025-06-18",
        Some(_) => OTHER,
    }
}

/// What the gauges read when scraped.
pub type Sample = Box<dyn Fn(&Metrics) + Send + Sync>;

/// Serves `GET /metrics` on `bind` until the process ends; logs the bound address. The gauges
/// are sampled just before each scrape.
pub async fn serve(bind: SocketAddr) -> Result<(), String> {
    let metrics = get().expect("metrics::init runs before metrics::serve");
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind} (setting: --metrics-bind, env MCP_METRICS_BIND): {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(event = "metrics_listening", %addr, "serving Prometheus metrics at /metrics");
    let app = Router::new()
        .route("/metrics", routing::get(scrape))
        .with_state(metrics);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(event = "metrics_failed", %error, "the metrics listener stopped");
        }
    });
    Ok(())
}

async fn scrape(State(metrics): State<&'static Metrics>) -> impl IntoResponse {
    metrics.sample();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}
