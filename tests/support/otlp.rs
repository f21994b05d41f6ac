//! A fake OpenTelemetry collector on loopback: takes OTLP/HTTP protobuf trace exports
//! (`POST /v1/traces`), decodes them with the official protocol types, and keeps the spans.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::any_value::Value as Any,
    trace::v1::Span,
};
use prost::Message;

/// A span and the `service.name` of the resource it came with.
#[derive(Clone, Debug)]
pub struct Received {
    pub span: Span,
    pub service: String,
}

impl Received {
    /// An attribute's value, as text.
    pub fn attr(&self, key: &str) -> Option<String> {
        let value = self
            .span
            .attributes
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

pub struct FakeCollector {
    addr: std::net::SocketAddr,
    spans: Arc<Mutex<Vec<Received>>>,
}

impl FakeCollector {
    pub async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, spans }
    }

    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
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

async fn export(State(spans): State<Arc<Mutex<Vec<Received>>>>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf trace export");
    let mut kept = spans.lock().unwrap();
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
