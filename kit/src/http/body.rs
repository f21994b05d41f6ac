//! Request bodies at the edge: read only after authentication, within a size limit (413) and a
//! time limit (408); the few envelope fields the edge needs (method, id, tool name); and
//! JSON-RPC errors a client can read for bodies that are not valid messages.
//!
//! rmcp answers a body it cannot decode with `415` and a plain-text message. JSON-RPC asks
//! for Parse error (-32700) when the body is not JSON and Invalid Request (-32600) when it is
//! JSON but not a JSON-RPC message (a duplicate key included), so the edge turns that `415`
//! into `400` with the proper error. Valid requests pay nothing extra.

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use rmcp::model::ClientJsonRpcMessage;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::telemetry::clip;

/// Why a body could not be read.
pub enum Unread {
    TooLarge,
    TooSlow,
    /// The client went away or sent a broken body.
    Broken(String),
}

/// Reads the whole body, or gives up past `max_bytes` or `timeout`.
pub async fn read(body: Body, declared: Option<u64>, max_bytes: usize, timeout: Duration) -> Result<Bytes, Unread> {
    if declared.is_some_and(|length| length > max_bytes as u64) {
        return Err(Unread::TooLarge);
    }
    match tokio::time::timeout(timeout, Limited::new(body, max_bytes).collect()).await {
        Err(_) => Err(Unread::TooSlow),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(Unread::TooLarge),
        Ok(Err(e)) => Err(Unread::Broken(e.to_string())),
    }
}

/// The parts of a JSON-RPC request the edge looks at, borrowed from the body.
#[derive(Deserialize, Default)]
pub struct Envelope<'a> {
    #[serde(borrow, default)]
    pub method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(borrow, default)]
    params: Option<Params<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> Envelope<'a> {
    /// The envelope, or an empty one for a body that is not a JSON-RPC object (rmcp refuses it).
    pub fn of(bytes: &'a [u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// The tool a `tools/call` names.
    pub fn tool(&self) -> Option<&str> {
        (self.method.as_deref() == Some("tools/call"))
            .then(|| self.params.as_ref()?.name.as_deref())
            .flatten()
    }

    /// The id to answer a refused request with (`null` when there is none).
    pub fn reply_id(&self) -> Value {
        self.id.clone().unwrap_or(Value::Null)
    }
}

/// The `400` for a body rmcp refused with `415` although its content type was JSON, or `None`
/// when the body is a valid message (the `415` was about the content type).
pub fn diagnose(bytes: &[u8]) -> Option<Response> {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            return Some(rpc_error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                -32700,
                &format!("Parse error: not valid JSON ({e})"),
            ));
        }
    };
    // A repeated key reads differently to different parsers: refuse it, with the null id
    // (which of the ids would be the one?).
    if let Some(key) = duplicate_key(bytes) {
        let message = format!("Invalid Request: the key `{}` appears more than once", clip(&key));
        return Some(rpc_error(StatusCode::BAD_REQUEST, Value::Null, -32600, &message));
    }
    let error = serde_json::from_slice::<ClientJsonRpcMessage>(bytes).err()?;
    let id = value.get("id").filter(|id| id.is_string() || id.is_number()).cloned();
    let message = format!("Invalid Request: {}", clip(&error.to_string()));
    Some(rpc_error(
        StatusCode::BAD_REQUEST,
        id.unwrap_or(Value::Null),
        -32600,
        &message,
    ))
}

/// The first key of the message object that appears twice, if any.
fn duplicate_key(bytes: &[u8]) -> Option<String> {
    struct Keys(Option<String>);
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                if !seen.insert(key.clone()) && self.0.is_none() {
                    self.0 = Some(key);
                }
            }
            Ok(self.0)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde::Deserializer::deserialize_map(&mut deserializer, Keys(None))
        .ok()
        .flatten()
}

/// An HTTP answer carrying a JSON-RPC error.
pub fn rpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    let body = json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_envelope_and_diagnoses_bad_bodies() {
        let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t","arguments":{}}}"#;
        let envelope = Envelope::of(call);
        assert_eq!((envelope.tool(), envelope.reply_id()), (Some("t"), json!(7)));
        assert!(diagnose(call).is_none());
        assert!(Envelope::of(b"[1,2]").method.is_none());
        let duplicate = br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#;
        assert_eq!(duplicate_key(duplicate).as_deref(), Some("id"));
        assert_eq!(diagnose(duplicate).unwrap().status(), StatusCode::BAD_REQUEST);
        assert_eq!(duplicate_key(call), None);
        assert!(diagnose(b"{oops").is_some());
    }
}
