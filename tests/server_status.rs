//! `server_status`, a privileged tool, over the real protocol: hidden from callers without
//! the `mcp:admin` scope and refused to them; what it tells an operator; and that it takes no
//! arguments.

mod support;

use serde_json::json;
use support::{
    Client, FakeUpstream, Generation, HttpServer, StdioServer, text,
    tools::{call, each_client, listed, refusal, schema, tool_names},
};

const TOOL: &str = "server_status";
const OPERATOR: &str = "operator-token-0123456789";
/// Static auth that knows one token: an operator's, with the tool's scope.
const AUTH: [(&str, &str); 2] = [
    ("MCP_AUTH", "static"),
    ("MCP_AUTH_TOKENS", "operator-token-0123456789 ops mcp:admin"),
];
/// The same for stdio, which takes its caller's token from the environment.
const STDIO_AUTH: [(&str, &str); 3] = [AUTH[0], AUTH[1], ("MCP_AUTH_TOKEN", OPERATOR)];

#[tokio::test]
async fn hidden_from_a_caller_without_its_scope_and_refused_if_called_anyway() {
    let upstream = FakeUpstream::start().await;
    each_client(&upstream, &[], async |client, context| {
        let names = tool_names(client).await;
        assert!(!names.iter().any(|n| n == TOOL), "{context}: {names:?}");
        // A refusal is a result the model can read.
        let refused = call(client, TOOL, json!({})).await;
        assert_eq!(refused.is_error, Some(true), "{context}");
        assert!(
            text(&refused).contains("needs the 'mcp:admin' scope"),
            "{context}: {}",
            text(&refused)
        );
    })
    .await;
}

/// What an operator's client sees of the tool, and what a call answers.
async fn reads_the_server_state(client: &Client, context: &str) {
    let output = schema(&listed(client, TOOL).await, true);
    let uptime = &output["properties"]["uptime_s"];
    assert_eq!(
        (&uptime["minimum"], &uptime["maximum"]),
        (&json!(0), &json!(u64::MAX)),
        "{context}: a u64's range"
    );
    let status = call(client, TOOL, json!({})).await;
    assert_eq!(status.is_error, Some(false), "{context}: {status:?}");
    let state = status.structured_content.expect("structuredContent");
    assert_eq!(state["version"], env!("CARGO_PKG_VERSION"), "{context}");
    assert!(state["uptime_s"].is_u64(), "{context}: {state}");
    assert!(
        state["in_flight"].as_u64() >= Some(1),
        "{context}: this call is in flight: {state}"
    );
    assert!(state["rate_limit_buckets"].is_u64(), "{context}: {state}");
    assert!(state["tasks"].is_u64(), "{context}: {state}");
}

#[tokio::test]
async fn an_operator_with_its_scope_sees_it_and_reads_the_server_state() {
    let upstream = FakeUpstream::start().await;
    // Over HTTP, the token comes with each request.
    let http = HttpServer::start(&upstream, &AUTH).await;
    for generation in [Generation::Stateless, Generation::Handshake20251125] {
        let client = http.connect_as(generation, OPERATOR).await;
        reads_the_server_state(&client, &format!("http {generation:?}")).await;
        client.cancel().await.unwrap();
    }

    let mut stdio = StdioServer::start(&upstream, &STDIO_AUTH).await;
    let client = stdio.connect(Generation::Handshake20251125).await;
    reads_the_server_state(&client, "stdio").await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn takes_no_arguments() {
    let upstream = FakeUpstream::start().await;
    let mut server = StdioServer::start(&upstream, &STDIO_AUTH).await;
    let client = server.connect(Generation::Handshake20250618).await;
    // It advertises an open empty schema, but its argument type takes no field: the parser's
    // refusal is named like the schema's.
    let message = refusal(&client, TOOL, json!({ "verbose": true })).await;
    assert_eq!(
        message,
        "invalid arguments for 'server_status': `verbose` is not valid: unknown field `verbose`, there are no fields"
    );
    client.cancel().await.unwrap();
}
