//! The HTTP edge of `/mcp`: one layer that takes a request through every check in the order
//! that keeps a hostile client cheapest, before rmcp sees it:
//!
//! 1. unambiguous headers (one `Host`, one `Authorization`, a target that agrees with `Host`): 400
//! 2. Host and Origin on their allow-lists (DNS rebinding): 403
//! 3. the drain: 503 once shutting down; a POST counts in flight until its answer has left
//! 4. who is calling, from the headers alone (the body is not read yet): 401, or 429 past the
//!    failed-authentication limit; then the per-caller request limit: 429
//! 5. sessions: another caller's session looks like no session (404); `initialize` needs a
//!    place under the session caps (429 / 503); GET event streams are capped (503); with
//!    Redis, the requests of a session not held here yet take turns to restore it
//! 6. the body, within its size and time limits (413 / 408) and the budget of request bytes
//!    held at once by all requests (503)
//! 7. the scopes the request and the called tool need: 403 `insufficient_scope`
//!
//! Refusals are logged through [`Refusals`], so a flood of them writes a line a second.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::{
    auth::{Gate, token_in_query},
    body::{self, Envelope, Unread, rpc_error},
    drain::{hold, refused},
    origin::HostOriginPolicy,
    sessions::{Full, Owned, Sessions},
};
use crate::{
    parse_budget::{self, InFlightBudget, ParseLimits, Shape, Unparsable},
    refusals::Refusals,
    shutdown::Shutdown,
    telemetry::{clip, id_prefix},
};

const SESSION_HEADER: &str = "mcp-session-id";

/// rmcp's own error answers (400, 404), mended: client text they repeat (a method name, a
/// header's value) is clipped, and a method it does not route gets the message every
/// transport gives.
async fn mend_error(response: Response, most: usize) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, most).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut answer: Value = match serde_json::from_slice(&bytes) {
        Ok(answer) => answer,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if let Some(error) = answer.get_mut("error")
        && let Ok(mut parsed) = serde_json::from_value::<rmcp::ErrorData>(error.clone())
    {
        crate::server::explain_missing_method(&mut parsed);
        if let std::borrow::Cow::Owned(clipped) = clip(&parsed.message) {
            parsed.message = clipped.into();
        }
        *error = serde_json::to_value(parsed).expect("an error serializes");
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(answer.to_string()))
}

/// JSON-RPC code for requests refused for want of room (sessions, streams).
const NO_ROOM: i64 = -32000;

pub struct Edge {
    pub host_origin: HostOriginPolicy,
    pub shutdown: Shutdown,
    pub gate: Gate,
    pub sessions: Arc<Sessions>,
    pub event_streams: Arc<Semaphore>,
    pub max_event_streams: usize,
    pub max_body: usize,
    /// MCP_MAX_BODY_BYTES_IN_FLIGHT: what requests hold at once, their bodies and their parses.
    pub budget: InFlightBudget,
    /// What one message may hold (MCP_MAX_JSON_VALUES, MCP_MAX_JSON_DEPTH).
    pub parse_limits: ParseLimits,
    pub body_timeout: Duration,
    /// Sent with a refusal for a full per-caller session cap.
    pub session_retry_after: Duration,
    pub refusals: Arc<Refusals>,
}

pub async fn handle(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    match edge.admit(request, next).await {
        Ok(response) | Err(response) => response,
    }
}

impl Edge {
    async fn admit(&self, request: Request, next: Next) -> Result<Response, Response> {
        let (mut parts, body) = request.into_parts();
        self.unambiguous(&parts.headers, &parts.uri)?;
        self.host_origin.check(&parts.headers, &parts.uri, &self.refusals)?;
        let in_flight = if parts.method == Method::POST && is_task_request(&parts.headers) {
            // Tasks stay readable while draining: their owners need them most then.
            Some(self.shutdown.track_always())
        } else if parts.method == Method::POST {
            Some(self.shutdown.track().ok_or_else(refused)?)
        } else if self.shutdown.is_draining() {
            return Err(refused());
        } else {
            None
        };
        if token_in_query(parts.uri.query()) {
            return Err(self.refuse(
                "token_in_query",
                self.gate.challenge(
                    StatusCode::BAD_REQUEST,
                    Some((
                        "invalid_request",
                        "tokens are not accepted in the query string; send an Authorization: Bearer header",
                    )),
                    &[],
                ),
            ));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .expect("the listener records each connection's peer");
        let principal = self.gate.principal(&parts.headers, peer, &self.refusals).await?;
        self.gate.check_rate(&principal, &self.refusals).await?;

        let session = parts.headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
        if let Some(id) = session {
            match self.sessions.owned_by(id, &principal.key).await {
                Owned::Yes => {}
                Owned::No => return Err(self.session_not_found(&parts.method, id)),
                Owned::Unavailable => {
                    return Err(self.no_room(
                        "sessions_unavailable",
                        StatusCode::SERVICE_UNAVAILABLE,
                        Value::Null,
                        "this session cannot be checked right now (the shared session store is unavailable); retry",
                        1,
                    ));
                }
            }
        }
        if parts.method == Method::DELETE && session.is_some() {
            return Ok(self.delete(parts, body, next, principal).await);
        }
        let stream = match parts.method {
            Method::GET => Some(self.event_streams.clone().try_acquire_owned().map_err(|_| {
                let limit = self.max_event_streams;
                self.no_room(
                    "event_streams_full",
                    StatusCode::SERVICE_UNAVAILABLE,
                    Value::Null,
                    &format!("this server holds as many event streams as it may ({limit}, MCP_MAX_EVENT_STREAMS); retry later"),
                    5,
                )
            })?),
            _ => None,
        };

        let (body, held_bytes) = if parts.method == Method::POST {
            let declared: Option<u64> = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok());
            // Room for the body in the budget of bytes held at once, kept until the answer
            // has left; a body of unknown length may grow to the limit.
            let need = match declared {
                Some(length) if length > self.max_body as u64 => return Err(self.unread(Unread::TooLarge)),
                Some(length) => length as usize,
                None => self.max_body,
            };
            let mut held = self.budget.try_hold(need).ok_or_else(|| self.budget_full())?;
            let bytes = match body::read(body, declared, self.max_body, self.body_timeout).await {
                Ok(bytes) => bytes,
                Err(unread) => return Err(self.unread(unread)),
            };
            // What the parses will build is known before any is made: refused past the limits,
            // and counted with the body from here until the answer has left.
            let shape = parse_budget::measure(&bytes, self.parse_limits).map_err(|why| self.unparsable(why))?;
            if !self.budget.grow(&mut held, held_while_parsed(bytes.len(), shape)) {
                return Err(self.budget_full());
            }
            (bytes, Some(held))
        } else {
            (axum::body::Bytes::new(), None)
        };
        let envelope = Envelope::of(&body);
        if let Some(Value::String(id)) = &envelope.id {
            parse_budget::check_id(id.len()).map_err(|why| self.unparsable(why))?;
        }
        self.gate.check_scopes(&principal, envelope.tool(), &self.refusals)?;
        let reservation = match (session, envelope.method.as_deref()) {
            (None, Some("initialize")) => Some(self.sessions.reserve(&principal.key).await.map_err(|full| {
                let id = envelope.reply_id();
                match full {
                    Full::Owner(max) => self.no_room(
                        "sessions_per_client_full",
                        StatusCode::TOO_MANY_REQUESTS,
                        id,
                        &format!("this caller holds as many sessions as one caller may ({max}, MCP_MAX_SESSIONS_PER_CLIENT); close one (DELETE) or retry later"),
                        self.session_retry_after.as_secs().max(1),
                    ),
                    Full::Server(max) => self.no_room(
                        "sessions_full",
                        StatusCode::SERVICE_UNAVAILABLE,
                        id,
                        &format!("this server holds as many sessions as it may ({max}, MCP_MAX_SESSIONS); retry later"),
                        5,
                    ),
                    Full::Unavailable => self.no_room(
                        "sessions_unavailable",
                        StatusCode::SERVICE_UNAVAILABLE,
                        id,
                        "no session can be opened right now (the shared session store is unavailable); retry",
                        1,
                    ),
                }
            })?),
            _ => None,
        };

        // Taken with the body read, so a slow upload does not keep the others waiting; held
        // until this request's answer is ready (or its session is restored here).
        let _restore_turn = match session {
            Some(id) => self.sessions.restore_turn(id).await,
            None => None,
        };
        parts.extensions.insert(principal);
        let response = next.run(Request::from_parts(parts, Body::from(body.clone()))).await;
        if let Some(reservation) = reservation
            && response.status() == StatusCode::OK
            && let Some(id) = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok())
        {
            reservation.confirm(id).await;
        }
        // rmcp's 415 for a JSON body it cannot decode becomes a JSON-RPC error.
        let response = match response.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => match body::diagnose(&body) {
                Some(answer) => self.refuse("bad_input", answer),
                None => response,
            },
            // rmcp's answers to a body it read: no larger than that body and a message.
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => mend_error(response, body.len() + 64 * 1024).await,
            _ => response,
        };
        Ok(match (in_flight, stream) {
            (Some(in_flight), _) => hold(response, (in_flight, held_bytes)),
            (None, Some(stream)) => hold(response, stream),
            (None, None) => response,
        })
    }

    /// `DELETE` of a session its caller owns: rmcp closes it; 200 and one log line.
    async fn delete(
        &self,
        parts: axum::http::request::Parts,
        body: Body,
        next: Next,
        principal: crate::auth::Principal,
    ) -> Response {
        let id = parts
            .headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut parts = parts;
        parts.extensions.insert(principal);
        let mut response = next.run(Request::from_parts(parts, body)).await;
        if response.status() == StatusCode::ACCEPTED {
            // The reference servers answer 200; some clients log a failure on 202.
            *response.status_mut() = StatusCode::OK;
            tracing::info!(event = "session_deleted", session_id = %id_prefix(&id), "session closed by its client");
        }
        response
    }

    /// 400 for a request two parties could read differently: a proxy and this server must
    /// agree on who is calling and which host is meant.
    fn unambiguous(&self, headers: &HeaderMap, uri: &axum::http::Uri) -> Result<(), Response> {
        let bad = |error: &'static str, description: &str| {
            Err(self.refuse(
                error,
                rpc_error(StatusCode::BAD_REQUEST, Value::Null, -32600, description),
            ))
        };
        if headers.get_all(header::AUTHORIZATION).iter().nth(1).is_some() {
            return bad("duplicate_authorization", "more than one Authorization header");
        }
        let mut hosts = headers.get_all(header::HOST).iter();
        let host = hosts.next();
        if hosts.next().is_some() {
            return bad("duplicate_host", "more than one Host header");
        }
        if let (Some(authority), Some(host)) = (uri.authority(), host)
            && !host.to_str().is_ok_and(|h| h.eq_ignore_ascii_case(authority.as_str()))
        {
            return bad(
                "host_mismatch",
                "the request target's authority differs from the Host header",
            );
        }
        Ok(())
    }

    fn unread(&self, unread: Unread) -> Response {
        let (reason, status, message) = match unread {
            Unread::TooLarge => (
                "body_too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds {} bytes (MCP_MAX_BODY_BYTES)", self.max_body),
            ),
            Unread::TooSlow => (
                "body_too_slow",
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body not received within {} s (MCP_BODY_READ_TIMEOUT)",
                    self.body_timeout.as_secs()
                ),
            ),
            Unread::Broken(e) => (
                "body_broken",
                StatusCode::BAD_REQUEST,
                format!("request body could not be read: {}", clip(&e)),
            ),
        };
        let response = rpc_error(status, Value::Null, -32600, &message);
        self.refuse(reason, response)
    }

    fn budget_full(&self) -> Response {
        self.no_room(
            "body_budget_full",
            StatusCode::SERVICE_UNAVAILABLE,
            Value::Null,
            &self.budget.full(),
            1,
        )
    }

    /// 400 for a body that is not JSON; 413 for one that holds more than a message may.
    fn unparsable(&self, why: Unparsable) -> Response {
        let (reason, status) = match why {
            Unparsable::Syntax(_) | Unparsable::IdTooLong => ("bad_input", StatusCode::BAD_REQUEST),
            _ => ("json_limits", StatusCode::PAYLOAD_TOO_LARGE),
        };
        self.refuse(
            reason,
            rpc_error(status, Value::Null, why.code().into(), &why.to_string()),
        )
    }

    fn session_not_found(&self, method: &Method, id: &str) -> Response {
        let response = rpc_error(
            StatusCode::NOT_FOUND,
            Value::Null,
            -32001,
            "Session not found: it ended or never existed; start a new one with initialize",
        );
        if method == Method::DELETE {
            tracing::info!(event = "session_deleted", session_id = %id_prefix(id), outcome = "not_found", "DELETE of an unknown session");
            return response;
        }
        self.refuse("session_not_found", response)
    }

    fn no_room(
        &self,
        reason: &'static str,
        status: StatusCode,
        id: Value,
        message: &str,
        retry_after_s: u64,
    ) -> Response {
        let mut response = rpc_error(status, id, NO_ROOM, message);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        self.refuse(reason, response)
    }

    /// Logs a refusal (through the summary) and passes the answer on.
    fn refuse(&self, reason: &'static str, response: Response) -> Response {
        let status = response.status().as_u16();
        self.refusals.record(reason, || {
            tracing::warn!(
                event = "request_refused",
                reason,
                status,
                "refused a request at the HTTP edge"
            );
        });
        response
    }
}

/// What a request of `body_len` bytes holds while rmcp handles it: the body, rmcp's own copy
/// of it, the message it parses, and on 2026-07-28 a second tree of the whole message that
/// rmcp makes to check the standard headers against it.
fn held_while_parsed(body_len: usize, shape: Shape) -> usize {
    2 * body_len + 2 * shape.tree_bytes()
}

/// A 2026-07-28 request for `tasks/*`, by its `Mcp-Method` header (which rmcp checks against
/// the body). Session requests carry no such header, and are refused while draining.
fn is_task_request(headers: &HeaderMap) -> bool {
    headers
        .get("mcp-method")
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| m.trim().starts_with("tasks/"))
}
