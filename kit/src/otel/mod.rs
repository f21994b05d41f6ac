//! OpenTelemetry traces (here) and metrics ([`meters`]), exported over OTLP/HTTP (protobuf)
//! when the standard variables ask for it: `OTEL_EXPORTER_OTLP_ENDPOINT`, or a signal's own
//! `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT`, turns a signal on and
//! `OTEL_{TRACES,METRICS}_EXPORTER=none` off; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*` and
//! `OTEL_METRIC_EXPORT_INTERVAL` are read by the SDK as the specification says.
//!
//! Spans leave through the SDK's batch processor: a queue of bounded size (spans past it are
//! dropped, never waited for) and a thread of its own, so a slow or dead collector costs a
//! request nothing. What is queued is sent when the server exits, after its drain. Spans lost
//! (past the queue's bound, or in an export the collector did not take) are counted
//! (`mcp_otel_spans_dropped_total`) and logged at most once a minute.
//!
//! Spans are made with the OpenTelemetry API itself (through `tracing` they cost twice as much):
//! one per MCP request, named and attributed on OpenTelemetry's MCP conventions (`server.rs`),
//! parented on the W3C trace context in `params._meta` (else the HTTP `traceparent` header);
//! one client span per upstream attempt, whose context travels on in the upstream request's
//! `traceparent` (`upstream/`).

pub mod meters;

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use axum::{body::Bytes, http};
use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, TextMapCompositePropagator, TextMapPropagator},
    trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _},
};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    propagation::{BaggagePropagator, TraceContextPropagator},
    trace::{
        BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter, SpanProcessor,
    },
};

static PROVIDER: OnceLock<(SdkTracerProvider, SdkTracer)> = OnceLock::new();

fn propagator() -> &'static TextMapCompositePropagator {
    static PROPAGATOR: OnceLock<TextMapCompositePropagator> = OnceLock::new();
    PROPAGATOR.get_or_init(|| {
        TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ])
    })
}

/// The span name of a call to each of the catalogue's tools, made once: a request span for one
/// of them allocates neither its name nor its tool attribute.
static TOOL_SPANS: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();

/// Takes the catalogue's tool names, when traces are exported.
pub fn catalogue(tools: impl Iterator<Item = &'static str>) {
    if enabled() {
        let names = tools.map(|tool| (tool, &*Box::leak(format!("tools/call {tool}").into_boxed_str())));
        let _ = TOOL_SPANS.set(names.collect());
    }
}

/// The revisions served, as static attribute values; anything else is copied.
fn protocol_value(protocol: &str) -> opentelemetry::Value {
    match crate::metrics::protocol_label(Some(protocol)) {
        crate::metrics::OTHER => protocol.to_owned().into(),
        served => served.into(),
    }
}

fn tracer() -> Option<&'static SdkTracer> {
    PROVIDER.get().map(|(_, tracer)| tracer)
}

/// Starts exporting each signal (traces, metrics) the environment configures an endpoint for;
/// does nothing for one it does not. Fails, as a configuration error, on a protocol or exporter
/// this build cannot speak. Called once, inside the runtime the exporters send on.
pub fn init() -> Result<(), String> {
    let traces = wanted("TRACES")?;
    let metrics = wanted("METRICS")?;
    if !traces && !metrics {
        return Ok(());
    }
    let runtime =
        tokio::runtime::Handle::try_current().map_err(|e| format!("error: OpenTelemetry needs the runtime: {e}"))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("error: cannot build the OTLP client: {e}"))?;
    let client = OnRuntime { runtime, client };
    if metrics {
        meters::init(client.clone())?;
    }
    if traces {
        init_traces(client)?;
    }
    Ok(())
}

/// Whether `signal` (`TRACES`, `METRICS`) is exported: an OTLP endpoint is set for it, and
/// `OTEL_{signal}_EXPORTER` does not say `none`. Only OTLP over HTTP with protobuf is built in.
fn wanted(signal: &str) -> Result<bool, String> {
    let setting = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let endpoint =
        setting("OTEL_EXPORTER_OTLP_ENDPOINT").or_else(|| setting(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")));
    let exporter_name = format!("OTEL_{signal}_EXPORTER");
    match setting(&exporter_name).as_deref().map(str::trim) {
        Some("none") => return Ok(false),
        None | Some("otlp") => {}
        Some(other) => {
            return Err(format!(
                "error: {exporter_name}={other} is not supported by this server; use otlp or none"
            ));
        }
    }
    if endpoint.is_none() {
        return Ok(false);
    }
    let protocol_name = format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL");
    for name in [protocol_name.as_str(), "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Some(protocol) = setting(name) {
            if protocol.trim() != "http/protobuf" {
                return Err(format!(
                    "error: {name}={protocol} is not supported by this server; use http/protobuf (the collector's port 4318)"
                ));
            }
            break;
        }
    }
    Ok(true)
}

fn init_traces(client: OnRuntime) -> Result<(), String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(client)
        .build()
        .map_err(|e| format!("error: invalid OpenTelemetry settings: {e}"))?;
    // The SDK's own default and variable, read here too so both bounds are the same.
    let capacity = std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
        .ok()
        .and_then(|size| size.trim().parse().ok())
        .unwrap_or(2048);
    let queued = Arc::new(AtomicUsize::new(0));
    let batch = BatchSpanProcessor::builder(Counted {
        inner: exporter,
        queued: queued.clone(),
    })
    .with_batch_config(BatchConfigBuilder::default().with_max_queue_size(capacity).build())
    .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(Admission {
            inner: batch,
            queued,
            capacity,
        })
        .with_resource(Resource::builder().build())
        .build();
    let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
    let _ = PROVIDER.set((provider, tracer));
    Ok(())
}

/// Whether traces are exported: spans are only made when they are.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Sends what is queued (spans, and the metrics' last values) and stops the exporters (at exit,
/// after the drain).
pub fn shutdown() {
    if let Some((provider, _)) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        tracing::warn!(event = "otel_shutdown", %error, "could not send every queued span at exit");
    }
    meters::shutdown();
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
        // Without a `traceparent` there is no parent to continue (baggage alone makes none).
        let headers = headers.filter(|headers| headers.contains_key("traceparent"))?;
        propagator().extract(&opentelemetry_http::HeaderExtractor(headers))
    };
    context.span().span_context().is_valid().then_some(context)
}

/// What a request's span is named and attributed with, on OpenTelemetry's MCP conventions.
pub struct Request<'a> {
    pub method: &'static str,
    /// The tool, prompt or resource URI the request names.
    pub target: Option<&'a str>,
    pub id: &'a str,
    pub protocol: Option<&'a str>,
    /// `http` or `stdio`.
    pub transport: &'a str,
    pub session: Option<&'a str>,
    pub parent: Option<Context>,
}

/// The span of one MCP request, in the context its work runs in; `None` when nothing is
/// exported.
pub fn request_span(request: Request<'_>) -> Option<Context> {
    let tracer = tracer()?;
    let known = match (request.method, request.target) {
        ("tools/call", Some(tool)) => TOOL_SPANS.get().and_then(|tools| tools.get_key_value(tool)),
        _ => None,
    };
    let name: Cow<'static, str> = match (known, request.target) {
        (Some((_, name)), _) => Cow::Borrowed(name),
        (None, Some(target)) => format!("{} {target}", request.method).into(),
        (None, None) => request.method.into(),
    };
    let mut attributes = Vec::with_capacity(9);
    attributes.push(KeyValue::new("mcp.method.name", request.method));
    match (request.method, request.target) {
        ("tools/call", Some(tool)) => {
            let tool: opentelemetry::Value = match known {
                Some((known, _)) => (*known).into(),
                None => tool.to_owned().into(),
            };
            attributes.push(KeyValue::new("gen_ai.tool.name", tool));
            attributes.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
        }
        ("prompts/get", Some(prompt)) => attributes.push(KeyValue::new("gen_ai.prompt.name", prompt.to_owned())),
        ("resources/read" | "resources/subscribe" | "resources/unsubscribe", Some(uri)) => {
            attributes.push(KeyValue::new("mcp.resource.uri", uri.to_owned()));
        }
        _ => {}
    }
    attributes.push(KeyValue::new("jsonrpc.request.id", request.id.to_owned()));
    if let Some(protocol) = request.protocol {
        attributes.push(KeyValue::new("mcp.protocol.version", protocol_value(protocol)));
    }
    if let Some(session) = request.session {
        attributes.push(KeyValue::new("mcp.session.id", session.to_owned()));
    }
    let transport = if request.transport == "stdio" { "pipe" } else { "tcp" };
    attributes.push(KeyValue::new("network.transport", transport));
    let span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_start_time(SystemTime::now())
        .with_attributes(attributes)
        .start_with_context(tracer, request.parent.as_ref().unwrap_or(&Context::new()));
    Some(Context::new().with_span(span))
}

/// Ends a request's span with how it ended: the guard's decision, the outcome, and the error
/// as the conventions name it (`tool_error` for an `isError` result, else the JSON-RPC code).
pub fn finish(context: &Context, decision: Option<&'static str>, outcome: &'static str, error_code: Option<i32>) {
    let span = context.span();
    if let Some(decision) = decision {
        span.set_attribute(KeyValue::new("mcp.guard.decision", decision));
    }
    span.set_attribute(KeyValue::new("mcp.outcome", outcome));
    match error_code {
        Some(code) => {
            span.set_attribute(KeyValue::new("error.type", code.to_string()));
            span.set_attribute(KeyValue::new("rpc.response.status_code", code.to_string()));
            span.set_status(Status::error(""));
        }
        None if !matches!(outcome, "ok" | "task_started") => {
            span.set_attribute(KeyValue::new("error.type", "tool_error"));
            span.set_status(Status::error(""));
        }
        None => {}
    }
    span.end();
}

/// A span's trace and span ids, as lowercase hex, for the log line of the same work (written on
/// the stack: a log line allocates nothing for them).
pub struct Ids {
    trace: [u8; 32],
    span: [u8; 16],
}

impl Ids {
    pub fn trace(&self) -> &str {
        std::str::from_utf8(&self.trace).unwrap_or_default()
    }

    pub fn span(&self) -> &str {
        std::str::from_utf8(&self.span).unwrap_or_default()
    }
}

fn hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
}

/// A span's ids.
pub fn ids(context: &Context) -> Ids {
    let span = context.span();
    let context = span.span_context();
    let mut ids = Ids {
        trace: [0; 32],
        span: [0; 16],
    };
    hex(&context.trace_id().to_bytes(), &mut ids.trace);
    hex(&context.span_id().to_bytes(), &mut ids.span);
    ids
}

/// The ids of the span current where this is called (a request's, or an upstream attempt's),
/// when there is one.
pub fn current_ids() -> Option<Ids> {
    if !enabled() {
        return None;
    }
    let context = Context::current();
    context.span().span_context().is_valid().then(|| ids(&context))
}

/// The client span of one upstream attempt, on the HTTP client conventions, under the current
/// request's span; its context is written into the request's `traceparent` so the trace goes on
/// upstream. Query strings are left out of every attribute.
pub fn client_span(request: &mut reqwest::Request, attempt: u32) -> Option<Context> {
    let tracer = tracer()?;
    let url = request.url();
    let mut attributes = vec![
        KeyValue::new("http.request.method", request.method().as_str().to_owned()),
        KeyValue::new("server.address", url.host_str().unwrap_or_default().to_owned()),
        KeyValue::new("url.path", url.path().to_owned()),
        KeyValue::new("http.request.resend_count", i64::from(attempt.saturating_sub(1))),
    ];
    if let Some(port) = url.port_or_known_default() {
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    let span = tracer
        .span_builder(request.method().as_str().to_owned())
        .with_kind(SpanKind::Client)
        .with_attributes(attributes)
        .start_with_context(tracer, &Context::current());
    let context = Context::current().with_span(span);
    propagator().inject_context(&context, &mut opentelemetry_http::HeaderInjector(request.headers_mut()));
    Some(context)
}

/// Ends an upstream attempt's span with its status, or that it got none.
pub fn client_answered(context: &Context, status: Result<u16, ()>) {
    let span = context.span();
    match status {
        Ok(status) => {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
            if status >= 400 {
                span.set_attribute(KeyValue::new("error.type", status.to_string()));
                span.set_status(Status::error(""));
            }
        }
        Err(()) => {
            span.set_attribute(KeyValue::new("error.type", "network"));
            span.set_status(Status::error(""));
        }
    }
    span.end();
}

/// The batch processor behind a count of the spans it holds: a span past its bound is dropped
/// here, where it is counted, so the processor's own queue (of the same size) never fills.
#[derive(Debug)]
struct Admission {
    inner: BatchSpanProcessor,
    queued: Arc<AtomicUsize>,
    capacity: usize,
}

impl SpanProcessor for Admission {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, context: &Context) {
        self.inner.on_start(span, context);
    }

    fn on_end(&self, span: SpanData) {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            dropped("queue_full", 1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter, releasing its batch from [`Admission`]'s count when sent and counting the
/// spans of a batch the collector did not take.
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    queued: Arc<AtomicUsize>,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        // Released even if the export is dropped unfinished (a timeout), so the count holds.
        let released = Release {
            queued: &self.queued,
            spans: batch.len(),
        };
        let sent = self.inner.export(batch);
        async move {
            let released = released;
            let result = sent.await;
            if result.is_err() {
                dropped("export_failed", released.spans);
            }
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Gives a batch's place in [`Admission`]'s count back when dropped.
struct Release<'a> {
    queued: &'a AtomicUsize,
    spans: usize,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.spans, Ordering::AcqRel);
    }
}

/// Counts spans lost; logs how many at most once a minute (a dead collector would otherwise
/// log once per batch).
fn dropped(reason: &'static str, spans: usize) {
    static UNLOGGED: AtomicU64 = AtomicU64::new(0);
    static LOGGED_AT: Mutex<Option<Instant>> = Mutex::new(None);
    if let Some(metrics) = crate::metrics::get() {
        metrics.spans_dropped(reason, spans as u64);
    }
    UNLOGGED.fetch_add(spans as u64, Ordering::Relaxed);
    let Ok(mut logged_at) = LOGGED_AT.try_lock() else {
        return;
    };
    if logged_at.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
        return;
    }
    *logged_at = Some(Instant::now());
    let spans = UNLOGGED.swap(0, Ordering::Relaxed);
    tracing::warn!(
        event = "otel_spans_dropped",
        spans,
        reason,
        "spans were dropped: the collector is unreachable or slower than the spans made (the next count comes in a minute at most)"
    );
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

/// The exporters' HTTP client: the server's own reqwest, its requests run on the server's
/// runtime (the SDK's export threads have none of their own).
#[derive(Clone, Debug)]
struct OnRuntime {
    runtime: tokio::runtime::Handle,
    client: reqwest::Client,
}

const MAX_ANSWER_BYTES: usize = 1 << 20;

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let request: reqwest::Request = request.try_into()?;
        let sent = self.runtime.spawn(async move {
            let mut response = client.execute(request).await?;
            let status = response.status();
            let headers = std::mem::take(response.headers_mut());
            // A collector's answer is small; past 1 MiB the rest is never read.
            let mut body = Vec::new();
            while body.len() < MAX_ANSWER_BYTES
                && let Some(chunk) = response.chunk().await?
            {
                body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - body.len())]);
            }
            let mut answer = http::Response::builder().status(status).body(Bytes::from(body))?;
            *answer.headers_mut() = headers;
            Ok::<_, opentelemetry_http::HttpError>(answer)
        });
        sent.await?
    }
}
