//! Answers leave at once. A session's answer is a short event stream written in several small
//! pieces; unless the server disables Nagle's algorithm, the last piece waits for the client's
//! delayed ACK on a kept-alive connection, some 40 ms per call.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{FakeUpstream, HttpServer};

#[tokio::test]
async fn streamed_answers_are_not_held_back_on_a_kept_alive_connection() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    let http = reqwest::Client::new(); // one pooled, kept-alive connection
    let post = |session: Option<&str>, body: serde_json::Value| {
        let mut request = http
            .post(server.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let init = json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "latency", "version": "1" }
    }});
    let response = post(None, init).await.unwrap();
    let session = response.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    response.bytes().await.unwrap();
    let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
    post(Some(&session), initialized).await.unwrap().bytes().await.unwrap();

    let mut times = Vec::new();
    for id in 1..=15 {
        let call = json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "convert_temperature",
            "arguments": { "temperature": { "value": 20, "unit": "celsius" }, "to": "kelvin" }
        }});
        let began = Instant::now();
        let body = post(Some(&session), call).await.unwrap().bytes().await.unwrap(); // to the stream's end
        times.push(began.elapsed());
        assert!(String::from_utf8_lossy(&body).contains("293.15"), "{body:?}");
    }
    times.sort();
    let median = times[times.len() / 2];
    assert!(
        median < Duration::from_millis(25),
        "median call took {median:?}: {times:?}"
    );
}
