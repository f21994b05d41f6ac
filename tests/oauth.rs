//! JWT authentication end to end, with a real authorization server and a real client's OAuth:
//! oidc-provider (interop/oauth/provider.mjs) issues the tokens, and the TypeScript MCP SDK's
//! client (interop/oauth/client.mjs) goes from the server's 401 through its protected-resource
//! metadata, dynamic registration and an authorization code with PKCE to a tool call, and from
//! a 403 insufficient_scope to the wider scope. Tokens for another resource are refused. Opaque
//! tokens are checked at the same provider's introspection endpoint (`MCP_AUTH=introspection`).
//! Run by `make oauth-check`, which installs both (pinned in interop/package.json) and puts
//! `oauth-provider`, `oauth-client` and Node 22 on PATH.

mod support;

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use reqwest::Url;
use serde_json::{Value, json};
use support::{FakeUpstream, HttpServer};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStdin, Command},
};

const MISSING: &str = "run this test with `make oauth-check`, which installs it and puts it on PATH";
/// The scope every caller needs; the admin tool needs more, which its 403 names.
const BASE_SCOPE: &str = "mcp:tools";
/// The login the client types on the provider's sign-in page: the tokens' subject.
const LOGIN: &str = "mcp-user";

/// oidc-provider on an ephemeral loopback port, stopped when dropped.
struct Provider {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub registration_endpoint: String,
    pub introspection_endpoint: String,
    /// The confidential client allowed to introspect any token (RFC 7662).
    pub introspector_id: String,
    pub introspector_secret: String,
    /// Static clients of the client credentials grant: `(id, secret)`. The opaque one's tokens
    /// are opaque (for introspection), the other's JWTs.
    opaque_client: (String, String),
    jwt_client: (String, String),
    stderr: Arc<Mutex<Vec<String>>>,
    child: Child,
    // With --exit-with-stdin, the provider stops when this closes, even if this test is killed.
    _stdin: ChildStdin,
}

impl Provider {
    async fn start() -> Self {
        let mut child = Command::new("oauth-provider")
            .arg("--exit-with-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting `oauth-provider` ({e}): {MISSING}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let collected = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                collected.lock().unwrap().push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
            .await
            .expect("oauth-provider listening within 30 s")
            .unwrap()
            .unwrap_or_else(|| panic!("oauth-provider exited: {}", stderr.lock().unwrap().join("\n")));
        // Anything more on stdout joins the log, and a closed pipe never stops the provider.
        let collected = stderr.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                collected.lock().unwrap().push(line);
            }
        });
        let ready: Value = serde_json::from_str(&ready).unwrap_or_else(|e| panic!("not JSON ({e}): {ready}"));
        let field = |key: &str| {
            ready[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key}: {ready}"))
                .to_owned()
        };
        let client = |id: &str| {
            let secret = ready["clients"][id]
                .as_str()
                .unwrap_or_else(|| panic!("no client {id}: {ready}"));
            (id.to_owned(), secret.to_owned())
        };
        let (introspector_id, introspector_secret) = client("mcp-introspector");
        let stdin = child.stdin.take().unwrap();
        Self {
            issuer: field("issuer"),
            jwks_uri: field("jwks_uri"),
            token_endpoint: field("token_endpoint"),
            registration_endpoint: field("registration_endpoint"),
            introspection_endpoint: field("introspection_endpoint"),
            introspector_id,
            introspector_secret,
            opaque_client: client("opaque-client"),
            jwt_client: client("jwt-client"),
            stderr,
            child,
            _stdin: stdin,
        }
    }

    /// Stops the provider, as an outage would.
    async fn stop(&mut self) {
        self.child.kill().await.unwrap();
    }

    fn logs(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

/// An access token from the client credentials grant, for `resource` (RFC 8707) with `scope`.
async fn client_credentials(
    provider: &Provider,
    (id, secret): &(String, String),
    resource: &str,
    scope: &str,
) -> String {
    // reqwest is built without its form feature: the query encoder makes the same body.
    let mut form = Url::parse("http://form.invalid/").unwrap();
    form.query_pairs_mut()
        .append_pair("grant_type", "client_credentials")
        .append_pair("resource", resource)
        .append_pair("scope", scope);
    let response = reqwest::Client::new()
        .post(&provider.token_endpoint)
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.query().unwrap().to_owned())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("POST to the token endpoint");
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON token response");
    assert_eq!(status, 200, "{id}'s token for {resource}: {body}");
    body["access_token"].as_str().expect("an access token").to_owned()
}

/// An opaque access token for `resource` with `scope`: only introspection can tell what it is.
async fn opaque_token(provider: &Provider, resource: &str, scope: &str) -> String {
    client_credentials(provider, &provider.opaque_client, resource, scope).await
}

/// The provider's RFC 7662 answer on `token`, asked as the introspector.
async fn introspect(provider: &Provider, token: &str) -> Value {
    let mut form = Url::parse("http://form.invalid/").unwrap();
    form.query_pairs_mut().append_pair("token", token);
    reqwest::Client::new()
        .post(&provider.introspection_endpoint)
        .basic_auth(&provider.introspector_id, Some(&provider.introspector_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.query().unwrap().to_owned())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("POST to the introspection endpoint")
        .json()
        .await
        .expect("a JSON introspection response")
}

/// The server in JWT mode, trusting `provider`; its resource URL is `server.url("/mcp")`.
async fn start_server(upstream: &FakeUpstream, provider: &Provider) -> HttpServer {
    start_server_with(
        upstream,
        &[
            ("MCP_AUTH", "jwt"),
            ("MCP_JWT_ISSUER", &provider.issuer),
            // On loopback: the harness's MCP_UPSTREAM_ALLOW_PRIVATE lets the key fetch reach it.
            ("MCP_JWT_JWKS_URL", &provider.jwks_uri),
        ],
    )
    .await
}

/// The server with `auth` settings; its resource URL is `server.url("/mcp")`: on loopback
/// without `MCP_PUBLIC_URL`, the address it bound is its URL and its tokens' audience.
async fn start_server_with(upstream: &FakeUpstream, auth: &[(&str, &str)]) -> HttpServer {
    let mut env = vec![("MCP_REQUIRED_SCOPES", BASE_SCOPE)];
    env.extend_from_slice(auth);
    HttpServer::start(upstream, &env).await
}

/// `oauth-client <url> <args>`: its JSON report, once it succeeded.
async fn oauth_client(provider: &Provider, url: &str, args: &[&str]) -> Value {
    let run = Command::new("oauth-client")
        .arg(url)
        .args(args)
        .args(["--login", LOGIN])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("oauth-client finished within 90 s")
        .unwrap_or_else(|e| panic!("running `oauth-client` ({e}): {MISSING}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("oauth-client {args:?} printed no JSON ({e}): {stdout}\n{stderr}"));
    assert!(
        out.status.success(),
        "oauth-client {args:?} failed: {report:#}\n{stderr}\nprovider's log:\n{}",
        provider.logs()
    );
    report
}

/// The HTTP exchanges in a client report: `(method, url, status, WWW-Authenticate)`.
fn exchanges(report: &Value) -> Vec<(&str, &str, u64, &str)> {
    report["http"]
        .as_array()
        .expect("an http trace")
        .iter()
        .map(|h| {
            (
                h["method"].as_str().unwrap_or_default(),
                h["url"].as_str().unwrap_or_default(),
                h["status"].as_u64().unwrap_or_default(),
                h["www_authenticate"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

/// The tool names in a client's `list` report.
fn listed(report: &Value) -> Vec<String> {
    let tools = report["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {report}"));
    tools.iter().map(|t| t.as_str().unwrap().to_owned()).collect()
}

/// The access tokens a client obtained, as their JWT claims.
fn token_claims(report: &Value) -> Vec<&Value> {
    report["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| &t["claims"])
        .collect()
}

/// A `param="value"` of a challenge.
fn challenge_param<'a>(challenge: &'a str, param: &str) -> Option<&'a str> {
    let start = challenge.find(&format!("{param}=\""))? + param.len() + 2;
    challenge[start..].split('"').next()
}

#[tokio::test]
#[ignore = "needs oidc-provider and the TypeScript MCP SDK on PATH: make oauth-check"]
async fn the_sdk_client_finds_the_provider_registers_and_calls_a_tool() {
    let provider = Provider::start().await;
    let upstream = FakeUpstream::start().await;
    let server = start_server(&upstream, &provider).await;
    let resource = server.url("/mcp");

    let convert = r#"{"temperature":{"value":100,"unit":"celsius"},"to":"fahrenheit"}"#;
    let report = oauth_client(&provider, &resource, &["call", "convert_temperature", convert]).await;
    let result = &report["result"];
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["value"].as_f64(), Some(212.0), "{result}");

    // The way there: 401 pointing at the metadata, the metadata, the provider's metadata,
    // registration, the token, and the MCP requests that then succeed.
    let http = exchanges(&report);
    let (method, url, status, challenge) = http[0];
    assert_eq!((method, url, status), ("POST", resource.as_str(), 401), "{http:#?}");
    let metadata_url = server.url("/.well-known/oauth-protected-resource/mcp");
    assert_eq!(
        challenge_param(challenge, "resource_metadata"),
        Some(metadata_url.as_str())
    );
    assert_eq!(challenge_param(challenge, "scope"), Some(BASE_SCOPE), "{challenge}");
    let step = |method: &str, url: &str| {
        http.iter()
            .position(|(m, u, status, _)| *m == method && u.starts_with(url) && *status < 300)
            .unwrap_or_else(|| panic!("no successful {method} {url}: {http:#?}"))
    };
    let metadata = step("GET", &metadata_url);
    let provider_metadata = step("GET", &format!("{}/.well-known/", provider.issuer));
    let registration = step("POST", &provider.registration_endpoint);
    let token = step("POST", &provider.token_endpoint);
    assert!(metadata < provider_metadata && provider_metadata < registration && registration < token);
    let after: Vec<_> = http[token + 1..].iter().filter(|(_, u, ..)| *u == resource).collect();
    assert!(
        !after.is_empty() && after.iter().all(|(.., status, _)| *status < 300),
        "{http:#?}"
    );

    // One authorization: for this resource, with PKCE, through the login and consent pages.
    let authorizations = report["authorizations"].as_array().unwrap();
    assert_eq!(authorizations.len(), 1, "{report:#}");
    assert_eq!(authorizations[0]["resource"], resource.as_str());
    assert_eq!(authorizations[0]["scope"], BASE_SCOPE);
    assert_eq!(authorizations[0]["code_challenge_method"], "S256");
    assert_eq!(authorizations[0]["pages"], json!(["login", "consent"]));

    // A JWT for this server alone, from this provider, with only the scope asked for.
    let claims = token_claims(&report);
    assert_eq!(claims.len(), 1, "{report:#}");
    assert_eq!(claims[0]["aud"], resource.as_str());
    assert_eq!(claims[0]["iss"], provider.issuer.as_str());
    assert_eq!(claims[0]["scope"], BASE_SCOPE);
    assert_eq!(claims[0]["sub"], LOGIN);

    // The server knew the caller by the token's subject.
    let calls = server.server.logs.events("request");
    assert!(
        calls
            .iter()
            .any(|l| l["name"] == "convert_temperature" && l["subject"] == LOGIN && l["outcome"] == "ok"),
        "{calls:#?}"
    );
}

#[tokio::test]
#[ignore = "needs oidc-provider and the TypeScript MCP SDK on PATH: make oauth-check"]
async fn the_sdk_client_steps_up_to_the_scope_a_403_names() {
    let provider = Provider::start().await;
    let upstream = FakeUpstream::start().await;
    let server = start_server(&upstream, &provider).await;
    let resource = server.url("/mcp");

    // The admin tool is the one listed to a caller with every scope the server names but not
    // to one with the base scope.
    let metadata: Value = reqwest::get(server.url("/.well-known/oauth-protected-resource/mcp"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scopes: Vec<&str> = metadata["scopes_supported"]
        .as_array()
        .unwrap_or_else(|| panic!("no scopes_supported: {metadata}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let every_scope = scopes.join(" ");
    let base = listed(&oauth_client(&provider, &resource, &["list"]).await);
    let all = listed(&oauth_client(&provider, &resource, &["list", "--scope", &every_scope]).await);
    let hidden: Vec<_> = all.iter().filter(|t| !base.contains(t)).collect();
    assert!(base.iter().all(|t| all.contains(t)), "{base:?} {all:?}");
    let admin_tool = hidden
        .first()
        .unwrap_or_else(|| panic!("no tool needs more than {BASE_SCOPE}: {all:?}"));

    // Authorized for the base scope, the call gets 403 insufficient_scope naming the scope it
    // needs; the client authorizes again for it, and the call goes through.
    let report = oauth_client(&provider, &resource, &["call", admin_tool]).await;
    assert_eq!(report["result"]["isError"], false, "{report:#}");
    let http = exchanges(&report);
    let refused = http
        .iter()
        .find(|(m, u, status, _)| *m == "POST" && *u == resource && *status == 403)
        .unwrap_or_else(|| panic!("no 403: {http:#?}"));
    let challenge = refused.3;
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert_eq!(
        challenge_param(challenge, "error"),
        Some("insufficient_scope"),
        "{challenge}"
    );
    let needed = challenge_param(challenge, "scope").unwrap_or_else(|| panic!("no scope: {challenge}"));
    assert!(needed.split(' ').any(|s| s == BASE_SCOPE), "{challenge}");
    assert!(needed.split(' ').any(|s| s != BASE_SCOPE), "{challenge}");
    let last = http.iter().rev().find(|(_, u, ..)| *u == resource).unwrap();
    assert_eq!(last.2, 200, "{http:#?}");

    let authorizations = report["authorizations"].as_array().unwrap();
    let requested: Vec<_> = authorizations.iter().map(|a| a["scope"].as_str().unwrap()).collect();
    assert_eq!(requested, [BASE_SCOPE, needed], "{report:#}");
    // Signed in already: only consent to the wider scope is asked.
    assert_eq!(authorizations[1]["pages"], json!(["consent"]));
    let claims = token_claims(&report);
    let granted: Vec<_> = claims.iter().map(|c| c["scope"].as_str().unwrap()).collect();
    assert_eq!(granted, [BASE_SCOPE, needed], "{report:#}");
    assert!(claims.iter().all(|c| c["aud"] == resource.as_str()), "{report:#}");

    let calls = server.server.logs.events("request");
    assert!(
        calls
            .iter()
            .any(|l| l["name"] == admin_tool.as_str() && l["subject"] == LOGIN && l["outcome"] == "ok"),
        "{calls:#?}"
    );
}

#[tokio::test]
#[ignore = "needs oidc-provider on PATH: make oauth-check"]
async fn a_token_for_another_resource_is_refused() {
    let provider = Provider::start().await;
    let upstream = FakeUpstream::start().await;
    let server = start_server(&upstream, &provider).await;
    let http = reqwest::Client::new();

    // The same provider, client and scope: only the audience differs.
    let ours = client_credentials(&provider, &provider.jwt_client, &server.url("/mcp"), BASE_SCOPE).await;
    let response = server.post(&http, Some(&ours), "tools/list", json!({})).await;
    assert_eq!(response.status(), 200);

    let elsewhere = "https://other.example.com/mcp";
    let theirs = client_credentials(&provider, &provider.jwt_client, elsewhere, BASE_SCOPE).await;
    let response = server.post(&http, Some(&theirs), "tools/list", json!({})).await;
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(
        challenge_param(&challenge, "error"),
        Some("invalid_token"),
        "{challenge}"
    );

    server.server.logs.wait_for("auth_failed").await;
    let logs = server.server.logs.lines().join("\n");
    assert!(
        !logs.contains(&ours) && !logs.contains(&theirs),
        "a token reached the logs"
    );
}

#[tokio::test]
#[ignore = "needs oidc-provider on PATH: make oauth-check"]
async fn opaque_tokens_are_checked_at_the_providers_introspection_endpoint() {
    let mut provider = Provider::start().await;
    let upstream = FakeUpstream::start().await;
    let secret_file = std::env::temp_dir().join(format!("introspector-secret-{}", std::process::id()));
    std::fs::write(&secret_file, &provider.introspector_secret).unwrap();
    let secret_path = secret_file.display().to_string();
    let server = start_server_with(
        &upstream,
        &[
            ("MCP_AUTH", "introspection"),
            ("MCP_AUTHORIZATION_SERVERS", &provider.issuer),
            ("MCP_INTROSPECTION_URL", &provider.introspection_endpoint),
            ("MCP_INTROSPECTION_CLIENT_ID", &provider.introspector_id),
            ("MCP_INTROSPECTION_CLIENT_SECRET_FILE", &secret_path),
        ],
    )
    .await;
    let resource = server.url("/mcp");
    let http = reqwest::Client::new();

    // What the provider says of its opaque tokens (the answer the server checks).
    let token = opaque_token(&provider, &resource, BASE_SCOPE).await;
    assert_eq!(token.split('.').count(), 1, "not opaque: {token}");
    let answer = introspect(&provider, &token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["aud"], resource.as_str(), "{answer}");
    assert_eq!(answer["scope"], BASE_SCOPE, "{answer}");
    assert_eq!(answer["iss"], provider.issuer.as_str(), "{answer}");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(answer["exp"].as_u64().is_some_and(|exp| exp > now), "{answer}");

    // A token for this server works; the caller is the client it was granted to.
    let response = server.post(&http, Some(&token), "tools/list", json!({})).await;
    assert_eq!(response.status(), 200);
    let calls = server.server.logs.events("request");
    let subject = format!("client:{}", provider.opaque_client.0);
    assert!(calls.iter().any(|l| l["subject"] == subject.as_str()), "{calls:#?}");

    // One for another resource, or none the provider issued: 401 invalid_token.
    let theirs = opaque_token(&provider, "https://other.example.com/mcp", BASE_SCOPE).await;
    for (token, reason) in [(theirs.as_str(), "audience"), ("never-issued-token", "not active")] {
        let response = server.post(&http, Some(token), "tools/list", json!({})).await;
        assert_eq!(response.status(), 401, "{reason}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert_eq!(
            challenge_param(&challenge, "error"),
            Some("invalid_token"),
            "{challenge}"
        );
        assert!(challenge.contains(reason), "{challenge}");
    }

    // The provider goes away: a token not checked yet gets 503 at once, not a hang; one
    // already checked goes on working from the cache.
    let unchecked = opaque_token(&provider, &resource, BASE_SCOPE).await;
    provider.stop().await;
    let response = server.post(&http, Some(&unchecked), "tools/list", json!({})).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    server.server.logs.wait_for("introspection_failed").await;
    let response = server.post(&http, Some(&token), "tools/list", json!({})).await;
    assert_eq!(response.status(), 200);

    let logs = server.server.logs.lines().join("\n");
    for secret in [&token, &theirs, &unchecked, &provider.introspector_secret] {
        assert!(!logs.contains(secret.as_str()), "a secret reached the logs");
    }
    std::fs::remove_file(&secret_file).unwrap();
}
