//! stdout carries JSON-RPC only and stderr carries JSON log lines only, even at debug level;
//! every handled request leaves one log line with what an operator needs.

mod support;

use std::time::Duration;

use rmcp::model::CallToolRequestParams;
// weather-example:begin
use rmcp::model::{GetPromptRequestParams, ReadResourceRequestParams};
use support::args;
// weather-example:end
use serde_json::{Value, json};
use support::{
    FakeUpstream, Generation, HttpServer, StdioServer,
    upstream::{FETCH, fetch},
};

/// Drives one call of each kind, including failures.
async fn busy_session(client: &support::Client, upstream: &FakeUpstream) {
    client.list_all_tools().await.unwrap();
    fetch(client, &upstream.data_url()).await;
    // The fake answers 404 off its known paths: the tool's call fails.
    fetch(client, &format!("{}/missing", upstream.url())).await;
    client.call_tool(CallToolRequestParams::new("nope")).await.unwrap_err();
    // weather-example:begin
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
    // weather-example:end
}

/// The per-request log lines: one per request, with the fields an operator filters on.
fn assert_request_lines(lines: &[Value], transport: &str) {
    let find = |method: &str, name: &str, outcome: &str| {
        lines
            .iter()
            .find(|l| l["method"] == method && l["name"] == name && l["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {method} {name} {outcome} line in {lines:#?}"))
    };
    let ok = find("tools/call", FETCH, "ok");
    assert_eq!(ok["transport"], transport);
    assert!(ok["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(ok["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(ok["level"], "INFO");
    assert_eq!(ok["decision"], "allowed");
    assert_eq!(ok["subject"], "anonymous");
    // A result with isError: the guard allowed it, the tool failed.
    let failed = find("tools/call", FETCH, "error");
    assert_eq!(
        (failed["decision"].as_str(), failed["level"].as_str()),
        (Some("allowed"), Some("INFO"))
    );
    // A JSON-RPC error: no decision was reached.
    let unknown = find("tools/call", "nope", "error");
    assert_eq!(unknown["level"], "WARN");
    assert!(unknown.get("decision").is_none());
    assert_eq!(unknown["error_code"], -32602);
    // weather-example:begin
    find("resources/read", "weather://codes/3", "ok");
    find("prompts/get", "plan_outdoor_activity", "ok");
    // weather-example:end
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
        busy_session(&client, &upstream).await;
        client.cancel().await.unwrap();
        assert_eq!(server.server.exit_code(Duration::from_secs(10)).await, 0);

        let stdout = server.stdout_lines();
        assert!(
            stdout.len() >= 5,
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
        busy_session(&client, &upstream).await;
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
    busy_session(&client, &upstream).await;
    client.cancel().await.unwrap();
    assert_eq!(server.server.exit_code(Duration::from_secs(10)).await, 0);
    for line in server.stdout_lines() {
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap()["jsonrpc"], "2.0");
    }
    let stderr = server.server.logs.lines();
    assert!(stderr.iter().any(|l| l.contains("handled tools/call")), "{stderr:?}");
    assert!(
        stderr.iter().all(|l| serde_json::from_str::<Value>(l).is_err()),
        "pretty format is not JSON: {:?}",
        stderr
            .iter()
            .filter(|l| serde_json::from_str::<Value>(l).is_ok())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn default_filter_keeps_one_line_per_request_and_quiets_the_sdk() {
    // No filter configured, and filters set but empty (as an unfilled deployment template
    // leaves them): both mean the default, not silence.
    let empty: &[(&str, &str)] = &[("MCP_LOG_LEVEL", ""), ("RUST_LOG", " ")];
    for configured in [&[][..], empty] {
        let stderr = calls_on_stdio(configured, 3).await;
        let lines: Vec<Value> = stderr.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(
            lines.iter().filter(|l| l["event"] == "request").count(),
            3,
            "{configured:?}: {lines:#?}"
        );
        let sdk_info: Vec<_> = lines
            .iter()
            .filter(|l| l["target"].as_str().unwrap_or_default().starts_with("rmcp") && l["level"] == "INFO")
            .collect();
        assert!(sdk_info.is_empty(), "the SDK logs at info by default: {sdk_info:#?}");
    }
}

/// `calls` calls written at once to a stdio server with only `envs` set of its logging
/// variables, then stdin closed; its stderr once it has exited.
async fn calls_on_stdio(envs: &[(&str, &str)], calls: u64) -> String {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(support::BIN);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("MCP_") || k == "RUST_LOG") {
        command.env_remove(key);
    }
    let mut child = command
        .arg("serve")
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    // Written while the answers and logs are read, so that no pipe fills up and blocks.
    let mut stdin = child.stdin.take().unwrap();
    tokio::spawn(async move {
        for id in 1..=calls {
            let call = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": "convert_temperature", "_meta": meta,
                "arguments": { "temperature": { "value": 0, "unit": "celsius" }, "to": "kelvin" }
            }});
            stdin.write_all(format!("{call}\n").as_bytes()).await.unwrap();
        }
    });
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count() as u64, calls);
    String::from_utf8(out.stderr).unwrap()
}

/// Under a burst, `info` lines are written in batches rather than one `write` each: none is
/// lost or cut, including those still held when the process exits, and each is a whole line.
#[tokio::test]
async fn a_burst_loses_no_log_line() {
    let calls = 500;
    // A quota no burst reaches: refused calls past 10 a second are counted, not each logged.
    let stderr = calls_on_stdio(&[("MCP_RATE_LIMITS", "convert_temperature=100000/s:100000")], calls).await;
    let mut ids: Vec<u64> = stderr
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .filter(|l| l["event"] == "request")
        .map(|l| l["request_id"].as_str().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=calls).collect::<Vec<_>>());
}

/// Lines held for a batch reach stderr while the server keeps running, not only at exit.
#[tokio::test]
async fn held_lines_are_written_while_serving() {
    let upstream = FakeUpstream::start().await;
    // A quota the burst stays under, so every call is answered by the tool.
    let quota = [("MCP_RATE_LIMITS", "convert_temperature=100000/s:1000")];
    let mut server = StdioServer::start(&upstream, &quota).await;
    let client = server.connect(Generation::Stateless).await;
    let calls = (0..200).map(|_| {
        client.call_tool(
            CallToolRequestParams::new("convert_temperature").with_arguments(
                json!({ "temperature": { "value": 1, "unit": "celsius" }, "to": "kelvin" })
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
        )
    });
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer.unwrap().is_error, Some(false));
    }
    let mut logged = 0;
    for _ in 0..500 {
        logged = server
            .server
            .logs
            .events("request")
            .iter()
            .filter(|l| l["name"] == "convert_temperature")
            .count();
        if logged == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(logged, 200, "request lines on stderr while the server runs");
    client.cancel().await.unwrap();
}
