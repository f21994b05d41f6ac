//! Prometheus metrics on their own listener (`MCP_METRICS_BIND`), over the real protocol on
//! both transports: the MCP conventions' histograms, the guard's decisions, edge refusals and
//! upstream attempts, with bounded labels. `make observability-check` also has a real
//! Prometheus scrape them (the ignored test at the end).

mod support;

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use serde_json::json;
use support::{FakeUpstream, Generation, HttpServer, Logs, StdioServer, tools::call, upstream::fetch};

const METRICS: (&str, &str) = ("MCP_METRICS_BIND", "127.0.0.1:0");

async fn metrics_addr(logs: &Logs) -> SocketAddr {
    let line = logs.wait_for("metrics_listening").await;
    line["addr"].as_str().unwrap().parse().unwrap()
}

/// Every sample of the exposition: `name{labels}` → value.
async fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    let response = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response
        .text()
        .await
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The value of the one sample of `name` whose labels include every `label="value"` given.
fn sample(samples: &HashMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    let found: Vec<_> = samples
        .iter()
        .filter(|(series, _)| series.starts_with(&format!("{name}{{")) || *series == name)
        .filter(|(series, _)| labels.iter().all(|l| series.contains(l)))
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    *found[0].1
}

#[tokio::test]
async fn http_requests_are_counted_and_timed_with_bounded_labels() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[METRICS, ("MCP_RATE_LIMITS", "fetch_fixture=3/m")]).await;
    let addr = metrics_addr(&server.server.logs).await;
    let client = server.connect(Generation::Stateless).await;
    fetch(&client, &upstream.data_url()).await;
    fetch(&client, &upstream.data_url()).await;
    call(&client, "fetch_fixture", json!({ "url": 42 })).await;
    let limited = call(&client, "fetch_fixture", json!({ "url": upstream.data_url() })).await;
    assert_eq!(limited.is_error, Some(true));
    // A name no tool has: its label is `_other`, so clients cannot mint series.
    let _ = client
        .call_tool(rmcp::model::CallToolRequestParams::new("no-such-tool-8f3a"))
        .await;
    client.cancel().await.unwrap();
    // A refusal at the edge.
    let refused = reqwest::Client::new()
        .post(server.url("/mcp?access_token=abc"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    let samples = scrape(addr).await;
    let decisions = "mcp_guard_decisions_total";
    assert_eq!(
        sample(
            &samples,
            decisions,
            &[r#"tool="fetch_fixture""#, r#"decision="allowed""#]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &samples,
            decisions,
            &[r#"tool="fetch_fixture""#, r#"decision="rate_limited""#]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &samples,
            decisions,
            &[r#"tool="fetch_fixture""#, r#"decision="invalid""#]
        ),
        1.0
    );
    let calls = "mcp_server_operation_duration_seconds_count";
    let ok = [
        r#"mcp_method_name="tools/call""#,
        r#"gen_ai_tool_name="fetch_fixture""#,
        r#"network_transport="tcp""#,
        r#"mcp_protocol_version="2026-07-28""#,
        r#"error_type="""#,
    ];
    assert_eq!(sample(&samples, calls, &ok), 2.0);
    let tool_errors = [r#"gen_ai_tool_name="fetch_fixture""#, r#"error_type="tool_error""#];
    assert_eq!(
        sample(&samples, calls, &tool_errors),
        2.0,
        "the refusals are isError results"
    );
    assert_eq!(sample(&samples, calls, &[r#"gen_ai_tool_name="_other""#]), 1.0);
    assert!(!samples.keys().any(|s| s.contains("no-such-tool")));
    // The conventions' buckets, in seconds.
    let le = |bound: &str| {
        sample(
            &samples,
            "mcp_server_operation_duration_seconds_bucket",
            &[&ok[..], &[&format!(r#"le="{bound}""#)[..]]].concat(),
        )
    };
    assert_eq!(le("300.0"), 2.0);
    assert!(le("0.01") <= 2.0);
    let host = format!(r#"host="{}""#, upstream.host());
    assert_eq!(
        sample(
            &samples,
            "mcp_upstream_attempts_total",
            &[&host, r#"outcome="answered""#]
        ),
        2.0
    );
    assert_eq!(
        sample(&samples, "mcp_http_refusals_total", &[r#"reason="token_in_query""#]),
        1.0
    );
    assert!(sample(&samples, "mcp_requests_in_flight", &[]) >= 0.0);
    assert!(sample(&samples, "mcp_rate_limit_buckets", &[]) >= 1.0);

    // Never on the MCP port.
    let on_mcp_port = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_ne!(on_mcp_port.status(), 200);
}

#[tokio::test]
async fn sessions_are_timed_and_counted_on_both_transports() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[METRICS]).await;
    let addr = metrics_addr(&server.server.logs).await;
    let client = server.connect(Generation::Handshake20251125).await;
    fetch(&client, &upstream.data_url()).await;
    assert_eq!(sample(&scrape(addr).await, "mcp_sessions_live", &[]), 1.0);
    client.cancel().await.unwrap(); // DELETEs the session
    tokio::time::sleep(Duration::from_millis(200)).await;
    let samples = scrape(addr).await;
    assert_eq!(sample(&samples, "mcp_sessions_live", &[]), 0.0);
    let sessions = "mcp_server_session_duration_seconds_count";
    assert_eq!(sample(&samples, sessions, &[r#"network_transport="tcp""#]), 1.0);

    let mut stdio = StdioServer::start(&upstream, &[METRICS]).await;
    let addr = metrics_addr(&stdio.server.logs).await;
    let client = stdio.connect(Generation::Stateless).await;
    fetch(&client, &upstream.data_url()).await;
    let samples = scrape(addr).await;
    let calls = "mcp_server_operation_duration_seconds_count";
    let over_pipe = [r#"mcp_method_name="tools/call""#, r#"network_transport="pipe""#];
    assert_eq!(sample(&samples, calls, &over_pipe), 1.0);
    client.cancel().await.unwrap();
    assert_eq!(stdio.server.exit_code(Duration::from_secs(10)).await, 0);
}

#[tokio::test]
async fn metrics_are_off_unless_a_listener_is_set() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    let client = server.connect(Generation::Stateless).await;
    fetch(&client, &upstream.data_url()).await;
    client.cancel().await.unwrap();
    assert!(server.server.logs.events("metrics_listening").is_empty());
}

/// A real Prometheus (Debian's package; `make observability-check` installs it) scrapes the
/// server while a short load runs; PromQL then finds the calls per tool and decision and the
/// duration histogram.
#[tokio::test]
#[ignore = "needs prometheus on PATH: make observability-check"]
async fn prometheus_scrapes_what_the_server_did() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[METRICS]).await;
    let metrics = metrics_addr(&server.server.logs).await;
    let prometheus = support::prometheus::Prometheus::start(metrics).await;

    let client = server.connect(Generation::Stateless).await;
    for _ in 0..30 {
        fetch(&client, &upstream.data_url()).await;
    }
    for _ in 0..5 {
        call(&client, "fetch_fixture", json!({})).await;
    }
    client.cancel().await.unwrap();

    let allowed = r#"sum(mcp_guard_decisions_total{tool="fetch_fixture",decision="allowed"})"#;
    let invalid = r#"sum(mcp_guard_decisions_total{tool="fetch_fixture",decision="invalid"})"#;
    let histogram = r#"sum(mcp_server_operation_duration_seconds_count{mcp_method_name="tools/call"})"#;
    let p99 = r#"histogram_quantile(0.99, sum by (le) (mcp_server_operation_duration_seconds_bucket{gen_ai_tool_name="fetch_fixture"}))"#;
    assert_eq!(prometheus.value_when(allowed, |v| v >= 30.0).await, 30.0);
    assert_eq!(prometheus.value_when(invalid, |v| v >= 5.0).await, 5.0);
    assert_eq!(prometheus.value_when(histogram, |v| v >= 35.0).await, 35.0);
    let p99 = prometheus.value_when(p99, |v| v > 0.0).await;
    assert!(p99 > 0.0 && p99 <= 300.0, "{p99}");
}

#[tokio::test]
async fn metrics_are_exported_over_otlp_when_an_endpoint_is_set() {
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value};
    use support::otlp::{FakeCollector, attr};

    let upstream = FakeUpstream::start().await;
    let collector = FakeCollector::start().await;
    let endpoint = collector.endpoint();
    // No `/metrics` listener: an OTLP endpoint alone turns recording on. Traces are turned off
    // by their own variable.
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
        ("MCP_RATE_LIMITS", "fetch_fixture=2/m"),
    ];
    let server = HttpServer::start(&upstream, &env).await;
    let client = server.connect(Generation::Stateless).await;
    fetch(&client, &upstream.data_url()).await;
    fetch(&client, &upstream.data_url()).await;
    let limited = call(&client, "fetch_fixture", json!({ "url": upstream.data_url() })).await;
    assert_eq!(limited.is_error, Some(true));

    let succeeded = |attributes: &[_]| {
        attr(attributes, "gen_ai.tool.name").as_deref() == Some("fetch_fixture")
            && attr(attributes, "error.type").is_none()
    };
    let operation = collector
        .wait_for_metric("mcp.server.operation.duration", |m| match &m.data {
            Some(Data::Histogram(h)) => h.data_points.iter().any(|p| succeeded(&p.attributes) && p.count == 2),
            _ => false,
        })
        .await;
    assert_eq!(operation.unit, "s");
    let Some(Data::Histogram(histogram)) = &operation.data else {
        unreachable!()
    };
    let point = histogram.data_points.iter().find(|p| succeeded(&p.attributes)).unwrap();
    assert_eq!(
        point.explicit_bounds,
        [
            0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0
        ],
        "the conventions' buckets"
    );
    assert_eq!(
        attr(&point.attributes, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(attr(&point.attributes, "network.transport").as_deref(), Some("tcp"));
    assert_eq!(
        attr(&point.attributes, "mcp.protocol.version").as_deref(),
        Some("2026-07-28")
    );

    let counted = |name: &'static str, labels: &'static [(&'static str, &'static str)], value: i64| {
        collector.wait_for_metric(name, move |m| match &m.data {
            Some(Data::Sum(sum)) => sum.data_points.iter().any(|p| {
                labels
                    .iter()
                    .all(|(k, v)| attr(&p.attributes, k).as_deref() == Some(*v))
                    && p.value == Some(Value::AsInt(value))
            }),
            _ => false,
        })
    };
    counted(
        "mcp.guard.decisions",
        &[
            ("gen_ai.tool.name", "fetch_fixture"),
            ("mcp.guard.decision", "rate_limited"),
        ],
        1,
    )
    .await;
    counted("mcp.upstream.attempts", &[("outcome", "answered")], 2).await;
    collector
        .wait_for_metric("mcp.requests.in_flight", |m| matches!(m.data, Some(Data::Gauge(_))))
        .await;
    client.cancel().await.unwrap();
    assert!(collector.spans().is_empty(), "OTEL_TRACES_EXPORTER=none");
    assert!(server.server.logs.events("metrics_listening").is_empty());
}
