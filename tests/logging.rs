//! stdout carries JSON-RPC only and stderr carries JSON log lines only, even at debug level;
//! every handled request leaves one log line with what an operator needs.

mod support;

use std::time::Duration;

use rmcp::model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams};
use serde_json::{Value, json};
use support::{FakeUpstream, Generation, HttpServer, StdioServer, args};

/// Drives one call of each kind, including failures.
async fn busy_session(client: &support::Client) {
    client.list_all_tools().await.unwrap();
    client
        .call_tool(CallToolRequestParams::new("get_forecast").with_arguments(args(json!({ "city": "Berlin" }))))
        .await
        .unwrap();
    client
        .call_tool(CallToolRequestParams::new("get_forecast").with_arguments(args(json!({ "city": "Atlantis" }))))
        .await
        .unwrap();
    client.call_tool(CallToolRequestParams::new("nope")).await.unwrap_err();
    client
        .read_resource(ReadResourceRequestParams::new("weather://codes/3"))
        .await
        .unwrap();
    client
        .get_prompt(
            GetPromptRequestParams::new("plan_outdoor_activity")
                .with_arguments(args(json!({ "city": "Oslo", "activity": "skiing" }))),
        )
        .await
        .unwrap();
}

/// The per-request log lines: one per request, with the fields an operator filters on.
fn assert_request_lines(lines: &[Value], transport: &str) {
    let find = |method: &str, name: &str, outcome: &str| {
        lines
            .iter()
            .find(|l| l["method"] == method && l["name"] == name && l["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {method} {name} {outcome} line in {lines:#?}"))
    };
    let ok = find("tools/call", "get_forecast", "ok");
    assert_eq!(ok["transport"], transport);
    assert!(ok["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(ok["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(ok["level"], "INFO");
    assert_eq!(ok["decision"], "allowed");
    assert_eq!(ok["subject"], "anonymous");
    // A result with isError: the guard allowed it, the tool failed.
    let failed = find("tools/call", "get_forecast", "error");
    assert_eq!(
        (failed["decision"].as_str(), failed["level"].as_str()),
        (Some("allowed"), Some("INFO"))
    );
    // A JSON-RPC error: no decision was reached.
    let unknown = find("tools/call", "nope", "error");
    assert_eq!(unknown["level"], "WARN");
    assert!(unknown.get("decision").is_none());
    assert_eq!(unknown["error_code"], -32602);
    find("resources/read", "weather://codes/3", "ok");
    find("prompts/get", "plan_outdoor_activity", "ok");
    assert!(
        lines
            .iter()
            .any(|l| l["method"] == "tools/list" && l["outcome"] == "ok")
    );
}

#[tokio::test]
async fn stdio_stdout_is_only_json_rpc_and_stderr_only_json_at_debug() {
    let upstream = FakeUpstream::start().await;
    for generation in [Generation::Stateless, Generation::Handshake20251125] {
        let mut server = StdioServer::start(&upstream, &[("MCP_LOG_LEVEL", "debug")]).await;
        let client = server.connect(generation).await;
        busy_session(&client).await;
        client.cancel().await.unwrap();
        assert_eq!(server.server.exit_code(Duration::from_secs(10)).await, 0);

        let stdout = server.stdout_lines();
        assert!(
            stdout.len() >= 7,
            "{generation:?}: expected every answer on stdout, got {stdout:?}"
        );
        for line in &stdout {
            let message: Value =
                serde_json::from_str(line).unwrap_or_else(|_| panic!("stdout line is not JSON: {line:?}"));
            assert_eq!(message["jsonrpc"], "2.0", "stdout line is not JSON-RPC: {line}");
        }
        let logs = server.server.logs.json(); // panics on any non-JSON stderr line
        assert!(logs.iter().any(|l| l["level"] == "DEBUG"), "debug logging was on");
        assert_request_lines(&server.server.logs.events("request"), "stdio");
    }
}

#[tokio::test]
async fn http_logs_every_request_as_json() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[("MCP_LOG_LEVEL", "debug")]).await;
    for generation in [Generation::Stateless, Generation::Handshake20250618] {
        let client = server.connect(generation).await;
        busy_session(&client).await;
        client.cancel().await.unwrap();
    }
    server.server.logs.json();
    assert_request_lines(&server.server.logs.events("request"), "http");
}

#[tokio::test]
async fn pretty_logs_stay_off_stdout() {
    let upstream = FakeUpstream::start().await;
    let mut server = StdioServer::start(&upstream, &[("MCP_LOG_FORMAT", "pretty"), ("MCP_LOG_LEVEL", "debug")]).await;
    let client = server.connect(Generation::Stateless).await;
    busy_session(&client).await;
    client.cancel().await.unwrap();
    assert_eq!(server.server.exit_code(Duration::from_secs(10)).await, 0);
    for line in server.stdout_lines() {
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap()["jsonrpc"], "2.0");
    }
    let stderr = server.server.logs.lines();
    assert!(stderr.iter().any(|l| l.contains("handled tools/call")), "{stderr:?}");
    assert!(
        stderr.iter().all(|l| serde_json::from_str::<Value>(l).is_err()),
        "pretty format is not JSON"
    );
}
