//! The floor: raw axum + serde_json answering the requests loadgen sends with the result the
//! server gives, with no MCP SDK: what any server of this shape costs at the least. It checks
//! nothing it does not need to answer: over HTTP, `initialize` gets a session id and every
//! other request in a session is answered as if the session existed; over stdio it is a line
//! reader answering each line in turn.

use std::{
    alloc::System,
    io::{BufRead, Write},
    sync::atomic::{AtomicU64, Ordering},
};

use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
    serve::ListenerExt,
};
use baselines::{
    Mode,
    counting::{Counting, report_allocations_on_sigusr1},
    log_listening,
    temperature::{ConvertRequest, Converted, TemperatureUnit, convert},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: Counting<System> = Counting(System);

const STATELESS: &str = "2026-07-28";
const HANDSHAKE: &str = "2025-11-25";

/// A JSON-RPC message from the client.
#[derive(Deserialize)]
struct Message {
    id: Option<Value>,
    method: String,
    #[serde(default)]
    params: Option<Value>,
}

#[derive(Deserialize)]
struct CallParams {
    name: String,
    arguments: ConvertRequest,
}

#[derive(Serialize)]
struct Answer<'a, R> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: R,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolResult {
    /// `complete` in the stateless revision; absent before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    result_type: Option<&'static str>,
    content: [Text; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    structured_content: Option<Structured>,
    is_error: bool,
}

/// The result as rmcp writes it, through a `serde_json::Value`: keys in sorted order.
#[derive(Serialize)]
struct Structured {
    unit: TemperatureUnit,
    value: f64,
}

impl From<Converted> for Structured {
    fn from(Converted { value, unit }: Converted) -> Self {
        Structured { unit, value }
    }
}

#[derive(Serialize)]
struct Text {
    r#type: &'static str,
    text: String,
}

#[derive(Serialize)]
struct Error<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    error: ErrorData,
}

#[derive(Serialize)]
struct ErrorData {
    code: i32,
    message: &'static str,
}

/// The answer to one message as JSON, or `None` for a notification.
fn answer(message: Message, stateless: bool) -> Option<Vec<u8>> {
    let id = message.id.as_ref()?;
    let json = match message.method.as_str() {
        "tools/call" => match message.params.map(serde_json::from_value::<CallParams>) {
            Some(Ok(CallParams { name, arguments })) if name == "convert_temperature" => {
                let result = match convert(arguments) {
                    Ok(converted) => {
                        let structured = Structured::from(converted);
                        ToolResult {
                            result_type: stateless.then_some("complete"),
                            content: [Text {
                                r#type: "text",
                                text: serde_json::to_string(&structured).expect("a result serializes"),
                            }],
                            structured_content: Some(structured),
                            is_error: false,
                        }
                    }
                    Err(text) => ToolResult {
                        result_type: stateless.then_some("complete"),
                        content: [Text { r#type: "text", text }],
                        structured_content: None,
                        is_error: true,
                    },
                };
                serde_json::to_vec(&Answer {
                    jsonrpc: "2.0",
                    id,
                    result,
                })
            }
            _ => error(id, -32602, "invalid params"),
        },
        "initialize" => serde_json::to_vec(&Answer {
            jsonrpc: "2.0",
            id,
            result: serde_json::json!({
                "protocolVersion": HANDSHAKE,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "axum-floor", "version": "0.1.0"},
            }),
        }),
        _ => error(id, -32601, "method not found"),
    };
    Some(json.expect("an answer serializes"))
}

fn error(id: &Value, code: i32, message: &'static str) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Error {
        jsonrpc: "2.0",
        id,
        error: ErrorData { code, message },
    })
}

/// POST /mcp: one message, answered as JSON; `initialize` opens a session.
async fn post_mcp(headers: HeaderMap, body: Bytes) -> Response {
    let Ok(message) = serde_json::from_slice::<Message>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let stateless = headers
        .get("mcp-protocol-version")
        .is_some_and(|version| version == STATELESS);
    let initialize = message.method == "initialize";
    let Some(json) = answer(message, stateless) else {
        return StatusCode::ACCEPTED.into_response();
    };
    let mut response = ([(header::CONTENT_TYPE, "application/json")], json).into_response();
    if initialize {
        static SESSIONS: AtomicU64 = AtomicU64::new(1);
        let id = SESSIONS.fetch_add(1, Ordering::Relaxed).to_string();
        response
            .headers_mut()
            .insert("mcp-session-id", HeaderValue::from_str(&id).expect("digits"));
    }
    response
}

/// DELETE /mcp: the session ends (there is nothing to forget).
async fn delete_mcp() -> StatusCode {
    StatusCode::OK
}

/// stdio: a plain blocking line reader; each line a message, answered in turn.
fn stdio() {
    let mut stdout = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let Ok(message) = serde_json::from_str::<Message>(&line) else {
            continue;
        };
        let stateless = message
            .params
            .as_ref()
            .is_some_and(|params| params.get("_meta").is_some());
        if let Some(mut json) = answer(message, stateless) {
            json.push(b'\n');
            if stdout.write_all(&json).and_then(|()| stdout.flush()).is_err() {
                return;
            }
        }
    }
}

#[tokio::main]
async fn main() {
    report_allocations_on_sigusr1();
    match Mode::from_args() {
        // Off the runtime's worker, which goes on answering SIGUSR1.
        Mode::Stdio => tokio::task::spawn_blocking(stdio).await.expect("the stdio loop"),
        Mode::Http(bind) => {
            let app = Router::new().route("/mcp", post(post_mcp).delete(delete_mcp));
            let listener = tokio::net::TcpListener::bind(bind).await.expect("binding");
            log_listening(listener.local_addr().expect("the bound address"));
            // As the server does: answers leave at once, not after the client's delayed ACK.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app).await.expect("serving HTTP");
        }
    }
}
