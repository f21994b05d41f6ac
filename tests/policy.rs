//! The guard chain over the real protocol: per-tool rate limits keyed by principal × tool,
//! refusals the model can act on (every offending field and rule, named at once, in schemas
//! of standard formats only), per-tool timeouts, the HTTP per-caller limit, and one log line
//! per call carrying the decision. Each tool's own rules are tested in its own file.

mod support;

use std::time::{Duration, Instant};

use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use support::{
    Client, FakeUpstream, Generation, HttpServer, StdioServer, text,
    tools::{call, every_tool, refusal, schema},
    upstream::FETCH,
};

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";
const ADMIN: &str = "admin-token-0123456789";
const TOKENS: &str = "alice-token-0123456789 alice; bob-token-0123456789ab bob; admin-token-0123456789 ops mcp:admin";

async fn convert(client: &Client) -> CallToolResult {
    call(
        client,
        "convert_temperature",
        json!({ "temperature": { "value": 0, "unit": "celsius" }, "to": "kelvin" }),
    )
    .await
}

fn retry_after_ms(result: &CallToolResult) -> u64 {
    let meta = result.meta.as_ref().expect("a rate-limited result carries _meta");
    meta.0["retryAfterMs"].as_u64().expect("retryAfterMs is a number")
}

#[tokio::test]
async fn a_tool_burst_is_enforced_and_the_retry_hint_is_right() {
    let upstream = FakeUpstream::start().await;
    // The benchmark build's guard switch: a production build ignores the variable.
    let quota_and_switch = [
        ("MCP_RATE_LIMITS", "convert_temperature=2/s:2"),
        ("MCP_BENCH_GUARD_OFF", "true"),
    ];
    let mut server = StdioServer::start(&upstream, &quota_and_switch).await;
    let client = server.connect(Generation::Stateless).await;
    for _ in 0..2 {
        assert_eq!(convert(&client).await.is_error, Some(false));
    }
    let limited = convert(&client).await;
    assert_eq!(limited.is_error, Some(true));
    let message = text(&limited);
    assert!(
        message.contains("'convert_temperature' is rate limited") && message.contains("retry after"),
        "{message}"
    );
    let wait = retry_after_ms(&limited);
    assert!((1..=500).contains(&wait), "retry hint {wait} ms for a 2/s quota");
    assert!(
        message.contains(&format!("{wait} ms")),
        "the text and _meta agree: {message}"
    );

    tokio::time::sleep(Duration::from_millis(wait)).await;
    assert_eq!(
        convert(&client).await.is_error,
        Some(false),
        "after the hinted wait the call passes"
    );

    client.cancel().await.unwrap();
    let calls = server.server.logs.events("request");
    let decisions: Vec<_> = calls
        .iter()
        .filter(|l| l["name"] == "convert_temperature")
        .map(|l| l["decision"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(decisions, ["allowed", "allowed", "rate_limited", "allowed"]);
}

#[tokio::test]
async fn buckets_are_per_principal_and_per_tool_and_quotas_can_be_overridden() {
    let upstream = FakeUpstream::start().await;
    let limited = [
        ("MCP_AUTH", "static"),
        ("MCP_AUTH_TOKENS", TOKENS),
        ("MCP_RATE_LIMITS", "convert_temperature=1/m:1,fetch_fixture=1/m:1"),
    ];
    let server = HttpServer::start(&upstream, &limited).await;
    let alice = server.connect_as(Generation::Stateless, ALICE).await;
    let bob = server.connect_as(Generation::Handshake20251125, BOB).await;

    assert_eq!(convert(&alice).await.is_error, Some(false));
    let second = convert(&alice).await;
    assert_eq!(second.is_error, Some(true), "alice's bucket of 1 is empty");
    assert!(retry_after_ms(&second) > 50_000, "a 1/m quota hints most of a minute");
    assert_eq!(convert(&bob).await.is_error, Some(false), "bob has his own bucket");
    let fetched = call(&alice, FETCH, json!({ "url": upstream.data_url() })).await;
    assert_eq!(
        fetched.is_error,
        Some(false),
        "another tool has its own bucket: {}",
        text(&fetched)
    );

    // The declared quota (bursts of 20) is larger than the override: without it, no limit shows.
    let declared = HttpServer::start(&upstream, &limited[..2]).await;
    let alice = declared.connect_as(Generation::Stateless, ALICE).await;
    for _ in 0..5 {
        assert_eq!(convert(&alice).await.is_error, Some(false));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_rate_limit_buckets_are_evicted_so_memory_stays_bounded() {
    const CALLERS: usize = 2000;
    let upstream = FakeUpstream::start().await;
    let tokens: Vec<String> = (0..CALLERS).map(|i| format!("caller-token-{i:08}")).collect();
    let entries: String = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{t} caller{i};"))
        .collect::<String>()
        + TOKENS;
    let server = HttpServer::start(
        &upstream,
        &[
            ("MCP_AUTH", "static"),
            ("MCP_AUTH_TOKENS", &entries),
            // A bucket stays in memory until it refills (5 s here); the sweep runs every second.
            ("MCP_RATE_LIMITS", "convert_temperature=12/m:1"),
            ("MCP_RATE_LIMIT_EVICTION", "1"),
        ],
    )
    .await;
    let server = std::sync::Arc::new(server);
    let mut callers = tokio::task::JoinSet::new();
    for chunk in tokens.chunks(CALLERS / 16) {
        let (server, chunk) = (server.clone(), chunk.to_vec());
        callers.spawn(async move {
            let http = reqwest::Client::new();
            let arguments = json!({ "name": "convert_temperature", "arguments": { "temperature": { "value": 1, "unit": "kelvin" }, "to": "celsius" } });
            for token in &chunk {
                let response = server.post(&http, Some(token), "tools/call", arguments.clone()).await;
                assert_eq!(response.status(), 200);
                assert_eq!(response.json::<Value>().await.unwrap()["result"]["isError"], false, "each caller has a bucket of its own");
            }
        });
    }
    callers.join_all().await;

    let admin = server.connect_as(Generation::Stateless, ADMIN).await;
    let buckets = async || {
        let result = call(&admin, "server_status", json!({})).await;
        let message = text(&result);
        result
            .structured_content
            .unwrap_or_else(|| panic!("status is structured: {message}"))["rate_limit_buckets"]
            .as_u64()
            .unwrap()
    };
    let live = buckets().await;
    assert!(live >= CALLERS as u64 / 2, "one bucket per recent caller: {live}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let live = buckets().await;
        eprintln!("live buckets: {live}");
        if live <= 2 {
            break; // only the admin's own server_status bucket may remain
        }
        assert!(Instant::now() < deadline, "idle buckets were not evicted: {live} live");
    }
}

#[tokio::test]
async fn every_refused_argument_names_its_field_and_rule_all_at_once() {
    let upstream = FakeUpstream::start().await;
    let quotas = [
        "convert_temperature=100/s:100",
        // weather-example:begin
        "get_forecast=100/s:100",
        // weather-example:end
    ]
    .join(",");
    let server = HttpServer::start(&upstream, &[("MCP_RATE_LIMITS", &quotas)]).await;
    let client = server.connect(Generation::Stateless).await;
    let only = |tool: &str, violation: &str| format!("invalid arguments for '{tool}': {violation}");

    // weather-example:begin
    // `days` is a u8 ruled to 1..=16: out of either range it is named by field and rule, as are
    // wrong types, unknown fields and missing ones.
    let cases = [
        (
            json!({ "city": "Berlin", "days": 1016 }),
            "`days` must be at most 16 (maximum)",
        ),
        (
            json!({ "city": "Berlin", "days": -1 }),
            "`days` must be at least 1 (minimum)",
        ),
        (
            json!({ "city": "Berlin", "days": 2.5 }),
            "`days` must be an integer (type)",
        ),
        (
            json!({ "city": "Berlin", "days": "three" }),
            "`days` must be an integer (type)",
        ),
        (json!({ "city": ["Berlin"] }), "`city` must be a string (type)"),
        (
            json!({ "city": "Berlin", "hours": 3 }),
            "`hours` is not an allowed field (additionalProperties)",
        ),
        (json!({ "days": 3 }), "`city` is required (required)"),
        // The schema's rule and the type's own rule for one field: named once.
        (
            json!({ "city": "Berlin", "days": 17 }),
            "`days` must be at most 16 (maximum)",
        ),
    ];
    for (arguments, violation) in cases {
        let message = refusal(&client, "get_forecast", arguments).await;
        assert_eq!(message, only("get_forecast", violation));
    }
    // weather-example:end

    // Nested fields are named by their path.
    let nested = [
        (
            json!({ "temperature": { "value": 1, "unit": "rankine" }, "to": "kelvin" }),
            "`temperature.unit` must be one of celsius, fahrenheit, kelvin (enum)",
        ),
        (
            json!({ "temperature": { "value": "hot", "unit": "kelvin" }, "to": "kelvin" }),
            "`temperature.value` must be a number (type)",
        ),
        (
            json!({ "temperature": { "value": 1 }, "to": "kelvin" }),
            "`temperature.unit` is required (required)",
        ),
        (
            json!({ "temperature": { "value": 1, "unit": "kelvin", "note": "x" }, "to": "kelvin" }),
            "`temperature.note` is not an allowed field (additionalProperties)",
        ),
    ];
    for (arguments, violation) in nested {
        let message = refusal(&client, "convert_temperature", arguments).await;
        assert_eq!(message, only("convert_temperature", violation));
    }

    // Every offending field at once, sorted, each rule once.
    let message = refusal(
        &client,
        "convert_temperature",
        json!({ "temperature": { "value": 2_000_000, "unit": "rankine", "note": 1 }, "extra": true }),
    )
    .await;
    assert_eq!(
        message,
        only(
            "convert_temperature",
            "`extra` is not an allowed field (additionalProperties); \
             `temperature.note` is not an allowed field (additionalProperties); \
             `temperature.unit` must be one of celsius, fahrenheit, kelvin (enum); \
             `temperature.value` must be at most 1000000.0 (maximum); \
             `to` is required (required)"
        )
    );
    // weather-example:begin
    let message = refusal(
        &client,
        "get_forecast",
        json!({ "city": "Berlin1", "days": 0, "hours": 3 }),
    )
    .await;
    let violations: Vec<_> = message.split_once(": ").unwrap().1.split("; ").collect();
    assert_eq!(violations.len(), 3, "{message}");
    assert!(violations[0].starts_with("`city` must match the pattern ^[^0-9") && violations[0].ends_with("(pattern)"));
    assert_eq!(
        violations[1..],
        [
            "`days` must be at least 1 (minimum)",
            "`hours` is not an allowed field (additionalProperties)"
        ]
    );
    // weather-example:end
}

/// Every `format` in a schema, leaving out data (`default`, `enum`, ...), which may hold anything.
fn formats<'a>(schema: &'a Value, out: &mut Vec<&'a str>) {
    match schema {
        Value::Object(map) => {
            out.extend(map.get("format").and_then(Value::as_str));
            map.iter()
                .filter(|(keyword, _)| !["const", "default", "enum", "examples"].contains(&keyword.as_str()))
                .for_each(|(_, value)| formats(value, out));
        }
        Value::Array(items) => items.iter().for_each(|item| formats(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_tool_schema_uses_only_standard_formats() {
    const STANDARD: &[&str] = &[
        "date-time",
        "date",
        "time",
        "duration",
        "email",
        "idn-email",
        "hostname",
        "idn-hostname",
        "ipv4",
        "ipv6",
        "uri",
        "uri-reference",
        "iri",
        "iri-reference",
        "uuid",
        "uri-template",
        "json-pointer",
        "relative-json-pointer",
        "regex",
    ];
    let upstream = FakeUpstream::start().await;
    for tool in every_tool(&upstream).await {
        let input = schema(&tool, false);
        let output = tool.output_schema.is_some().then(|| schema(&tool, true));
        let mut found = Vec::new();
        formats(&input, &mut found);
        if let Some(output) = &output {
            formats(output, &mut found);
        }
        found.retain(|format| !STANDARD.contains(format));
        assert!(found.is_empty(), "{}: non-standard formats {found:?}", tool.name);
    }
}

#[tokio::test]
async fn a_tool_that_outlives_its_timeout_is_cancelled_and_the_server_keeps_serving() {
    let upstream = FakeUpstream::start().await;
    upstream.set_delay(Duration::from_secs(30));
    let server = HttpServer::start(&upstream, &[("MCP_TOOL_TIMEOUTS", "fetch_fixture=1")]).await;
    let client = server.connect(Generation::Stateless).await;
    let started = Instant::now();
    let result = call(&client, FETCH, json!({ "url": upstream.data_url() })).await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).contains("did not finish within its 1 s timeout"),
        "{}",
        text(&result)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(convert(&client).await.is_error, Some(false), "still serving");
    let line = server
        .server
        .logs
        .events("request")
        .into_iter()
        .find(|l| l["outcome"] == "timed_out")
        .expect("a timed_out line");
    assert_eq!(
        (line["decision"].as_str(), line["name"].as_str()),
        (Some("allowed"), Some(FETCH))
    );
}

#[tokio::test]
async fn the_http_per_caller_limit_answers_429_with_retry_after() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[("MCP_HTTP_RATE_LIMIT", "1/m:2")]).await;
    let http = reqwest::Client::new();
    for _ in 0..2 {
        assert_eq!(server.post(&http, None, "tools/list", json!({})).await.status(), 200);
    }
    let limited = server.post(&http, None, "tools/list", json!({})).await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.json::<Value>().await.unwrap()["error"], "rate_limited");
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200,
        "health stays open"
    );
}

/// A server on each transport with the fault fixtures (`MCP_FIXTURE_FAULTS`).
struct Faulty {
    http: HttpServer,
    stdio: StdioServer,
}

impl Faulty {
    async fn start(upstream: &FakeUpstream) -> Self {
        let env = [("MCP_FIXTURE_FAULTS", "1")];
        Self {
            http: HttpServer::start(upstream, &env).await,
            stdio: StdioServer::start(upstream, &env).await,
        }
    }

    /// A client of each server, with the transport's name and the server's logs.
    async fn clients(&mut self) -> [(&'static str, Client, &support::Logs); 2] {
        let http = self.http.connect(Generation::Stateless).await;
        let stdio = self.stdio.connect(Generation::Handshake20251125).await;
        [
            ("http", http, &self.http.server.logs),
            ("stdio", stdio, &self.stdio.server.logs),
        ]
    }
}

/// A tool whose input schema does not compile (a fault `make test` catches before a release)
/// is refused, saying so, and the fault is logged once; the server goes on serving its other
/// tools, on both transports.
#[tokio::test]
async fn a_tool_whose_schema_does_not_compile_is_refused_and_the_others_still_serve() {
    let upstream = FakeUpstream::start().await;
    let mut servers = Faulty::start(&upstream).await;
    for (transport, client, logs) in servers.clients().await {
        for _ in 0..2 {
            let result = call(&client, "broken_schema_fixture", json!({ "text": "hi" })).await;
            assert_eq!(result.is_error, Some(true), "{transport}: {result:?}");
            let message = text(&result);
            assert!(
                message.contains("cannot be checked: the tool's input schema does not compile"),
                "{transport}: {message}"
            );
        }
        logs.wait_for("schema_invalid").await;
        assert_eq!(logs.events("schema_invalid").len(), 1, "{transport}: logged once");
        let converted = convert(&client).await;
        assert_eq!(converted.is_error, Some(false), "{transport}: {converted:?}");
        client.cancel().await.unwrap();
    }
}

/// A tool that panics (a bug) answers its call with an internal error, at once; the server
/// logs it, the panic as a JSON line of its own, and goes on serving, on both transports.
#[tokio::test]
async fn a_tool_that_panics_answers_with_an_internal_error_and_the_server_goes_on() {
    let upstream = FakeUpstream::start().await;
    let mut servers = Faulty::start(&upstream).await;
    for (transport, client, logs) in servers.clients().await {
        let called = client.call_tool(rmcp::model::CallToolRequestParams::new("panic_fixture"));
        let answer = tokio::time::timeout(Duration::from_secs(10), called)
            .await
            .unwrap_or_else(|_| panic!("{transport}: the call was never answered"));
        match answer {
            Err(rmcp::ServiceError::McpError(error)) => {
                assert_eq!(error.code, rmcp::model::ErrorCode::INTERNAL_ERROR, "{transport}");
                assert!(
                    error.message.contains("a fault in the server"),
                    "{transport}: {error:?}"
                );
            }
            other => panic!("{transport}: expected an internal error, got {other:?}"),
        }
        let line = logs
            .wait_for_match(|l| l["event"] == "request" && l["name"] == "panic_fixture")
            .await;
        assert_eq!(line["outcome"], "panicked", "{transport}: {line}");
        // The panic itself is one log line like the others, not the standard library's text.
        let panic = logs.wait_for("panic").await;
        assert_eq!(panic["level"], "ERROR", "{transport}: {panic}");
        assert!(panic["thread"].is_string(), "{transport}: {panic}");
        assert!(
            panic["message"]
                .as_str()
                .is_some_and(|m| m.contains("panic_fixture panics")),
            "{transport}: {panic}"
        );
        assert!(
            panic["location"].as_str().is_some_and(|l| l.contains("fixture.rs")),
            "{transport}: {panic}"
        );
        logs.json(); // every stderr line is a JSON object
        let converted = convert(&client).await;
        assert_eq!(converted.is_error, Some(false), "{transport}: {converted:?}");
        client.cancel().await.unwrap();
    }
}
