//! Health endpoints, on the MCP listener and on a listener of their own that a flood of MCP
//! connections cannot starve, and the `healthcheck` subcommand a container HEALTHCHECK runs.

mod support;

use std::{
    net::{IpAddr, SocketAddr},
    process::Command,
    time::{Duration, Instant},
};

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use support::{
    FakeUpstream, Generation, HttpServer, args,
    raw::{closed_within, connect_from, read_answer},
    upstream::FETCH,
};
use tokio::io::AsyncWriteExt;

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/// The health listener's address, port 0 resolved, as the server logs it.
async fn health_addr(server: &HttpServer) -> SocketAddr {
    let line = server.server.logs.wait_for("health_listening").await;
    line["addr"].as_str().expect("the address").parse().unwrap()
}

#[tokio::test]
async fn healthz_and_readyz_answer_small_json_without_auth() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    for (path, body) in [
        ("/healthz", json!({ "status": "ok" })),
        ("/readyz", json!({ "status": "ready" })),
    ] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json", "{path}");
        assert_eq!(response.json::<Value>().await.unwrap(), body, "{path}");
    }
}

#[tokio::test]
async fn the_health_listener_answers_health_and_readiness_and_turns_unready_in_a_drain() {
    let upstream = FakeUpstream::start().await;
    upstream.set_delay(Duration::from_millis(1500));
    let mut server = HttpServer::start(
        &upstream,
        &[("MCP_HEALTH_BIND", "127.0.0.1:0"), ("MCP_DRAIN_TIMEOUT", "20")],
    )
    .await;
    let health = health_addr(&server).await;
    assert_ne!(health, server.addr);
    for (path, body) in [
        ("/healthz", json!({ "status": "ok" })),
        ("/readyz", json!({ "status": "ready" })),
    ] {
        let response = reqwest::get(format!("http://{health}{path}")).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.json::<Value>().await.unwrap(), body, "{path}");
        // Still served on the MCP listener too.
        assert_eq!(reqwest::get(server.url(path)).await.unwrap().status(), 200, "{path}");
    }
    // Health only: MCP is not served there.
    let mcp = reqwest::Client::new()
        .post(format!("http://{health}/mcp"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 404);

    // Draining (a call in flight keeps the drain going): not ready, still alive.
    let client = server.connect(Generation::Stateless).await;
    let peer = client.peer().clone();
    let arguments = args(json!({ "url": upstream.data_url() }));
    let call = tokio::spawn(async move {
        peer.call_tool(CallToolRequestParams::new(FETCH).with_arguments(arguments))
            .await
    });
    upstream.wait_for_data_hits(1).await;
    server.server.terminate();
    server.server.logs.wait_for("drain_started").await;
    let ready = reqwest::get(format!("http://{health}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<Value>().await.unwrap(), json!({ "status": "draining" }));
    let alive = reqwest::get(format!("http://{health}/healthz")).await.unwrap();
    assert_eq!(alive.status(), 200);
    assert!(call.await.unwrap().is_ok(), "the call in flight finishes");
    assert_eq!(server.server.exit_code(Duration::from_secs(10)).await, 0);
}

#[tokio::test]
async fn the_health_listener_answers_while_slow_headers_hold_every_mcp_connection() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(
        &upstream,
        &[
            ("MCP_HEALTH_BIND", "127.0.0.1:0"),
            ("MCP_MAX_CONNECTIONS", "8"),
            ("MCP_HEADER_READ_TIMEOUT", "30"),
        ],
    )
    .await;
    let health = health_addr(&server).await;
    // Eight connections from two addresses, each a few bytes of a head that never ends: the
    // MCP listener is full.
    let mut held = Vec::new();
    for i in 0..8 {
        let attacker: IpAddr = if i % 2 == 0 { "127.0.0.2" } else { "127.0.0.3" }.parse().unwrap();
        let mut tcp = connect_from(attacker, server.addr).await;
        tcp.write_all(b"GET /mcp HTTP/1.1\r\nX-a: ").await.unwrap();
        held.push(tcp);
    }
    let prober: IpAddr = "127.0.0.4".parse().unwrap();
    let mut refused = connect_from(prober, server.addr).await;
    let _ = refused.write_all(HEALTHZ).await;
    assert!(
        closed_within(&mut refused, Duration::from_secs(2)).await,
        "the MCP listener is full: its /healthz is refused"
    );
    // The health listener answers, quickly, every time.
    for _ in 0..5 {
        let started = Instant::now();
        let mut tcp = connect_from(prober, health).await;
        tcp.write_all(HEALTHZ).await.unwrap();
        let answer = read_answer(&mut tcp, Duration::from_secs(2)).await.expect("an answer");
        assert_eq!(answer.status, 200);
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    }
    drop(held);
}

fn healthcheck(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))))
        .arg("healthcheck")
        .args(args)
        .env_remove("MCP_BIND")
        .env_remove("MCP_HEALTH_BIND")
        .env_remove("MCP_HEALTHCHECK_URL")
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn healthcheck_passes_against_a_live_server_and_fails_against_a_dead_one() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    let bind = server.addr.to_string();

    let (code, stdout, _) = tokio::task::spawn_blocking(move || healthcheck(&["--bind", &bind]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("healthy"));

    // With a health listener, the default target is on it.
    let health_server = HttpServer::start(&upstream, &[("MCP_HEALTH_BIND", "127.0.0.1:0")]).await;
    let health = health_addr(&health_server).await.to_string();
    let bind = health.clone();
    let (code, stdout, _) = tokio::task::spawn_blocking(move || healthcheck(&["--health-bind", &bind]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains(&format!("{health}/healthz")), "{stdout}");

    let url = server.url("/readyz");
    let (code, _, _) = tokio::task::spawn_blocking(move || healthcheck(&["--url", &url]))
        .await
        .unwrap();
    assert_eq!(code, 0);

    // A port nobody listens on any more.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (code, _, stderr) = tokio::task::spawn_blocking(move || healthcheck(&["--bind", &dead, "--timeout", "2"]))
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("unhealthy"), "{stderr}");

    // A server that answers, but not healthily.
    let wrong = server.url("/no-such-endpoint");
    let (code, _, stderr) = tokio::task::spawn_blocking(move || healthcheck(&["--url", &wrong]))
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(stderr.contains("404"), "{stderr}");
}
