//! The MCP surface over both transports and all three protocol revisions: identity, the tool
//! list and its schemas, every resource, template and prompt, and the errors a client can
//! cause. Each tool's own behaviour is tested in its own file (tests/<tool name>.rs).

mod support;

use rmcp::{
    ServiceError,
    model::{CallToolRequestParams, ErrorCode, ReadResourceRequestParams, ResourceContents},
};
use serde_json::{Value, json};
use support::{Client, FakeUpstream, GENERATIONS, Generation, HttpServer, StdioServer};
// weather-example:begin
use rmcp::model::GetPromptRequestParams;
use support::args;
// weather-example:end

/// Everything a client sees of the server, checked the same way on every transport.
async fn exercise(client: &Client, generation: Generation) {
    let context = format!("{generation:?}");

    // Identity: our own name and version, instructions, capabilities.
    let info = client.peer_info().expect("server info after connecting");
    let identity = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(identity.name, env!("CARGO_PKG_NAME"), "{context}");
    assert_eq!(identity.version, env!("CARGO_PKG_VERSION"), "{context}");
    assert!(!info.instructions.as_deref().unwrap_or("").is_empty(), "{context}");
    assert!(info.capabilities.tools.is_some(), "{context}");
    assert!(info.capabilities.resources.is_some(), "{context}");
    assert!(info.capabilities.prompts.is_some(), "{context}");

    // tools/list: whatever tools there are, each described, with schemas of single types.
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(!tools.is_empty(), "{context}");
    for tool in &tools {
        assert!(
            !tool.description.as_deref().unwrap_or("").is_empty(),
            "{context}: {} has no description",
            tool.name
        );
        let schemas = [Some(&*tool.input_schema), tool.output_schema.as_deref()];
        for schema in schemas.into_iter().flatten() {
            let schema = serde_json::to_value(schema).unwrap();
            assert!(
                single_types(&schema),
                "{context}: {} has a type list: {schema}",
                tool.name
            );
        }
    }

    // An unknown tool is a protocol error that names the tool.
    let error = rpc_error(
        client.call_tool(CallToolRequestParams::new("no_such_tool")).await,
        &context,
    );
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS, "{context}");
    assert!(
        error.message.contains("unknown tool 'no_such_tool'"),
        "{context}: {}",
        error.message
    );

    // Resources: every listed one reads, templates list, and an unknown URI is a clear miss.
    let resources = client.list_all_resources().await.expect("resources/list");
    for resource in &resources {
        read_text(client, &resource.uri).await;
    }
    client
        .list_all_resource_templates()
        .await
        .expect("resources/templates/list");
    let missing = rpc_error(
        client
            .read_resource(ReadResourceRequestParams::new("nothing://here"))
            .await,
        &context,
    );
    assert!(
        missing.message.contains("unknown resource"),
        "{context}: {}",
        missing.message
    );
    // The answer names a long URI clipped: it does not grow with what the client sends.
    let long = format!("nothing://{}", "x".repeat(20_000));
    let missing = rpc_error(
        client.read_resource(ReadResourceRequestParams::new(&long)).await,
        &context,
    );
    assert!(
        missing.message.len() < 1_000,
        "{context}: {} bytes",
        missing.message.len()
    );
    assert!(missing.data.unwrap().to_string().len() < 1_000, "{context}");
    client.list_all_prompts().await.expect("prompts/list");
    // weather-example:begin

    // The weather example's resource: the fixed one, the template, a read of each, and a miss.
    assert_eq!(
        resources.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>(),
        ["weather://codes"],
        "{context}"
    );
    let templates = client
        .list_all_resource_templates()
        .await
        .expect("resources/templates/list");
    assert_eq!(templates[0].uri_template, "weather://codes/{code}", "{context}");
    let all = read_text(client, "weather://codes").await;
    let table: Value = serde_json::from_str(&all).unwrap();
    assert_eq!(table[0], json!({ "code": 0, "description": "Clear sky" }), "{context}");
    let one: Value = serde_json::from_str(&read_text(client, "weather://codes/61").await).unwrap();
    assert_eq!(one, json!({ "code": 61, "description": "Slight rain" }), "{context}");
    let missing = rpc_error(
        client
            .read_resource(ReadResourceRequestParams::new("weather://codes/4"))
            .await,
        &context,
    );
    assert!(missing.message.contains("no such weather code"), "{context}");

    // Prompts: listed with their arguments, and rendered with them.
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    assert_eq!(prompts.len(), 1, "{context}");
    assert_eq!(prompts[0].name, "plan_outdoor_activity", "{context}");
    let mut arguments: Vec<_> = prompts[0]
        .arguments
        .iter()
        .flatten()
        .map(|a| (a.name.as_str(), a.required))
        .collect();
    arguments.sort();
    assert_eq!(
        arguments,
        [("activity", Some(true)), ("city", Some(true)), ("when", Some(false))],
        "{context}"
    );
    let prompt = client
        .get_prompt(
            GetPromptRequestParams::new("plan_outdoor_activity")
                .with_arguments(args(json!({ "city": "Lisbon", "activity": "a bike ride" }))),
        )
        .await
        .expect("prompts/get");
    let message = serde_json::to_value(&prompt.messages[0]).unwrap();
    let body = message["content"]["text"].as_str().unwrap();
    assert!(
        body.contains("a bike ride in Lisbon") && body.contains("get_forecast"),
        "{context}: {body}"
    );
    // Its arguments are checked by the rules the forecast tool's are.
    let refused = rpc_error(
        client
            .get_prompt(
                GetPromptRequestParams::new("plan_outdoor_activity")
                    .with_arguments(args(json!({ "city": "x".repeat(20_000), "activity": "<b>" }))),
            )
            .await,
        &context,
    );
    assert_eq!(refused.code, ErrorCode::INVALID_PARAMS, "{context}");
    assert!(
        refused.message.contains("`city` must have 1 to 100 characters"),
        "{context}: {}",
        refused.message
    );
    // weather-example:end
}

/// Whether every `type` in a JSON Schema names one type: some clients reject a list such as
/// `["string", "null"]`, so an optional field is left out rather than sent as null.
/// The JSON-RPC error a request was answered with.
fn rpc_error<T: std::fmt::Debug>(answer: Result<T, ServiceError>, context: &str) -> rmcp::ErrorData {
    match answer {
        Err(ServiceError::McpError(error)) => error,
        other => panic!("{context}: expected a JSON-RPC error, got {other:?}"),
    }
}

fn single_types(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => map
            .iter()
            .all(|(key, value)| !(key == "type" && value.is_array()) && single_types(value)),
        Value::Array(items) => items.iter().all(single_types),
        _ => true,
    }
}

async fn read_text(client: &Client, uri: &str) -> String {
    let result = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .expect("resources/read");
    match &result.contents[0] {
        ResourceContents::TextResourceContents { text, mime_type, .. } => {
            assert_eq!(mime_type.as_deref(), Some("application/json"));
            text.clone()
        }
        other => panic!("expected text contents, got {other:?}"),
    }
}

#[tokio::test]
async fn stdio_serves_every_generation() {
    let upstream = FakeUpstream::start().await;
    for generation in GENERATIONS {
        let mut server = StdioServer::start(&upstream, &[]).await;
        let client = server.connect(generation).await;
        exercise(&client, generation).await;
        client.cancel().await.unwrap();
        assert_eq!(server.server.exit_code(std::time::Duration::from_secs(10)).await, 0);
        server.server.logs.json(); // every stderr line is JSON
    }
}

#[tokio::test]
async fn http_serves_every_generation() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    for generation in GENERATIONS {
        let client = server.connect(generation).await;
        exercise(&client, generation).await;
        client.cancel().await.unwrap();
    }
    server.server.logs.json();
}

#[tokio::test]
async fn stdio_answers_malformed_input_and_keeps_serving() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let upstream = FakeUpstream::start().await;
    let mut server = StdioServer::start(&upstream, &[]).await;
    let (mut stdout, mut stdin) = server.raw();
    let mut next = async || {
        let mut line = String::new();
        stdout.read_line(&mut line).await.unwrap();
        serde_json::from_str::<Value>(&line).unwrap_or_else(|_| panic!("stdout line is not JSON: {line:?}"))
    };

    stdin.write_all(b"this is not json\n").await.unwrap();
    let reply = next().await;
    assert_eq!(reply["error"]["code"], -32700);
    assert!(reply["error"]["message"].as_str().unwrap().contains("not valid JSON"));

    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":17}\n")
        .await
        .unwrap();
    let reply = next().await;
    assert_eq!(
        (reply["id"].clone(), reply["error"]["code"].clone()),
        (json!(5), json!(-32600))
    );

    // JSON that is not a JSON-RPC message at all: -32600 with the null id, spelled out.
    for not_a_message in ["{}", "[1,2]", "\"x\"", "42", "null"] {
        stdin.write_all(format!("{not_a_message}\n").as_bytes()).await.unwrap();
        let reply = next().await;
        assert_eq!(reply.get("id"), Some(&Value::Null), "{not_a_message}: {reply}");
        assert_eq!(reply["error"]["code"], -32600, "{not_a_message}: {reply}");
    }

    // Still serving: a handshake and a call go through.
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}});
    stdin.write_all(format!("{init}\n").as_bytes()).await.unwrap();
    assert_eq!(next().await["result"]["serverInfo"]["name"], env!("CARGO_PKG_NAME"));
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await
        .unwrap();
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}\n")
        .await
        .unwrap();
    assert!(!next().await["result"]["tools"].as_array().unwrap().is_empty());

    drop(stdin);
    assert_eq!(server.server.exit_code(std::time::Duration::from_secs(10)).await, 0);
    assert_eq!(server.server.logs.events("bad_input").len(), 7);
}

#[tokio::test]
async fn http_answers_malformed_input_and_keeps_serving() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    let http = reqwest::Client::new();
    let response = http
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body("{ this is not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("a JSON-RPC error body");
    assert_eq!(body["error"]["code"], -32700, "{body}");

    let response = http
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":9,"method":17}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("a JSON-RPC error body");
    assert_eq!(
        (body["id"].clone(), body["error"]["code"].clone()),
        (json!(9), json!(-32600)),
        "{body}"
    );

    let client = server.connect(Generation::Stateless).await;
    assert!(!client.list_all_tools().await.unwrap().is_empty(), "still serving");
    client.cancel().await.unwrap();
}

/// `_meta` every 2026-07-28 request carries.
fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "1" },
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

const PING_GONE: &str = "ping is not part of protocol revision 2026-07-28";
const NO_COMPLETIONS: &str = "completion/complete is not offered by this server";

fn complete_params() -> Value {
    json!({ "ref": { "type": "ref/prompt", "name": "any_prompt" }, "argument": { "name": "city", "value": "Par" } })
}

#[tokio::test]
async fn methods_not_offered_get_32601_saying_why_on_both_transports() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let upstream = FakeUpstream::start().await;

    // HTTP, 2026-07-28.
    let server = HttpServer::start(&upstream, &[]).await;
    let http = reqwest::Client::new();
    for (method, params, words) in [
        ("ping", json!({}), PING_GONE),
        ("completion/complete", complete_params(), NO_COMPLETIONS),
    ] {
        let response = server.post(&http, None, method, params).await;
        assert_eq!(response.status(), 404, "{method}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32601, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(words), "{body}");
    }
    // HTTP, a 2025-11-25 session: ping is fine there; completions are not offered.
    let client = server.connect(Generation::Handshake20251125).await;
    let refused = client
        .peer()
        .complete(serde_json::from_value(complete_params()).unwrap())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains(NO_COMPLETIONS), "{refused}");
    client.cancel().await.unwrap();

    // stdio, 2026-07-28.
    let mut stdio = StdioServer::start(&upstream, &[]).await;
    let (mut stdout, mut stdin) = stdio.raw();
    let mut meta_params = complete_params();
    meta_params["_meta"] = stateless_meta();
    for (id, method, params) in [
        (1, "server/discover", json!({ "_meta": stateless_meta() })),
        (2, "ping", json!({ "_meta": stateless_meta() })),
        (3, "completion/complete", meta_params),
    ] {
        let line = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }
    let mut replies = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        stdout.read_line(&mut line).await.unwrap();
        replies.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    replies.sort_by_key(|r| r["id"].as_i64());
    for (reply, words) in replies[1..].iter().zip([PING_GONE, NO_COMPLETIONS]) {
        assert_eq!(reply["error"]["code"], -32601, "{reply}");
        assert!(reply["error"]["message"].as_str().unwrap().contains(words), "{reply}");
    }
}

/// A request of a method the server offers, whose params do not fit that method, is answered
/// with Invalid params saying what is wrong, not "method not found", on both transports.
#[tokio::test]
async fn params_that_do_not_fit_their_method_get_32602_saying_what_is_wrong_on_both_transports() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let upstream = FakeUpstream::start().await;
    let cases = [
        ("tools/call", json!({ "arguments": {} }), "missing field `name`"),
        ("tools/call", json!({ "name": 7 }), "invalid type: integer `7`"),
        ("resources/read", json!({ "uri": ["a"] }), "invalid type: sequence"),
        ("prompts/get", json!({}), "missing field `name`"),
        // The test servers have a tool that runs as a task, so they offer the task methods.
        ("tasks/get", json!({}), "missing field `taskId`"),
    ];
    let expected = |reply: &Value, method: &str, words: &str| {
        assert_eq!(reply["error"]["code"], -32602, "{method}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("invalid params for {method}")) && message.contains(words),
            "{method}: {reply}"
        );
    };

    let server = HttpServer::start(&upstream, &[]).await;
    let http = reqwest::Client::new();
    for (method, params, words) in &cases {
        let response = server.post(&http, None, method, params.clone()).await;
        assert_eq!(response.status(), 200, "{method}");
        expected(&response.json().await.unwrap(), method, words);
    }
    // Logged like any answered request of the method.
    let line = server
        .server
        .logs
        .wait_for_match(|l| l["event"] == "request" && l["method"] == "tools/call")
        .await;
    assert_eq!(
        (&line["outcome"], &line["error_code"]),
        (&json!("error"), &json!(-32602)),
        "{line}"
    );

    let mut stdio = StdioServer::start(&upstream, &[]).await;
    let (mut stdout, mut stdin) = stdio.raw();
    for (id, (method, params, _)) in cases.iter().enumerate() {
        let mut params = params.clone();
        params["_meta"] = stateless_meta();
        let line = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }
    let mut replies = Vec::new();
    for _ in 0..cases.len() {
        let mut line = String::new();
        stdout.read_line(&mut line).await.unwrap();
        replies.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    replies.sort_by_key(|r| r["id"].as_u64());
    for (reply, (method, _, words)) in replies.iter().zip(&cases) {
        expected(reply, method, words);
    }
    // The server goes on serving.
    let client = server.connect(Generation::Stateless).await;
    assert!(!client.list_all_tools().await.unwrap().is_empty());
    client.cancel().await.unwrap();
}

/// An answer that names what the client sent (an unknown tool, prompt or resource, fields the
/// schema refuses) names it clipped, and lists at most a few of many faults: the answer does
/// not grow with the request.
#[tokio::test]
async fn answers_naming_what_the_client_sent_stay_small_on_both_transports() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let upstream = FakeUpstream::start().await;
    let long = "y".repeat(20_000);
    let client = HttpServer::start(&upstream, &[]).await;
    let tools = client
        .connect(Generation::Stateless)
        .await
        .list_all_tools()
        .await
        .unwrap();
    // A tool whose schema refuses fields it does not name (the fixtures' are such).
    let tool = tools
        .iter()
        .find(|t| t.input_schema.get("additionalProperties") == Some(&json!(false)))
        .expect("a tool that refuses unknown fields")
        .name
        .to_string();
    let many_fields: serde_json::Map<String, Value> = (0..5_000).map(|i| (format!("field{i:05}"), json!(1))).collect();
    let cases = [
        ("tools/call", json!({ "name": long })),
        ("tools/call", json!({ "name": tool, "arguments": { long.clone(): 1 } })),
        ("tools/call", json!({ "name": tool, "arguments": many_fields })),
        ("prompts/get", json!({ "name": long })),
        ("resources/read", json!({ "uri": format!("nothing://{long}") })),
    ];
    let small = |reply: &str, what: &str| assert!(reply.len() < 4_000, "{what}: {} bytes", reply.len());

    let http = reqwest::Client::new();
    for (method, params) in &cases {
        let reply = client
            .post(&http, None, method, params.clone())
            .await
            .text()
            .await
            .unwrap();
        small(&reply, method);
    }

    let mut stdio = StdioServer::start(&upstream, &[]).await;
    let (mut stdout, mut stdin) = stdio.raw();
    for (id, (method, params)) in cases.iter().enumerate() {
        let mut params = params.clone();
        params["_meta"] = stateless_meta();
        let line = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }
    for _ in 0..cases.len() {
        let mut line = String::new();
        stdout.read_line(&mut line).await.unwrap();
        small(&line, "stdio");
    }
}
