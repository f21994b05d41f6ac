//! The HTTP edge of the drain: refuses every MCP request while draining (503 + Retry-After,
//! with a JSON-RPC error body), and counts each POST in flight until its response body has
//! been sent, so a drain waits for answers to leave, not only for handlers to return.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body::{Frame, SizeHint};

use crate::{
    server::{REFUSED_WHILE_DRAINING, SHUTTING_DOWN},
    shutdown::{InFlight, Shutdown},
};

/// What a refused client is told to wait before retrying (another replica may answer sooner).
const RETRY_AFTER_SECS: &str = "5";

pub async fn drain_gate(State(shutdown): State<Shutdown>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        // GET streams and DELETEs carry no call to wait for; refuse them once draining.
        return if shutdown.is_draining() {
            refused()
        } else {
            next.run(request).await
        };
    }
    let Some(in_flight) = shutdown.track() else {
        return refused();
    };
    next.run(request).await.map(|body| {
        Body::new(CountedBody {
            body,
            _in_flight: in_flight,
        })
    })
}

fn refused() -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": { "code": SHUTTING_DOWN.0, "message": REFUSED_WHILE_DRAINING }
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    response
}

/// A response body that keeps its request counted in flight until it is sent or dropped.
struct CountedBody {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
