//! Opaque access tokens checked at the authorization server's RFC 7662 introspection endpoint
//! (`MCP_AUTH=introspection`), over the real protocol: what each answer lets through, caching
//! of answers (one call for many requests, refusals remembered briefly), an endpoint that fails
//! or hangs (503, no hang), and the client secret's rotation on SIGHUP. Neither tokens nor the
//! secret reach a log line. `make oauth-check` checks the same against a real provider.

mod support;

use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use serde_json::json;
use support::{
    FakeUpstream, Generation, HttpServer,
    introspection::{self, CLIENT_ID, ISSUER, Introspection, Mode, active},
};

const PUBLIC_URL: &str = "http://mcp.test";
const AUDIENCE: &str = "http://mcp.test/mcp";
const SECRET: &str = "introspection-secret-0123456789";

async fn server(upstream: &FakeUpstream, endpoint: &Introspection, extra: &[(&str, &str)]) -> HttpServer {
    let url = endpoint.url();
    let mut env = vec![
        ("MCP_AUTH", "introspection"),
        ("MCP_INTROSPECTION_URL", url.as_str()),
        ("MCP_INTROSPECTION_CLIENT_ID", CLIENT_ID),
        ("MCP_INTROSPECTION_CLIENT_SECRET", SECRET),
        ("MCP_AUTHORIZATION_SERVERS", ISSUER),
        ("MCP_PUBLIC_URL", PUBLIC_URL),
        ("MCP_REQUIRED_SCOPES", "mcp:tools"),
        ("MCP_AUTH_FAILURE_LIMIT", "1000/s:1000"),
    ];
    env.extend_from_slice(extra);
    HttpServer::start(upstream, &env).await
}

async fn status(server: &HttpServer, token: &str) -> reqwest::Response {
    server
        .post(&reqwest::Client::new(), Some(token), "tools/list", json!({}))
        .await
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn opaque_tokens_are_checked_at_the_introspection_endpoint() {
    let upstream = FakeUpstream::start().await;
    let endpoint = Introspection::start(SECRET).await;
    let now = introspection::now();
    let with = |fields: serde_json::Value| {
        let mut answer = active("alice", "mcp:tools", AUDIENCE);
        answer
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        answer
    };
    endpoint.answer("admin-token", active("alice", "mcp:tools mcp:admin", AUDIENCE));
    endpoint.answer("tools-token", active("bob", "mcp:tools", AUDIENCE));
    endpoint.answer("scopeless-token", active("carol", "", AUDIENCE));
    endpoint.answer(
        "list-audience-token",
        with(json!({ "aud": ["https://other.test", AUDIENCE] })),
    );
    endpoint.answer("service-token", with(json!({ "sub": null, "client_id": "billing" })));
    endpoint.answer("inactive-token", json!({ "active": false }));
    endpoint.answer("other-audience-token", with(json!({ "aud": "https://other.test/mcp" })));
    endpoint.answer("no-audience-token", with(json!({ "aud": null })));
    endpoint.answer("other-issuer-token", with(json!({ "iss": "https://evil.test" })));
    endpoint.answer("expired-token", with(json!({ "exp": now - 600 })));
    endpoint.answer("future-token", with(json!({ "nbf": now + 600 })));
    endpoint.answer("refresh-token", with(json!({ "token_type": "refresh_token" })));
    endpoint.answer(
        "bound-token",
        with(json!({ "cnf": { "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" } })),
    );
    let server = server(&upstream, &endpoint, &[]).await;

    for token in ["admin-token", "tools-token", "list-audience-token", "service-token"] {
        assert_eq!(status(&server, token).await.status(), 200, "{token}");
    }
    for (token, reason) in [
        ("inactive-token", "not active"),
        ("other-audience-token", "audience"),
        ("no-audience-token", "audience"),
        ("other-issuer-token", "issuer"),
        ("expired-token", "expired"),
        ("future-token", "not yet valid"),
        ("refresh-token", "not an access token"),
        // A token bound to a client certificate, presented without it, proves nothing.
        ("bound-token", "bound to a key"),
        ("never-issued-token", "not active"),
    ] {
        let response = status(&server, token).await;
        assert_eq!(response.status(), 401, "{token}");
        let challenge = challenge(&response);
        assert!(challenge.contains(r#"error="invalid_token""#), "{token}: {challenge}");
        assert!(challenge.contains(reason), "{token}: {challenge}");
        // An authorization server issues these tokens: the challenge points clients at it.
        assert!(challenge.contains("resource_metadata="), "{token}: {challenge}");
    }
    let response = status(&server, "scopeless-token").await;
    assert_eq!(response.status(), 403);
    assert!(challenge(&response).contains(r#"error="insufficient_scope""#));

    // The scopes an answer names are the caller's: only the admin token sees every tool.
    let admin = server.connect_as(Generation::Stateless, "admin-token").await;
    let bob = server.connect_as(Generation::Stateless, "tools-token").await;
    let admin_tools = support::tools::tool_names(&admin).await;
    let bob_tools = support::tools::tool_names(&bob).await;
    let admin_only: Vec<_> = admin_tools.iter().filter(|t| !bob_tools.contains(t)).collect();
    assert!(!admin_only.is_empty(), "{admin_tools:?} / {bob_tools:?}");
    let called = admin
        .call_tool(CallToolRequestParams::new(admin_only[0].clone()))
        .await
        .unwrap();
    assert_eq!(called.is_error, Some(false), "{called:?}");
    let refused = bob.call_tool(CallToolRequestParams::new(admin_only[0].clone())).await;
    assert!(
        refused.is_err() || refused.as_ref().unwrap().is_error == Some(true),
        "{refused:?}"
    );
    admin.cancel().await.unwrap();
    bob.cancel().await.unwrap();

    // The metadata names the authorization server.
    let metadata: serde_json::Value = reqwest::get(server.url("/.well-known/oauth-protected-resource/mcp"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], AUDIENCE);
    assert_eq!(metadata["authorization_servers"], json!([ISSUER]));

    let logs = server.server.logs.lines().join("\n");
    for secret in [SECRET, "admin-token", "tools-token", "inactive-token"] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
    assert!(logs.contains(r#""subject":"alice""#), "the subject is logged");
}

#[tokio::test]
async fn answers_are_cached_and_concurrent_checks_of_a_token_share_one_call() {
    let upstream = FakeUpstream::start().await;
    let endpoint = Introspection::start(SECRET).await;
    endpoint.answer("good-token", active("alice", "mcp:tools", AUDIENCE));
    let server = server(&upstream, &endpoint, &[]).await;

    let statuses = futures::future::join_all((0..20).map(|_| status(&server, "good-token"))).await;
    assert!(statuses.iter().all(|r| r.status() == 200));
    assert_eq!(endpoint.calls(), 1, "twenty requests at once, one call");
    for _ in 0..5 {
        assert_eq!(status(&server, "good-token").await.status(), 200);
    }
    assert_eq!(endpoint.calls(), 1, "then answered from the cache");

    // A refusal is remembered too, briefly...
    for _ in 0..5 {
        assert_eq!(status(&server, "unknown-token").await.status(), 401);
    }
    assert_eq!(endpoint.calls(), 2);
    // ...but not that a token is not valid yet: it soon will be.
    let mut future = active("alice", "mcp:tools", AUDIENCE);
    future["nbf"] = json!(introspection::now() + 600);
    endpoint.answer("future-token", future);
    for _ in 0..2 {
        assert_eq!(status(&server, "future-token").await.status(), 401);
    }
    assert_eq!(endpoint.calls(), 4);

    // Without a cache, each request asks.
    let uncached = server_with_ttl_0(&upstream, &endpoint).await;
    let before = endpoint.calls();
    for _ in 0..3 {
        assert_eq!(status(&uncached, "good-token").await.status(), 200);
    }
    assert_eq!(endpoint.calls() - before, 3);
}

async fn server_with_ttl_0(upstream: &FakeUpstream, endpoint: &Introspection) -> HttpServer {
    server(upstream, endpoint, &[("MCP_INTROSPECTION_CACHE_TTL", "0")]).await
}

#[tokio::test]
async fn an_endpoint_that_fails_or_hangs_gets_a_503_never_a_hang() {
    let upstream = FakeUpstream::start().await;
    let endpoint = Introspection::start(SECRET).await;
    endpoint.answer("good-token", active("alice", "mcp:tools", AUDIENCE));
    let server = server(&upstream, &endpoint, &[]).await;

    endpoint.set_mode(Mode::Failing);
    let response = status(&server, "good-token").await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    server.server.logs.wait_for("introspection_failed").await;
    // An endpoint down is said once, not once per request.
    for _ in 0..5 {
        assert_eq!(status(&server, "good-token").await.status(), 503);
    }
    assert_eq!(server.server.logs.events("introspection_failed").len(), 1);

    // Failures are not remembered: the endpoint back, the token works.
    endpoint.set_mode(Mode::Serving);
    assert_eq!(status(&server, "good-token").await.status(), 200);

    // A hanging endpoint: every caller is answered when the one call for its token gives up,
    // and new tokens past the bound on calls at once get 503 without a call.
    endpoint.answer("other-token", active("bob", "mcp:tools", AUDIENCE));
    endpoint.set_mode(Mode::Hanging);
    let before = endpoint.calls();
    let started = Instant::now();
    let same = (0..10).map(|_| status(&server, "other-token"));
    let tokens: Vec<String> = (0..60).map(|i| format!("made-up-token-{i}")).collect();
    let distinct = tokens.iter().map(|t| status(&server, t));
    let (same, distinct) = tokio::join!(futures::future::join_all(same), futures::future::join_all(distinct));
    assert!(same.iter().chain(&distinct).all(|r| r.status() == 503));
    assert!(started.elapsed() < Duration::from_secs(12), "{:?}", started.elapsed());
    let calls = endpoint.calls() - before;
    assert!((2..=32).contains(&calls), "{calls} calls at once");
    // Tokens already checked keep working meanwhile.
    assert_eq!(status(&server, "good-token").await.status(), 200);
}

#[tokio::test]
async fn sighup_rereads_the_client_secret_file() {
    let upstream = FakeUpstream::start().await;
    let endpoint = Introspection::start(SECRET).await;
    endpoint.answer("first-token", active("alice", "mcp:tools", AUDIENCE));
    endpoint.answer("second-token", active("bob", "mcp:tools", AUDIENCE));
    let file = std::env::temp_dir().join(format!("introspection-secret-{}", std::process::id()));
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let path = file.display().to_string();
    let url = endpoint.url();
    let env = [
        ("MCP_AUTH", "introspection"),
        ("MCP_INTROSPECTION_URL", url.as_str()),
        ("MCP_INTROSPECTION_CLIENT_ID", CLIENT_ID),
        ("MCP_INTROSPECTION_CLIENT_SECRET_FILE", path.as_str()),
        ("MCP_AUTHORIZATION_SERVERS", ISSUER),
        ("MCP_PUBLIC_URL", PUBLIC_URL),
    ];
    let server = HttpServer::start(&upstream, &env).await;
    assert_eq!(status(&server, "first-token").await.status(), 200);

    // The provider rotates the secret: checks fail until the server has the new one.
    endpoint.set_secret("rotated-secret-9876543210");
    assert_eq!(status(&server, "second-token").await.status(), 503);
    std::fs::write(&file, "rotated-secret-9876543210\n").unwrap();
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(server.server.pid(), libc::SIGHUP) }, 0);
    let reloaded = server.server.logs.wait_for("auth_reloaded").await;
    assert_eq!(reloaded["reloaded"], "the introspection client credentials");
    assert_eq!(status(&server, "second-token").await.status(), 200);
    let logs = server.server.logs.lines().join("\n");
    assert!(
        !logs.contains(SECRET) && !logs.contains("rotated-secret"),
        "a secret reached the log"
    );
    std::fs::remove_file(&file).unwrap();
}
