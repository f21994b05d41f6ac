//! A test identity provider: makes its own ES256 keys, serves them as a JWKS on loopback
//! (counting fetches, publishing keys on demand for rotation tests) and mints tokens.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use axum::{Json, Router, extract::State, routing::get};
use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://issuer.test";

pub struct SigningKey {
    pub kid: String,
    pkcs8: Vec<u8>,
    /// Uncompressed P-256 point: 0x04 || x || y.
    point: Vec<u8>,
}

impl SigningKey {
    pub fn generate(kid: &str) -> Self {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        Self {
            kid: kid.into(),
            pkcs8: pkcs8.as_ref().to_vec(),
            point: pair.public_key().as_ref().to_vec(),
        }
    }

    pub fn jwk(&self) -> Value {
        json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&self.point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&self.point[33..65]),
        })
    }

    /// The public key as a PEM SubjectPublicKeyInfo, for MCP_JWT_PUBLIC_KEY_FILE.
    pub fn public_pem(&self) -> String {
        // DER prefix of an SPKI for an uncompressed P-256 point (id-ecPublicKey, prime256v1).
        let mut der = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
        der.extend_from_slice(&self.point);
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(der)
        )
    }

    /// An ES256 token with these claims.
    pub fn mint(&self, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Claims for `sub` with `scope`, valid now, for `audience`.
pub fn claims(sub: &str, scope: &str, audience: &str) -> Value {
    let now = now();
    json!({ "iss": ISSUER, "sub": sub, "aud": audience, "scope": scope, "iat": now, "nbf": now - 5, "exp": now + 300 })
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A token signed with a shared secret (HMAC), which a JWKS-configured server must refuse.
pub fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(b"shared-secret"),
    )
    .unwrap()
}

/// An unsigned `alg: none` token.
pub fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// Serves `/jwks.json` with the published keys.
pub struct Jwks {
    addr: std::net::SocketAddr,
    state: Arc<JwksState>,
}

#[derive(Default)]
struct JwksState {
    keys: Mutex<Vec<Value>>,
    fetches: AtomicUsize,
    mode: Mutex<Mode>,
}

/// How the provider answers a fetch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Serving,
    /// 503, as a provider in trouble.
    Failing,
    /// Never answers.
    Hanging,
}

impl Jwks {
    pub async fn start() -> Self {
        let state = Arc::new(JwksState::default());
        let app = Router::new().route("/jwks.json", get(serve)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    pub fn publish(&self, key: &SigningKey) {
        self.state.keys.lock().unwrap().push(key.jwk());
    }

    pub fn fetches(&self) -> usize {
        self.state.fetches.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }
}

async fn serve(State(state): State<Arc<JwksState>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let mode = *state.mode.lock().unwrap();
    match mode {
        Mode::Serving => Json(json!({ "keys": *state.keys.lock().unwrap() })).into_response(),
        Mode::Failing => axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Mode::Hanging => std::future::pending().await,
    }
}
