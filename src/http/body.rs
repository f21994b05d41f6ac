//! Request bodies at the edge: a size limit (413), and JSON-RPC errors a client can read for
//! bodies that are not valid messages.
//!
//! rmcp answers a body it cannot decode with `415` and a plain-text message. JSON-RPC asks
//! for Parse error (-32700) when the body is not JSON and Invalid Request (-32600) when it is
//! JSON but not a JSON-RPC message, so this layer keeps the body and, only when rmcp refuses
//! it that way, answers `400` with the proper error instead. Valid requests pay nothing extra.

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use rmcp::model::ClientJsonRpcMessage;
use serde_json::{Value, json};

/// The buffered body of a POST, for layers further in that need to look at it.
#[derive(Clone)]
pub struct RawBody(pub Bytes);

pub async fn limit_and_diagnose(State(max_bytes): State<usize>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let (mut parts, body) = request.into_parts();
    let bytes = match declared {
        Some(length) if length > max_bytes => None,
        _ => axum::body::to_bytes(body, max_bytes).await.ok(),
    };
    let Some(bytes) = bytes else {
        tracing::warn!(event = "bad_input", max_bytes, "request body too large");
        let message = format!("request body exceeds {max_bytes} bytes");
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(error(Value::Null, -32600, &message)),
        )
            .into_response();
    };
    parts.extensions.insert(RawBody(bytes.clone()));
    let response = next.run(Request::from_parts(parts, Body::from(bytes.clone()))).await;
    if response.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response;
    }
    match diagnose(&bytes) {
        Some(body) => {
            tracing::warn!(
                event = "bad_input",
                code = body["error"]["code"].as_i64(),
                error = body["error"]["message"].as_str(),
                "invalid JSON-RPC input"
            );
            (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
        }
        None => response, // the body was fine: the 415 is about the content type
    }
}

/// The JSON-RPC error for a body that is not a valid message, or `None` if it is valid.
fn diagnose(bytes: &Bytes) -> Option<Value> {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            return Some(error(
                Value::Null,
                -32700,
                &format!("Parse error: not valid JSON ({e})"),
            ));
        }
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    match serde_json::from_value::<ClientJsonRpcMessage>(value) {
        Ok(_) => None,
        Err(e) => Some(error(id, -32600, &format!("Invalid Request: {e}"))),
    }
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}
