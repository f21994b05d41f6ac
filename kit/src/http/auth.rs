//! Authentication and authorization at the HTTP edge, as the MCP authorization spec asks: a
//! bearer token becomes a `Principal` (or the caller is anonymous when auth is off); a missing
//! or bad token gets 401 with a `WWW-Authenticate` challenge pointing at the protected-resource
//! metadata; a token without a needed scope gets 403 `insufficient_scope` naming it (including
//! the scope of the tool being called, so clients can step up); tokens in the query string are
//! refused. Two limits keep floods cheap: failed authentications per client address (a flood
//! of bad tokens turns into 429s) and an optional per-caller request limit.

use std::{net::IpAddr, sync::Arc};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use serde_json::json;

use crate::refusals::Refusals;
use crate::{
    auth::{AuthError, Principal, Verifier},
    guard::{EdgeLimits, Guard, Rate, RateLimits, Refused},
    telemetry::clip,
};

pub struct Gate {
    verifier: Option<Arc<Verifier>>,
    required_scopes: Vec<String>,
    guard: Arc<Guard>,
    /// Where the protected-resource metadata lives, for challenges; with OAuth (JWT) only:
    /// static tokens advertise no authorization server, so clients start no OAuth flow that
    /// cannot succeed.
    metadata_url: Option<String>,
    /// MCP_HTTP_RATE_LIMIT and MCP_AUTH_FAILURE_LIMIT: their buckets live with the guard's,
    /// evicted by the same sweep.
    limits: Arc<RateLimits>,
}

/// Whole seconds to wait, at least 1.
fn retry_after(not_until: governor::NotUntil<<governor::clock::DefaultClock as Clock>::Instant>) -> u64 {
    let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// 429 with `Retry-After` and an OAuth-style error body.
fn too_many(description: String, secs: u64) -> Response {
    let body = json!({ "error": "rate_limited", "error_description": description });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

impl Gate {
    pub fn new(
        verifier: Option<Arc<Verifier>>,
        required_scopes: Vec<String>,
        guard: Arc<Guard>,
        metadata_url: Option<String>,
        per_caller: Option<Rate>,
        failures: Rate,
    ) -> Self {
        let limits = guard.limits().clone();
        limits.set_edge(per_caller, failures);
        Self {
            verifier,
            required_scopes,
            guard,
            metadata_url,
            limits,
        }
    }

    fn edge_limits(&self) -> &EdgeLimits {
        self.limits.edge().expect("made in Gate::new")
    }

    /// Who is calling (from the `Authorization` header), or the answer refusing the request.
    pub async fn principal(
        &self,
        headers: &HeaderMap,
        peer: IpAddr,
        refusals: &Refusals,
    ) -> Result<Principal, Response> {
        let Some(verifier) = &self.verifier else {
            return Ok(Principal::anonymous(peer));
        };
        let refused = |reason: String| {
            if let Err(not_until) = self.edge_limits().failures.check_key(&peer) {
                let secs = retry_after(not_until);
                refusals.record("auth_failures_limited", || {
                    tracing::warn!(event = "auth_failures_limited", client = %peer, retry_after_s = secs, "too many failed authentications from this address");
                });
                return too_many(
                    format!("too many failed authentications from this address; retry after {secs} s"),
                    secs,
                );
            }
            match reason.is_empty() {
                // No credentials at all: a bare challenge (RFC 6750 §3.1), not a failure to log.
                true => self.challenge(StatusCode::UNAUTHORIZED, None, &self.required_scopes),
                false => {
                    refusals.record("auth_failed", || {
                        tracing::warn!(event = "auth_failed", client = %peer, reason = %clip(&reason), "bearer token refused");
                    });
                    self.challenge(
                        StatusCode::UNAUTHORIZED,
                        Some(("invalid_token", &reason)),
                        &self.required_scopes,
                    )
                }
            }
        };
        let Some(token) = bearer(headers) else {
            return Err(refused(String::new()));
        };
        match verifier.verify(token).await {
            Ok(principal) => Ok(principal),
            Err(AuthError::InvalidToken(reason)) => Err(refused(reason)),
            Err(AuthError::Unavailable(reason)) => {
                refusals.record("auth_unavailable", || {
                    tracing::warn!(event = "auth_unavailable", reason = %clip(&reason), "cannot verify tokens right now");
                });
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(json!({ "error": "temporarily_unavailable", "error_description": reason })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                Err(response)
            }
        }
    }

    /// The per-caller request limit, if one is set (on Redis when replicas share limits).
    pub async fn check_rate(&self, principal: &Principal, refusals: &Refusals) -> Result<(), Response> {
        match self.limits.take_http(&principal.key).await {
            Ok(()) => Ok(()),
            Err(Refused::Wait(wait)) => {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                refusals.record("http_rate_limited", || {
                    tracing::warn!(
                        event = "http_rate_limited",
                        subject = %clip(&principal.subject),
                        retry_after_s = secs,
                        "per-caller request limit reached"
                    );
                });
                Err(too_many(format!("too many requests; retry after {secs} s"), secs))
            }
            Err(Refused::Unavailable) => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(json!({
                        "error": "temporarily_unavailable",
                        "error_description": "the shared rate limits are unavailable; retry in a second"
                    })),
                )
                    .into_response();
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
                Err(response)
            }
        }
    }

    /// The scopes every request needs, and the called tool's (`tool`), when a token is in use.
    pub fn check_scopes(&self, principal: &Principal, tool: Option<&str>, refusals: &Refusals) -> Result<(), Response> {
        // Only a caller who can present a better token gets a step-up challenge; an anonymous
        // caller of a privileged tool is refused by the guard chain instead.
        let tool_scope = match self.verifier {
            Some(_) => tool.and_then(|tool| self.guard.required_scope(tool)),
            None => None,
        };
        let mut needed = self.required_scopes.iter().map(String::as_str).chain(tool_scope);
        // The common case, checked without allocating: every needed scope is held.
        if needed.all(|scope| principal.has_scope(scope)) {
            return Ok(());
        }
        let needed: Vec<String> = self
            .required_scopes
            .iter()
            .cloned()
            .chain(tool_scope.map(str::to_owned))
            .collect();
        let missing = principal.missing(&needed);
        refusals.record("auth_denied", || {
            tracing::warn!(event = "auth_denied", subject = %clip(&principal.subject), ?missing, "token lacks a needed scope");
        });
        Err(self.challenge(
            StatusCode::FORBIDDEN,
            Some(("insufficient_scope", "the token lacks a scope this request needs")),
            &needed,
        ))
    }

    /// A 401/403/400 with the `WWW-Authenticate` challenge the spec asks for.
    pub fn challenge(&self, status: StatusCode, error: Option<(&str, &str)>, scopes: &[String]) -> Response {
        // RFC 6750's challenge; with OAuth, RFC 9728's pointer to the metadata.
        let mut value = match &self.metadata_url {
            Some(url) => format!("Bearer resource_metadata=\"{url}\""),
            None => "Bearer realm=\"mcp\"".to_owned(),
        };
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

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Whether the query string carries an `access_token` (RFC 6750 §2.3, which MCP forbids).
pub fn token_in_query(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|pair| {
            pair.split('=')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("access_token"))
        })
    })
}
