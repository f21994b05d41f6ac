//! `make abuse`: one hostile client against the release server on loopback, each attack
//! bounded in count and time. Prints a table of figure against bound and fails past a bound.
//!
//! - 20,000 `initialize` from 50 callers: sessions stop at the cap, peak memory stays under
//!   128 MiB, and memory comes back (within 20 MiB of the start) 10 s after the sessions end.
//! - 1,000 slow-header connections from one address: `/healthz`, asked from another address
//!   throughout, answers within 1 s.
//! - 1,100 slow-header connections from 6 addresses, at the global cap: `/healthz` on the health
//!   listener answers within 1 s, and with a 1,024 file limit no accept fails (`abuse_health.rs`).
//! - 150 unauthenticated 4 MiB bodies at once: peak memory under 128 MiB.
//! - JWKS down, 200 tokens with unknown key ids: at most one fetch per cooldown.
//! - 10,000 refused requests: under 512 bytes of stderr each on average.
//! - What an admitted request may cost (`abuse_admitted`): 4 MiB and 16 MiB arrays of zeros
//!   over HTTP (stateless and in a session) and stdio, answers to requests repeating megabytes,
//!   calls while Redis is silent, and the log a 60 s flood of rate-limited calls writes.
// weather-example:begin
//! - 1,000 held tasks of the example's task tool, and upstream sockets under a flood of them
//!   (`abuse_tasks.rs`).
// weather-example:end

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream},
};

use crate::{
    abuse_admitted,
    server::{Server, Transport},
};

const MIB: f64 = 1.0;
const MEMORY_CEILING: f64 = 128.0 * MIB;
const MEMORY_RETURN: f64 = 20.0 * MIB;
/// Simultaneous connections a flood uses (besides the slowloris one).
const CLIENTS: usize = 16;

pub(crate) struct Row {
    check: String,
    figure: String,
    bound: String,
    ok: bool,
}

pub(crate) fn row(check: &str, figure: String, bound: &str, ok: bool) -> Row {
    Row {
        check: check.into(),
        figure,
        bound: bound.into(),
        ok,
    }
}

/// Runs every attack; `true` when every figure is within its bound.
pub async fn run(binary: &Path) -> bool {
    let began = Instant::now();
    let mut rows = Vec::new();
    eprintln!("abuse: 20,000 initialize from 50 callers");
    rows.extend(sessions(binary).await);
    eprintln!("abuse: 1,000 slow-header connections");
    rows.extend(slowloris(binary).await);
    eprintln!("abuse: 1,100 slow-header connections from 6 addresses, /healthz on the health listener");
    rows.extend(crate::abuse_health::health_under_connection_flood(binary).await);
    eprintln!("abuse: 150 unauthenticated 4 MiB bodies");
    rows.extend(big_bodies(binary).await);
    eprintln!("abuse: JWKS down, 200 unknown key ids");
    rows.extend(jwks_down(binary).await);
    eprintln!("abuse: 10,000 refused requests");
    rows.extend(refusal_logs(binary).await);
    eprintln!("abuse: 4 MiB and 16 MiB arrays of zeros");
    rows.extend(abuse_admitted::parse_amplification(binary).await);
    eprintln!("abuse: answers to requests repeating megabytes");
    rows.extend(abuse_admitted::echoes(binary).await);
    eprintln!("abuse: Redis silent");
    rows.extend(abuse_admitted::redis_silent(binary).await);
    eprintln!("abuse: rate-limited calls for 60 s");
    rows.extend(abuse_admitted::refused_call_logs(binary).await);
    // weather-example:begin
    eprintln!("abuse: 1,000 held tasks; 1,000 tasks against a slow upstream");
    rows.extend(crate::abuse_tasks::held_tasks_and_upstream_sockets(binary).await);
    // weather-example:end

    println!("| check | figure | bound | |\n|---|---:|---:|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} |",
            r.check,
            r.figure,
            r.bound,
            if r.ok { "ok" } else { "**FAILED**" }
        );
    }
    println!("\n(all attacks in {:.0} s)", began.elapsed().as_secs_f64());
    rows.iter().all(|r| r.ok)
}

fn tokens(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("abuse-token-{i:04}-0123456789")).collect()
}

/// The server with static-token auth, one subject per token.
async fn start_with_tokens(binary: &Path, tokens: &[String]) -> Server {
    let entries = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{t} caller{i}"))
        .collect::<Vec<_>>()
        .join(";");
    Server::start(
        binary,
        Transport::Http,
        &["--auth", "static", "--auth-tokens", &entries],
    )
    .await
}

/// One HTTP/1.1 exchange on a kept-alive connection: status, `Mcp-Session-Id`, body.
pub(crate) async fn exchange(tcp: &mut TcpStream, request: &str) -> Option<(u16, Option<String>)> {
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = tcp.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&bytes);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        let complete = match (header("content-length"), header("transfer-encoding")) {
            (Some(length), _) => body.len() >= length.parse().ok()?,
            (None, Some(_)) => body.ends_with("0\r\n\r\n"),
            (None, None) => true,
        };
        if complete {
            return Some((status, header("mcp-session-id")));
        }
    }
}

fn request(method: &str, token: &str, session: Option<&str>, body: &str) -> String {
    let session = session.map_or(String::new(), |s| format!("Mcp-Session-Id: {s}\r\n"));
    format!(
        "{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\n\
         Authorization: Bearer {token}\r\n{session}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"abuse","version":"1"}}}"#;

/// Sends `total` requests made by `make(i)` over `CLIENTS` kept-alive connections; collects
/// each answer's status and session id.
async fn flood(
    addr: SocketAddr,
    total: usize,
    make: impl Fn(usize) -> String + Send + Sync + 'static,
) -> Vec<(usize, u16, Option<String>)> {
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (make, next) = (make.clone(), next.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut tcp = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return answers;
                    }
                    if tcp.is_none() {
                        tcp = TcpStream::connect(addr).await.ok();
                    }
                    let Some(conn) = tcp.as_mut() else { continue };
                    match exchange(conn, &make(i)).await {
                        Some((status, session)) => answers.push((i, status, session)),
                        None => {
                            answers.push((i, 0, None));
                            tcp = None;
                        }
                    }
                }
            })
        })
        .collect();
    let mut answers = Vec::new();
    for worker in workers {
        answers.extend(worker.await.unwrap_or_default());
    }
    answers
}

async fn sessions(binary: &Path) -> Vec<Row> {
    let tokens = tokens(50);
    let server = start_with_tokens(binary, &tokens).await;
    let addr = server.addr.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (start, _) = server.memory();
    let began = Instant::now();
    let answers = flood(addr, 20_000, {
        let tokens = tokens.clone();
        move |i| request("POST", &tokens[i % tokens.len()], None, INITIALIZE)
    })
    .await;
    let took = began.elapsed();
    let accepted: Vec<_> = answers
        .iter()
        .filter(|(_, status, session)| *status == 200 && session.is_some())
        .collect();
    let refused = answers.iter().filter(|(_, s, _)| matches!(s, 429 | 503)).count();
    let (_, peak) = server.memory();

    // End every session, then give the server 10 s.
    let ends: Vec<(String, String)> = accepted
        .iter()
        .map(|(i, _, session)| (tokens[i % tokens.len()].clone(), session.clone().unwrap()))
        .collect();
    let deleted = flood(addr, ends.len(), {
        let ends = Arc::new(ends);
        move |i| request("DELETE", &ends[i].0, Some(&ends[i].1), "")
    })
    .await
    .iter()
    .filter(|(_, s, _)| *s == 200)
    .count();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (after, _) = server.memory();
    server.stop();
    vec![
        row(
            "20,000 initialize (50 callers)",
            format!(
                "{} sessions, {refused} refused, in {:.1} s",
                accepted.len(),
                took.as_secs_f64()
            ),
            "sessions ≤ 1,000 (MCP_MAX_SESSIONS), the rest refused",
            accepted.len() <= 1000 && accepted.len() + refused == 20_000,
        ),
        row(
            "peak RSS, server full of sessions",
            format!("{peak:.1} MiB"),
            "< 128 MiB",
            peak < MEMORY_CEILING,
        ),
        row(
            "RSS 10 s after the sessions end",
            format!("{after:.1} MiB (start {start:.1}, {deleted} DELETEs answered 200)"),
            "< start + 20 MiB",
            after < start + MEMORY_RETURN && deleted == accepted.len(),
        ),
    ]
}

pub(crate) async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

async fn slowloris(binary: &Path) -> Vec<Row> {
    let server = Server::start(binary, Transport::Http, &[]).await;
    let addr = server.addr.unwrap();
    let attacker: IpAddr = "127.0.0.2".parse().unwrap();
    let mut held = Vec::new();
    for _ in 0..1000 {
        if let Ok(mut tcp) = connect_from(attacker, addr).await {
            let _ = tcp
                .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                .await;
            held.push(tcp);
        }
    }
    // Keep dripping bytes for 12 s (past the header timeout) while asking for health.
    let mut slowest = Duration::ZERO;
    let mut answered = 0;
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        for tcp in held.iter_mut().take(50) {
            let _ = tcp.write_all(b"a").await;
        }
        let began = Instant::now();
        let probe = tokio::time::timeout(Duration::from_secs(2), async {
            let mut tcp = TcpStream::connect(addr).await.ok()?;
            exchange(&mut tcp, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await
        })
        .await;
        if let Ok(Some((200, _))) = probe {
            answered += 1;
        }
        slowest = slowest.max(began.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(held);
    server.stop();
    vec![row(
        "1,000 slow-header connections: /healthz",
        format!(
            "{answered} probes answered, slowest {:.0} ms",
            slowest.as_secs_f64() * 1e3
        ),
        "every probe within 1 s",
        slowest < Duration::from_secs(1) && answered > 0,
    )]
}

async fn big_bodies(binary: &Path) -> Vec<Row> {
    let tokens = tokens(1);
    let server = start_with_tokens(binary, &tokens).await;
    let addr = server.addr.unwrap();
    let statuses: Vec<_> = (0..150)
        .map(|_| {
            tokio::spawn(async move {
                let mut tcp = TcpStream::connect(addr).await.ok()?;
                let size = 4 * 1024 * 1024;
                let head = format!(
                    "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                     Accept: application/json, text/event-stream\r\nContent-Length: {size}\r\n\r\n"
                );
                tcp.write_all(head.as_bytes()).await.ok()?;
                let chunk = vec![b' '; 64 * 1024];
                for _ in 0..size / chunk.len() {
                    if tcp.write_all(&chunk).await.is_err() {
                        break; // refused before the body: the server stopped reading
                    }
                }
                let mut answer = vec![0u8; 1024];
                let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut answer))
                    .await
                    .ok()?
                    .ok()?;
                String::from_utf8_lossy(&answer[..n])
                    .split_whitespace()
                    .nth(1)?
                    .parse::<u16>()
                    .ok()
            })
        })
        .collect();
    let mut refused = 0;
    for status in statuses {
        refused += usize::from(matches!(status.await.ok().flatten(), Some(401 | 429)));
    }
    let (_, peak) = server.memory();
    server.stop();
    vec![row(
        "150 unauthenticated 4 MiB bodies",
        format!("peak RSS {peak:.1} MiB, {refused} answered 401 or 429"),
        "< 128 MiB, all refused",
        peak < MEMORY_CEILING && refused == 150,
    )]
}

/// A JWKS endpoint that is down: every request answered 503, and counted.
async fn failing_jwks() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = tcp
                        .write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                }
            });
        }
    });
    (addr, fetches)
}

/// A JWT whose header names `kid`; its signature is never checked (the key is unknown).
fn token_with_kid(kid: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{kid}"}}"#));
    let claims = URL_SAFE_NO_PAD
        .encode(r#"{"sub":"eve","iss":"https://issuer.test","aud":"http://127.0.0.1/mcp","exp":4102444800}"#);
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

async fn jwks_down(binary: &Path) -> Vec<Row> {
    let (jwks, fetches) = failing_jwks().await;
    let url = format!("http://{jwks}/jwks.json");
    let server = Server::start(
        binary,
        Transport::Http,
        &[
            "--auth",
            "jwt",
            "--jwt-jwks-url",
            &url,
            "--jwt-issuer",
            "https://issuer.test",
            "--public-url",
            "http://127.0.0.1",
            "--upstream-allow-private",
            "127.0.0.0/8",
        ],
    )
    .await;
    let addr = server.addr.unwrap();
    let began = Instant::now();
    let answers = flood(addr, 200, |i| {
        request("POST", &token_with_kid(&format!("random-{i}")), None, INITIALIZE)
    })
    .await;
    let took = began.elapsed();
    server.stop();
    let cooldown = 10.0; // MCP_JWKS_REFETCH_COOLDOWN's default
    let allowed = 1 + (took.as_secs_f64() / cooldown) as usize;
    let fetched = fetches.load(Ordering::SeqCst);
    let answered = answers.iter().filter(|(_, s, _)| *s != 0).count();
    vec![row(
        "JWKS down, 200 unknown key ids",
        format!("{fetched} fetches in {:.1} s, {answered} answered", took.as_secs_f64()),
        "≤ 1 fetch per 10 s cooldown",
        fetched <= allowed && answered == 200,
    )]
}

async fn refusal_logs(binary: &Path) -> Vec<Row> {
    let tokens = tokens(1);
    let server = start_with_tokens(binary, &tokens).await;
    let addr = server.addr.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.stderr_bytes();
    let answers = flood(addr, 10_000, |i| {
        request("POST", &format!("wrong-token-{i}"), None, INITIALIZE)
    })
    .await;
    // The last second's summary line.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let written = server.stderr_bytes() - before;
    server.stop();
    let refused = answers.iter().filter(|(_, s, _)| matches!(s, 401 | 429)).count();
    let per_request = written as f64 / 10_000.0;
    vec![row(
        "10,000 refused requests: stderr",
        format!("{per_request:.1} bytes each ({written} in all, {refused} refused)"),
        "< 512 bytes each",
        per_request < 512.0 && refused == 10_000,
    )]
}
