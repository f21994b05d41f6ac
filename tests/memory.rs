//! What one request may make the server hold, over the real protocol on both transports: a
//! message past its JSON limits (values, depth) is refused before it is parsed, wherever the
//! values sit; the in-flight budget counts what a parse builds, not only the bytes; the
//! server's peak memory stays a small multiple of a large request; and the server serves on.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{
    FakeUpstream, Generation, HttpServer, StdioServer,
    raw::{self, exchange, read_answer},
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// `count` zeros: two bytes each on the wire, a value each in a parsed tree.
fn zeros(count: usize) -> Value {
    Value::Array(vec![json!(0); count])
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

const STATELESS: &str = "MCP-Protocol-Version: 2026-07-28\r\n";

fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "1" },
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// `params` with the 2026-07-28 `_meta` keys added to what `_meta` it has.
fn stateless(mut params: Value) -> Value {
    let Value::Object(meta) = stateless_meta() else {
        unreachable!()
    };
    match params["_meta"].as_object_mut() {
        Some(own) => own.extend(meta),
        None => params["_meta"] = Value::Object(meta),
    }
    params
}

async fn some_tool(server: &HttpServer) -> String {
    let client = server.connect(Generation::Stateless).await;
    let tools = client.list_all_tools().await.unwrap();
    client.cancel().await.unwrap();
    tools.first().expect("the server has a tool").name.to_string()
}

/// Requests that hold too much, each in another place of the message.
fn too_much(tool: &str, values: usize) -> Vec<(&'static str, Value)> {
    vec![
        (
            "in the arguments",
            json!({ "name": tool, "arguments": { "x": zeros(values) } }),
        ),
        (
            "in _meta",
            json!({ "name": tool, "arguments": {}, "_meta": { "x": zeros(values) } }),
        ),
        (
            "for an unknown tool",
            json!({ "name": "no_such_tool", "arguments": { "x": zeros(values) } }),
        ),
        (
            "nested too deep",
            json!({ "name": tool, "arguments": { "x": nested(100) } }),
        ),
    ]
}

fn assert_refused(answer: &Value, what: &str) {
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(answer["error"]["code"], -32600, "{what}: {answer}");
    assert!(
        message.contains("MCP_MAX_JSON_VALUES") || message.contains("MCP_MAX_JSON_DEPTH"),
        "{what}: {answer}"
    );
}

#[tokio::test]
async fn http_refuses_a_message_past_its_json_limits_before_parsing_it() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[("MCP_MAX_JSON_VALUES", "1000")]).await;
    let tool = some_tool(&server).await;
    for (what, params) in too_much(&tool, 1_500) {
        let params = stateless(params);
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params }).to_string();
        let answer = exchange(server.addr, &raw::post(&body, STATELESS)).await;
        assert_eq!(answer.status, 413, "{what}: {answer:?}");
        assert_refused(&answer.json(), what);
    }
    // In a session (2025-11-25) too, and a header mismatch the edge would refuse anyway.
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": { "x": zeros(1_500) },
        "clientInfo": { "name": "raw", "version": "1" } } })
    .to_string();
    let answer = exchange(server.addr, &raw::post(&body, "")).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    let refusal = server.server.logs.wait_for("request_refused").await;
    assert_eq!(refusal["reason"], "json_limits", "{refusal}");

    // Within the limits, the same server answers.
    let client = server.connect(Generation::Stateless).await;
    assert!(!client.list_all_tools().await.unwrap().is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stdio_refuses_a_message_past_its_json_limits_and_reads_on() {
    let upstream = FakeUpstream::start().await;
    let mut stdio = StdioServer::start(&upstream, &[("MCP_MAX_JSON_VALUES", "1000")]).await;
    let (mut stdout, mut stdin) = stdio.raw();
    for (what, params) in too_much("any_tool", 1_500) {
        let line = json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": stateless(params) });
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        let mut reply = String::new();
        stdout.read_line(&mut reply).await.unwrap();
        assert_refused(&serde_json::from_str(&reply).unwrap(), what);
    }
    let list = json!({ "jsonrpc": "2.0", "id": 6, "method": "tools/list", "params": { "_meta": stateless_meta() } });
    stdin.write_all(format!("{list}\n").as_bytes()).await.unwrap();
    let mut reply = String::new();
    stdout.read_line(&mut reply).await.unwrap();
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert!(
        reply["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "{reply}"
    );
}

/// The in-flight budget counts what a request's parse builds: a body of a few kilobytes whose
/// values would fill the budget waits its turn behind another request, where its bytes alone
/// would have fit.
#[tokio::test]
async fn the_in_flight_budget_counts_what_parsing_builds() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(
        &upstream,
        &[
            ("MCP_MAX_BODY_BYTES", "65536"),
            ("MCP_MAX_BODY_BYTES_IN_FLIGHT", "262144"),
            ("MCP_BODY_READ_TIMEOUT", "2"),
        ],
    )
    .await;
    let tool = some_tool(&server).await;
    // 3,000 values: 6 KB on the wire, over 300 KB once parsed.
    let mut params = json!({ "name": tool, "arguments": { "x": zeros(3_000) } });
    params["_meta"] = stateless_meta();
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params }).to_string();
    assert!(body.len() < 8_000);

    // A slow body of 1,000 bytes holds its bytes of the budget.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{";
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = exchange(server.addr, &raw::post(&body, STATELESS)).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP_MAX_BODY_BYTES_IN_FLIGHT")
    );

    // Once the slow body has timed out, the same request is served.
    let answer = read_answer(&mut slow, Duration::from_secs(5)).await.unwrap();
    assert_eq!(answer.status, 408);
    let headers = format!("{STATELESS}Mcp-Method: tools/call\r\nMcp-Name: {tool}\r\n");
    let served = exchange(server.addr, &raw::post(&body, &headers)).await;
    assert_eq!(served.status, 200, "{served:?}");
    assert!(served.json()["result"].is_object(), "{served:?}");
}

/// Peak memory of the process (VmHWM), in bytes.
fn peak_memory(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// With the default limits, a 4 MiB body of two million zeros (a tree of over 64 MiB, were it
/// parsed) leaves the server's peak memory within a small multiple of the body.
#[tokio::test]
async fn a_large_request_costs_a_small_multiple_of_its_size() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    let tool = some_tool(&server).await;
    let mut params = json!({ "name": tool, "arguments": { "x": zeros(2_000_000) } });
    params["_meta"] = stateless_meta();
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params }).to_string();
    let before = peak_memory(server.server.pid());
    let answer = exchange(server.addr, &raw::post(&body, STATELESS)).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    let grown = peak_memory(server.server.pid()).saturating_sub(before);
    assert!(
        grown < 4 * body.len() as u64 + (8 << 20),
        "peak memory grew by {grown} bytes for a body of {}",
        body.len()
    );
}

/// Every answer stays under 1 KiB whatever the client sent: rmcp's own refusals (a header
/// that contradicts the body, quoting both), unknown methods, names and URIs, and ids, which an
/// answer would have to repeat whole, on both transports and in sessions.
#[tokio::test]
async fn answers_stay_small_whatever_the_client_sent() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    let big = "x".repeat(3_000_000);
    let long_header = "y".repeat(60_000);
    let small = |answer: &str, what: &str| assert!(answer.len() < 1024, "{what}: {} bytes", answer.len());
    let request = |id: Value, method: &str, params: Value| {
        json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
    };

    // 2026-07-28, where headers repeat parts of the body.
    let stateless_cases = [
        (
            "a method that contradicts Mcp-Method",
            request(json!(1), &big, stateless(json!({}))),
            "Mcp-Method: tools/list\r\n".to_owned(),
        ),
        (
            "a long Mcp-Name",
            request(json!(1), "prompts/get", stateless(json!({ "name": "a" }))),
            format!("Mcp-Method: prompts/get\r\nMcp-Name: {long_header}\r\n"),
        ),
        (
            "a name that contradicts Mcp-Name",
            request(json!(1), "prompts/get", stateless(json!({ "name": big }))),
            "Mcp-Method: prompts/get\r\nMcp-Name: a\r\n".to_owned(),
        ),
        (
            "a long id",
            request(json!(big), "tools/list", stateless(json!({}))),
            "Mcp-Method: tools/list\r\n".to_owned(),
        ),
    ];
    for (what, body, headers) in &stateless_cases {
        let answer = exchange(server.addr, &raw::post(body, &format!("{STATELESS}{headers}"))).await;
        assert!(answer.status >= 400, "{what}: {answer:?}");
        small(&answer.body, what);
    }
    let long_version = format!("MCP-Protocol-Version: {long_header}\r\nMcp-Method: tools/list\r\n");
    let answer = exchange(
        server.addr,
        &raw::post(&request(json!(1), "tools/list", stateless(json!({}))), &long_version),
    )
    .await;
    small(&answer.body, "a long MCP-Protocol-Version");

    // A 2025-11-25 session.
    let initialize = request(
        json!(1),
        "initialize",
        json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "raw", "version": "1" } }),
    );
    let opened = exchange(server.addr, &raw::post(&initialize, "")).await;
    let session = opened.header("mcp-session-id").expect("a session");
    let in_session = format!("Mcp-Session-Id: {session}\r\nMCP-Protocol-Version: 2025-11-25\r\n");
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }).to_string();
    exchange(server.addr, &raw::post(&initialized, &in_session)).await;
    let session_cases = [
        ("an unknown method", request(json!(2), &format!("x/{big}"), json!({}))),
        (
            "an unknown prompt",
            request(json!(3), "prompts/get", json!({ "name": big })),
        ),
        (
            "an unknown resource",
            request(json!(4), "resources/read", json!({ "uri": format!("x://{big}") })),
        ),
        (
            "an unknown tool",
            request(json!(5), "tools/call", json!({ "name": big })),
        ),
        ("a long id", request(json!(big), "tools/list", json!({}))),
    ];
    for (what, body) in &session_cases {
        let answer = exchange(server.addr, &raw::post(body, &in_session)).await;
        small(&answer.body, what);
    }

    // stdio, in both generations.
    let mut stdio = StdioServer::start(&upstream, &[]).await;
    let (mut stdout, mut stdin) = stdio.raw();
    let mut lines = vec![initialize];
    lines.extend(session_cases.iter().map(|(_, body)| body.clone()));
    lines.push(request(json!(9), &format!("x/{big}"), stateless(json!({}))));
    for line in &lines {
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).await.unwrap();
        small(&answer, &line[..line.len().min(60)]);
    }
}

/// On stdio too, what requests in flight hold counts against the budget: while a slow call
/// holds it all, the next request is answered with an error to retry, and once the call has
/// been answered the same request is served.
#[tokio::test]
async fn stdio_requests_in_flight_share_the_budget() {
    let upstream = FakeUpstream::start().await;
    let mut stdio = StdioServer::start(
        &upstream,
        &[("MCP_MAX_BODY_BYTES", "1024"), ("MCP_MAX_BODY_BYTES_IN_FLIGHT", "1024")],
    )
    .await;
    let (mut stdout, mut stdin) = stdio.raw();
    upstream.set_delay(Duration::from_secs(2));
    let slow = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": stateless(json!({ "name": "fetch_fixture", "arguments": { "url": upstream.data_url() } })) });
    let list = |id: u64| json!({ "jsonrpc": "2.0", "id": id, "method": "tools/list", "params": stateless(json!({})) });
    for line in [slow, list(2)] {
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }
    let mut answers = Vec::new();
    for _ in 0..2 {
        let mut answer = String::new();
        stdout.read_line(&mut answer).await.unwrap();
        answers.push(serde_json::from_str::<Value>(&answer).unwrap());
    }
    let (refused, called) = (&answers[0], &answers[1]);
    assert_eq!(
        (&refused["id"], &refused["error"]["code"]),
        (&json!(2), &json!(-32000)),
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP_MAX_BODY_BYTES_IN_FLIGHT")
    );
    assert_eq!(called["id"], 1, "{called}");
    stdin.write_all(format!("{}\n", list(3)).as_bytes()).await.unwrap();
    let mut answer = String::new();
    stdout.read_line(&mut answer).await.unwrap();
    let served: Value = serde_json::from_str(&answer).unwrap();
    assert!(served["result"]["tools"].is_array(), "{served}");
}
