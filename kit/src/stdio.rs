//! The stdio transport: newline-delimited JSON-RPC on stdin/stdout, for clients that spawn
//! the server as a child process.
//!
//! Reading is ours so that bad input gets an answer: a line that is not JSON gets a JSON-RPC
//! Parse error (-32700), any other JSON that is not a JSON-RPC message gets Invalid Request
//! (-32600, with the null id when it has none), and the session goes on either way. Every
//! write is one whole serialized message and a newline, so stdout carries JSON-RPC only. This is also the drain's stdio edge: each request counts as in flight
//! from the line read to its answer written, and while draining new requests are answered
//! with an error here. The process exits when stdin closes or after a drain on SIGTERM/SIGINT.

use std::{collections::HashMap, pin::Pin, sync::Arc, time::Duration};

use rmcp::{
    RoleServer,
    model::{
        CallToolRequest, ClientJsonRpcMessage, ClientNotification, ClientRequest, ErrorCode, ErrorData, JsonRpcMessage,
        JsonRpcRequest, RequestId, ServerJsonRpcMessage,
    },
    service::{ServerInitializeError, serve_server_with_ct},
    transport::{Transport, stdio_pipes},
};
use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    sync::{Mutex, OwnedSemaphorePermit},
};
use tokio_util::sync::CancellationToken;

use crate::{
    mcp_app::McpApp,
    parse_budget::{self, InFlightBudget, ParseLimits, Unparsable},
    server::{McpServer, REFUSED_WHILE_DRAINING, explain_missing_method, missing_method, shutting_down},
    shutdown::{self, InFlight, Shutdown},
    telemetry::clip,
};

/// Longest accepted message; longer lines are answered with an error and skipped.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Serves one stdio session until stdin closes or a signal drains it.
pub async fn run<A: McpApp>(server: McpServer<A>, shutdown: Shutdown, limits: ParseLimits, budget: InFlightBudget) {
    let (stdin, stdout) = stdio_pipes();
    let transport = StdioTransport::new(stdin, stdout, shutdown.clone(), limits, budget);
    let stop = CancellationToken::new();
    let signalled = shutdown::signal();
    shutdown.mark_serving();
    tracing::info!(event = "listening", transport = "stdio", "serving MCP on stdio");

    let session = async {
        match serve_server_with_ct(server, transport, stop.clone()).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            // stdin closed before the first request: a normal end.
            Err(ServerInitializeError::ConnectionClosed(_) | ServerInitializeError::Cancelled) => {}
            Err(error) => tracing::error!(%error, "stdio session failed to start"),
        }
    };
    tokio::pin!(session);
    let began = std::time::Instant::now();
    tokio::select! {
        () = &mut session => tracing::info!(event = "stdin_closed", "stdin closed; exiting"),
        signal = signalled => {
            shutdown.drain(signal).await;
            // Stop the session; rmcp first flushes answers the handlers already produced.
            stop.cancel();
            if tokio::time::timeout(Duration::from_secs(5), session).await.is_err() {
                tracing::warn!("stdio session did not close in time");
            }
        }
    }
    if let Some(metrics) = crate::metrics::get() {
        metrics.session(None, "stdio", began.elapsed().as_secs_f64());
    }
}

/// Server side of the stdio framing (see the module docs).
pub struct StdioTransport<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    /// Inside an oversized line, skipping to its end. Kept here because `receive` may be
    /// cancelled and resumed mid-line.
    discarding: bool,
    /// stdout: one JSON-RPC message per line, written whole under the lock.
    writer: Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>,
    shutdown: Shutdown,
    /// What one message may hold, checked before it is parsed.
    limits: ParseLimits,
    /// What messages being handled hold at once.
    budget: InFlightBudget,
    /// Requests read and not yet answered.
    in_flight: HashMap<RequestId, Held>,
    /// The client began with `server/discover` (2026-07-28), not `initialize`.
    stateless: bool,
}

/// What a request holds until its answer is written: its place in the drain's count and its
/// share of the in-flight budget.
struct Held {
    _in_flight: InFlight,
    _bytes: OwnedSemaphorePermit,
}

enum Line {
    Complete,
    Oversized,
    Eof,
}

impl<R: AsyncRead + Send + Unpin> StdioTransport<R> {
    pub fn new(
        reader: R,
        writer: impl AsyncWrite + Send + Unpin + 'static,
        shutdown: Shutdown,
        limits: ParseLimits,
        budget: InFlightBudget,
    ) -> Self {
        Self {
            reader: BufReader::new(reader),
            line: Vec::new(),
            discarding: false,
            writer: Arc::new(Mutex::new(Box::new(writer))),
            shutdown,
            limits,
            budget,
            in_flight: HashMap::new(),
            stateless: false,
        }
    }

    /// Reads up to the next newline into `self.line`, never holding more than the limit.
    /// Cancel-safe: progress lives in `self`, and `fill_buf` loses nothing when dropped.
    async fn read_line(&mut self) -> std::io::Result<Line> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(Line::Eof);
            }
            let (chunk, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], true),
                None => (available, false),
            };
            let used = chunk.len() + usize::from(complete);
            let fits = self.line.len() + chunk.len() <= MAX_LINE_BYTES;
            if !self.discarding && fits {
                self.line.extend_from_slice(chunk);
            } else {
                self.line.clear();
                self.discarding = true;
            }
            Pin::new(&mut self.reader).consume(used);
            if complete {
                return Ok(if std::mem::take(&mut self.discarding) {
                    Line::Oversized
                } else {
                    Line::Complete
                });
            }
        }
    }

    /// Answers a request that never reached rmcp; `None` answers with the null id, as
    /// JSON-RPC asks when the id could not be read.
    async fn reply_error(&mut self, id: Option<RequestId>, error: ErrorData) {
        let line = match id {
            Some(id) => serde_json::to_value(ServerJsonRpcMessage::error(error, Some(id))),
            None => serde_json::to_value(&error)
                .map(|error| serde_json::json!({ "jsonrpc": "2.0", "id": null, "error": error })),
        };
        let written = match line {
            Ok(line) => write_line(self.writer.clone(), &line).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not write an error reply to stdout");
        }
    }
}

impl<R: AsyncRead + Send + Unpin> Transport<RoleServer> for StdioTransport<R> {
    type Error = std::io::Error;

    fn send(
        &mut self,
        mut item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        if let JsonRpcMessage::Error(error) = &mut item {
            explain_missing_method(&mut error.error);
        }
        let answered = match &item {
            JsonRpcMessage::Response(response) => self.in_flight.remove(&response.id),
            JsonRpcMessage::Error(error) => error.id.as_ref().and_then(|id| self.in_flight.remove(id)),
            _ => None,
        };
        let writer = self.writer.clone();
        async move {
            let written = write_line(writer, &item).await;
            drop(answered); // the request stops counting once its answer is out
            written
        }
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        loop {
            match self.read_line().await {
                Ok(Line::Complete) => {}
                Ok(Line::Eof) => return None,
                Ok(Line::Oversized) => {
                    tracing::warn!(
                        event = "bad_input",
                        max_bytes = MAX_LINE_BYTES,
                        "message too large; skipped"
                    );
                    let message = format!("message exceeds {MAX_LINE_BYTES} bytes and was skipped");
                    self.reply_error(None, ErrorData::new(ErrorCode::INVALID_REQUEST, message, None))
                        .await;
                    continue;
                }
                Err(error) => {
                    tracing::error!(%error, "reading stdin failed");
                    return None;
                }
            }
            let line = std::mem::take(&mut self.line);
            let text = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line); // UTF-8 BOM
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // Past the limits, refused before any parse builds a tree; text that is not JSON
            // goes on to `parse`, which says so.
            let shape = match parse_budget::measure(text, self.limits) {
                Ok(shape) => Some(shape),
                Err(Unparsable::Syntax(_)) => None,
                Err(too_much) => {
                    tracing::warn!(event = "bad_input", code = too_much.code(), error = %too_much, "message refused before parsing");
                    let error = ErrorData::new(ErrorCode(too_much.code()), too_much.to_string(), None);
                    self.reply_error(None, error).await;
                    continue;
                }
            };
            let held_bytes = text.len() + shape.map_or(0, |shape| shape.tree_bytes());
            match parse(text) {
                Ok(JsonRpcMessage::Request(request))
                    if let RequestId::String(id) = &request.id
                        && let Err(why) = parse_budget::check_id(id.len()) =>
                {
                    self.reply_error(None, ErrorData::new(ErrorCode(why.code()), why.to_string(), None))
                        .await;
                }
                Ok(JsonRpcMessage::Request(request)) => {
                    match &request.request {
                        ClientRequest::DiscoverRequest(_) => self.stateless = true,
                        ClientRequest::InitializeRequest(_) => self.stateless = false,
                        // rmcp answers ping itself, whatever the revision; 2026-07-28 has none.
                        ClientRequest::PingRequest(_) if self.stateless => {
                            self.reply_error(Some(request.id), missing_method("ping")).await;
                            continue;
                        }
                        _ => {}
                    }
                    let in_flight = match &request.request {
                        // Tasks stay readable while draining: their owners need them most then.
                        ClientRequest::GetTaskRequest(_)
                        | ClientRequest::CancelTaskRequest(_)
                        | ClientRequest::UpdateTaskRequest(_) => Some(self.shutdown.track_always()),
                        _ => self.shutdown.track(),
                    };
                    let Some(in_flight) = in_flight else {
                        self.reply_error(Some(request.id), shutting_down(REFUSED_WHILE_DRAINING))
                            .await;
                        continue;
                    };
                    let Some(bytes) = self.budget.try_hold(held_bytes) else {
                        let error = ErrorData::new(ErrorCode(-32000), self.budget.full(), None);
                        self.reply_error(Some(request.id), error).await;
                        continue;
                    };
                    let held = Held {
                        _in_flight: in_flight,
                        _bytes: bytes,
                    };
                    self.in_flight.insert(request.id.clone(), held);
                    return Some(JsonRpcMessage::Request(request));
                }
                Ok(JsonRpcMessage::Notification(notification)) => {
                    // A cancelled request gets no answer, so it stops counting now.
                    if let ClientNotification::CancelledNotification(cancelled) = &notification.notification
                        && let Some(id) = &cancelled.params.request_id
                    {
                        self.in_flight.remove(id);
                    }
                    return Some(JsonRpcMessage::Notification(notification));
                }
                Ok(message) => return Some(message),
                Err((id, error)) => {
                    tracing::warn!(event = "bad_input", code = error.code.0, error = %error.message, "invalid JSON-RPC input");
                    if let Some(id) = id {
                        self.reply_error(id, error).await;
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.lock().await.shutdown().await
    }
}

/// Writes `message` and a newline, whole, then flushes.
async fn write_line(
    writer: Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>,
    message: &impl serde::Serialize,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message)?;
    line.push(b'\n');
    let mut writer = writer.lock().await;
    writer.write_all(&line).await?;
    writer.flush().await
}

/// Parses one line. On failure, says whom to answer (`Some(id)`, where `id` is `None` for
/// the null id) or that no answer is due (`None`: a malformed notification).
fn parse(line: &[u8]) -> Result<ClientJsonRpcMessage, (Option<Option<RequestId>>, ErrorData)> {
    if let Some(call) = tool_call(line) {
        return Ok(call);
    }
    // Parsed from the bytes, not a value: a duplicate key is only visible there. A line that
    // is not a message is parsed a second time, as any JSON, to see whom to answer.
    let invalid = match serde_json::from_slice(line) {
        Ok(message) => return Ok(message),
        Err(invalid) => invalid,
    };
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        (
            Some(None),
            ErrorData::new(
                ErrorCode::PARSE_ERROR,
                format!("Parse error: not valid JSON ({})", clip(&e.to_string())),
                None,
            ),
        )
    })?;
    let id = value.get("id").cloned();
    // Something shaped like a notification: an object with a method name and no id.
    let notification = id.is_none() && value.get("method").is_some_and(serde_json::Value::is_string);
    let error = ErrorData::new(
        ErrorCode::INVALID_REQUEST,
        format!("Invalid Request: {}", clip(&invalid.to_string())),
        None,
    );
    Err(match id {
        // A notification gets no answer, even a malformed one.
        None if notification => (None, error),
        // Anything else that is not a message (`{}`, `[1,2]`, `42`, `null`...) is answered
        // with the null id, as JSON-RPC asks.
        None => (Some(None), error),
        Some(id) => (Some(serde_json::from_value(id).ok()), error),
    })
}

/// A `tools/call` request read straight into its type, the way the general parse would read
/// it. The general parse tries every request type in turn (rmcp's untagged enum) and makes and
/// drops an error for each of the thirteen before `tools/call`: two thirds of a call's
/// allocations. `None` for any other line, or a call that does not read cleanly: the general
/// parse then decides, as it always did.
fn tool_call(line: &[u8]) -> Option<ClientJsonRpcMessage> {
    /// The keys that tell a request from the other messages, as rmcp tells them: by presence,
    /// whatever the value (`"result": null` included).
    #[derive(serde::Deserialize)]
    struct Shape<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
        #[serde(default, deserialize_with = "present")]
        id: bool,
        #[serde(default, deserialize_with = "present")]
        result: bool,
        #[serde(default, deserialize_with = "present")]
        error: bool,
    }
    fn present<'de, D: serde::Deserializer<'de>>(value: D) -> Result<bool, D::Error> {
        <serde::de::IgnoredAny as serde::Deserialize>::deserialize(value).map(|_| true)
    }
    let shape: Shape = serde_json::from_slice(line).ok()?;
    if shape.method.as_deref() != Some("tools/call") || !shape.id || shape.result || shape.error {
        return None;
    }
    let JsonRpcRequest { jsonrpc, id, request } =
        serde_json::from_slice::<JsonRpcRequest<CallToolRequest>>(line).ok()?;
    Some(JsonRpcMessage::Request(JsonRpcRequest {
        jsonrpc,
        id,
        request: ClientRequest::CallToolRequest(request),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct read of a `tools/call` gives what the general parse gives, or leaves the line
    /// to it.
    #[test]
    fn reads_a_tool_call_as_the_general_parse_does() {
        let general = |line: &[u8]| serde_json::from_slice::<ClientJsonRpcMessage>(line).map_err(|e| e.to_string());
        let read_directly = [
            &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1}}}"#[..],
            br#"{"method":"tools/call","params":{"name":"t"},"id":"x","jsonrpc":"2.0"}"#,
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t","arguments":{"n":1.5,"s":"\u00e9"},"_meta":{"progressToken":7,"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"task":{"ttl":1000}},"extra":true}"#,
        ];
        for line in read_directly {
            let direct = tool_call(line).expect("read directly");
            assert_eq!(format!("{direct:?}"), format!("{:?}", general(line).unwrap()));
        }
        let left_to_the_general_parse = [
            &br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#[..],
            br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"t"}}"#,
            br#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"t"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"},"result":null}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"},"error":{}}"#,
            br#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"t"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            br#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"t"}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}"#,
        ];
        for line in left_to_the_general_parse {
            assert!(tool_call(line).is_none(), "{}", String::from_utf8_lossy(line));
            let _ = general(line); // whatever it decides, it decides alone
        }
    }

    #[test]
    fn classifies_bad_lines() {
        let (to, e) = parse(b"{not json").unwrap_err();
        assert_eq!((to, e.code), (Some(None), ErrorCode::PARSE_ERROR));
        let (to, e) = parse(br#"{"jsonrpc":"2.0","id":7,"method":42}"#).unwrap_err();
        assert_eq!(
            (to, e.code),
            (Some(Some(RequestId::Number(7))), ErrorCode::INVALID_REQUEST)
        );
        let (to, _) = parse(br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":7}"#).unwrap_err();
        assert_eq!(to, None, "a malformed notification gets no answer");
        for not_a_message in [
            &b"{}"[..],
            b"[1,2]",
            b"\"x\"",
            b"42",
            b"null",
            br#"{"jsonrpc":"2.0","method":42}"#,
        ] {
            let (to, e) = parse(not_a_message).unwrap_err();
            assert_eq!((to, e.code), (Some(None), ErrorCode::INVALID_REQUEST));
        }
        assert!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_ok());
    }

    #[tokio::test]
    async fn skips_oversized_lines_and_keeps_reading() {
        let mut input = vec![b'x'; MAX_LINE_BYTES + 10];
        input.extend_from_slice(b"\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n");
        let limits = ParseLimits {
            max_values: 100,
            max_depth: 8,
        };
        let mut transport = StdioTransport::new(
            &input[..],
            tokio::io::sink(),
            Shutdown::new(Duration::ZERO),
            limits,
            InFlightBudget::new(1 << 20),
        );
        let message = transport.receive().await.expect("the next line is read");
        assert!(matches!(message, ClientJsonRpcMessage::Request(_)));
    }
}
