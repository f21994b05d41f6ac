//! What one hostile client can make the HTTP server hold, over the real protocol: sessions
//! (capped in all and per caller, owned by their caller, given back on DELETE and on idle),
//! connections (capped in all and per address, closed when slow or idle), event streams,
//! bodies (read only after authentication, within a time limit), ambiguous requests, the log
//! lines a flood of refusals writes, and the open-file limit all those connections need.

mod support;

use std::{net::IpAddr, time::Duration};

use serde_json::{Value, json};
use support::{
    FakeUpstream, HttpServer,
    raw::{self, closed_within, connect_from, exchange, read_answer},
};
use tokio::io::AsyncWriteExt;

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";

fn tokens() -> String {
    format!("{ALICE} alice mcp:tools; {BOB} bob mcp:tools")
}

async fn start(upstream: &FakeUpstream, extra: &[(&str, &str)]) -> HttpServer {
    let tokens = tokens();
    let mut env = vec![("MCP_AUTH", "static"), ("MCP_AUTH_TOKENS", tokens.as_str())];
    env.extend_from_slice(extra);
    HttpServer::start(upstream, &env).await
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

fn mcp(http: &reqwest::Client, server: &HttpServer, method: reqwest::Method, token: &str) -> reqwest::RequestBuilder {
    http.request(method, server.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
}

/// Opens a 2025-11-25 session for `token`: its id, or the refusal.
async fn open_session(http: &reqwest::Client, server: &HttpServer, token: &str) -> Result<String, reqwest::Response> {
    let response = mcp(http, server, reqwest::Method::POST, token)
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    match response.headers().get("mcp-session-id") {
        Some(id) if response.status() == 200 => Ok(id.to_str().unwrap().to_owned()),
        _ => Err(response),
    }
}

async fn list_tools_in(http: &reqwest::Client, server: &HttpServer, token: &str, session: &str) -> reqwest::Response {
    mcp(http, server, reqwest::Method::POST, token)
        .header("mcp-session-id", session)
        .body(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap()
}

async fn assert_refused(response: reqwest::Response, status: u16, words: &str) -> Value {
    assert_eq!(response.status(), status);
    assert!(
        response
            .headers()
            .get("retry-after")
            .is_some_and(|v| v.to_str().unwrap().parse::<u64>().unwrap() >= 1),
        "Retry-After"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["id"], 1, "answers the initialize by its id: {body}");
    assert_eq!(body["error"]["code"], -32000);
    assert!(body["error"]["message"].as_str().unwrap().contains(words), "{body}");
    body
}

#[tokio::test]
async fn sessions_are_capped_per_caller_and_in_all_and_come_back_on_delete() {
    let upstream = FakeUpstream::start().await;
    let server = start(
        &upstream,
        &[("MCP_MAX_SESSIONS_PER_CLIENT", "3"), ("MCP_MAX_SESSIONS", "5")],
    )
    .await;
    let http = reqwest::Client::new();
    let mut alice = Vec::new();
    for _ in 0..3 {
        alice.push(open_session(&http, &server, ALICE).await.expect("under the caps"));
    }
    let refused = open_session(&http, &server, ALICE).await.unwrap_err();
    assert_refused(refused, 429, "MCP_MAX_SESSIONS_PER_CLIENT").await;

    for _ in 0..2 {
        open_session(&http, &server, BOB).await.expect("bob has his own share");
    }
    let refused = open_session(&http, &server, BOB).await.unwrap_err();
    assert_refused(refused, 503, "MCP_MAX_SESSIONS").await;

    // A session closed by its owner frees its place: 200 (not 202), then 404 for a second DELETE.
    let closed = mcp(&http, &server, reqwest::Method::DELETE, ALICE)
        .header("mcp-session-id", &alice[0])
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), 200);
    let again = mcp(&http, &server, reqwest::Method::DELETE, ALICE)
        .header("mcp-session-id", &alice[0])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    open_session(&http, &server, ALICE)
        .await
        .expect("the freed place is reusable");

    let logs = &server.server.logs;
    let deletes = logs.events("session_deleted");
    assert_eq!(deletes.len(), 2, "one line per DELETE: {deletes:#?}");
    // rmcp's own lines (at `info`, which the default filter leaves out) aside.
    let ours = logs
        .json()
        .into_iter()
        .filter(|l| !l["target"].as_str().is_some_and(|t| t.starts_with("rmcp")));
    assert!(
        !ours.map(|l| l.to_string()).any(|l| l.contains(&alice[0])),
        "a session id is logged by its first characters only"
    );
    // The sessions still serve.
    assert_eq!(list_tools_in(&http, &server, ALICE, &alice[1]).await.status(), 200);
}

#[tokio::test]
async fn a_session_answers_only_the_caller_that_opened_it() {
    let upstream = FakeUpstream::start().await;
    let server = start(&upstream, &[]).await;
    let http = reqwest::Client::new();
    let session = open_session(&http, &server, ALICE).await.unwrap();
    assert_eq!(list_tools_in(&http, &server, ALICE, &session).await.status(), 200);

    // Bob holds a valid token, but the session is not his: it does not exist for him.
    let call = list_tools_in(&http, &server, BOB, &session).await;
    assert_eq!(call.status(), 404);
    let body: Value = call.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("Session not found"));
    let stream = mcp(&http, &server, reqwest::Method::GET, BOB)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 404);
    let delete = mcp(&http, &server, reqwest::Method::DELETE, BOB)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 404);

    assert_eq!(
        list_tools_in(&http, &server, ALICE, &session).await.status(),
        200,
        "untouched by the other caller's attempts"
    );
}

#[tokio::test]
async fn an_idle_session_ends_and_gives_its_place_back() {
    let upstream = FakeUpstream::start().await;
    let server = start(
        &upstream,
        &[("MCP_SESSION_IDLE_TIMEOUT", "1"), ("MCP_MAX_SESSIONS", "1")],
    )
    .await;
    let http = reqwest::Client::new();
    let session = open_session(&http, &server, ALICE).await.unwrap();
    assert_eq!(open_session(&http, &server, BOB).await.unwrap_err().status(), 503);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(list_tools_in(&http, &server, ALICE, &session).await.status(), 404);
    open_session(&http, &server, BOB)
        .await
        .expect("the expired session's place is free");
}

#[tokio::test]
async fn event_streams_are_capped() {
    let upstream = FakeUpstream::start().await;
    let server = start(&upstream, &[("MCP_MAX_EVENT_STREAMS", "1")]).await;
    let http = reqwest::Client::new();
    let first = open_session(&http, &server, ALICE).await.unwrap();
    let second = open_session(&http, &server, ALICE).await.unwrap();
    let held = mcp(&http, &server, reqwest::Method::GET, ALICE)
        .header("mcp-session-id", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 200);
    let refused = mcp(&http, &server, reqwest::Method::GET, ALICE)
        .header("mcp-session-id", &second)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP_MAX_EVENT_STREAMS")
    );
    drop(held);
    // The closed stream's place comes back once the server sees it gone.
    let mut reopened = 0;
    for _ in 0..50 {
        let stream = mcp(&http, &server, reqwest::Method::GET, ALICE)
            .header("mcp-session-id", &second)
            .send()
            .await
            .unwrap();
        if stream.status() == 200 {
            reopened += 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reopened, 1, "the first stream's place was given back");
}

#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read_and_slow_bodies_get_408() {
    let upstream = FakeUpstream::start().await;
    let server = start(&upstream, &[("MCP_BODY_READ_TIMEOUT", "1")]).await;

    // 4 MiB announced, none sent, no token: refused at once, the body never awaited.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                Accept: application/json, text/event-stream\r\nContent-Length: 4194304\r\n\r\n";
    tcp.write_all(head.as_bytes()).await.unwrap();
    let answer = read_answer(&mut tcp, Duration::from_millis(800))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 401);

    // Authenticated, but the body trickles: 408 after the body read timeout.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nAuthorization: Bearer {ALICE}\r\n\
         Content-Length: 100\r\n\r\n{{\"jsonrpc\""
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let answer = read_answer(&mut tcp, Duration::from_secs(5)).await.expect("an answer");
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(answer.json()["error"]["code"], -32600);
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP_BODY_READ_TIMEOUT")
    );
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(
        &upstream,
        &[("MCP_HEADER_READ_TIMEOUT", "1"), ("MCP_IDLE_TIMEOUT", "2")],
    )
    .await;
    // Silent after connecting.
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Half a request head, then nothing.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0").await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)).await,
        "silent connection"
    );
    assert!(closed_within(&mut slow, Duration::from_secs(3)).await, "slow header");

    // Kept alive after an answer, then idle: open through the header timeout, closed after the
    // idle timeout.
    let mut kept = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_answer(&mut kept, Duration::from_secs(2)).await.unwrap().status,
        200
    );
    assert!(
        !closed_within(&mut kept, Duration::from_millis(1500)).await,
        "idle < MCP_IDLE_TIMEOUT"
    );
    assert!(
        closed_within(&mut kept, Duration::from_secs(3)).await,
        "idle past MCP_IDLE_TIMEOUT"
    );
}

#[tokio::test]
async fn connections_are_capped_per_address_and_health_answers_through_a_slowloris_flood() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(
        &upstream,
        &[
            ("MCP_MAX_CONNECTIONS_PER_CLIENT", "20"),
            ("MCP_HEADER_READ_TIMEOUT", "30"),
        ],
    )
    .await;
    let attacker: IpAddr = "127.0.0.2".parse().unwrap();
    // 100 connections from one address, each with a few bytes of a head that never ends.
    let mut flood = Vec::new();
    for _ in 0..100 {
        let mut tcp = connect_from(attacker, server.addr).await;
        let _ = tcp.write_all(b"GET /mcp HTTP/1.1\r\nX-a: ").await;
        flood.push(tcp);
    }
    // Past the cap, the server closed them at once.
    let mut closed = 0;
    for tcp in flood.iter_mut().skip(20) {
        closed += usize::from(closed_within(tcp, Duration::from_secs(2)).await);
    }
    assert_eq!(closed, 80, "connections past the per-address cap are closed");
    // Another address is served, quickly.
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let answer = exchange(
            server.addr,
            "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(answer.status, 200);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    let refused = server.server.logs.events("connection_refused");
    assert_eq!(refused.len(), 1, "one line, then a summary: {refused:#?}");
}

#[tokio::test]
async fn ambiguous_requests_get_400() {
    let upstream = FakeUpstream::start().await;
    let server = start(&upstream, &[]).await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let stateless = "MCP-Protocol-Version: 2026-07-28\r\n";
    for (extra, words) in [
        (
            format!("{stateless}Authorization: Bearer {ALICE}\r\nAuthorization: Bearer {BOB}\r\n"),
            "more than one Authorization header",
        ),
        (
            format!("{stateless}Authorization: Bearer {ALICE}\r\nHost: evil.example.com\r\n"),
            "more than one Host header",
        ),
    ] {
        let answer = exchange(server.addr, &raw::post(ping, &extra)).await;
        assert_eq!(answer.status, 400, "{extra}: {answer:?}");
        assert!(answer.json()["error"]["message"].as_str().unwrap().contains(words));
    }
    // An absolute-form target naming another host than the Host header.
    let absolute = raw::post(ping, &format!("Authorization: Bearer {ALICE}\r\n")).replacen(
        "POST /mcp ",
        "POST http://evil.example.com/mcp ",
        1,
    );
    let answer = exchange(server.addr, &absolute).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("differs from the Host")
    );
}

#[tokio::test]
async fn a_duplicate_key_gets_a_json_rpc_400_not_415() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    let duplicate = r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}"#;
    let answer = exchange(
        server.addr,
        &raw::post(duplicate, "MCP-Protocol-Version: 2026-07-28\r\n"),
    )
    .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.header("content-type").unwrap().contains("application/json"));
    let body = answer.json();
    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert_eq!(body["id"], Value::Null, "which id would it be? {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`id` appears more than once"),
        "{body}"
    );
}

/// Refusals past the edge, on every transport's shared path, are summarised like the edge's:
/// a flood of rate-limited calls, or of reads of tasks that do not exist, logs the first 10 of
/// each kind a second in full, then one `request_refusals` line with the count.
#[tokio::test]
async fn a_flood_of_refused_calls_is_logged_a_line_a_second() {
    let upstream = FakeUpstream::start().await;
    let probe = HttpServer::start(&upstream, &[]).await;
    let client = probe.connect(support::Generation::Stateless).await;
    let tool = client.list_all_tools().await.unwrap()[0].name.to_string();
    client.cancel().await.unwrap();
    let quota = format!("{tool}=1/h");
    let server = start(&upstream, &[("MCP_RATE_LIMITS", &quota)]).await;
    let client = server.connect_as(support::Generation::Stateless, ALICE).await;
    for _ in 0..30 {
        support::tools::call(&client, &tool, json!({})).await;
    }
    client.cancel().await.unwrap();
    for i in 0..30 {
        let id = format!("no-such-task-{i}");
        let meta = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "1" },
            "io.modelcontextprotocol/clientCapabilities": { "extensions": { "io.modelcontextprotocol/tasks": {} } }
        });
        let body =
            json!({ "jsonrpc": "2.0", "id": i, "method": "tasks/get", "params": { "taskId": id, "_meta": meta } });
        let headers = format!(
            "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tasks/get\r\nMcp-Name: {id}\r\nAuthorization: Bearer {ALICE}\r\n"
        );
        let answer = exchange(server.addr, &raw::post(&body.to_string(), &headers)).await;
        assert!(answer.body.contains("no task"), "{answer:?}");
    }

    let logs = &server.server.logs;
    logs.wait_for_match(|l| l["event"] == "request_refusals" && l["reason"] == "rate_limited")
        .await;
    let tasks = logs
        .wait_for_match(|l| l["event"] == "request_refusals" && l["reason"] != "rate_limited")
        .await;
    assert_eq!(tasks["reason"], "-32602", "{tasks}");
    let refused =
        |l: &Value| l["event"] == "request" && (l["decision"] == "rate_limited" || l["method"] == "tasks/get");
    // The first 10 of each kind a second in full (a model's few mistakes all show), the rest
    // counted.
    let written = logs.json().into_iter().filter(refused).count();
    assert!(written <= 40, "{written} lines for 60 refusals");
    // Each refusal logged or counted, once the last second's summary is out: 29 calls past
    // the one the quota allows, and 30 reads of tasks.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let not_logged: u64 = logs
            .events("request_refusals")
            .iter()
            .filter(|l| l["reason"] == "rate_limited" || l["reason"] == "-32602")
            .map(|l| l["not_logged"].as_u64().unwrap())
            .sum();
        if written as u64 + not_logged == 59 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{written} logged, {not_logged} counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_flood_of_bad_tokens_turns_into_429_and_a_line_a_second() {
    let upstream = FakeUpstream::start().await;
    let server = start(&upstream, &[("MCP_AUTH_FAILURE_LIMIT", "1/m:5")]).await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..40 {
        let wrong = format!("wrong-token-{i:04}");
        statuses.push(
            server
                .post(&http, Some(&wrong), "tools/list", json!({}))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses[..5], [401; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let limited = server.post(&http, Some("wrong-token-x"), "tools/list", json!({})).await;
    assert!(limited.headers().contains_key("retry-after"));
    // A good token from the same address still gets through.
    assert_eq!(
        server.post(&http, Some(ALICE), "tools/list", json!({})).await.status(),
        200
    );

    // The flood is summed up, not logged line by line.
    server.server.logs.wait_for("edge_refusals").await;
    let logs = &server.server.logs;
    assert!(
        logs.events("auth_failed").len() <= 2,
        "{:#?}",
        logs.events("auth_failed")
    );
    assert!(logs.events("auth_failures_limited").len() <= 2);
    let counted: u64 = logs
        .events("edge_refusals")
        .iter()
        .map(|l| l["count"].as_u64().unwrap())
        .sum();
    assert!(counted >= 30, "the summaries count the refusals: {counted}");
}

#[tokio::test]
async fn client_strings_reach_the_log_clipped() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    let http = reqwest::Client::new();
    let session = open_session(&http, &server, "anyone").await.unwrap();
    // 1.5 MB requests, in a session (no header carries them): a tool name, then an id (which
    // the edge refuses: every answer would repeat it).
    let huge = "n".repeat(1_500_000);
    let calls = [
        json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": { "name": huge, "arguments": {} } }),
        json!({ "jsonrpc": "2.0", "id": huge, "method": "tools/call", "params": { "name": "x", "arguments": {} } }),
    ];
    for call in calls {
        let response = mcp(&http, &server, reqwest::Method::POST, "anyone")
            .header("mcp-session-id", &session)
            .body(call.to_string())
            .send()
            .await
            .unwrap();
        assert!(response.text().await.unwrap().len() < 1024);
    }
    assert_eq!(
        list_tools_in(&http, &server, "anyone", &session).await.status(),
        200,
        "still serving"
    );
    server.server.logs.wait_for_match(|l| l["method"] == "tools/call").await;
    let logs = server.server.logs.lines();
    let longest = logs.iter().map(String::len).max().unwrap();
    assert!(longest < 4096, "longest log line: {longest} bytes");
    let total: usize = logs.iter().map(String::len).sum();
    assert!(total < 64 * 1024, "stderr for one huge request: {total} bytes");
}

#[tokio::test]
async fn the_edge_limiters_forget_idle_callers() {
    let upstream = FakeUpstream::start().await;
    let callers: Vec<String> = (0..50).map(|i| format!("caller-token-{i:04}-abcdef")).collect();
    let admin = "admin-token-0123456789";
    let entries = callers
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{t} caller{i};"))
        .collect::<String>()
        + &format!("{admin} admin mcp:admin");
    let server = HttpServer::start(
        &upstream,
        &[
            ("MCP_AUTH", "static"),
            ("MCP_AUTH_TOKENS", &entries),
            // Buckets refill within a second; the sweep runs every second.
            ("MCP_HTTP_RATE_LIMIT", "5/s:5"),
            ("MCP_AUTH_FAILURE_LIMIT", "5/s:5"),
            ("MCP_RATE_LIMIT_EVICTION", "1"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    for token in &callers {
        assert_eq!(
            server.post(&http, Some(token), "tools/list", json!({})).await.status(),
            200
        );
    }
    assert_eq!(
        server
            .post(&http, Some("wrong-token"), "tools/list", json!({}))
            .await
            .status(),
        401
    );
    let buckets = async || {
        let status = json!({ "name": "server_status", "arguments": {} });
        let answer: Value = server
            .post(&http, Some(admin), "tools/call", status)
            .await
            .json()
            .await
            .unwrap();
        answer["result"]["structuredContent"]["rate_limit_buckets"]
            .as_u64()
            .unwrap()
    };
    let live = buckets().await;
    assert!(
        live >= 51,
        "a bucket per caller and one for the failing address: {live}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let live = buckets().await;
        if live <= 3 {
            break; // the admin's own buckets (edge and tool) may remain
        }
        assert!(
            std::time::Instant::now() < deadline,
            "idle buckets were not evicted: {live} live"
        );
    }
}

#[tokio::test]
async fn request_bytes_held_at_once_have_a_budget() {
    let upstream = FakeUpstream::start().await;
    let server = start(
        &upstream,
        &[
            ("MCP_MAX_BODY_BYTES", "2048"),
            ("MCP_MAX_BODY_BYTES_IN_FLIGHT", "3072"),
            ("MCP_BODY_READ_TIMEOUT", "2"),
        ],
    )
    .await;
    // An authenticated body of 2,000 bytes that trickles: it holds 2,000 of the 3,072, leaving
    // too little for another of 2,040.
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nAuthorization: Bearer {ALICE}\r\n\
         Content-Length: 2000\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let padded = format!("{list}{}", " ".repeat(2500 - list.len()));
    let auth = format!("MCP-Protocol-Version: 2026-07-28\r\nAuthorization: Bearer {ALICE}\r\n");
    let refused = exchange(server.addr, &raw::post(&padded[..2040], &auth)).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(refused.header("retry-after").is_some());
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP_MAX_BODY_BYTES_IN_FLIGHT")
    );

    // Once the slow body times out (408), its bytes are given back.
    let answer = read_answer(&mut slow, Duration::from_secs(5)).await.unwrap();
    assert_eq!(answer.status, 408);
    let served = exchange(server.addr, &raw::post(&padded[..2040], &auth)).await;
    assert_ne!(served.status, 503, "{served:?}");
}

/// `serve` over HTTP on an ephemeral loopback port, started under the open-file limit
/// `soft`/`hard`, with stderr piped.
fn serve_with_open_files(soft: u64, hard: u64, envs: &[(&str, &str)]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(support::BIN);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("MCP_") || k == "RUST_LOG") {
        command.env_remove(key);
    }
    command
        .arg("serve")
        .envs([
            ("MCP_TRANSPORT", "http"),
            ("MCP_BIND", "127.0.0.1:0"),
            ("MCP_LOG_FORMAT", "json"),
        ])
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit, async-signal-safe, on a value prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    command.spawn().expect("spawning the server")
}

/// The `starting` line of a server that goes on to listen.
async fn starting_line(child: &mut tokio::process::Child) -> Value {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut starting = None;
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let line: Value = serde_json::from_str(&line).unwrap();
            match line["event"].as_str() {
                Some("starting") => starting = Some(line),
                Some("listening") => return,
                _ => {}
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server listens within 10 s");
    starting.expect("a starting line before the listening one")
}

#[tokio::test]
async fn the_open_file_limit_is_raised_and_must_hold_the_connection_cap() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct passed.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    let hard = limit.rlim_max;
    assert!(hard >= 1024, "this test needs a hard open-file limit of 1,024 or more");

    // A soft limit of 256 is raised to the hard one: 300 connections fit, and the limit is logged.
    let mut raised = serve_with_open_files(256, hard, &[("MCP_MAX_CONNECTIONS", "300")]);
    let starting = starting_line(&mut raised).await;
    assert_eq!(starting["open_file_limit"], hard, "{starting}");

    // With 256 as the hard limit too, the default 1,024 connections cannot fit beside 32 upstream
    // calls and the reserve of 128: exit 2, one line.
    const UPSTREAM: (&str, &str) = ("MCP_UPSTREAM_MAX_CONNECTIONS", "32");
    let refused = serve_with_open_files(256, 256, &[UPSTREAM])
        .wait_with_output()
        .await
        .unwrap();
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for words in [
        "MCP_MAX_CONNECTIONS",
        "is 1024",
        "open-file limit is 256",
        "32 for upstream calls (MCP_UPSTREAM_MAX_CONNECTIONS)",
        "at most 96",
    ] {
        assert!(stderr.contains(words), "'{words}' missing from: {stderr}");
    }
    assert!(refused.stdout.is_empty());

    // A cap that fits starts; the health listener's connections count too.
    let mut fits = serve_with_open_files(256, 256, &[("MCP_MAX_CONNECTIONS", "96"), UPSTREAM]);
    assert_eq!(starting_line(&mut fits).await["open_file_limit"], 256);
    let with_health = [
        ("MCP_MAX_CONNECTIONS", "96"),
        ("MCP_HEALTH_BIND", "127.0.0.1:0"),
        UPSTREAM,
    ];
    let refused = serve_with_open_files(256, 256, &with_health)
        .wait_with_output()
        .await
        .unwrap();
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("64 for the health listener") && stderr.contains("at most 32"),
        "{stderr}"
    );
}

#[tokio::test]
async fn accept_failures_are_logged_once_a_second_and_the_server_recovers() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    let pid = server.server.pid();
    // Lower the running server's limit to what it holds now, plus a few: new connections soon
    // find no descriptor left (EMFILE).
    let open = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count() as u64;
    let limit = libc::rlimit {
        rlim_cur: open + 4,
        rlim_max: open + 4,
    };
    // SAFETY: prlimit on our own child, with a valid struct and no old-limit pointer.
    assert_eq!(
        unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &limit, std::ptr::null_mut()) },
        0
    );
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let logs = &server.server.logs;
    let full = logs.events("accept_failed");
    // Retried every 50 ms for 2.5 s, but logged in full once a second at most.
    assert!(!full.is_empty() && full.len() <= 3, "{full:#?}");
    assert!(full[0]["error"].as_str().unwrap().contains("files"), "{:#}", full[0]);
    let counted: u64 = logs
        .events("edge_refusals")
        .iter()
        .filter(|l| l["reason"] == "accept_failed")
        .map(|l| l["count"].as_u64().unwrap())
        .sum();
    assert!(counted >= 10, "the summaries count the failed accepts: {counted}");

    // Once the connections are gone, the server accepts again.
    drop(held);
    let answer = exchange(
        server.addr,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 200);
}
