//! Listing and calling tools through the rmcp client: what a tool's own test needs, and what
//! a suite needs to ask the server which tools exist rather than name them all.

use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use serde_json::Value;

use super::{Client, FakeUpstream, GENERATIONS, Generation, HttpServer, StdioServer, args, text};

/// Runs `check` with an anonymous client on every transport and protocol generation: a stdio
/// server per generation (each must then exit cleanly), then one HTTP server for all three.
/// `env` adds settings to every server; `check` gets the client and a context to print.
pub async fn each_client(upstream: &FakeUpstream, env: &[(&str, &str)], check: impl AsyncFn(&Client, &str)) {
    for generation in GENERATIONS {
        let mut server = StdioServer::start(upstream, env).await;
        let client = server.connect(generation).await;
        check(&client, &format!("stdio {generation:?}")).await;
        client.cancel().await.unwrap();
        assert_eq!(server.server.exit_code(Duration::from_secs(10)).await, 0);
        server.server.logs.json(); // every stderr line is JSON
    }
    let server = HttpServer::start(upstream, env).await;
    for generation in GENERATIONS {
        let client = server.connect(generation).await;
        check(&client, &format!("http {generation:?}")).await;
        client.cancel().await.unwrap();
    }
    server.server.logs.json();
}

/// Calls `tool`; a protocol error panics (a tool's own failure is a result, `isError`).
pub async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments)))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// The message of a call the guard refused for its arguments, before the tool ran.
pub async fn refusal(client: &Client, tool: &str, arguments: Value) -> String {
    let result = call(client, tool, arguments.clone()).await;
    assert_eq!(result.is_error, Some(true), "{tool} {arguments}");
    let message = text(&result);
    assert!(
        message.starts_with(&format!("invalid arguments for '{tool}': ")),
        "{message}"
    );
    message
}

/// A call with these arguments is refused before the tool runs, naming each listed rule.
pub async fn refused(client: &Client, tool: &str, arguments: Value, expected: &[&str]) {
    let message = refusal(client, tool, arguments.clone()).await;
    for part in expected {
        assert!(
            message.contains(part),
            "{tool} {arguments}: '{part}' missing from: {message}"
        );
    }
}

/// The names tools/list gives this client, in the server's order.
pub async fn tool_names(client: &Client) -> Vec<String> {
    let tools = client.list_all_tools().await.expect("tools/list");
    tools.into_iter().map(|t| t.name.into_owned()).collect()
}

/// The tool named `name` as tools/list shows it to this client; panics if it is not listed.
pub async fn listed(client: &Client, name: &str) -> Tool {
    let tools = client.list_all_tools().await.expect("tools/list");
    tools
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} is not in tools/list"))
}

/// A tool's input schema, or its output schema, as JSON.
pub fn schema(tool: &Tool, output: bool) -> Value {
    match output {
        false => Value::Object((*tool.input_schema).clone()),
        true => Value::Object((**tool.output_schema.as_ref().expect("an outputSchema")).clone()),
    }
}

/// The schema of a property named `name`, wherever it is declared in `schema` (`$defs` too).
pub fn property<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    match schema {
        Value::Object(map) => map
            .get("properties")
            .and_then(|properties| properties.get(name))
            .or_else(|| map.values().find_map(|value| property(value, name))),
        Value::Array(items) => items.iter().find_map(|item| property(item, name)),
        _ => None,
    }
}

/// Every tool the server has: the list a caller holding every scope the server names (in its
/// protected-resource metadata, which a server taking JWTs publishes) is given.
pub async fn every_tool(upstream: &FakeUpstream) -> Vec<Tool> {
    let key = super::jwt::SigningKey::generate("probe");
    let pem = std::env::temp_dir().join(format!("probe-{}-{}.pem", std::process::id(), upstream.port()));
    std::fs::write(&pem, key.public_pem()).unwrap();
    let probe = HttpServer::start(
        upstream,
        &[
            ("MCP_AUTH", "jwt"),
            ("MCP_JWT_PUBLIC_KEY_FILE", pem.to_str().unwrap()),
            ("MCP_JWT_ISSUER", super::jwt::ISSUER),
            ("MCP_JWT_ALGORITHMS", "ES256"),
            ("MCP_PUBLIC_URL", "http://probe.test"),
        ],
    )
    .await;
    std::fs::remove_file(&pem).ok();
    let metadata: Value = reqwest::get(probe.url("/.well-known/oauth-protected-resource"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scopes: Vec<_> = metadata["scopes_supported"]
        .as_array()
        .expect("scopes_supported")
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let token = "every-scope-token-0123456789";
    let entry = format!("{token} operator {}", scopes.join(" "));
    let env = [
        ("MCP_AUTH", "static"),
        ("MCP_AUTH_TOKENS", &entry),
        ("MCP_AUTH_TOKEN", token),
    ];
    let mut server = StdioServer::start(upstream, &env).await;
    let client = server.connect(Generation::Stateless).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    client.cancel().await.unwrap();
    tools
}
