//! The upstream client, seen through the test-only `fetch_fixture` tool over the MCP protocol
//! (so these tests hold whatever tools a project has), against fake upstreams on loopback that count requests: retries and when they stop, Retry-After, time
//! limits, cancellation (client cancel, disconnect, drain), and the SSRF guard. Every claim
//! is checked on the hit count too.

mod support;

use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Value, json};
use support::{
    Client, FakeUpstream, Generation, HttpServer, StdioServer, args, text,
    upstream::{DATA_BODY, FETCH, Reply},
};

const DATA: &str = "/data";

/// Short waits between attempts keep the suite fast; each test sets what it is about.
const FAST: (&str, &str) = ("MCP_UPSTREAM_BACKOFF", "20");

/// Fetches the fake's `/data` with a query string, which must never be logged.
async fn fetch(client: &Client, upstream: &FakeUpstream) -> CallToolResult {
    support::upstream::fetch(client, &format!("{}?secret=s3cr3t", upstream.data_url())).await
}

/// The attempt log lines for one upstream path, in order.
fn attempts(logs: &support::Logs, path: &str) -> Vec<Value> {
    logs.events("upstream_attempt")
        .into_iter()
        .filter(|l| l["path"] == path)
        .collect()
}

/// Asserts the call succeeded with the fake's answer.
fn assert_fetched(result: &CallToolResult) {
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(text(result), DATA_BODY);
}

#[tokio::test]
async fn transient_failures_are_retried_until_the_call_succeeds() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[FAST, ("MCP_UPSTREAM_ATTEMPTS", "3")]).await;
    let client = server.connect(Generation::Stateless).await;

    upstream.script(DATA, [Reply::status(503), Reply::status(503)]);
    let result = fetch(&client, &upstream).await;
    assert_fetched(&result);
    assert_eq!(upstream.data_hits(), 3);

    // One log line per attempt: host, method, status, attempt number, the wait before the
    // next; and never the query string.
    let lines = attempts(&server.server.logs, DATA);
    let summary: Vec<_> = lines
        .iter()
        .map(|l| (l["attempt"].clone(), l["status"].clone()))
        .collect();
    assert_eq!(
        summary,
        [(json!(1), json!(503)), (json!(2), json!(503)), (json!(3), json!(200))],
        "{lines:#?}"
    );
    for line in &lines {
        assert_eq!(line["upstream"], "127.0.0.1");
        assert_eq!(line["method"], "GET");
    }
    assert!(lines[0]["retry_in_ms"].is_u64() && lines[1]["retry_in_ms"].is_u64());
    assert!(lines[2].get("retry_in_ms").is_none());
    let stderr = server.server.logs.lines().join("\n");
    for secret_ish in ["secret=", "s3cr3t"] {
        assert!(!stderr.contains(secret_ish), "query string logged:\n{stderr}");
    }

    // 502, 504 and 429 are transient too.
    upstream.script(DATA, [Reply::status(502), Reply::status(504), Reply::status(429)]);
    let server = HttpServer::start(&upstream, &[FAST, ("MCP_UPSTREAM_ATTEMPTS", "4")]).await;
    let client = server.connect(Generation::Stateless).await;
    let before = upstream.data_hits();
    assert_fetched(&fetch(&client, &upstream).await);
    assert_eq!(upstream.data_hits(), before + 4);
}

#[tokio::test]
async fn retry_after_is_honoured_in_seconds_and_as_a_date() {
    let upstream = FakeUpstream::start().await;
    let mut server = StdioServer::start(&upstream, &[FAST]).await;
    let client = server.connect(Generation::Handshake20251125).await;

    upstream.script(DATA, [Reply::status(429).retry_after("1")]);
    let started = Instant::now();
    let result = fetch(&client, &upstream).await;
    let took = started.elapsed();
    assert_fetched(&result);
    assert_eq!(upstream.data_hits(), 2);
    assert!(took >= Duration::from_secs(1), "did not wait: {took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert_eq!(attempts(&server.server.logs, DATA)[0]["retry_in_ms"], 1000);

    // An HTTP-date two seconds ahead (whole seconds, so the wait is between 1 and 2 s).
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    upstream.script(DATA, [Reply::status(503).retry_after(at)]);
    let started = Instant::now();
    assert_fetched(&fetch(&client, &upstream).await);
    let took = started.elapsed();
    assert_eq!(upstream.data_hits(), 4);
    assert!(took >= Duration::from_millis(900), "did not wait: {took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");

    // A wait longer than the call's time limit is not taken: the model is told when to retry.
    upstream.script(DATA, [Reply::status(503).retry_after("120")]);
    let started = Instant::now();
    let result = fetch(&client, &upstream).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("asked to wait 120 s"), "{}", text(&result));
    assert_eq!(upstream.data_hits(), 5);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[FAST, ("MCP_UPSTREAM_ATTEMPTS", "5")]).await;
    let client = server.connect(Generation::Handshake20250618).await;

    for (status, words) in [(400, "400 Bad Request"), (404, "404 Not Found")] {
        let before = upstream.data_hits();
        upstream.script(DATA, [Reply::status(status)]);
        let result = fetch(&client, &upstream).await;
        assert_eq!(result.is_error, Some(true));
        let message = text(&result);
        assert!(message.contains(words), "{message}");
        assert!(message.contains("1 attempt in"), "{message}");
        assert!(message.contains("not retried"), "{message}");
        assert_eq!(upstream.data_hits(), before + 1, "{status} was retried");
    }
    // And the server keeps serving.
    assert_fetched(&fetch(&client, &upstream).await);
}

#[tokio::test]
async fn a_failing_upstream_gives_up_at_the_attempt_limit_or_the_time_limit() {
    let upstream = FakeUpstream::start().await;
    upstream.always(DATA, Reply::status(503));

    // The attempt limit.
    let server = HttpServer::start(&upstream, &[FAST, ("MCP_UPSTREAM_ATTEMPTS", "3")]).await;
    let client = server.connect(Generation::Stateless).await;
    let result = fetch(&client, &upstream).await;
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(message.contains("503 Service Unavailable"), "{message}");
    assert!(message.contains("3 attempts in"), "{message}");
    assert!(message.contains("limit of 3 attempts"), "{message}");
    assert_eq!(upstream.data_hits(), 3);

    // The time limit: many attempts allowed, but the call ends within its 2 s.
    let server = HttpServer::start(
        &upstream,
        &[
            ("MCP_UPSTREAM_BACKOFF", "400"),
            ("MCP_UPSTREAM_ATTEMPTS", "10"),
            ("MCP_UPSTREAM_DEADLINE", "2"),
        ],
    )
    .await;
    let client = server.connect(Generation::Stateless).await;
    let before = upstream.data_hits();
    let started = Instant::now();
    let result = fetch(&client, &upstream).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(message.contains("2 s time limit"), "{message}");
    // The message names the attempts made, and they are the ones the upstream saw.
    let made: usize = message
        .split(" attempts in")
        .next()
        .and_then(|head| head.rsplit(['(', ' ']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no attempt count in: {message}"));
    assert!((2..10).contains(&made), "{message}");
    assert_eq!(upstream.data_hits(), before + made);
}

#[tokio::test]
async fn a_hung_upstream_is_cut_off_by_the_attempt_timeout() {
    let upstream = FakeUpstream::start().await;
    upstream.always(DATA, Reply::hang());
    let mut server = StdioServer::start(
        &upstream,
        &[FAST, ("MCP_UPSTREAM_TIMEOUT", "1"), ("MCP_UPSTREAM_ATTEMPTS", "2")],
    )
    .await;
    let client = server.connect(Generation::Stateless).await;
    let started = Instant::now();
    let result = fetch(&client, &upstream).await;
    let took = started.elapsed();
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(message.contains("timed out"), "{message}");
    assert!(message.contains("2 attempts"), "{message}");
    assert_eq!(upstream.data_hits(), 2);
    assert!(took >= Duration::from_secs(2), "two 1 s attempts took {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let lines = attempts(&server.server.logs, DATA);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["error"] == "timeout"), "{lines:#?}");
    client.cancel().await.unwrap();
}

/// Starts a call against an upstream that always fails, with room for many slow
/// retries, and returns it once the upstream has seen two attempts.
async fn endless_retries(
    client: &Client,
    upstream: &FakeUpstream,
) -> tokio::task::JoinHandle<Result<CallToolResult, rmcp::ServiceError>> {
    upstream.always(DATA, Reply::status(503));
    let before = upstream.data_hits();
    let peer = client.peer().clone();
    let arguments = args(json!({ "url": upstream.data_url() }));
    let call = tokio::spawn(async move {
        peer.call_tool(CallToolRequestParams::new(FETCH).with_arguments(arguments))
            .await
    });
    upstream.wait_for_data_hits(before + 2).await;
    call
}

const ENDLESS: [(&str, &str); 3] = [
    ("MCP_UPSTREAM_BACKOFF", "150"),
    ("MCP_UPSTREAM_ATTEMPTS", "10"),
    ("MCP_UPSTREAM_DEADLINE", "60"),
];

/// No attempt is made after the request's own log line, and none in the next second.
async fn assert_retries_stopped(upstream: &FakeUpstream, logs: &support::Logs, outcome: &str) {
    let hits = upstream.data_hits();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(upstream.data_hits(), hits, "retries went on");
    let lines = logs.json();
    let ended = lines
        .iter()
        .position(|l| l["event"] == "request" && l["outcome"] == outcome)
        .unwrap_or_else(|| panic!("no {outcome} request line in {lines:#?}"));
    assert!(
        !lines[ended..].iter().any(|l| l["event"] == "upstream_attempt"),
        "an attempt was logged after the request ended: {lines:#?}"
    );
}

#[tokio::test]
async fn a_client_cancel_stops_retries() {
    let upstream = FakeUpstream::start().await;

    // stdio: dropping the call makes the rmcp client send notifications/cancelled.
    let mut stdio = StdioServer::start(&upstream, &ENDLESS).await;
    let client = stdio.connect(Generation::Handshake20251125).await;
    let call = endless_retries(&client, &upstream).await;
    call.abort();
    stdio.server.logs.wait_for_match(|l| l["outcome"] == "cancelled").await;
    assert_retries_stopped(&upstream, &stdio.server.logs, "cancelled").await;
    let converted = client
        .call_tool(CallToolRequestParams::new("convert_temperature").with_arguments(args(
            json!({ "temperature": { "value": 0, "unit": "celsius" }, "to": "kelvin" }),
        )))
        .await
        .expect("still serving");
    assert_eq!(converted.is_error, Some(false));
    client.cancel().await.unwrap();

    // HTTP, with a session and stateless.
    for generation in [Generation::Handshake20251125, Generation::Stateless] {
        let http = HttpServer::start(&upstream, &ENDLESS).await;
        let client = http.connect(generation).await;
        let call = endless_retries(&client, &upstream).await;
        call.abort();
        http.server.logs.wait_for_match(|l| l["outcome"] == "cancelled").await;
        assert_retries_stopped(&upstream, &http.server.logs, "cancelled").await;
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn an_http_disconnect_stops_retries() {
    let upstream = FakeUpstream::start().await;
    upstream.always(DATA, Reply::status(503));
    let http = HttpServer::start(&upstream, &ENDLESS).await;
    // A stateless (2026-07-28) call by hand, so the connection can be dropped mid-call.
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "1" },
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": { "name": FETCH, "arguments": { "url": upstream.data_url() }, "_meta": meta }
    });
    let request = reqwest::Client::new()
        .post(http.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", FETCH)
        .body(body.to_string())
        .send();
    let call = tokio::spawn(async move { request.await?.text().await });
    upstream.wait_for_data_hits(2).await;
    call.abort(); // closes the connection
    http.server.logs.wait_for_match(|l| l["outcome"] == "cancelled").await;
    assert_retries_stopped(&upstream, &http.server.logs, "cancelled").await;
}

#[tokio::test]
async fn a_sigterm_drain_stops_retries() {
    let upstream = FakeUpstream::start().await;
    let mut envs = ENDLESS.to_vec();
    envs.push(("MCP_DRAIN_TIMEOUT", "1"));
    let mut server = HttpServer::start(&upstream, &envs).await;
    let client = server.connect(Generation::Stateless).await;
    let call = endless_retries(&client, &upstream).await;

    let signalled = Instant::now();
    server.server.terminate();
    let error = call.await.unwrap().expect_err("the drain cancels the call");
    assert!(format!("{error:?}").contains("drain period"), "{error:?}");
    let hits = upstream.data_hits();
    assert_eq!(server.server.exit_code(Duration::from_secs(10)).await, 0);
    assert!(
        signalled.elapsed() < Duration::from_secs(8),
        "exit took {:?}",
        signalled.elapsed()
    );
    assert_retries_stopped(&upstream, &server.server.logs, "cancelled_by_shutdown").await;
    assert_eq!(upstream.data_hits(), hits);
}

#[tokio::test]
async fn calls_off_the_allow_list_or_to_private_addresses_are_refused_before_any_connection() {
    let upstream = FakeUpstream::start().await;
    let data = upstream.data_url();
    let by_name = format!("http://localhost:{}/data", upstream.port());
    // IPv6 spellings that reach an IPv4 address: IPv4-compatible (::/96), 6to4 (2002::/16,
    // judged by the IPv4 address inside) and Teredo (2001::/32).
    let compatible = format!("http://[::127.0.0.1]:{}/data", upstream.port());
    let six_to_four = format!("http://[2002:7f00:1::]:{}/data", upstream.port());
    let teredo = format!("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]:{}/data", upstream.port());
    // (URL, settings, words the refusal must contain)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [&'a str]);
    let cases: [Case; 6] = [
        // A host that is not on the allow-list.
        (
            &data,
            vec![("MCP_UPSTREAM_ALLOW_HOSTS", "api.example.com")],
            &[
                "127.0.0.1",
                "not on the upstream allow-list",
                "MCP_UPSTREAM_ALLOW_HOSTS",
            ],
        ),
        // An allowed host at a loopback address, with private networks not allowed.
        (
            &data,
            vec![("MCP_UPSTREAM_ALLOW_PRIVATE", "")],
            &["127.0.0.1 is a loopback address", "MCP_UPSTREAM_ALLOW_PRIVATE"],
        ),
        // A name that resolves to loopback: refused after DNS, by the client's resolver.
        (
            &by_name,
            vec![
                ("MCP_UPSTREAM_ALLOW_PRIVATE", ""),
                ("MCP_UPSTREAM_ALLOW_HOSTS", "localhost"),
            ],
            &["localhost resolves to non-public addresses only", "loopback"],
        ),
        (
            &compatible,
            vec![("MCP_UPSTREAM_ALLOW_HOSTS", "::7f00:1")],
            &["::7f00:1 is a deprecated IPv4-compatible address"],
        ),
        (
            &six_to_four,
            vec![("MCP_UPSTREAM_ALLOW_HOSTS", "2002:7f00:1::")],
            &["2002:7f00:1:: is a loopback address"],
        ),
        (
            &teredo,
            vec![("MCP_UPSTREAM_ALLOW_HOSTS", "2001:0:4136:e378:8000:63bf:3fff:fdd2")],
            &["is a Teredo address"],
        ),
    ];
    for (url, settings, words) in cases {
        let server = HttpServer::start(&upstream, &settings).await;
        let client = server.connect(Generation::Stateless).await;
        let result = support::upstream::fetch(&client, url).await;
        assert_eq!(result.is_error, Some(true), "{settings:?}");
        let message = text(&result);
        assert!(message.contains("refused by the server's outbound policy"), "{message}");
        for word in words {
            assert!(message.contains(word), "{settings:?}: '{word}' missing from: {message}");
        }
        assert_eq!(upstream.total_hits(), 0, "{settings:?}: a request got through");
        // Still serving.
        let tools = client.list_all_tools().await.expect("tools/list");
        assert!(!tools.is_empty());
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn redirects_are_checked_like_the_first_url() {
    let upstream = FakeUpstream::start().await;
    let elsewhere = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[FAST]).await;
    let client = server.connect(Generation::Stateless).await;

    // To a host off the allow-list (the same loopback address, by another name).
    upstream.script(
        DATA,
        [Reply::redirect(format!("http://localhost:{}/data", elsewhere.port()))],
    );
    let result = fetch(&client, &upstream).await;
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(message.contains("it redirected, and host localhost"), "{message}");
    assert!(
        message.contains("host localhost is not on the upstream allow-list"),
        "{message}"
    );
    assert_eq!(upstream.data_hits(), 1, "the refused redirect is not retried");
    assert_eq!(elsewhere.total_hits(), 0);

    // An allowed redirect (another port on the same allowed host) is followed.
    upstream.script(DATA, [Reply::redirect(elsewhere.data_url())]);
    assert_fetched(&fetch(&client, &upstream).await);
    assert_eq!(elsewhere.data_hits(), 1);
}

/// Calls `fetch_fixture` on the fake's `/data` `n` times at once, over one client.
async fn fetch_at_once(client: &Client, upstream: &FakeUpstream, n: usize) -> Vec<CallToolResult> {
    let calls: Vec<_> = (0..n)
        .map(|_| {
            let peer = client.peer().clone();
            let arguments = args(json!({ "url": upstream.data_url() }));
            tokio::spawn(async move {
                peer.call_tool(CallToolRequestParams::new(FETCH).with_arguments(arguments))
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap().expect("an upstream failure is a tool result"));
    }
    results
}

#[tokio::test]
async fn requests_in_flight_are_capped_per_host_and_in_all_and_the_rest_wait_their_turn() {
    for cap in ["MCP_UPSTREAM_MAX_CONNECTIONS_PER_HOST", "MCP_UPSTREAM_MAX_CONNECTIONS"] {
        let upstream = FakeUpstream::start().await;
        upstream.set_delay(Duration::from_millis(400));
        let server = HttpServer::start(&upstream, &[FAST, (cap, "2")]).await;
        let client = server.connect(Generation::Stateless).await;
        let started = Instant::now();
        let results = fetch_at_once(&client, &upstream, 6).await;
        let took = started.elapsed();
        results.iter().for_each(assert_fetched);
        assert_eq!(upstream.peak_in_flight(), 2, "{cap}: at most 2 requests at once");
        assert_eq!(upstream.data_hits(), 6, "{cap}: each call sent once");
        assert!(
            took >= Duration::from_millis(1200),
            "{cap}: 6 calls 2 at a time took {took:?}"
        );
    }
}

#[tokio::test]
async fn a_call_that_gets_no_connection_in_time_fails_as_busy_having_sent_nothing() {
    let upstream = FakeUpstream::start().await;
    upstream.always(DATA, Reply::hang());
    let server = HttpServer::start(
        &upstream,
        &[
            ("MCP_UPSTREAM_MAX_CONNECTIONS_PER_HOST", "2"),
            // Waiting for a connection counts as connecting: at most 5 s of the 6.
            ("MCP_UPSTREAM_TIMEOUT", "6"),
            ("MCP_UPSTREAM_ATTEMPTS", "1"),
        ],
    )
    .await;
    let client = server.connect(Generation::Stateless).await;
    let started = Instant::now();
    let results = fetch_at_once(&client, &upstream, 4).await;
    let took = started.elapsed();
    let messages: Vec<_> = results.iter().map(text).collect();
    assert!(results.iter().all(|r| r.is_error == Some(true)), "{messages:#?}");
    let busy: Vec<_> = messages.iter().filter(|m| m.contains("the upstream is busy")).collect();
    let timed_out = messages.iter().filter(|m| m.contains("timed out")).count();
    assert_eq!((busy.len(), timed_out), (2, 2), "{messages:#?}");
    for message in busy {
        assert!(
            message.contains("the 2 requests this server sends at once to 127.0.0.1"),
            "{message}"
        );
        assert!(message.contains("in flight for the 5.0 s"), "{message}");
        assert!(message.contains("nothing was sent"), "{message}");
        assert!(message.contains("try again later"), "{message}");
    }
    assert_eq!(upstream.data_hits(), 2, "the waiting calls sent nothing");
    assert!(
        took < Duration::from_secs(9),
        "each call ends at its 6 s limit: {took:?}"
    );
    let lines = attempts(&server.server.logs, DATA);
    assert_eq!(lines.iter().filter(|l| l["error"] == "busy").count(), 2, "{lines:#?}");
}
