//! What OpenTelemetry's SDK alone costs per span, with no server around it: spans shaped as
//! this server's stdio `tools/call` span (name, kind, the eight attributes it carries), made and
//! ended through the SDK's tracer, queued by its batch processor, and encoded on the processor's
//! thread as the OTLP/HTTP exporter encodes them (`opentelemetry-proto`'s transform, prost),
//! then dropped: the exporter's HTTP send is left out. The process CPU time per span is the
//! least any server exporting such spans with this SDK pays, to set beside the telemetry cost
//! the bench measures on the server.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use opentelemetry::{
    KeyValue,
    trace::{Span as _, SpanKind, Tracer, TracerProvider},
};
use opentelemetry_proto::{
    tonic::collector::trace::v1::ExportTraceServiceRequest,
    transform::{common::tonic::ResourceAttributesWithSchema, trace::tonic::group_spans_by_resource_and_scope},
};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter},
};
use prost::Message;

use crate::{server::cpu_seconds, stats::median};

/// Spans per measure, and measures (the median is kept).
const SPANS: u64 = 200_000;
const ROUNDS: usize = 5;

/// Encodes each batch as the OTLP/HTTP exporter does, and drops it.
#[derive(Debug)]
struct EncodeOnly {
    resource: ResourceAttributesWithSchema,
    encoded: Arc<AtomicU64>,
}

impl SpanExporter for EncodeOnly {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        std::hint::black_box(request.encode_to_vec());
        self.encoded.fetch_add(spans, Ordering::Relaxed);
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.into();
    }
}

/// Microseconds of this process's CPU per span (median of the rounds).
pub fn cpu_us_per_span() -> f64 {
    median((0..ROUNDS).map(|_| one_round()).collect())
}

fn one_round() -> f64 {
    let encoded = Arc::new(AtomicU64::new(0));
    let exporter = EncodeOnly {
        resource: (&Resource::builder_empty().build()).into(),
        encoded: encoded.clone(),
    };
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_resource(Resource::builder().with_service_name("bench").build())
        .build();
    let tracer = provider.tracer("server");
    let began = cpu_seconds("self");
    for id in 0..SPANS {
        let mut span = tracer
            .span_builder("tools/call convert_temperature")
            .with_kind(SpanKind::Server)
            .with_start_time(SystemTime::now())
            .with_attributes([
                KeyValue::new("mcp.method.name", "tools/call"),
                KeyValue::new("gen_ai.tool.name", "convert_temperature"),
                KeyValue::new("gen_ai.operation.name", "execute_tool"),
                KeyValue::new("jsonrpc.request.id", id.to_string()),
                KeyValue::new("mcp.protocol.version", "2025-11-25"),
                KeyValue::new("network.transport", "pipe"),
            ])
            .start(&tracer);
        span.set_attribute(KeyValue::new("mcp.guard.decision", "allowed"));
        span.set_attribute(KeyValue::new("mcp.outcome", "ok"));
        span.end();
        // Sent every 512 spans (the processor's batch) and waited for, so its queue never fills
        // and drops none: every span is encoded within the measure.
        if id % 512 == 511 {
            let _ = provider.force_flush();
        }
    }
    let _ = provider.shutdown();
    let spent = cpu_seconds("self") - began;
    let encoded = encoded.load(Ordering::Relaxed);
    assert_eq!(encoded, SPANS, "every span made is encoded");
    spent * 1e6 / SPANS as f64
}
