//! The HTTP edge of authentication and authorization, as the MCP authorization spec asks:
//! a bearer token becomes a `Principal` (or the caller is anonymous when auth is off); a
//! missing or bad token gets 401 with a `WWW-Authenticate` challenge pointing at the
//! protected-resource metadata; a token without a needed scope gets 403 `insufficient_scope`
//! naming it (including the scope of the tool being called, so clients can step up); tokens
//! in the query string are refused; an optional per-caller request limit answers 429.

use std::{net::SocketAddr, num::NonZeroU32, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};
use serde::Deserialize;
use serde_json::json;

use super::body::RawBody;
use crate::{
    auth::{AuthError, Principal, Verifier},
    guard::{Guard, Rate},
};

#[derive(Clone)]
pub struct Gate(Arc<GateState>);

struct GateState {
    verifier: Option<Arc<Verifier>>,
    required_scopes: Vec<String>,
    guard: Arc<Guard>,
    /// Where the protected-resource metadata lives, for challenges.
    metadata_url: String,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl Gate {
    pub fn new(
        verifier: Option<Arc<Verifier>>,
        required_scopes: Vec<String>,
        guard: Arc<Guard>,
        metadata_url: String,
        rate: Option<Rate>,
    ) -> Self {
        let limiter = rate.map(|rate| {
            let burst = NonZeroU32::new(rate.burst).expect("a burst of at least 1");
            DefaultKeyedRateLimiter::keyed(
                Quota::with_period(rate.per)
                    .expect("a non-zero period")
                    .allow_burst(burst),
            )
        });
        Self(Arc::new(GateState {
            verifier,
            required_scopes,
            guard,
            metadata_url,
            limiter,
        }))
    }
}

pub async fn authenticate(
    State(gate): State<Gate>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let gate = &gate.0;
    if token_in_query(request.uri().query()) {
        return gate.challenge(
            StatusCode::BAD_REQUEST,
            Some((
                "invalid_request",
                "tokens are not accepted in the query string; send an Authorization: Bearer header",
            )),
            &[],
        );
    }
    let principal = match &gate.verifier {
        None => Principal::anonymous(peer.ip()),
        Some(verifier) => {
            let Some(token) = bearer(&request) else {
                // No credentials at all: a bare challenge (RFC 6750 §3.1), nothing to log as failure.
                return gate.challenge(StatusCode::UNAUTHORIZED, None, &gate.required_scopes);
            };
            match verifier.verify(token).await {
                Ok(principal) => principal,
                Err(AuthError::InvalidToken(reason)) => {
                    tracing::warn!(event = "auth_failed", client = %peer.ip(), reason, "bearer token refused");
                    return gate.challenge(
                        StatusCode::UNAUTHORIZED,
                        Some(("invalid_token", &reason)),
                        &gate.required_scopes,
                    );
                }
                Err(AuthError::Unavailable(reason)) => {
                    let mut response = (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(json!({ "error": "temporarily_unavailable", "error_description": reason })),
                    )
                        .into_response();
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                    return response;
                }
            }
        }
    };
    let mut needed: Vec<String> = gate.required_scopes.clone();
    // Only a caller who can present a better token gets a step-up challenge; an anonymous
    // caller of a privileged tool is refused by the guard chain instead.
    if gate.verifier.is_some()
        && let Some(scope) = called_tool(&request).and_then(|tool| gate.guard.required_scope(&tool))
    {
        needed.push(scope.to_owned());
    }
    if !principal.missing(&needed).is_empty() {
        tracing::warn!(event = "auth_denied", subject = principal.subject, missing = ?principal.missing(&needed), "token lacks a needed scope");
        return gate.challenge(
            StatusCode::FORBIDDEN,
            Some(("insufficient_scope", "the token lacks a scope this request needs")),
            &needed,
        );
    }
    if let Some(limiter) = &gate.limiter
        && let Err(not_until) = limiter.check_key(&principal.key)
    {
        let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        tracing::warn!(
            event = "http_rate_limited",
            subject = principal.subject,
            retry_after_s = secs,
            "per-caller request limit reached"
        );
        let body =
            json!({ "error": "rate_limited", "error_description": format!("too many requests; retry after {secs} s") });
        let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        return response;
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

impl GateState {
    /// A 401/403/400 with the `WWW-Authenticate` challenge the spec asks for.
    fn challenge(&self, status: StatusCode, error: Option<(&str, &str)>, scopes: &[String]) -> Response {
        let mut value = format!("Bearer resource_metadata=\"{}\"", self.metadata_url);
        if !scopes.is_empty() {
            value.push_str(&format!(", scope=\"{}\"", scopes.join(" ")));
        }
        if let Some((code, description)) = error {
            value.push_str(&format!(
                ", error=\"{code}\", error_description=\"{}\"",
                description.replace('"', "'")
            ));
        }
        let body = match error {
            Some((code, description)) => json!({ "error": code, "error_description": description }),
            None => {
                json!({ "error": "unauthorized", "error_description": "this server needs an Authorization: Bearer token" })
            }
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn token_in_query(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|pair| {
            pair.split('=')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("access_token"))
        })
    })
}

/// The tool a `tools/call` body names, if the body is one.
fn called_tool(request: &Request) -> Option<String> {
    #[derive(Deserialize)]
    struct Call {
        method: String,
        params: Option<Params>,
    }
    #[derive(Deserialize)]
    struct Params {
        name: String,
    }
    let RawBody(bytes) = request.extensions().get::<RawBody>()?;
    let call: Call = serde_json::from_slice(bytes).ok()?;
    (call.method == "tools/call").then_some(call.params?.name)
}
