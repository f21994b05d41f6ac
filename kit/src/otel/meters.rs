//! The metrics of `/metrics` (`crate::metrics`), also exported over OTLP/HTTP when the standard
//! variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT` or `..._METRICS_ENDPOINT`, and
//! `OTEL_METRICS_EXPORTER` not `none`), every `OTEL_METRIC_EXPORT_INTERVAL` (60 s). Names and
//! attributes are OpenTelemetry's (`mcp.server.operation.duration`, `gen_ai.tool.name`, ...);
//! the label values are the bounded ones `crate::metrics` chose.
//!
//! The SDK aggregates in memory and a thread of its own sends; a dead collector loses an
//! interval's export, never a request's time.

use std::sync::OnceLock;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter, MeterProvider as _},
};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    Resource,
    metrics::{PeriodicReader, SdkMeterProvider},
};

use super::OnRuntime;
use crate::metrics::{DURATION_BUCKETS, Metrics};

pub struct Instruments {
    meter: Meter,
    operation: Histogram<f64>,
    session: Histogram<f64>,
    guard: Counter<u64>,
    refusals: Counter<u64>,
    upstream: Counter<u64>,
    spans_dropped: Counter<u64>,
}

static METERS: OnceLock<(SdkMeterProvider, Instruments)> = OnceLock::new();

/// The instruments, when metrics are exported.
pub fn get() -> Option<&'static Instruments> {
    METERS.get().map(|(_, instruments)| instruments)
}

pub(super) fn init(client: OnRuntime) -> Result<(), String> {
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(client)
        .build()
        .map_err(|e| format!("error: invalid OpenTelemetry settings: {e}"))?;
    let provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter).build())
        .with_resource(Resource::builder().build())
        .build();
    let meter = provider.meter(env!("CARGO_PKG_NAME"));
    let duration = |name: &'static str, description: &'static str| {
        meter
            .f64_histogram(name)
            .with_unit("s")
            .with_description(description)
            .with_boundaries(DURATION_BUCKETS.to_vec())
            .build()
    };
    let counter =
        |name: &'static str, description: &'static str| meter.u64_counter(name).with_description(description).build();
    let instruments = Instruments {
        operation: duration(
            "mcp.server.operation.duration",
            "MCP request or notification duration as observed on the receiver",
        ),
        session: duration(
            "mcp.server.session.duration",
            "The duration of the MCP session as observed on the MCP server",
        ),
        guard: counter("mcp.guard.decisions", "Tool calls by the guard's decision"),
        refusals: counter("mcp.http.refusals", "Requests refused at the HTTP edge, by reason"),
        upstream: counter(
            "mcp.upstream.attempts",
            "Attempts at upstream API calls, by host and outcome",
        ),
        spans_dropped: counter(
            "mcp.otel.spans_dropped",
            "Trace spans lost before reaching the collector, by reason",
        ),
        meter,
    };
    let _ = METERS.set((provider, instruments));
    Ok(())
}

/// Sends the last values and stops (at exit).
pub(super) fn shutdown() {
    if let Some((provider, _)) = METERS.get()
        && let Err(error) = provider.shutdown()
    {
        tracing::warn!(event = "otel_shutdown", %error, "could not send the metrics' last values at exit");
    }
}

/// Records with attributes from label values, leaving out the empty ones (no tool on a
/// `tools/list`, no error on a success); built on the stack, as a measurement is made per call.
fn with_attributes<const N: usize>(pairs: [(&'static str, &'static str); N], record: impl FnOnce(&[KeyValue])) {
    let mut attributes = pairs.map(|(key, value)| KeyValue::new(key, value));
    let mut kept = 0;
    for (i, (_, value)) in pairs.iter().enumerate() {
        if !value.is_empty() {
            attributes.swap(kept, i);
            kept += 1;
        }
    }
    record(&attributes[..kept]);
}

impl Instruments {
    pub fn operation(
        &self,
        method: &'static str,
        tool: &'static str,
        protocol: &'static str,
        transport: &'static str,
        error_type: &'static str,
        seconds: f64,
    ) {
        with_attributes(
            [
                ("mcp.method.name", method),
                ("gen_ai.tool.name", tool),
                ("mcp.protocol.version", protocol),
                ("network.transport", transport),
                ("error.type", error_type),
            ],
            |attributes| self.operation.record(seconds, attributes),
        );
    }

    pub fn session(&self, protocol: &'static str, transport: &'static str, seconds: f64) {
        with_attributes(
            [("mcp.protocol.version", protocol), ("network.transport", transport)],
            |attributes| self.session.record(seconds, attributes),
        );
    }

    pub fn guard_decision(&self, tool: &'static str, decision: &'static str) {
        with_attributes(
            [("gen_ai.tool.name", tool), ("mcp.guard.decision", decision)],
            |attributes| self.guard.add(1, attributes),
        );
    }

    pub fn refusal(&self, reason: &'static str) {
        with_attributes([("reason", reason)], |attributes| self.refusals.add(1, attributes));
    }

    pub fn upstream_attempt(&self, host: &'static str, outcome: &'static str) {
        with_attributes([("server.address", host), ("outcome", outcome)], |attributes| {
            self.upstream.add(1, attributes)
        });
    }

    pub fn spans_dropped(&self, reason: &'static str, spans: u64) {
        with_attributes([("reason", reason)], |attributes| {
            self.spans_dropped.add(spans, attributes)
        });
    }

    /// The gauges, read from `metrics` (sampled first, as a scrape does) at each export.
    pub fn observe_gauges(&self, metrics: &'static Metrics) {
        type Read = fn(&Metrics) -> i64;
        let gauges: [(&str, &str, Read); 4] = [
            ("mcp.requests.in_flight", "Requests being handled", |m| {
                m.in_flight.get()
            }),
            ("mcp.sessions.live", "Live sessions", |m| m.sessions.get()),
            (
                "mcp.rate_limit.buckets",
                "Rate-limit buckets held in this process",
                |m| m.rate_limit_buckets.get(),
            ),
            ("mcp.tasks.held", "Tasks held, running or keeping a result", |m| {
                m.tasks.get()
            }),
        ];
        for (name, description, read) in gauges {
            // The SDK keeps the callback for the provider's lifetime.
            let _gauge = self
                .meter
                .i64_observable_gauge(name)
                .with_description(description)
                .with_callback(move |observer| {
                    metrics.sample();
                    observer.observe(read(metrics), &[]);
                })
                .build();
        }
    }
}
