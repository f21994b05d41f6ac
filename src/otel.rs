//! OpenTelemetry traces, exported over OTLP/HTTP (protobuf) when the standard variables ask for
//! it: `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` turns them on;
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`,
//! `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_BSP_*` are read by the SDK as the specification says.
//!
//! Spans leave through the SDK's batch processor: a queue of bounded size (spans past it are
//! dropped, never waited for) and a thread of its own, so a slow or dead collector costs a
//! request nothing. What is queued is sent when the server exits, after its drain.
//!
//! One span per MCP request, named and attributed on OpenTelemetry's MCP conventions
//! (`server.rs`), parented on the W3C trace context in `params._meta` (else the HTTP
//! `traceparent` header); one client span per upstream attempt, whose context travels on in the
//! upstream request's `traceparent` (`upstream/`).

use std::{sync::OnceLock, time::Duration};

use axum::{body::Bytes, http};

use opentelemetry::{
    Context,
    propagation::{Extractor, TextMapCompositePropagator, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    Resource,
    propagation::{BaggagePropagator, TraceContextPropagator},
    trace::SdkTracerProvider,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{Layer, Registry, filter::filter_fn};

/// The target of the spans this module exports; nothing else reaches the exporter.
pub const TARGET: &str = "otel";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

fn propagator() -> &'static TextMapCompositePropagator {
    static PROPAGATOR: OnceLock<TextMapCompositePropagator> = OnceLock::new();
    PROPAGATOR.get_or_init(|| {
        TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ])
    })
}

/// Whether traces are exported: request spans are only made when they are.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// The exporting layer when the environment configures an endpoint; `None` (and nothing
/// else to do) when it does not. Fails, as a configuration error, on a protocol this build
/// cannot speak.
pub fn layer() -> Result<Option<impl Layer<Registry> + Send + Sync>, String> {
    let configured = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if !configured("OTEL_EXPORTER_OTLP_ENDPOINT") && !configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return Ok(None);
    }
    for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Ok(protocol) = std::env::var(name)
            && !protocol.trim().is_empty()
        {
            if protocol.trim() != "http/protobuf" {
                return Err(format!(
                    "error: {name}={protocol} is not supported by this server; use http/protobuf (the collector's port 4318)"
                ));
            }
            break;
        }
    }
    let runtime =
        tokio::runtime::Handle::try_current().map_err(|e| format!("error: OpenTelemetry needs the runtime: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(OnRuntime {
            runtime,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| format!("error: cannot build the OTLP client: {e}"))?,
        })
        .build()
        .map_err(|e| format!("error: invalid OpenTelemetry settings: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().build())
        .build();
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    let _ = PROVIDER.set(provider);
    Ok(Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false)
            .with_filter(filter_fn(|meta| meta.target() == TARGET)),
    ))
}

/// Sends what is queued and stops the exporter (at exit, after the drain).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        tracing::warn!(event = "otel_shutdown", %error, "could not send every queued span at exit");
    }
}

/// A request's parent context: the W3C trace context in its `_meta` when it carries one, else
/// in the HTTP headers; `None` without either, or when nothing is exported.
pub fn parent(meta: &serde_json::Map<String, serde_json::Value>, headers: Option<&http::HeaderMap>) -> Option<Context> {
    if !enabled() {
        return None;
    }
    let context = if meta.contains_key("traceparent") {
        propagator().extract(&MetaCarrier(meta))
    } else {
        propagator().extract(&opentelemetry_http::HeaderExtractor(headers?))
    };
    context.span().span_context().is_valid().then_some(context)
}

/// What a request's span is named and attributed with, on OpenTelemetry's MCP conventions.
pub struct Request<'a> {
    pub method: &'a str,
    /// The tool, prompt or resource URI the request names.
    pub target: Option<&'a str>,
    pub id: String,
    pub protocol: Option<&'a str>,
    /// `http` or `stdio`.
    pub transport: &'a str,
    pub session: Option<&'a str>,
    pub parent: Option<Context>,
}

/// The span of one MCP request (a disabled span when nothing is exported).
pub fn request_span(request: Request<'_>) -> Span {
    if !enabled() {
        return Span::none();
    }
    let empty = tracing::field::Empty;
    let name = match request.target {
        Some(target) => format!("{} {target}", request.method),
        None => request.method.to_owned(),
    };
    let span = tracing::info_span!(
        target: "otel",
        "mcp.request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = empty,
        "mcp.method.name" = request.method,
        "gen_ai.tool.name" = empty,
        "gen_ai.operation.name" = empty,
        "gen_ai.prompt.name" = empty,
        "mcp.resource.uri" = empty,
        "jsonrpc.request.id" = request.id,
        "mcp.protocol.version" = request.protocol,
        "mcp.session.id" = request.session,
        "network.transport" = if request.transport == "stdio" { "pipe" } else { "tcp" },
        "error.type" = empty,
        "rpc.response.status_code" = empty,
        "mcp.guard.decision" = empty,
        "mcp.outcome" = empty,
    );
    match (request.method, request.target) {
        ("tools/call", Some(tool)) => {
            span.record("gen_ai.tool.name", tool);
            span.record("gen_ai.operation.name", "execute_tool");
        }
        ("prompts/get", Some(prompt)) => {
            span.record("gen_ai.prompt.name", prompt);
        }
        ("resources/read" | "resources/subscribe" | "resources/unsubscribe", Some(uri)) => {
            span.record("mcp.resource.uri", uri);
        }
        _ => {}
    }
    if let Some(parent) = request.parent {
        let _ = span.set_parent(parent);
    }
    span
}

/// Records how a request ended: the guard's decision, the outcome, and the error as the
/// conventions name it (`tool_error` for an `isError` result, else the JSON-RPC code).
pub fn finish(span: &Span, decision: Option<&str>, outcome: &str, error_code: Option<i32>) {
    if span.is_disabled() {
        return;
    }
    if let Some(decision) = decision {
        span.record("mcp.guard.decision", decision);
    }
    span.record("mcp.outcome", outcome);
    match error_code {
        Some(code) => {
            span.record("error.type", code.to_string());
            span.record("rpc.response.status_code", code.to_string());
            span.record("otel.status_code", "error");
        }
        None if !matches!(outcome, "ok" | "task_started") => {
            span.record("error.type", "tool_error");
            span.record("otel.status_code", "error");
        }
        None => {}
    }
}

/// The client span of one upstream attempt, on the HTTP client conventions, its context
/// written into the request's `traceparent` so the trace goes on upstream. Query strings are
/// left out of every attribute.
pub fn client_span(request: &mut reqwest::Request, attempt: u32) -> Span {
    if !enabled() {
        return Span::none();
    }
    let url = request.url();
    let span = tracing::info_span!(
        target: "otel",
        "upstream.request",
        otel.name = request.method().as_str(),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        "http.request.method" = request.method().as_str(),
        "server.address" = url.host_str().unwrap_or_default(),
        "server.port" = url.port_or_known_default(),
        "url.path" = url.path(),
        "http.request.resend_count" = attempt.saturating_sub(1),
        "http.response.status_code" = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    );
    inject(&span, request.headers_mut());
    span
}

/// Records an upstream attempt's status, or that it got none.
pub fn client_answered(span: &Span, status: Result<u16, ()>) {
    match status {
        Ok(status) => {
            span.record("http.response.status_code", status);
            if status >= 400 {
                span.record("error.type", status.to_string());
                span.record("otel.status_code", "error");
            }
        }
        Err(()) => {
            span.record("error.type", "network");
            span.record("otel.status_code", "error");
        }
    }
}

/// `span`'s trace and span ids, as hex, for the log line of the same work.
pub fn ids(span: &Span) -> Option<(String, String)> {
    let context = span.context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid()
        .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

/// Writes `span`'s trace context into an outgoing request's headers.
pub fn inject(span: &Span, headers: &mut http::HeaderMap) {
    let context: Context = span.context();
    propagator().inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
}

struct MetaCarrier<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl Extractor for MetaCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.as_str()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// The exporter's HTTP client: the server's own reqwest, its requests run on the server's
/// runtime (the SDK's batch thread has none of its own).
#[derive(Debug)]
struct OnRuntime {
    runtime: tokio::runtime::Handle,
    client: reqwest::Client,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let request: reqwest::Request = request.try_into()?;
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            // A collector's answer is small; a huge one is cut off rather than held.
            let body = response.bytes().await?;
            let mut answer = http::Response::builder()
                .status(status)
                .body(body.slice(..body.len().min(1 << 20)))?;
            *answer.headers_mut() = headers;
            Ok::<_, opentelemetry_http::HttpError>(answer)
        });
        sent.await?
    }
}
