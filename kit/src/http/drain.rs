//! The HTTP edge of the drain: the answer for MCP requests while draining (503 + Retry-After,
//! with a JSON-RPC error body), and a response body that holds something (a request's place
//! in flight, an event stream's place under its cap) until the body has been sent, so a drain
//! waits for answers to leave, not only for handlers to return.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use axum::{
    body::{Body, Bytes, HttpBody},
    http::{HeaderValue, StatusCode, header},
    response::Response,
};
use http_body::{Frame, SizeHint};

use super::body::rpc_error;
use crate::server::{REFUSED_WHILE_DRAINING, SHUTTING_DOWN};

/// What a refused client is told to wait before retrying (another replica may answer sooner).
const RETRY_AFTER_SECS: &str = "5";

pub fn refused() -> Response {
    let mut response = rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        serde_json::Value::Null,
        SHUTTING_DOWN.0.into(),
        REFUSED_WHILE_DRAINING,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    response
}

/// A response body that keeps `T` until it is sent or dropped.
pub struct Held<T> {
    body: Body,
    _held: T,
}

/// `response` with `held` kept until its body has been sent.
pub fn hold<T: Send + Unpin + 'static>(response: Response, held: T) -> Response {
    response.map(|body| Body::new(Held { body, _held: held }))
}

impl<T: Send + Unpin + 'static> HttpBody for Held<T> {
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
