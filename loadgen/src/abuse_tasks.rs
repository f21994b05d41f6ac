//! `make abuse`: what held tasks and upstream calls make the server hold. The release build has
//! one tool that runs as a task and calls an upstream API, `get_forecasts` (up to 20 cities, two
//! requests each), so both attacks drive it against a fake Open-Meteo on loopback:
//!
//! - 1,000 tasks of 20 cities × 16 days each, the largest result the tool makes, held until
//!   they expire: peak memory under 128 MiB.
//! - 1,000 tasks at once against an upstream that takes 500 ms per answer: open file
//!   descriptors stay within the per-host cap (MCP_UPSTREAM_MAX_CONNECTIONS_PER_HOST, 64) plus
//!   the server's own and the probe's connections.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{
    abuse::{Row, row},
    server::{Server, Transport},
};

const TASKS: usize = 1000;
/// Requests sent at once while starting tasks.
const CLIENTS: usize = 16;
const PER_HOST_CAP: usize = 64;
/// What the server has open besides upstream connections: listeners, epoll, pipes, the
/// probe's connections (at most `CLIENTS`), with room to spare.
const FD_SLACK: usize = 64;

/// A fake Open-Meteo: geocoding knows every name as Berlin; forecasts have the days asked for.
/// Each answer waits `delay_ms`; `served` counts answers.
async fn fake_open_meteo(delay_ms: Arc<AtomicU64>, served: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve_connection(tcp, delay_ms.clone(), served.clone()));
        }
    });
    addr
}

/// Answers GETs on one kept-alive connection until the client closes it.
async fn serve_connection(mut tcp: TcpStream, delay_ms: Arc<AtomicU64>, served: Arc<AtomicUsize>) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&pending[..end]).into_owned();
        pending.drain(..end + 4);
        let target = head.split_whitespace().nth(1).unwrap_or("/");
        let body = if target.starts_with("/v1/search") {
            r#"{"results":[{"id":2950159,"name":"Berlin","latitude":52.52437,"longitude":13.41053,"country":"Germany","country_code":"DE","timezone":"Europe/Berlin"}]}"#.to_owned()
        } else {
            forecast(16)
        };
        tokio::time::sleep(Duration::from_millis(delay_ms.load(Ordering::Relaxed))).await;
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if tcp.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        served.fetch_add(1, Ordering::Relaxed);
    }
}

fn forecast(days: usize) -> String {
    let list = |f: &dyn Fn(usize) -> String| (0..days).map(f).collect::<Vec<_>>().join(",");
    format!(
        r#"{{"latitude":52.52,"longitude":13.41,"timezone":"Europe/Berlin","daily_units":{{"temperature_2m_max":"°C"}},"daily":{{"time":[{}],"temperature_2m_max":[{}],"temperature_2m_min":[{}],"precipitation_sum":[{}],"weather_code":[{}]}}}}"#,
        list(&|i| format!(r#""2026-11-{:02}""#, 1 + i)),
        list(&|i| format!("{}.5", 10 + i)),
        list(&|i| format!("{}.5", 2 + i)),
        list(&|_| "1.5".to_owned()),
        list(&|i| if i % 2 == 0 { "3".to_owned() } else { "61".to_owned() }),
    )
}

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"abuse","version":"1"},"io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}}"#;

/// A stateless (2026-07-28) request from a client that takes tasks; `name` is the tool's.
fn request(method: &str, name: Option<&str>, id: usize, params: &str) -> String {
    let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{{params},{META}}}}}"#);
    let name = name.map_or(String::new(), |n| format!("Mcp-Name: {n}\r\n"));
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: {method}\r\n{name}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A `get_forecasts` call for `cities` cities, 16 days each.
fn start_task(id: usize, cities: usize) -> String {
    let cities = vec![r#""Berlin""#; cities].join(",");
    let params = format!(r#""name":"get_forecasts","arguments":{{"cities":[{cities}],"days":16}}"#);
    request("tools/call", Some("get_forecasts"), id, &params)
}

/// One request on a connection of its own; the whole answer.
async fn send(addr: SocketAddr, request: String) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut tcp = TcpStream::connect(addr).await.ok()?;
        tcp.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.ok()?;
        String::from_utf8(answer).ok()
    })
    .await
    .ok()
    .flatten()
}

/// Sends `make(i)` for `i` in `0..n`, `CLIENTS` at a time; the answers, by `i`.
async fn send_all(
    addr: SocketAddr,
    n: usize,
    make: impl Fn(usize) -> String + Send + Sync + 'static,
) -> Vec<Option<String>> {
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (next, make) = (next.clone(), make.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return answers;
                    }
                    answers.push((i, send(addr, make(i)).await));
                }
            })
        })
        .collect();
    let mut answers = vec![None; n];
    for worker in workers {
        for (i, answer) in worker.await.unwrap_or_default() {
            answers[i] = answer;
        }
    }
    answers
}

/// Starts `TASKS` tasks of `cities` cities; the ids of those answered with a task.
async fn start_tasks(addr: SocketAddr, cities: usize) -> Vec<String> {
    send_all(addr, TASKS, move |i| start_task(i, cities))
        .await
        .into_iter()
        .flatten()
        .filter(|answer| answer.starts_with("HTTP/1.1 200"))
        .filter_map(|answer| {
            let rest = answer.split(r#""taskId":""#).nth(1)?;
            Some(rest.split('"').next()?.to_owned())
        })
        .collect()
}

/// `tasks/get` for each of `ids`: how many completed with their result, and how many were
/// kept as an error because the results held had no room left for them.
async fn results(addr: SocketAddr, ids: Vec<String>) -> (usize, usize) {
    let n = ids.len();
    let answers = send_all(addr, n, move |i| {
        let id = &ids[i];
        request("tasks/get", Some(id), i, &format!(r#""taskId":"{id}""#))
    })
    .await;
    let answers: Vec<_> = answers.into_iter().flatten().collect();
    let kept = answers.iter().filter(|a| a.contains(r#""isError":false"#)).count();
    let no_room = answers.iter().filter(|a| a.contains("did not fit")).count();
    (kept, no_room)
}

/// The server's open file descriptors now.
fn open_fds(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

async fn start_server(binary: &Path, upstream: SocketAddr) -> Server {
    let (geocoding, forecast) = (format!("http://{upstream}"), format!("http://{upstream}"));
    let tasks = TASKS.to_string();
    Server::start(
        binary,
        Transport::Http,
        &[
            "--geocoding-url",
            &geocoding,
            "--forecast-url",
            &forecast,
            "--upstream-allow-private",
            "127.0.0.0/8",
            "--max-tasks",
            &tasks,
            "--max-tasks-per-client",
            &tasks,
            "--rate-limits",
            "get_forecasts=1000000/s:1000000",
        ],
    )
    .await
}

pub(crate) async fn held_tasks_and_upstream_sockets(binary: &Path) -> Vec<Row> {
    let delay_ms = Arc::new(AtomicU64::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let upstream = fake_open_meteo(delay_ms.clone(), served.clone()).await;

    // 1,000 tasks of 20 cities, each result its full size, all held.
    let server = start_server(binary, upstream).await;
    let addr = server.addr.unwrap();
    let began = Instant::now();
    let ids = start_tasks(addr, 20).await;
    let started = ids.len();
    let expected = started * 40;
    let until = Instant::now() + Duration::from_secs(120);
    while served.load(Ordering::Relaxed) < expected && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The last results are stored just after their last answer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fetched = served.load(Ordering::Relaxed);
    let took = began.elapsed();
    let (kept, no_room) = results(addr, ids).await;
    // Memory freed while the tasks ran goes back to the system within jemalloc's 10 s decay.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (held_rss, peak) = server.memory();
    server.stop();

    // 1,000 tasks against a slow upstream: sockets.
    delay_ms.store(500, Ordering::Relaxed);
    served.store(0, Ordering::Relaxed);
    let server = start_server(binary, upstream).await;
    let addr = server.addr.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_fds = open_fds(&server);
    let flood = tokio::spawn(start_tasks(addr, 2));
    let mut peak_fds = 0;
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        peak_fds = peak_fds.max(open_fds(&server));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let flooded = flood.await.map_or(0, |ids| ids.len());
    let answered = served.load(Ordering::Relaxed);
    server.stop();

    let fd_bound = idle_fds + PER_HOST_CAP + FD_SLACK;
    vec![
        row(
            "1,000 held tasks (20 cities × 16 days each)",
            format!(
                "peak RSS {peak:.1} MiB, {held_rss:.1} MiB 11 s later; {started} tasks, {fetched} of \
                 {expected} upstream answers in {:.1} s; {kept} results kept, {no_room} kept as errors \
                 (no room left in MCP_MAX_TASK_RESULT_BYTES_IN_ALL)",
                took.as_secs_f64()
            ),
            "< 128 MiB, 1,000 tasks, each answered",
            peak < 128.0 && started == TASKS && fetched >= expected && kept + no_room == TASKS,
        ),
        row(
            "1,000 tasks, upstream 500 ms slow: open fds",
            format!("peak {peak_fds} (idle {idle_fds}); {flooded} tasks, {answered} upstream answers in 15 s"),
            "≤ idle + 64 (per-host cap) + 64",
            peak_fds <= fd_bound && flooded == TASKS,
        ),
    ]
}
