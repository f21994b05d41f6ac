//! Who may call, and from where, over the real protocol: static tokens and JWTs at the HTTP
//! edge with the challenges the MCP authorization spec asks for, protected-resource metadata,
//! per-tool scopes over HTTP and stdio, DNS-rebinding protection and the body limit.
//! No token may ever reach a log line.

mod support;

use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use support::{
    Client, FakeUpstream, Generation, HttpServer, Server, StdioServer,
    jwt::{self, Jwks, SigningKey},
    text,
    tools::tool_names,
};

const ALICE: &str = "alice-token-0123456789"; // mcp:tools mcp:admin
const BOB: &str = "bob-token-0123456789ab"; // mcp:tools
const CAROL: &str = "carol-token-0123456789"; // no scopes
const WRONG: &str = "wrong-token-0123456789";

fn static_env() -> Vec<(&'static str, String)> {
    let tokens = format!("{ALICE} alice mcp:tools mcp:admin; {BOB} bob mcp:tools\n{CAROL} carol");
    vec![
        ("MCP_AUTH", "static".into()),
        ("MCP_AUTH_TOKENS", tokens),
        ("MCP_REQUIRED_SCOPES", "mcp:tools".into()),
    ]
}

async fn start(upstream: &FakeUpstream, env: &[(&'static str, String)]) -> HttpServer {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    HttpServer::start(upstream, &env).await
}

fn www_authenticate(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .expect("a WWW-Authenticate challenge")
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asserts no secret appears anywhere in a server's stderr.
fn assert_no_secret_logged(server: &HttpServer, secrets: &[&str]) {
    let logs = server.server.logs.lines().join("\n");
    for secret in secrets {
        assert!(!logs.contains(secret), "a token reached the logs");
    }
}

/// The tools a caller without the admin scope is not shown, given its list and the admin's:
/// its list is the admin's minus these, in the same order, and `server_status` (the example
/// of a tool that needs a scope) is among them.
fn hidden_from(caller: &[String], admin: &[String]) -> Vec<String> {
    let (shown, hidden): (Vec<_>, Vec<_>) = admin.iter().cloned().partition(|t| caller.contains(t));
    assert_eq!(
        shown, caller,
        "a caller sees only tools the admin sees, in the same order"
    );
    assert!(hidden.iter().any(|t| t == "server_status"), "{caller:?}");
    hidden
}

/// `subject`'s client calls the admin tool: it answers, and its log line names the subject.
async fn admin_tool_answers(client: Client, server: &Server, subject: &str) {
    let status = client
        .call_tool(CallToolRequestParams::new("server_status"))
        .await
        .unwrap();
    assert_eq!(status.is_error, Some(false), "{subject}: {status:?}");
    client.cancel().await.unwrap();
    let calls = server.logs.events("request");
    assert!(
        calls
            .iter()
            .any(|l| l["subject"] == subject && l["name"] == "server_status"),
        "{subject}: {calls:#?}"
    );
}

#[tokio::test]
async fn static_tokens_get_the_challenges_the_spec_asks_for() {
    let upstream = FakeUpstream::start().await;
    let server = start(&upstream, &static_env()).await;
    let http = reqwest::Client::new();

    // No token: a plain Bearer challenge with the scope needed and no error code. Static
    // tokens come from no authorization server, so nothing points clients at OAuth metadata
    // (they would try to register with this server and fail confusingly).
    let response = server.post(&http, None, "tools/list", json!({})).await;
    assert_eq!(response.status(), 401);
    let challenge = www_authenticate(&response);
    assert_eq!(challenge, "Bearer realm=\"mcp\", scope=\"mcp:tools\"");
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        assert_eq!(reqwest::get(server.url(path)).await.unwrap().status(), 404, "{path}");
    }

    // A wrong token: 401 invalid_token.
    let response = server.post(&http, Some(WRONG), "tools/list", json!({})).await;
    assert_eq!(response.status(), 401);
    let challenge = www_authenticate(&response);
    assert!(challenge.starts_with("Bearer realm=\"mcp\""), "{challenge}");
    assert!(!challenge.contains("resource_metadata"), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    // A malformed Authorization header is no token at all.
    let response = http
        .post(server.url("/mcp"))
        .header("authorization", "Basic YWxpY2U6cHc=")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Tokens in the query string are refused even when valid.
    let response = http
        .post(format!("{}?access_token={ALICE}", server.url("/mcp")))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(www_authenticate(&response).contains("error=\"invalid_request\""));

    // A valid token without the required scope: 403 insufficient_scope naming it.
    let response = server.post(&http, Some(CAROL), "tools/list", json!({})).await;
    assert_eq!(response.status(), 403);
    let challenge = www_authenticate(&response);
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"mcp:tools\""),
        "{challenge}"
    );

    // Bob may list tools, but calling the privileged one needs its scope: 403 naming it.
    let response = server.post(&http, Some(BOB), "tools/list", json!({})).await;
    assert_eq!(response.status(), 200);
    let response = server
        .post(
            &http,
            Some(BOB),
            "tools/call",
            json!({ "name": "server_status", "arguments": {} }),
        )
        .await;
    assert_eq!(response.status(), 403);
    let challenge = www_authenticate(&response);
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"mcp:tools mcp:admin\""),
        "{challenge}"
    );

    let failures = server.server.logs.events("auth_failed");
    assert_eq!(failures.len(), 1, "one refused token: {failures:?}");
    assert_no_secret_logged(&server, &[ALICE, BOB, CAROL, WRONG]);
}

#[tokio::test]
async fn the_privileged_tool_is_hidden_and_refused_without_its_scope_and_allowed_with_it() {
    let upstream = FakeUpstream::start().await;
    let server = start(&upstream, &static_env()).await;
    for generation in [Generation::Stateless, Generation::Handshake20251125] {
        let alice = server.connect_as(generation, ALICE).await;
        let admin_tools = tool_names(&alice).await;
        let status = alice
            .call_tool(CallToolRequestParams::new("server_status"))
            .await
            .unwrap();
        assert_eq!(status.is_error, Some(false), "{generation:?}: {status:?}");
        alice.cancel().await.unwrap();

        // Bob sees the admin's list minus the tools that need a scope, and may call none.
        let bob = server.connect_as(generation, BOB).await;
        for tool in hidden_from(&tool_names(&bob).await, &admin_tools) {
            let refused = bob.call_tool(CallToolRequestParams::new(tool.clone())).await;
            assert!(refused.is_err(), "{generation:?}: bob may not call {tool}");
        }
        bob.cancel().await.unwrap();
    }
    let calls = server.server.logs.events("request");
    let status_call = calls
        .iter()
        .find(|l| l["name"] == "server_status" && l["outcome"] == "ok")
        .expect("a logged call");
    assert_eq!(status_call["subject"], "alice", "the log names the subject");
    assert!(calls.iter().any(|l| l["subject"] == "bob"));
    assert_no_secret_logged(&server, &[ALICE, BOB]);
}

#[tokio::test]
async fn stdio_takes_its_principal_from_the_environment() {
    let upstream = FakeUpstream::start().await;
    let env = static_env();
    let base: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let mut with_token = base.clone();
    with_token.push(("MCP_AUTH_TOKEN", ALICE));
    let mut alice = StdioServer::start(&upstream, &with_token).await;
    let client = alice.connect(Generation::Handshake20251125).await;
    let admin_tools = tool_names(&client).await;
    admin_tool_answers(client, &alice.server, "alice").await;
    assert!(
        !alice.server.logs.lines().join("\n").contains(ALICE),
        "a token reached the logs"
    );

    // Without a token, the tools that need a scope are hidden, and refused if called anyway.
    let mut anonymous = StdioServer::start(&upstream, &base).await;
    let client = anonymous.connect(Generation::Stateless).await;
    for tool in hidden_from(&tool_names(&client).await, &admin_tools) {
        let refused = client
            .call_tool(CallToolRequestParams::new(tool.clone()))
            .await
            .unwrap();
        assert_eq!(refused.is_error, Some(true), "{tool}");
        let needs = match tool.as_str() {
            "server_status" => "needs the 'mcp:admin' scope".to_owned(),
            _ => format!("tool '{tool}' needs the '"),
        };
        assert!(text(&refused).contains(&needs), "{}", text(&refused));
    }
    client.cancel().await.unwrap();
    let denied = anonymous
        .server
        .logs
        .events("request")
        .into_iter()
        .find(|l| l["name"] == "server_status")
        .unwrap();
    assert_eq!(
        (denied["decision"].as_str(), denied["subject"].as_str()),
        (Some("denied"), Some("anonymous"))
    );

    let mut wrong = base.clone();
    wrong.push(("MCP_AUTH_TOKEN", WRONG));
    let mut refused = StdioServer::start(&upstream, &wrong).await;
    assert_eq!(refused.server.exit_code(std::time::Duration::from_secs(10)).await, 2);
    let stderr = refused.server.logs.lines().join("\n");
    assert!(
        stderr.contains("MCP_AUTH_TOKEN") && stderr.contains("unknown token") && !stderr.contains(WRONG),
        "{stderr}"
    );
}

#[tokio::test]
async fn protected_resource_metadata_is_served_at_both_well_known_paths() {
    let upstream = FakeUpstream::start().await;
    let jwks = Jwks::start().await;
    let env = vec![
        ("MCP_AUTH", "jwt".to_owned()),
        ("MCP_JWT_JWKS_URL", jwks.url()),
        ("MCP_JWT_ISSUER", jwt::ISSUER.to_owned()),
        ("MCP_REQUIRED_SCOPES", "mcp:tools".to_owned()),
        ("MCP_PUBLIC_URL", "https://mcp.example.com".into()),
        ("MCP_AUTHORIZATION_SERVERS", "https://login.example.com".into()),
    ];
    let server = start(&upstream, &env).await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let document: Value = response.json().await.unwrap();
        assert_eq!(document["resource"], "https://mcp.example.com/mcp", "{path}");
        assert_eq!(document["authorization_servers"], json!(["https://login.example.com"]));
        // The required scope first, then each scope a tool needs (server_status's among
        // them), once.
        let scopes: Vec<_> = document["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(scopes[0], "mcp:tools", "{path}");
        assert!(scopes.contains(&"mcp:admin"), "{path}: {scopes:?}");
        let mut distinct = scopes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), scopes.len(), "{path}: {scopes:?}");
        assert_eq!(document["bearer_methods_supported"], json!(["header"]));
    }
    let response = server
        .post(&reqwest::Client::new(), None, "tools/list", json!({}))
        .await;
    assert!(
        www_authenticate(&response)
            .contains(r#"resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#)
    );
}

#[tokio::test]
async fn evil_host_and_origin_are_refused_and_oversized_bodies_get_413() {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[("MCP_MAX_BODY_BYTES", "2048")]).await;
    let http = reqwest::Client::new();
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let send = |host: Option<&str>, origin: Option<&str>, body: String| {
        let mut request = http
            .post(server.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        if let Some(host) = host {
            request = request.header("host", host);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.body(body).send()
    };
    let evil_host = send(Some("evil.example.com"), None, ping.into()).await.unwrap();
    assert_eq!(evil_host.status(), 403);
    assert_eq!(evil_host.json::<Value>().await.unwrap()["error"], "host_not_allowed");
    let evil_origin = send(None, Some("https://evil.example.com"), ping.into()).await.unwrap();
    assert_eq!(evil_origin.status(), 403);
    assert_eq!(
        evil_origin.json::<Value>().await.unwrap()["error"],
        "origin_not_allowed"
    );
    let local_origin = send(None, Some("http://localhost:6274"), ping.into()).await.unwrap();
    assert_ne!(
        local_origin.status(),
        403,
        "a loopback origin is fine on a loopback server"
    );

    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    assert_eq!(send(None, None, huge).await.unwrap().status(), 413);
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200,
        "health is open and unaffected"
    );
    let client = server.connect(Generation::Stateless).await;
    assert!(!client.list_all_tools().await.unwrap().is_empty(), "still serving");
}

const PUBLIC_URL: &str = "http://mcp.test";
const AUDIENCE: &str = "http://mcp.test/mcp";

async fn jwt_server(upstream: &FakeUpstream, jwks: &Jwks) -> HttpServer {
    jwt_server_with(upstream, jwks, "0").await
}

async fn jwt_server_with(upstream: &FakeUpstream, jwks: &Jwks, cooldown_s: &str) -> HttpServer {
    HttpServer::start(
        upstream,
        &[
            ("MCP_AUTH", "jwt"),
            ("MCP_JWT_JWKS_URL", &jwks.url()),
            ("MCP_JWT_ISSUER", jwt::ISSUER),
            ("MCP_JWT_ALGORITHMS", "ES256"),
            ("MCP_JWT_LEEWAY", "5"),
            ("MCP_JWKS_REFETCH_COOLDOWN", cooldown_s),
            ("MCP_PUBLIC_URL", PUBLIC_URL),
            ("MCP_REQUIRED_SCOPES", "mcp:tools"),
            // Random key ids come fast here; failed authentications are not what is tested.
            ("MCP_AUTH_FAILURE_LIMIT", "1000/s:1000"),
        ],
    )
    .await
}

/// `n` requests at once, each with a token under a key id nobody published; their statuses
/// and the longest wait.
async fn unknown_kids(server: &HttpServer, n: usize) -> (Vec<u16>, std::time::Duration) {
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    let calls = (0..n).map(|i| {
        let token = SigningKey::generate(&format!("random-{i}")).mint(jwt::claims("eve", "mcp:tools", AUDIENCE));
        let (http, server) = (&http, &server);
        async move {
            server
                .post(http, Some(&token), "tools/list", json!({}))
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(calls).await;
    (statuses, started.elapsed())
}

#[tokio::test]
async fn an_unreachable_jwks_is_fetched_once_per_cooldown_and_cached_keys_keep_working() {
    let upstream = FakeUpstream::start().await;
    let jwks = Jwks::start().await;
    let key = SigningKey::generate("known");
    jwks.publish(&key);
    let server = jwt_server_with(&upstream, &jwks, "30").await;
    let http = reqwest::Client::new();
    let good = key.mint(jwt::claims("dana", "mcp:tools", AUDIENCE));
    assert_eq!(
        server.post(&http, Some(&good), "tools/list", json!({})).await.status(),
        200
    );
    assert_eq!(jwks.fetches(), 1);

    // The provider fails; 200 random key ids cost it nothing: the cooldown since the last
    // fetch holds, and each caller is answered at once.
    jwks.set_mode(jwt::Mode::Failing);
    let (statuses, took) = unknown_kids(&server, 200).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    assert_eq!(jwks.fetches(), 1, "no fetch inside the cooldown");
    // The cached key still verifies.
    assert_eq!(
        server.post(&http, Some(&good), "tools/list", json!({})).await.status(),
        200
    );
}

#[tokio::test]
async fn a_jwks_that_never_answered_is_tried_once_per_cooldown_and_answers_503() {
    let upstream = FakeUpstream::start().await;
    let jwks = Jwks::start().await;
    jwks.set_mode(jwt::Mode::Failing);
    let server = jwt_server_with(&upstream, &jwks, "30").await;
    let (statuses, _) = unknown_kids(&server, 200).await;
    assert!(
        statuses.iter().all(|s| *s == 503),
        "no keys at all: try again later: {statuses:?}"
    );
    assert_eq!(jwks.fetches(), 1, "a failed fetch counts toward the cooldown");
}

#[tokio::test]
async fn a_hanging_jwks_holds_callers_for_one_fetch_not_a_queue_of_them() {
    let upstream = FakeUpstream::start().await;
    let jwks = Jwks::start().await;
    jwks.set_mode(jwt::Mode::Hanging);
    let server = jwt_server_with(&upstream, &jwks, "30").await;
    let (statuses, took) = unknown_kids(&server, 20).await;
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    // Everyone is answered when the one fetch gives up (its time limit is 5 s), not one
    // fetch after another.
    assert!(took < std::time::Duration::from_secs(8), "{took:?}");
    assert_eq!(jwks.fetches(), 1);
    // Inside the cooldown, a caller is answered at once.
    let (statuses, took) = unknown_kids(&server, 1).await;
    assert_eq!((statuses[0], took < std::time::Duration::from_secs(1)), (503, true));
}

#[tokio::test]
async fn jwts_are_checked_for_signature_algorithm_issuer_audience_and_time() {
    let upstream = FakeUpstream::start().await;
    let jwks = Jwks::start().await;
    let key = SigningKey::generate("key-1");
    jwks.publish(&key);
    let server = jwt_server(&upstream, &jwks).await;
    let http = reqwest::Client::new();
    let now = jwt::now();
    let good = jwt::claims("dana", "mcp:tools", AUDIENCE);
    let with = |changes: Value| {
        let mut claims = good.clone();
        claims
            .as_object_mut()
            .unwrap()
            .extend(changes.as_object().unwrap().clone());
        claims
    };

    let valid = key.mint(good.clone());
    let response = server.post(&http, Some(&valid), "tools/list", json!({})).await;
    assert_eq!(response.status(), 200);

    let other_key = SigningKey::generate("key-1"); // same kid, different key: a forgery
    let refused = [
        ("expired", key.mint(with(json!({ "exp": now - 60 }))), "token expired"),
        (
            "not yet valid",
            key.mint(with(json!({ "nbf": now + 120 }))),
            "not yet valid",
        ),
        (
            "wrong issuer",
            key.mint(with(json!({ "iss": "https://evil.test" }))),
            "issuer",
        ),
        (
            "wrong audience",
            key.mint(with(json!({ "aud": "https://other.test/mcp" }))),
            "audience",
        ),
        ("no audience", key.mint(with(json!({ "aud": null }))), "token"),
        ("alg none", jwt::unsigned(&good), "malformed token"),
        ("HS256 against a JWKS", jwt::hs256(&good), "not accepted"),
        ("forged signature", other_key.mint(good.clone()), "signature"),
        ("garbage", "not.a.jwt".to_owned(), "malformed token"),
    ];
    for (case, token, reason) in &refused {
        let response = server.post(&http, Some(token), "tools/list", json!({})).await;
        assert_eq!(response.status(), 401, "{case}");
        let challenge = www_authenticate(&response);
        assert!(
            challenge.contains("error=\"invalid_token\"") && challenge.contains(reason),
            "{case}: {challenge}"
        );
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"{PUBLIC_URL}/.well-known/oauth-protected-resource/mcp\""
            )),
            "{case}"
        );
    }

    // Missing scope: 403; scopes read from `scp` too.
    let no_scope = key.mint(with(json!({ "scope": "" })));
    assert_eq!(
        server
            .post(&http, Some(&no_scope), "tools/list", json!({}))
            .await
            .status(),
        403
    );
    let admin = key.mint(with(
        json!({ "sub": "erin", "scope": null, "scp": ["mcp:tools", "mcp:admin"] }),
    ));
    let client = server.connect_as(Generation::Stateless, &admin).await;
    admin_tool_answers(client, &server.server, "erin").await;

    let mut secrets: Vec<&str> = refused.iter().map(|(_, t, _)| t.as_str()).collect();
    secrets.extend([valid.as_str(), admin.as_str(), no_scope.as_str()]);
    assert_no_secret_logged(&server, &secrets);
}

#[tokio::test]
async fn an_unknown_key_id_refetches_the_jwks() {
    let upstream = FakeUpstream::start().await;
    let jwks = Jwks::start().await;
    let first = SigningKey::generate("first");
    jwks.publish(&first);
    let server = jwt_server(&upstream, &jwks).await;
    let http = reqwest::Client::new();
    let token = first.mint(jwt::claims("dana", "mcp:tools", AUDIENCE));
    assert_eq!(
        server.post(&http, Some(&token), "tools/list", json!({})).await.status(),
        200
    );
    assert_eq!(
        server.post(&http, Some(&token), "tools/list", json!({})).await.status(),
        200
    );
    assert_eq!(jwks.fetches(), 1, "keys are cached");

    // The provider rotates in a new key; a token signed with it makes the server refetch.
    let second = SigningKey::generate("second");
    jwks.publish(&second);
    let rotated = second.mint(jwt::claims("dana", "mcp:tools", AUDIENCE));
    assert_eq!(
        server
            .post(&http, Some(&rotated), "tools/list", json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(jwks.fetches(), 2);

    // A kid nobody published: refetched once more, then refused.
    let stranger = SigningKey::generate("stranger").mint(jwt::claims("dana", "mcp:tools", AUDIENCE));
    let response = server.post(&http, Some(&stranger), "tools/list", json!({})).await;
    assert_eq!(response.status(), 401);
    assert!(www_authenticate(&response).contains("unknown key id"));
    assert_eq!(jwks.fetches(), 3);
}

#[tokio::test]
async fn a_configured_public_key_verifies_jwts_without_a_jwks() {
    let upstream = FakeUpstream::start().await;
    let key = SigningKey::generate("pem");
    let dir = std::env::temp_dir().join(format!("mcp-auth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem = dir.join("public.pem");
    std::fs::write(&pem, key.public_pem()).unwrap();
    let server = HttpServer::start(
        &upstream,
        &[
            ("MCP_AUTH", "jwt"),
            ("MCP_JWT_PUBLIC_KEY_FILE", pem.to_str().unwrap()),
            ("MCP_JWT_ISSUER", jwt::ISSUER),
            ("MCP_JWT_ALGORITHMS", "ES256"),
            ("MCP_PUBLIC_URL", PUBLIC_URL),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let token = key.mint(jwt::claims("dana", "", AUDIENCE));
    assert_eq!(
        server.post(&http, Some(&token), "tools/list", json!({})).await.status(),
        200
    );
    let forged = SigningKey::generate("pem").mint(jwt::claims("dana", "", AUDIENCE));
    assert_eq!(
        server
            .post(&http, Some(&forged), "tools/list", json!({}))
            .await
            .status(),
        401
    );

    // The key rotates: the file is rewritten and SIGHUP reloads it, no restart.
    let rotated = SigningKey::generate("pem-2");
    std::fs::write(&pem, rotated.public_pem()).unwrap();
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(server.server.pid(), libc::SIGHUP) }, 0);
    let reloaded = server.server.logs.wait_for("auth_reloaded").await;
    assert_eq!(reloaded["reloaded"], "the JWT public key");
    let new_token = rotated.mint(jwt::claims("dana", "", AUDIENCE));
    assert_eq!(
        server
            .post(&http, Some(&new_token), "tools/list", json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        server.post(&http, Some(&token), "tools/list", json!({})).await.status(),
        401
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_non_loopback_bind_starts_once_auth_hosts_and_public_url_are_set() {
    let upstream = FakeUpstream::start().await;
    let mut env = static_env();
    env.extend([
        ("MCP_BIND", "0.0.0.0:0".into()),
        ("MCP_ALLOWED_HOSTS", "mcp.example.com,127.0.0.1".into()),
        ("MCP_PUBLIC_URL", "https://mcp.example.com".into()),
    ]);
    let mut server = start(&upstream, &env).await;
    let port = server.addr.port();
    server.addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let bob = server.connect_as(Generation::Stateless, BOB).await;
    assert!(!bob.list_all_tools().await.unwrap().is_empty());
    let http = reqwest::Client::new();
    let response = http
        .post(server.url("/mcp"))
        .header("host", "localhost")
        .bearer_auth(BOB)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "off loopback, only the listed hosts are served");
}

#[tokio::test]
async fn sighup_reloads_the_tokens_file_and_keeps_the_old_tokens_when_the_new_file_is_bad() {
    let upstream = FakeUpstream::start().await;
    let file = std::env::temp_dir().join(format!("tokens-{}-{}", std::process::id(), line!()));
    std::fs::write(&file, format!("{ALICE} alice mcp:tools\n")).unwrap();
    let env = vec![
        ("MCP_AUTH", "static".to_owned()),
        ("MCP_AUTH_TOKENS_FILE", file.display().to_string()),
    ];
    let server = start(&upstream, &env).await;
    let http = reqwest::Client::new();
    let status = |token| {
        let (http, server) = (&http, &server);
        async move { server.post(http, Some(token), "tools/list", json!({})).await.status() }
    };
    let hangup = || {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(server.server.pid(), libc::SIGHUP) }, 0);
    };
    assert_eq!(status(ALICE).await, 200);
    assert_eq!(status(BOB).await, 401);

    // A call under way when the file changes keeps the principal it was given.
    upstream.set_delay(std::time::Duration::from_millis(600));
    let client = server.connect_as(Generation::Stateless, ALICE).await;
    let data_url = upstream.data_url();
    let in_flight = tokio::spawn(async move {
        let result = support::upstream::fetch(&client, &data_url).await;
        client.cancel().await.unwrap();
        result
    });
    upstream.wait_for_data_hits(1).await;

    std::fs::write(&file, format!("# rotated\n{BOB} bob mcp:tools\n")).unwrap();
    hangup();
    let reloaded = server.server.logs.wait_for("auth_reloaded").await;
    assert_eq!(reloaded["reloaded"], "1 static token entries");
    assert_eq!(status(ALICE).await, 401, "the old token is gone");
    assert_eq!(status(BOB).await, 200, "the new one works");
    assert_eq!(in_flight.await.unwrap().is_error, Some(false));

    // A file that does not parse: the tokens stay as they were, and the log says why.
    std::fs::write(&file, "lonely-token-without-subject\n").unwrap();
    hangup();
    let failed = server.server.logs.wait_for("auth_reload_failed").await;
    assert!(failed["error"].as_str().unwrap().contains("entry 1"), "{failed}");
    assert_eq!(status(BOB).await, 200);
    let logged = server.server.logs.lines().join("\n");
    for secret in [ALICE, BOB, "lonely-token-without-subject"] {
        assert!(!logged.contains(secret), "a token reached the log");
    }
    std::fs::remove_file(&file).unwrap();
}
