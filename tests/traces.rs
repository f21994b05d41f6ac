//! OpenTelemetry traces (the `otel` feature, which `make test` turns on): a fake OTLP
//! collector on loopback receives the server's spans; their names, attributes and parents are
//! checked on both transports and both protocol generations, and the upstream sees the trace go
//! on in its `traceparent`.

mod support;

use rmcp::model::{CallToolRequestParams, MetaObject, RequestMetaObject};
use serde_json::json;
use support::{FakeUpstream, Generation, HttpServer, StdioServer, args, otlp::FakeCollector, upstream::FETCH};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const SERVER: i32 = 2;
const CLIENT: i32 = 3;

fn exporting(collector: &FakeCollector) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
        ("OTEL_SERVICE_NAME", "trace-tests".into()),
        // Batches leave every 50 ms rather than every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
    ]
}

/// `fetch_fixture` of the fake upstream's data, carrying the caller's trace in `_meta`.
fn traced_fetch(upstream: &FakeUpstream) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(FETCH).with_arguments(args(json!({ "url": upstream.data_url() })));
    let meta = json!({ "traceparent": format!("00-{TRACE}-{PARENT}-01") });
    params.meta = Some(RequestMetaObject(MetaObject(meta.as_object().unwrap().clone())));
    params
}

#[tokio::test]
async fn each_request_is_a_span_on_the_mcp_conventions_continuing_the_callers_trace() {
    for (transport, generation) in [
        ("http", Generation::Stateless),
        ("http", Generation::Handshake20251125),
        ("stdio", Generation::Stateless),
        ("stdio", Generation::Handshake20251125),
    ] {
        let case = format!("{transport} {generation:?}");
        let upstream = FakeUpstream::start().await;
        let collector = FakeCollector::start().await;
        let env = exporting(&collector);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // Kept until the case ends: dropping a server stops it.
        let (mut http, mut stdio) = (None, None);
        let client = if transport == "http" {
            http.insert(HttpServer::start(&upstream, &env).await)
                .connect(generation)
                .await
        } else {
            stdio
                .insert(StdioServer::start(&upstream, &env).await)
                .connect(generation)
                .await
        };
        let logs = match (&http, &stdio) {
            (Some(server), _) => &server.server.logs,
            (_, Some(server)) => &server.server.logs,
            _ => unreachable!(),
        };
        let result = client.call_tool(traced_fetch(&upstream)).await.unwrap();
        assert_eq!(result.is_error, Some(false), "{case}: {result:?}");

        let call = collector
            .wait_for("tools/call fetch_fixture", |s| {
                s.span.name == "tools/call fetch_fixture" && s.trace_id() == TRACE
            })
            .await;
        assert_eq!(call.parent_span_id(), PARENT, "{case}: parented on _meta.traceparent");
        assert_eq!(call.span.kind, SERVER, "{case}");
        assert_eq!(call.service, "trace-tests", "{case}: OTEL_SERVICE_NAME");
        let attr = |key: &str| call.attr(key);
        assert_eq!(attr("mcp.method.name").as_deref(), Some("tools/call"), "{case}");
        assert_eq!(attr("gen_ai.tool.name").as_deref(), Some(FETCH), "{case}");
        assert_eq!(attr("gen_ai.operation.name").as_deref(), Some("execute_tool"), "{case}");
        assert_eq!(
            attr("network.transport").as_deref(),
            Some(if transport == "stdio" { "pipe" } else { "tcp" }),
            "{case}"
        );
        assert_eq!(
            attr("mcp.protocol.version").as_deref(),
            Some(generation.version().as_str()),
            "{case}"
        );
        assert!(attr("jsonrpc.request.id").is_some(), "{case}");
        assert_eq!(attr("mcp.guard.decision").as_deref(), Some("allowed"), "{case}");
        assert_eq!(attr("error.type"), None, "{case}");
        assert_eq!(
            attr("mcp.session.id").is_some(),
            transport == "http" && generation != Generation::Stateless,
            "{case}: a session id only where there are sessions"
        );

        // The upstream attempt: a client span under the call, its context sent upstream.
        let attempt = collector
            .wait_for("for the upstream attempt", |s| {
                s.trace_id() == TRACE && s.attr("http.request.method").is_some()
            })
            .await;
        assert_eq!(attempt.parent_span_id(), call.span_id(), "{case}");
        assert_eq!(attempt.span.kind, CLIENT, "{case}");
        assert_eq!(attempt.attr("server.address").as_deref(), Some("127.0.0.1"), "{case}");
        assert_eq!(
            attempt.attr("http.response.status_code").as_deref(),
            Some("200"),
            "{case}"
        );
        assert_eq!(
            attempt.attr("http.request.resend_count").as_deref(),
            Some("0"),
            "{case}"
        );
        let sent = upstream.traceparents();
        assert!(
            sent.iter()
                .any(|t| t == &format!("00-{TRACE}-{}-01", attempt.span_id())),
            "{case}: the upstream saw the attempt's traceparent: {sent:?}"
        );

        // The request's log line names the same trace and span.
        let line = logs
            .wait_for_match(|l| l["event"] == "request" && l["name"] == FETCH)
            .await;
        assert_eq!(line["trace_id"], TRACE, "{case}: {line}");
        assert_eq!(line["span_id"], call.span_id().as_str(), "{case}: {line}");
        // So does every line written while the request runs, such as the upstream client's.
        let attempt_line = logs.wait_for("upstream_attempt").await;
        assert_eq!(attempt_line["trace_id"], TRACE, "{case}: {attempt_line}");
        assert_eq!(
            attempt_line["span_id"],
            call.span_id().as_str(),
            "{case}: {attempt_line}"
        );
        client.cancel().await.unwrap();
    }
}

/// Over HTTP, a request whose `_meta` carries no trace context continues the one in its
/// `traceparent` header; with neither, it starts a trace of its own.
#[tokio::test]
async fn an_http_traceparent_header_parents_a_request_without_one_in_meta() {
    let upstream = FakeUpstream::start().await;
    let collector = FakeCollector::start().await;
    let env = exporting(&collector);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = HttpServer::start(&upstream, &env).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("traceparent", format!("00-{TRACE}-{PARENT}-01").parse().unwrap());
    let traced = reqwest::Client::builder().default_headers(headers).build().unwrap();
    let answer = server.post(&traced, None, "tools/list", json!({})).await;
    assert_eq!(answer.status(), 200);
    let listed = collector
        .wait_for("tools/list in the header's trace", |s| {
            s.span.name == "tools/list" && s.trace_id() == TRACE
        })
        .await;
    assert_eq!(listed.parent_span_id(), PARENT, "parented on the traceparent header");

    let answer = server
        .post(&reqwest::Client::new(), None, "tools/list", json!({}))
        .await;
    assert_eq!(answer.status(), 200);
    let own = collector
        .wait_for("tools/list in a trace of its own", |s| {
            s.span.name == "tools/list" && s.trace_id() != TRACE
        })
        .await;
    assert_eq!(own.parent_span_id(), "", "a new trace has no parent");
}

#[tokio::test]
async fn refused_and_failed_calls_carry_the_error_attributes() {
    let upstream = FakeUpstream::start().await;
    let collector = FakeCollector::start().await;
    let mut env = exporting(&collector);
    env.push(("MCP_RATE_LIMITS", format!("{FETCH}=1/h:1")));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = HttpServer::start(&upstream, &env).await;
    let client = server.connect(Generation::Stateless).await;

    for _ in 0..2 {
        client.call_tool(traced_fetch(&upstream)).await.unwrap();
    }
    let limited = collector
        .wait_for("refused by the rate limit", |s| {
            s.attr("mcp.guard.decision").as_deref() == Some("rate_limited")
        })
        .await;
    assert_eq!(limited.attr("error.type").as_deref(), Some("tool_error"));
    assert_eq!(limited.span.status.as_ref().map(|s| s.code), Some(2), "status error");

    // A JSON-RPC error: the code, as the conventions name it.
    let unknown = client.call_tool(CallToolRequestParams::new("no_such_tool")).await;
    assert!(unknown.is_err(), "{unknown:?}");
    let failed = collector
        .wait_for("tools/call no_such_tool", |s| s.span.name == "tools/call no_such_tool")
        .await;
    assert_eq!(failed.attr("error.type").as_deref(), Some("-32602"));
    assert_eq!(failed.attr("rpc.response.status_code").as_deref(), Some("-32602"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_dead_collector_changes_no_answer() {
    // A port that was just free: nothing listens there.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let upstream = FakeUpstream::start().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", dead.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        METRICS,
    ];
    let server = HttpServer::start(&upstream, &env).await;
    let client = server.connect(Generation::Stateless).await;
    for _ in 0..20 {
        let result = client.call_tool(traced_fetch(&upstream)).await.unwrap();
        assert_eq!(result.is_error, Some(false), "{result:?}");
    }
    // The spans it lost are counted and logged.
    let line = server.server.logs.wait_for("otel_spans_dropped").await;
    assert_eq!(line["reason"], "export_failed", "{line}");
    assert!(line["spans"].as_u64() > Some(0), "{line}");
    let metrics = metrics_addr(&server.server.logs).await;
    assert!(dropped(metrics, "export_failed").await > 0.0);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn spans_past_the_queue_are_dropped_and_counted_while_the_collector_hangs() {
    // A collector that takes the connection and never answers.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", hanging.local_addr().unwrap());
    let upstream = FakeUpstream::start().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "20"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "2"),
        METRICS,
    ];
    let server = HttpServer::start(&upstream, &env).await;
    let client = server.connect(Generation::Stateless).await;
    for _ in 0..10 {
        let result = client.call_tool(traced_fetch(&upstream)).await.unwrap();
        assert_eq!(result.is_error, Some(false), "{result:?}");
    }
    let metrics = metrics_addr(&server.server.logs).await;
    // Two spans a call (the request's and its upstream attempt's), two at most held.
    assert!(dropped(metrics, "queue_full").await >= 16.0);
    let line = server.server.logs.wait_for("otel_spans_dropped").await;
    assert_eq!(line["reason"], "queue_full", "{line}");
    client.cancel().await.unwrap();
    drop(hanging);
}

const METRICS: (&str, &str) = ("MCP_METRICS_BIND", "127.0.0.1:0");

async fn metrics_addr(logs: &support::Logs) -> std::net::SocketAddr {
    let line = logs.wait_for("metrics_listening").await;
    line["addr"].as_str().unwrap().parse().unwrap()
}

/// `mcp_otel_spans_dropped_total` for `reason`, as scraped.
async fn dropped(metrics: std::net::SocketAddr, reason: &str) -> f64 {
    let text = reqwest::get(format!("http://{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!(r#"mcp_otel_spans_dropped_total{{reason="{reason}"}} "#);
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        .parse()
        .unwrap()
}
