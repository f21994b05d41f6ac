//! Graceful drain on SIGTERM/SIGINT over both transports, and stdin EOF on stdio.

mod support;

use std::time::{Duration, Instant};

use rmcp::{ServiceError, model::CallToolRequestParams};
use serde_json::{Value, json};
use support::{
    Client, FakeUpstream, Generation, HttpServer, StdioServer, args, text,
    upstream::{DATA_BODY, FETCH},
};

const SLOW: Duration = Duration::from_millis(1500);

/// A call of the test-only `fetch_fixture` tool, slow as the fake upstream's delay makes it.
fn slow_call(
    client: &Client,
    upstream: &FakeUpstream,
) -> impl Future<Output = Result<rmcp::model::CallToolResult, ServiceError>> + 'static {
    let peer = client.peer().clone();
    let arguments = args(json!({ "url": upstream.data_url() }));
    async move {
        peer.call_tool(CallToolRequestParams::new(FETCH).with_arguments(arguments))
            .await
    }
}

fn shutting_down(error: ServiceError) -> rmcp::model::ErrorData {
    match error {
        ServiceError::McpError(error) if error.code.0 == -32000 => error,
        other => panic!("expected the shutting-down error (-32000), got {other:?}"),
    }
}

#[tokio::test]
async fn http_sigterm_lets_in_flight_calls_finish_and_refuses_new_ones() {
    for generation in [Generation::Stateless, Generation::Handshake20251125] {
        let upstream = FakeUpstream::start().await;
        upstream.set_delay(SLOW);
        let mut server = HttpServer::start(&upstream, &[("MCP_DRAIN_TIMEOUT", "20")]).await;
        let client = server.connect(generation).await;
        let call = tokio::spawn(slow_call(&client, &upstream));
        upstream.wait_for_data_hits(1).await;

        server.server.terminate();
        let started = server.server.logs.wait_for("drain_started").await;
        assert_eq!(started["in_flight"], 1, "{generation:?}");
        assert_eq!(started["reason"], "SIGTERM");

        // Draining: not ready, new MCP requests refused with 503 + Retry-After, still alive.
        let ready = reqwest::get(server.url("/readyz")).await.unwrap();
        assert_eq!(ready.status(), 503);
        assert_eq!(ready.json::<Value>().await.unwrap(), json!({ "status": "draining" }));
        assert_eq!(reqwest::get(server.url("/healthz")).await.unwrap().status(), 200);
        let refused = reqwest::Client::new()
            .post(server.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 503);
        assert!(refused.headers().contains_key("retry-after"));
        assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], -32000);

        // The in-flight call completes with its full result.
        let result = call
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{e:?}\n{}", server.server.logs.lines().join("\n")));
        assert_eq!(result.is_error, Some(false), "{generation:?}: {result:?}");
        assert_eq!(text(&result), DATA_BODY);

        assert_eq!(
            server.server.exit_code(Duration::from_secs(15)).await,
            0,
            "{generation:?}"
        );
        let finished = &server.server.logs.events("drain_finished")[0];
        assert_eq!(
            (finished["in_flight"].clone(), finished["cancelled"].clone()),
            (json!(0), json!(0))
        );
        server.server.logs.json();
    }
}

#[tokio::test]
async fn stdio_sigterm_lets_in_flight_calls_finish_and_refuses_new_ones() {
    let upstream = FakeUpstream::start().await;
    upstream.set_delay(SLOW);
    let mut server = StdioServer::start(&upstream, &[("MCP_DRAIN_TIMEOUT", "20")]).await;
    let client = server.connect(Generation::Handshake20251125).await;
    let call = tokio::spawn(slow_call(&client, &upstream));
    upstream.wait_for_data_hits(1).await;

    server.server.terminate();
    assert_eq!(server.server.logs.wait_for("drain_started").await["in_flight"], 1);
    let refused = client
        .list_all_tools()
        .await
        .expect_err("new requests are refused while draining");
    assert!(shutting_down(refused).message.contains("shutting down"));

    let result = call.await.unwrap().expect("the in-flight call completes");
    assert_eq!(result.is_error, Some(false));
    assert_eq!(text(&result), DATA_BODY);
    assert_eq!(server.server.exit_code(Duration::from_secs(15)).await, 0);
    server.server.logs.json();
}

#[tokio::test]
async fn sigterm_cancels_a_call_that_outlives_the_drain_timeout() {
    for transport in ["http", "stdio"] {
        let upstream = FakeUpstream::start().await;
        upstream.set_delay(Duration::from_secs(120));
        let drain = [("MCP_DRAIN_TIMEOUT", "1")];
        let (mut server, client) = if transport == "http" {
            let http = HttpServer::start(&upstream, &drain).await;
            let client = http.connect(Generation::Stateless).await;
            (http.server, client)
        } else {
            let mut stdio = StdioServer::start(&upstream, &drain).await;
            let client = stdio.connect(Generation::Stateless).await;
            (stdio.server, client)
        };
        let call = tokio::spawn(slow_call(&client, &upstream));
        upstream.wait_for_data_hits(1).await;

        let signalled = Instant::now();
        server.terminate();
        let error = shutting_down(call.await.unwrap().expect_err("the call is cancelled"));
        assert!(error.message.contains("drain period"), "{transport}: {}", error.message);
        assert_eq!(server.exit_code(Duration::from_secs(10)).await, 0, "{transport}");
        assert!(
            signalled.elapsed() < Duration::from_secs(8),
            "{transport}: exit took {:?}",
            signalled.elapsed()
        );
        assert_eq!(server.logs.events("drain_finished")[0]["cancelled"], 1, "{transport}");
        assert_eq!(server.logs.events("drain_timeout").len(), 1, "{transport}");
    }
}

#[tokio::test]
async fn sigint_drains_too() {
    let upstream = FakeUpstream::start().await;
    let mut server = HttpServer::start(&upstream, &[]).await;
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(server.server.pid(), libc::SIGINT) }, 0);
    assert_eq!(server.server.exit_code(Duration::from_secs(10)).await, 0);
    assert_eq!(server.server.logs.events("drain_started")[0]["reason"], "SIGINT");
}

#[tokio::test]
async fn stdin_eof_ends_a_stdio_server() {
    let upstream = FakeUpstream::start().await;
    // Before any request...
    let mut idle = StdioServer::start(&upstream, &[]).await;
    drop(idle.raw());
    assert_eq!(idle.server.exit_code(Duration::from_secs(5)).await, 0);
    // ...and after a session.
    let mut used = StdioServer::start(&upstream, &[]).await;
    let client = used.connect(Generation::Stateless).await;
    client.list_all_tools().await.unwrap();
    drop(client);
    assert_eq!(used.server.exit_code(Duration::from_secs(5)).await, 0);
    assert_eq!(used.server.logs.events("stdin_closed").len(), 1);
}
