//! A test authorization server's RFC 7662 introspection endpoint on loopback: it insists on
//! this server's client credentials (HTTP Basic), answers each token as the test set it, and
//! counts the calls. The real provider's endpoint is checked by `make oauth-check`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Form, Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://as.test";
pub const CLIENT_ID: &str = "mcp-server";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Serving,
    Failing,
    Hanging,
}

#[derive(Default)]
struct Shared {
    answers: HashMap<String, Value>,
    secret: String,
    calls: usize,
    mode: Option<Mode>,
}

pub struct Introspection {
    addr: std::net::SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

/// An active token's answer: for `audience`, from [`ISSUER`], an hour left.
pub fn active(sub: &str, scope: &str, audience: &str) -> Value {
    json!({
        "active": true, "sub": sub, "scope": scope, "aud": audience, "iss": ISSUER,
        "client_id": "agent", "token_type": "Bearer", "exp": now() + 3600, "iat": now(),
    })
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

impl Introspection {
    pub async fn start(secret: &str) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            secret: secret.into(),
            mode: Some(Mode::Serving),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/introspect", post(introspect))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}/introspect", self.addr)
    }

    /// What the endpoint answers for `token` (unknown tokens are inactive).
    pub fn answer(&self, token: &str, answer: Value) {
        self.shared.lock().unwrap().answers.insert(token.into(), answer);
    }

    /// The secret the endpoint now expects, as after a rotation at the provider.
    pub fn set_secret(&self, secret: &str) {
        self.shared.lock().unwrap().secret = secret.into();
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.lock().unwrap().mode = Some(mode);
    }

    pub fn calls(&self) -> usize {
        self.shared.lock().unwrap().calls
    }
}

async fn introspect(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (mode, answer, expected) = {
        let mut shared = shared.lock().unwrap();
        shared.calls += 1;
        let answer = form.get("token").and_then(|t| shared.answers.get(t).cloned());
        let expected = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{}", shared.secret)));
        (shared.mode.unwrap(), answer, expected)
    };
    match mode {
        Mode::Failing => return StatusCode::BAD_GATEWAY.into_response(),
        Mode::Hanging => std::future::pending().await,
        Mode::Serving => {}
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_client" }))).into_response();
    }
    Json(answer.unwrap_or_else(|| json!({ "active": false }))).into_response()
}
