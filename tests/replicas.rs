//! Replicas sharing state on a real Redis (`MCP_REDIS_URL`): quotas counted across replicas,
//! tasks readable and cancellable on any replica and kept across a restart, and Redis trouble
//! handled as configured (fail open or closed), with recovery when it comes back.

mod support;

use std::time::{Duration, Instant};

use rmcp::model::{CancelTaskParams, GetTaskParams, TaskStatus};
use serde_json::{Value, json};
use support::{FakeUpstream, Generation, HttpServer, redis::RedisServer, tasks, text, upstream::DATA_BODY};

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";

fn env(redis: &RedisServer, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("MCP_AUTH", "static".to_owned()),
        ("MCP_AUTH_TOKENS", format!("{ALICE} alice mcp:admin; {BOB} bob")),
        ("MCP_REDIS_URL", redis.url()),
        // A replica's first command also connects; with every test of this file running at once
        // (each with its Redis and replicas), that can take longer than the 250 ms default.
        ("MCP_REDIS_TIMEOUT", "2000".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

async fn replica(upstream: &FakeUpstream, env: &[(&'static str, String)]) -> HttpServer {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    HttpServer::start(upstream, &env).await
}

async fn fetch(server: &HttpServer, upstream: &FakeUpstream, token: &str) -> (bool, String) {
    let client = server.connect_as(Generation::Stateless, token).await;
    let result = support::tools::call(&client, "fetch_fixture", json!({ "url": upstream.data_url() })).await;
    client.cancel().await.unwrap();
    (result.is_error != Some(true), text(&result))
}

async fn readyz(server: &HttpServer) -> (u16, Value) {
    let response = reqwest::get(server.url("/readyz")).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_quota_holds_across_replicas_and_its_buckets_expire() {
    // A Redis that requires a password, given in the URL; the password is never logged.
    let redis = RedisServer::start_with(Some("s3cret-redis-pass")).await;
    let upstream = FakeUpstream::start().await;
    let env = env(&redis, &[("MCP_RATE_LIMITS", "fetch_fixture=5/m")]);
    // B reads the URL from a file, as from a mounted secret.
    let url_file = std::env::temp_dir().join(format!("redis-url-{}", redis.port));
    std::fs::write(&url_file, format!("{}\n", redis.url())).unwrap();
    let mut from_file: Vec<_> = env.iter().filter(|(k, _)| *k != "MCP_REDIS_URL").cloned().collect();
    from_file.push(("MCP_REDIS_URL_FILE", url_file.display().to_string()));
    let (a, b) = (replica(&upstream, &env).await, replica(&upstream, &from_file).await);
    std::fs::remove_file(&url_file).unwrap();
    for (server, n) in [(&a, 1), (&b, 2), (&a, 3), (&b, 4), (&a, 5)] {
        assert!(fetch(server, &upstream, ALICE).await.0, "call {n} is within the quota");
    }
    for server in [&a, &b] {
        let (ok, message) = fetch(server, &upstream, ALICE).await;
        assert!(!ok && message.contains("rate limited"), "{message}");
    }
    // Another caller has a bucket of its own.
    assert!(fetch(&b, &upstream, BOB).await.0);
    for server in [&a, &b] {
        let logged = server.server.logs.lines().join("\n");
        assert!(!logged.contains("s3cret-redis-pass"), "the Redis password was logged");
    }

    // Buckets are keys that expire once full again (here: 5 calls a minute, 60 s at most).
    assert_eq!(redis.assert_expiring("mcp:rl:*", 60_000), 2);
}

#[tokio::test]
async fn the_http_per_caller_limit_holds_across_replicas() {
    let redis = RedisServer::start().await;
    let upstream = FakeUpstream::start().await;
    let env = env(&redis, &[("MCP_HTTP_RATE_LIMIT", "4/m")]);
    let (a, b) = (replica(&upstream, &env).await, replica(&upstream, &env).await);
    let http = reqwest::Client::new();
    for (server, n) in [(&a, 1), (&b, 2), (&a, 3), (&b, 4)] {
        let answer = server.post(&http, Some(ALICE), "tools/list", json!({})).await;
        assert_eq!(answer.status(), 200, "request {n} is within the limit");
    }
    for server in [&a, &b] {
        let answer = server.post(&http, Some(ALICE), "tools/list", json!({})).await;
        assert_eq!(answer.status(), 429);
        assert!(answer.headers().contains_key("retry-after"));
    }
    assert_eq!(b.post(&http, Some(BOB), "tools/list", json!({})).await.status(), 200);
}

#[tokio::test]
async fn tasks_are_read_and_cancelled_on_any_replica_and_outlive_a_restart() {
    let redis = RedisServer::start().await;
    let upstream = FakeUpstream::start().await;
    let env = env(&redis, &[]);
    let mut a = replica(&upstream, &env).await;
    let b = replica(&upstream, &env).await;
    let on_a = tasks::connect_http_as(&a, Generation::Stateless, ALICE).await;
    let on_b = tasks::connect_http_as(&b, Generation::Stateless, ALICE).await;
    let bob_on_b = tasks::connect_http_as(&b, Generation::Stateless, BOB).await;

    // Started on A, finished, read on B.
    let done = tasks::start(
        &on_a,
        "fetch_fixture_many",
        json!({ "url": upstream.data_url(), "times": 2 }),
    )
    .await;
    let finished = tasks::finished(&on_b, &done.task_id, Duration::from_secs(10)).await;
    assert_eq!(finished.status(), TaskStatus::Completed);
    let unknown = bob_on_b.get_task(GetTaskParams::new(&done.task_id)).await.unwrap_err();
    assert!(unknown.to_string().contains("no task"), "{unknown}");

    // Running on A, cancelled on B: A stops it, and calls upstream no more.
    upstream.set_delay(Duration::from_millis(200));
    let running = tasks::start(
        &on_a,
        "fetch_fixture_many",
        json!({ "url": upstream.data_url(), "times": 40 }),
    )
    .await;
    upstream.wait_for_data_hits(upstream.data_hits() + 2).await;
    on_b.cancel_task(CancelTaskParams::new(&running.task_id)).await.unwrap();
    let cancelled = tasks::finished(&on_b, &running.task_id, Duration::from_secs(5)).await;
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    let hits = upstream.data_hits();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(upstream.data_hits(), hits, "no upstream call after the cancel");

    // A restarts (a rolling deploy): the finished task's result is still there.
    on_a.cancel().await.unwrap();
    a.server.terminate();
    assert_eq!(a.server.exit_code(Duration::from_secs(10)).await, 0);
    let a = replica(&upstream, &env).await;
    let on_a = tasks::connect_http_as(&a, Generation::Stateless, ALICE).await;
    let kept = tasks::get(&on_a, &done.task_id).await;
    assert_eq!(kept.status(), TaskStatus::Completed);
    let rmcp::model::TaskPayload::Completed { result } = &kept.payload else {
        unreachable!()
    };
    assert_eq!(result["content"][0]["text"], [DATA_BODY; 2].join("\n"));

    // Every task key expires with its task (the tool's timeout plus the result TTL).
    assert!(redis.assert_expiring("mcp:task*", 630_000) >= 3);
}

/// Redis stops answering: a replica failing open keeps serving with its own limits, one
/// failing closed refuses tool calls (retryably) and reports not ready; neither holds a request
/// past the command timeout; both recover when Redis is back, without a restart.
#[tokio::test]
async fn redis_trouble_is_handled_as_configured_and_recovered_from() {
    let mut redis = RedisServer::start().await;
    let upstream = FakeUpstream::start().await;
    // The default command timeout: what a replica waits for a Redis that went away.
    let open = replica(
        &upstream,
        &env(&redis, &[("MCP_REDIS_ON_FAILURE", "open"), ("MCP_REDIS_TIMEOUT", "")]),
    )
    .await;
    let closed = replica(
        &upstream,
        &env(&redis, &[("MCP_REDIS_ON_FAILURE", "closed"), ("MCP_REDIS_TIMEOUT", "")]),
    )
    .await;
    for server in [&open, &closed] {
        assert!(fetch(server, &upstream, ALICE).await.0);
        let (status, body) = readyz(server).await;
        assert_eq!((status, &body["redis"]), (200, &json!("up")), "{body}");
    }

    redis.stop().await;
    let started = Instant::now();
    let (ok, message) = fetch(&open, &upstream, ALICE).await;
    assert!(ok, "failing open, calls go on: {message}");
    let (ok, message) = fetch(&closed, &upstream, ALICE).await;
    assert!(
        !ok && message.contains("shared rate limits are unavailable"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) = readyz(&open).await;
    assert_eq!((status, &body["redis"]), (200, &json!("down")), "{body}");
    let (status, body) = readyz(&closed).await;
    assert_eq!((status, &body["status"]), (503, &json!("redis_down")), "{body}");
    assert!(!open.server.logs.events("rate_limit_fallback").is_empty());
    assert!(open.server.logs.events("redis_down").len() == 1);
    let status = {
        let client = open.connect_as(Generation::Stateless, ALICE).await;
        let result = support::tools::call(&client, "server_status", json!({})).await;
        client.cancel().await.unwrap();
        result.structured_content.expect("structured status")
    };
    assert_eq!(status["shared_state"], "redis");
    assert!(status["redis_failures"].as_u64() >= Some(1), "counted: {status}");

    redis.restart().await;
    for server in [&open, &closed] {
        let deadline = Instant::now() + Duration::from_secs(15);
        while readyz(server).await.0 != 200 || readyz(server).await.1["redis"] != "up" {
            assert!(Instant::now() < deadline, "no recovery: {:?}", readyz(server).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(fetch(server, &upstream, ALICE).await.0);
    }
    assert!(
        closed.server.logs.events("redis_up").len() >= 2,
        "up at start, up again"
    );
}

/// A Redis that never answers (a silent listener) costs a call its command timeout only until
/// the circuit breaker opens: from then on calls skip Redis at once (failing open, this
/// replica's own limits decide), `redis_down` is logged once, and the fallback's warning is
/// summarised, not written per call.
#[tokio::test]
async fn a_silent_redis_is_skipped_at_once_once_the_breaker_opens() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(
        &upstream,
        &[
            ("MCP_AUTH", "static"),
            ("MCP_AUTH_TOKENS", &format!("{ALICE} alice mcp:admin")),
            ("MCP_REDIS_URL", &url),
            ("MCP_REDIS_TIMEOUT", "1000"),
            ("MCP_REDIS_ON_FAILURE", "open"),
        ],
    )
    .await;
    let down = server.server.logs.wait_for("redis_down").await;
    assert_eq!(down["level"], "WARN", "{down}");
    // The probe's third failure in a row opens the breaker.
    server.server.logs.wait_for("redis_breaker_open").await;
    let started = Instant::now();
    for _ in 0..40 {
        let (ok, message) = fetch(&server, &upstream, ALICE).await;
        assert!(ok, "failing open, calls go on: {message}");
    }
    // Each would wait out the 1 s timeout without the breaker.
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let logs = &server.server.logs;
    assert_eq!(logs.events("redis_down").len(), 1);
    // At most 10 fallback lines a second in full, the rest counted.
    let logged = logs.events("rate_limit_fallback").len() as u64;
    let not_logged: u64 = logs
        .events("request_refusals")
        .iter()
        .filter(|l| l["reason"] == "rate_limit_fallback")
        .map(|l| l["not_logged"].as_u64().unwrap())
        .sum();
    assert!(
        not_logged > 0 && logged + not_logged == 40,
        "{logged} logged, {not_logged} counted"
    );
    drop(silent);
}

#[tokio::test]
async fn a_malformed_redis_url_is_a_setting_error_that_does_not_show_the_password() {
    let upstream = FakeUpstream::start().await;
    let mut server = support::StdioServer::start(
        &upstream,
        &[("MCP_REDIS_URL", "http://user:s3cret-password@redis.internal:6379")],
    )
    .await;
    assert_eq!(server.server.exit_code(Duration::from_secs(10)).await, 2);
    let said = server.server.logs.lines().join("\n");
    assert!(said.contains("MCP_REDIS_URL"), "{said}");
    assert!(!said.contains("s3cret-password"), "{said}");
}

/// The rmcp client in a 2025-11-25 session, through a balancer, one connection per request.
async fn session_client(balancer: &support::balancer::Balancer, token: &str) -> support::Client {
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(balancer.url("/mcp"))
            .auth_header(token);
    let transport = rmcp::transport::StreamableHttpClientTransport::with_client(http, config);
    Generation::Handshake20251125.connect(transport).await
}

async fn session_call(client: &support::Client, upstream: &FakeUpstream, context: &str) {
    let params = rmcp::model::CallToolRequestParams::new("fetch_fixture")
        .with_arguments(support::args(json!({ "url": upstream.data_url() })));
    let result = client
        .call_tool(params)
        .await
        .unwrap_or_else(|e| panic!("{context}: the session's call failed: {e}"));
    assert_eq!(text(&result), DATA_BODY, "{context}");
}

/// A raw `initialize` on `server`, as `token`'s holder.
async fn post_initialize(server: &HttpServer, token: &str) -> reqwest::Response {
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "raw", "version": "1" } }
    });
    reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A raw `initialize` on `server`: the session id it answers with.
async fn initialize(server: &HttpServer, token: &str) -> String {
    let response = post_initialize(server, token).await;
    assert_eq!(response.status(), 200);
    response.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

/// A raw `tools/list` in session `id` on `server`: the HTTP status.
async fn list_in_session(server: &HttpServer, token: &str, id: &str) -> u16 {
    let body = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" });
    reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_session_goes_on_across_replicas_and_restarts_and_stays_its_owners() {
    let redis = RedisServer::start().await;
    let upstream = FakeUpstream::start().await;
    let env = env(&redis, &[]);
    let mut a = replica(&upstream, &env).await;
    let b = replica(&upstream, &env).await;
    let balancer = support::balancer::Balancer::start(a.addr).await;

    let client = session_client(&balancer, ALICE).await;
    session_call(&client, &upstream, "on A, where it began").await;
    balancer.point_to(b.addr);
    session_call(&client, &upstream, "on B, which never saw it").await;

    // A restarts on its address (a rolling deploy); the session goes on there, no new handshake.
    let a_addr = a.addr;
    a.server.terminate();
    assert_eq!(a.server.exit_code(Duration::from_secs(15)).await, 0);
    let mut restarted = env.clone();
    restarted.push(("MCP_BIND", a_addr.to_string()));
    let a = replica(&upstream, &restarted).await;
    balancer.point_to(a.addr);
    session_call(&client, &upstream, "on A after its restart").await;
    // (The rmcp client never re-initializes by itself: each call above went on in the first
    // session, restored by each replica from the `initialize` kept in Redis.)
    let replayed = a.server.logs.events("request");
    assert!(replayed.iter().any(|l| l["method"] == "initialize"), "{replayed:?}");
    client.cancel().await.unwrap();

    // The session is Alice's on every replica: Bob presenting its id gets 404, as for no session.
    let id = initialize(&a, ALICE).await;
    assert_eq!(list_in_session(&b, ALICE, &id).await, 200);
    assert_eq!(list_in_session(&b, BOB, &id).await, 404);
    assert_eq!(list_in_session(&a, BOB, &id).await, 404);

    // Its keys expire with the idle timeout.
    assert!(redis.assert_expiring("mcp:session*", 300_000) >= 4);
}

#[tokio::test]
async fn requests_racing_into_a_session_a_replica_restores_all_succeed() {
    let redis = RedisServer::start().await;
    let upstream = FakeUpstream::start().await;
    let env = env(&redis, &[]);
    let a = replica(&upstream, &env).await;
    let b = replica(&upstream, &env).await;
    // Each round: a session opened on A, then many of its requests reaching B at once, as
    // when a balancer moves a client with a request and its event stream in flight. The first
    // restores the session; the others wait for it, none reaches the half-restored session.
    for round in 0..20 {
        let id = initialize(&a, ALICE).await;
        let statuses = futures::future::join_all((0..12).map(|_| list_in_session(&b, ALICE, &id))).await;
        assert!(statuses.iter().all(|s| *s == 200), "round {round}: {statuses:?}");
    }
    assert!(b.server.logs.events("request").len() >= 240);
}

#[tokio::test]
async fn a_restore_whose_request_ends_midway_leaves_the_session_usable() {
    let redis = RedisServer::start().await;
    let upstream = FakeUpstream::start().await;
    let a = replica(&upstream, &env(&redis, &[])).await;
    // B pauses inside each restore's replayed handshake (a test-build fixture), long enough
    // for a client to give up on its request there.
    let b = replica(&upstream, &env(&redis, &[("MCP_FIXTURE_RESTORE_PAUSE_MS", "1000")])).await;
    let id = initialize(&a, ALICE).await;
    let gave_up = reqwest::Client::new()
        .post(b.url("/mcp"))
        .bearer_auth(ALICE)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-11-25")
        .timeout(Duration::from_millis(400))
        .json(&json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client gives up during the restore: {gave_up:?}");
    b.server.logs.wait_for("session_restore_abandoned").await;
    // The next requests restore the session afresh (pausing once more), rather than meeting
    // the half-made one; none waits out a turn that never ends (10 s).
    let began = Instant::now();
    for n in 0..3 {
        assert_eq!(
            list_in_session(&b, ALICE, &id).await,
            200,
            "request {n} after the abandoned restore"
        );
    }
    assert!(began.elapsed() < Duration::from_secs(5), "{:?}", began.elapsed());
    assert_eq!(
        list_in_session(&a, ALICE, &id).await,
        200,
        "and on the replica that opened it"
    );
}

#[tokio::test]
async fn session_caps_count_on_every_replica() {
    let redis = RedisServer::start().await;
    let upstream = FakeUpstream::start().await;
    let env = env(
        &redis,
        &[("MCP_MAX_SESSIONS_PER_CLIENT", "2"), ("MCP_MAX_SESSIONS", "3")],
    );
    let (a, b) = (replica(&upstream, &env).await, replica(&upstream, &env).await);
    initialize(&a, ALICE).await;
    initialize(&b, ALICE).await;
    let refused = post_initialize(&a, ALICE).await;
    assert_eq!(refused.status(), 429, "Alice's third session, on either replica");
    initialize(&a, BOB).await;
    let full = post_initialize(&b, BOB).await;
    assert_eq!(full.status(), 503, "the fourth session in all");
}

/// `(id, data)` of each event of an SSE body.
fn sse_events(body: &str) -> Vec<(String, String)> {
    body.split("\n\n")
        .filter_map(|event| {
            let field = |name: &str| {
                event
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            };
            Some((field("id:")?, field("data:").unwrap_or_default()))
        })
        .collect()
}

#[tokio::test]
async fn a_sessions_event_stream_resumes_on_another_replica() {
    let redis = RedisServer::start().await;
    let upstream = FakeUpstream::start().await;
    let env = env(&redis, &[]);
    let (a, b) = (replica(&upstream, &env).await, replica(&upstream, &env).await);
    let id = initialize(&a, ALICE).await;
    let http = reqwest::Client::new();
    let call = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {
            "name": "fetch_fixture_many",
            "arguments": { "url": upstream.data_url(), "times": 3 },
            "_meta": { "progressToken": "p" }
        }
    });
    let on_a = http
        .post(a.url("/mcp"))
        .bearer_auth(ALICE)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&call)
        .send()
        .await
        .unwrap();
    let events = sse_events(&on_a.text().await.unwrap());
    let with_data: Vec<_> = events.iter().filter(|(_, data)| !data.is_empty()).collect();
    assert_eq!(
        with_data.len(),
        4,
        "three progress notifications and the result: {events:?}"
    );

    // The stream dropped after its first message: B replays the rest, from Redis.
    let (first, _) = with_data[0];
    let on_b = http
        .get(b.url("/mcp"))
        .bearer_auth(ALICE)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-11-25")
        .header("last-event-id", first)
        .send()
        .await
        .unwrap();
    assert_eq!(on_b.status(), 200);
    let replayed: Vec<_> = sse_events(&on_b.text().await.unwrap())
        .into_iter()
        .filter(|(_, data)| !data.is_empty())
        .collect();
    let expected: Vec<_> = with_data[1..].iter().map(|e| (*e).clone()).collect();
    assert_eq!(replayed, expected);
    let result: Value = serde_json::from_str(&replayed[2].1).unwrap();
    assert_eq!(result["id"], 7);
}

/// The official Python SDK client (`interop/python_session.py`), one session, driven by line.
struct PythonSession {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl PythonSession {
    async fn start(url: &str, token: &str) -> (Self, Value) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/python_session.py");
        let mut child = tokio::process::Command::new("python")
            .args([script, url, token])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python with the MCP SDK on PATH: run `make python-interop`");
        let stdin = child.stdin.take().unwrap();
        let lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
        let mut session = Self { child, stdin, lines };
        let hello = session.read().await;
        (session, hello)
    }

    async fn read(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("the Python client answers within 30 s")
            .unwrap()
            .unwrap_or_else(|| panic!("the Python client ended (is `mcp` installed? run `make python-interop`)"));
        serde_json::from_str(&line).unwrap()
    }

    async fn call(&mut self, tool: &str, arguments: Value) -> Value {
        use tokio::io::AsyncWriteExt;
        let line = format!("call {tool} {arguments}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.read().await
    }
}

/// The official Python SDK client keeps one session through a move to another replica and a
/// restart of the first: it never initializes again, and no call fails.
#[tokio::test]
#[ignore = "needs the MCP Python SDK: make python-interop"]
async fn the_python_sdk_keeps_its_session_across_replicas_and_a_restart() {
    let redis = RedisServer::start().await;
    let upstream = FakeUpstream::start().await;
    let env = env(&redis, &[]);
    let mut a = replica(&upstream, &env).await;
    let b = replica(&upstream, &env).await;
    let balancer = support::balancer::Balancer::start(a.addr).await;
    let (mut python, hello) = PythonSession::start(&balancer.url("/mcp"), ALICE).await;
    let session = hello["session"].clone();
    assert!(session.is_string(), "{hello}");
    let fetch = json!({ "url": upstream.data_url() });

    let on_a = python.call("fetch_fixture", fetch.clone()).await;
    assert_eq!(
        (&on_a["ok"], &on_a["text"]),
        (&json!(true), &json!(DATA_BODY)),
        "on A: {on_a}"
    );

    balancer.point_to(b.addr);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let on_b = python.call("fetch_fixture", fetch.clone()).await;
    assert_eq!(on_b["ok"], true, "on B: {on_b}");
    assert!(
        b.server
            .logs
            .events("request")
            .iter()
            .any(|l| l["method"] == "tools/call")
    );

    let a_addr = a.addr;
    a.server.terminate();
    assert_eq!(a.server.exit_code(Duration::from_secs(15)).await, 0);
    let mut restarted = env.clone();
    restarted.push(("MCP_BIND", a_addr.to_string()));
    let a = replica(&upstream, &restarted).await;
    balancer.point_to(a.addr);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = python.call("fetch_fixture", fetch).await;
    assert_eq!(after["ok"], true, "on A after its restart: {after}");
    assert_eq!(after["session"], session, "the same session throughout");
    assert!(
        a.server
            .logs
            .events("request")
            .iter()
            .any(|l| l["method"] == "tools/call")
    );
    python.child.kill().await.unwrap();
}

/// `rediss://`: TLS to Redis, its certificate checked against the CA the server is told to
/// trust (`SSL_CERT_FILE`, which the system's certificate loader reads), with a password.
#[tokio::test]
async fn replicas_share_a_redis_over_tls() {
    let redis = RedisServer::start_tls("tls-redis-pass-0123").await;
    let upstream = FakeUpstream::start().await;
    let mut env = env(&redis, &[("MCP_RATE_LIMITS", "fetch_fixture=3/m")]);
    env.push(("SSL_CERT_FILE", redis.ca_file().display().to_string()));
    let (a, b) = (replica(&upstream, &env).await, replica(&upstream, &env).await);
    for server in [&a, &b, &a] {
        assert!(fetch(server, &upstream, ALICE).await.0);
    }
    let (ok, message) = fetch(&b, &upstream, ALICE).await;
    assert!(
        !ok && message.contains("rate limited"),
        "counted across replicas over TLS: {message}"
    );
    assert_eq!(readyz(&a).await.1["redis"], "up");
    assert_eq!(redis.cli(&["--scan", "--pattern", "mcp:rl:*"]).lines().count(), 1);

    // Without the CA, the certificate is not trusted: Redis is down for that replica.
    let untrusting: Vec<_> = env.iter().filter(|(k, _)| *k != "SSL_CERT_FILE").cloned().collect();
    let c = replica(&upstream, &untrusting).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(readyz(&c).await.1["redis"], "down");
}

/// A Redis that hangs (stopped with SIGSTOP, its connections open): a call waits no longer
/// than the command timeout (`MCP_REDIS_TIMEOUT`) before the failure policy decides.
#[tokio::test]
async fn a_hanging_redis_holds_no_call_past_the_command_timeout() {
    let redis = RedisServer::start().await;
    let upstream = FakeUpstream::start().await;
    let env = env(
        &redis,
        &[("MCP_REDIS_TIMEOUT", "200"), ("MCP_REDIS_ON_FAILURE", "open")],
    );
    let server = replica(&upstream, &env).await;
    let client = server.connect_as(Generation::Stateless, ALICE).await;
    let fetch_once = || support::tools::call(&client, "fetch_fixture", json!({ "url": upstream.data_url() }));
    assert_eq!(fetch_once().await.is_error, Some(false));
    redis.pause();
    let started = Instant::now();
    let result = fetch_once().await;
    let took = started.elapsed();
    redis.resume();
    assert_eq!(result.is_error, Some(false), "failing open");
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    client.cancel().await.unwrap();
}
