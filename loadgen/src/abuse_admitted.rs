//! `make abuse`, what an admitted request may cost: memory for JSON that parses into far more
//! than its size, answers that would repeat what the client sent, Redis gone silent, and the
//! log a flood of refused calls writes. Each attack is bounded in count and time.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{
    abuse::{Row, row},
    server::{Server, Transport},
};

fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "abuse", "version": "1" },
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A `tools/call` of `bytes` bytes whose arguments are an array of zeros: two bytes a value on
/// the wire, a value each in a parsed tree.
fn zeros_call(bytes: usize, stateless: bool) -> String {
    let head = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"abuse_probe","#;
    let meta = if stateless {
        format!(r#""_meta":{},"#, stateless_meta())
    } else {
        String::new()
    };
    let open = format!(r#"{head}{meta}"arguments":{{"x":[0"#);
    let close = "]}}}";
    let count = (bytes - open.len() - close.len()) / 2;
    let mut body = String::with_capacity(bytes);
    body.push_str(&open);
    for _ in 0..count {
        body.push_str(",0");
    }
    body.push_str(close);
    body
}

/// A request's answer: status, session id, body.
struct Answer {
    status: u16,
    session: Option<String>,
    body: String,
}

/// One POST /mcp on its own connection, with `headers` added; `None` if no answer came.
async fn post(addr: std::net::SocketAddr, body: &str, headers: &str) -> Option<Answer> {
    let mut tcp = TcpStream::connect(addr).await.ok()?;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.ok()?;
    // The server may answer before it has read the whole body (413): a failed write is fine.
    let _ = tcp.write_all(body.as_bytes()).await;
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut bytes))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    Some(Answer {
        status: head.split_whitespace().nth(1)?.parse().ok()?,
        session: header("mcp-session-id"),
        body: body.to_owned(),
    })
}

const STATELESS: &str = "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: abuse_probe\r\n";
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"abuse","version":"1"}}}"#;

/// A 2025-11-25 session's headers.
async fn open_session(addr: std::net::SocketAddr) -> String {
    let opened = post(addr, INITIALIZE, "").await.expect("initialize answered");
    let session = opened.session.expect("a session id");
    let headers = format!("Mcp-Session-Id: {session}\r\nMCP-Protocol-Version: 2025-11-25\r\n");
    post(
        addr,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &headers,
    )
    .await;
    headers
}

/// Peak RSS over the start, in MiB, after `count` 4 MiB array bodies at once.
async fn array_bodies(binary: &Path, count: usize, session: bool) -> (f64, Vec<u16>) {
    let server = Server::start(binary, Transport::Http, &[]).await;
    let addr = server.addr.unwrap();
    let headers = if session {
        open_session(addr).await
    } else {
        STATELESS.to_owned()
    };
    let body = std::sync::Arc::new(zeros_call(4 * 1024 * 1024 - 1024, !session));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, start) = server.memory();
    let sent: Vec<_> = (0..count)
        .map(|_| {
            let (body, headers) = (body.clone(), headers.clone());
            tokio::spawn(async move { post(addr, &body, &headers).await.map_or(0, |a| a.status) })
        })
        .collect();
    let mut statuses = Vec::new();
    for answer in sent {
        statuses.push(answer.await.unwrap_or(0));
    }
    let (_, peak) = server.memory();
    server.stop();
    (peak - start, statuses)
}

/// One and eight 4 MiB bodies of two million zeros, HTTP stateless and in a session, and a
/// 16 MiB line of them on stdio: peak memory stays a small multiple of what was sent.
pub async fn parse_amplification(binary: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    for (session, name) in [(false, "2026-07-28"), (true, "2025-11-25 session")] {
        for count in [1, 8] {
            let (peak, statuses) = array_bodies(binary, count, session).await;
            let refused = statuses.iter().filter(|s| **s == 413).count();
            let bound = if count == 1 { 4.0 * 4.0 + 8.0 } else { 128.0 };
            rows.push(row(
                &format!("{count} × 4 MiB array of zeros, HTTP {name}: peak RSS over start"),
                format!("{peak:.1} MiB ({refused} of {count} refused, 413)"),
                &format!("< {bound:.0} MiB"),
                peak < bound && refused == count,
            ));
        }
    }

    let mut server = Server::start(binary, Transport::Stdio, &[]).await;
    let (mut stdin, mut stdout) = server.pipes.take().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, start) = server.memory();
    let line = zeros_call(16 * 1024 * 1024 - 1024, true);
    stdin.write_all(line.as_bytes()).await.unwrap();
    stdin.write_all(b"\n").await.unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut answer)).await;
    let refused = answer.contains("MCP_MAX_JSON_VALUES");
    let (_, peak) = server.memory();
    server.stop();
    let grown = peak - start;
    rows.push(row(
        "16 MiB line of zeros, stdio: peak RSS over start",
        format!("{grown:.1} MiB (refused: {refused})"),
        "< 4 × 16 MiB + 8 MiB",
        grown < 72.0 && refused,
    ));
    rows
}

/// Requests whose answers would repeat megabytes of what the client sent; the largest answer.
pub async fn echoes(binary: &Path) -> Vec<Row> {
    let server = Server::start(binary, Transport::Http, &[]).await;
    let addr = server.addr.unwrap();
    let big = "x".repeat(3_000_000);
    let long_header = "y".repeat(60_000);
    let request = |id: Value, method: &str, params: Value| {
        json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string()
    };
    let stateless = |mut params: Value| {
        params["_meta"] = stateless_meta();
        params
    };
    let v = "MCP-Protocol-Version: 2026-07-28\r\n";
    let mut cases = vec![
        (
            request(json!(1), &big, stateless(json!({}))),
            format!("{v}Mcp-Method: tools/list\r\n"),
        ),
        (
            request(json!(1), "prompts/get", stateless(json!({ "name": "a" }))),
            format!("{v}Mcp-Method: prompts/get\r\nMcp-Name: {long_header}\r\n"),
        ),
        (
            request(json!(1), "prompts/get", stateless(json!({ "name": big }))),
            format!("{v}Mcp-Method: prompts/get\r\nMcp-Name: a\r\n"),
        ),
        (
            request(json!(1), "tools/list", stateless(json!({}))),
            format!("MCP-Protocol-Version: {long_header}\r\nMcp-Method: tools/list\r\n"),
        ),
        (
            request(json!(big), "tools/list", stateless(json!({}))),
            format!("{v}Mcp-Method: tools/list\r\n"),
        ),
    ];
    let in_session = open_session(addr).await;
    let session_cases = [
        request(json!(2), &format!("x/{big}"), json!({})),
        request(json!(3), "prompts/get", json!({ "name": big })),
        request(json!(4), "resources/read", json!({ "uri": format!("x://{big}") })),
        request(json!(5), "tools/call", json!({ "name": big })),
        request(json!(6), "tasks/get", json!({ "taskId": big })),
        request(
            json!(7),
            "initialize",
            json!({ "protocolVersion": big, "capabilities": {}, "clientInfo": { "name": "a", "version": "1" } }),
        ),
    ];
    cases.extend(session_cases.iter().map(|body| (body.clone(), in_session.clone())));
    let mut largest = 0;
    let mut answered = 0;
    for (body, headers) in &cases {
        if let Some(answer) = post(addr, body, headers).await {
            largest = largest.max(answer.body.len());
            answered += 1;
        }
    }
    server.stop();

    let mut server = Server::start(binary, Transport::Stdio, &[]).await;
    let (mut stdin, mut stdout) = server.pipes.take().unwrap();
    let mut lines = vec![INITIALIZE.to_owned()];
    lines.extend(session_cases.iter().cloned());
    lines.push(request(json!(9), &format!("x/{big}"), stateless(json!({}))));
    for line in &lines {
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        let mut answer = String::new();
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut answer)).await
            && n > 0
        {
            largest = largest.max(answer.len());
            answered += 1;
        }
    }
    server.stop();
    let probes = cases.len() + lines.len();
    vec![row(
        &format!("{probes} requests repeating 3 MB values or 60 KB headers: largest answer"),
        format!("{largest} bytes ({answered} of {probes} answered)"),
        "< 1 KiB",
        largest < 1024 && answered == probes,
    )]
}

/// The name of one of the server's tools, asked of the server.
async fn some_tool(addr: std::net::SocketAddr) -> String {
    let list = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "_meta": stateless_meta() } });
    let answer = post(
        addr,
        &list.to_string(),
        "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\n",
    )
    .await
    .expect("tools/list answered");
    let list: Value = serde_json::from_str(&answer.body).expect("a JSON answer");
    list["result"]["tools"][0]["name"].as_str().expect("a tool").to_owned()
}

fn call(tool: &str) -> (String, String) {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": tool, "arguments": {}, "_meta": stateless_meta() } });
    let headers = format!("MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {tool}\r\n");
    (body.to_string(), headers)
}

/// Redis at a listener that never answers: once the breaker has opened, a call's latency.
pub async fn redis_silent(binary: &Path) -> Vec<Row> {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    // Connections accepted and held, never answered.
    let holding = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            if held.len() < 100 {
                held.push(tcp);
            }
        }
    });
    let server = Server::start(binary, Transport::Http, &["--redis-url", &url]).await;
    let addr = server.addr.unwrap();
    let tool = some_tool(addr).await;
    // The breaker opens after 3 failed commands in a row: the probe's (one a second) or calls'.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (body, headers) = call(&tool);
    let mut took = Vec::new();
    for _ in 0..200 {
        let began = Instant::now();
        if post(addr, &body, &headers).await.is_some_and(|a| a.status == 200) {
            took.push(began.elapsed());
        }
    }
    server.stop();
    holding.abort();
    took.sort();
    let p50 = took.get(took.len() / 2).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    vec![row(
        "Redis silent (breaker open): tools/call p50",
        format!("{p50:.2} ms ({} of 200 answered)", took.len()),
        "< 5 ms",
        p50 < 5.0 && took.len() == 200,
    )]
}

/// A flood of rate-limited calls for up to 60 s: log bytes per refused call.
pub async fn refused_call_logs(binary: &Path) -> Vec<Row> {
    let probe = Server::start(binary, Transport::Http, &[]).await;
    let tool = some_tool(probe.addr.unwrap()).await;
    probe.stop();
    let quota = format!("{tool}=1/h");
    let server = Server::start(binary, Transport::Http, &["--rate-limits", &quota]).await;
    let addr = server.addr.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.stderr_bytes();
    let (body, headers) = call(&tool);
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let until = Instant::now() + Duration::from_secs(60);
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut sent = 0u64;
                let Ok(mut tcp) = TcpStream::connect(addr).await else {
                    return sent;
                };
                let mut buf = vec![0u8; 64 * 1024];
                while Instant::now() < until && sent < 1_000_000 {
                    if tcp.write_all(request.as_bytes()).await.is_err() {
                        break;
                    }
                    // One answer per request: JSON with a content length, read whole.
                    let mut got = Vec::new();
                    loop {
                        let Ok(n) = tcp.read(&mut buf).await else { return sent };
                        if n == 0 {
                            return sent;
                        }
                        got.extend_from_slice(&buf[..n]);
                        if answer_complete(&got) {
                            break;
                        }
                    }
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let mut calls = 0;
    for worker in workers {
        calls += worker.await.unwrap_or(0);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let written = server.stderr_bytes() - before;
    server.stop();
    let per_call = written as f64 / calls.max(1) as f64;
    vec![row(
        "rate-limited calls for 60 s: stderr",
        format!("{per_call:.1} bytes each ({calls} calls, {written} bytes)"),
        "< 512 bytes each",
        per_call < 512.0 && calls > 1000,
    )]
}

/// Whether `bytes` hold a whole HTTP answer with a `content-length`.
fn answer_complete(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .is_some_and(|length| body.len() >= length)
}
