//! A fake OpenTelemetry collector on loopback: takes OTLP/HTTP protobuf trace and metric
//! exports (`POST /v1/traces`, `POST /v1/metrics`), decodes them with the official protocol
//! types, and keeps the spans and the metrics.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse},
        trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    },
    common::v1::{KeyValue, any_value::Value as Any},
    metrics::v1::Metric,
    trace::v1::Span,
};
use prost::Message;

/// A span and the `service.name` of the resource it came with.
#[derive(Clone, Debug)]
pub struct Received {
    pub span: Span,
    pub service: String,
}

/// An attribute's value, as text.
pub fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        Any::StringValue(s) => s.clone(),
        Any::IntValue(i) => i.to_string(),
        Any::BoolValue(b) => b.to_string(),
        Any::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

impl Received {
    /// An attribute's value, as text.
    pub fn attr(&self, key: &str) -> Option<String> {
        attr(&self.span.attributes, key)
    }

    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
struct Kept {
    spans: Mutex<Vec<Received>>,
    /// Every metric of every export, in order of arrival.
    metrics: Mutex<Vec<Metric>>,
}

pub struct FakeCollector {
    addr: std::net::SocketAddr,
    kept: Arc<Kept>,
}

impl FakeCollector {
    pub async fn start() -> Self {
        let kept = Arc::new(Kept::default());
        let app = Router::new()
            .route("/v1/traces", post(export))
            .route("/v1/metrics", post(export_metrics))
            .with_state(kept.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, kept }
    }

    /// Waits for an export of the metric `name` that `matches`; returns the latest such.
    pub async fn wait_for_metric(&self, name: &str, matches: impl Fn(&Metric) -> bool) -> Metric {
        for _ in 0..500 {
            let found = self
                .kept
                .metrics
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|m| m.name == name && matches(m))
                .cloned();
            if let Some(metric) = found {
                return metric;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let names: std::collections::BTreeSet<String> = self
            .kept
            .metrics
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.name.clone())
            .collect();
        panic!(
            "no export of the metric {name} as expected reached the collector within 10 s (is the server built with the `otel` feature? `make test` turns it on); received: {names:?}"
        );
    }

    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<Received> {
        self.kept.spans.lock().unwrap().clone()
    }

    /// Waits until a span that `matches` arrives.
    pub async fn wait_for(&self, what: &str, matches: impl Fn(&Received) -> bool) -> Received {
        for _ in 0..500 {
            if let Some(span) = self.spans().into_iter().find(|s| matches(s)) {
                return span;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "no span {what} reached the collector within 10 s (is the server built with the `otel` feature? `make test` turns it on); received: {:#?}",
            self.spans().iter().map(|s| &s.span.name).collect::<Vec<_>>()
        );
    }
}

async fn export_metrics(State(kept): State<Arc<Kept>>, body: Bytes) -> Vec<u8> {
    let request = ExportMetricsServiceRequest::decode(body).expect("an OTLP protobuf metrics export");
    let mut metrics = kept.metrics.lock().unwrap();
    for resource in request.resource_metrics {
        for scope in resource.scope_metrics {
            metrics.extend(scope.metrics);
        }
    }
    ExportMetricsServiceResponse::default().encode_to_vec()
}

async fn export(State(kept): State<Arc<Kept>>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf trace export");
    let mut kept = kept.spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Any::StringValue(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            kept.extend(scope.spans.into_iter().map(|span| Received {
                span,
                service: service.clone(),
            }));
        }
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}
