//! Health endpoints and the `healthcheck` subcommand a container HEALTHCHECK runs.

mod support;

use std::process::Command;

use serde_json::{Value, json};
use support::{FakeUpstream, HttpServer};

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

fn healthcheck(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME"))))
        .arg("healthcheck")
        .args(args)
        .env_remove("MCP_BIND")
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
