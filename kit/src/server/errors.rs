//! The protocol's error answers the server gives in its own words: a method not offered,
//! params that do not fit their method, and refusals while shutting down.

use rmcp::{
    ErrorData,
    model::{
        CallToolRequest, CancelTaskRequest, ErrorCode, GetPromptRequest, GetTaskRequest, ListPromptsRequest,
        ListResourceTemplatesRequest, ListResourcesRequest, ListToolsRequest, ReadResourceRequest, UpdateTaskRequest,
    },
};

/// JSON-RPC code for requests refused or cancelled because the server is shutting down
/// (in the implementation-defined server error range).
pub const SHUTTING_DOWN: ErrorCode = ErrorCode(-32000);

/// The -32601 for a method this server does not offer, saying why. rmcp's own names only the
/// method; every transport passes its answers through [`explain_missing_method`] so a client
/// reads the same sentence over stdio and HTTP.
pub fn missing_method(method: &str) -> ErrorData {
    let message = match method {
        // rmcp refuses ping only where the revision has none.
        "ping" => "ping is not part of protocol revision 2026-07-28, which has no keep-alive request; \
                   ping exists in 2025-11-25 and 2025-06-18"
            .to_owned(),
        "initialize" => "initialize is not accepted here: protocol revision 2026-07-28 has no handshake \
                         (each request carries its version in _meta), and a session is initialized once, \
                         by its first request"
            .to_owned(),
        _ => format!(
            "{} is not offered by this server: its capabilities do not advertise it",
            crate::telemetry::clip(method)
        ),
    };
    ErrorData::new(ErrorCode::METHOD_NOT_FOUND, message, None)
}

/// The methods this server offers whose params rmcp reads, the task ones only when some tool
/// runs as a task. (`initialize` and `server/discover` each belong to one protocol generation
/// and stay with rmcp, which answers the other generation's with Method not found.)
const OFFERED: [&str; 10] = [
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
];

/// rmcp reads a request whose params do not fit the method it names (a `tools/call` without a
/// `name`, say) as one of an unknown method, which would tell the client the method is not
/// offered. For a method in [`OFFERED`]: the method, and the Invalid params (-32602) saying
/// what is wrong.
pub(super) fn malformed_params(
    method: &str,
    params: Option<serde_json::Value>,
    tasks: bool,
) -> Option<(&'static str, ErrorData)> {
    /// What reading the request as a `T` finds wrong.
    fn fault<T: serde::de::DeserializeOwned>(method: &str, params: Option<serde_json::Value>) -> String {
        let mut request = serde_json::Map::new();
        request.insert("method".into(), method.into());
        if let Some(params) = params {
            request.insert("params".into(), params);
        }
        match serde_json::from_value::<T>(serde_json::Value::Object(request)) {
            Err(error) => crate::telemetry::clip(&error.to_string()).into_owned(),
            Ok(_) => "they do not fit the method".into(),
        }
    }
    let method = OFFERED
        .into_iter()
        .find(|offered| *offered == method && (tasks || !offered.starts_with("tasks/")))?;
    let fault = match method {
        "tools/list" => fault::<ListToolsRequest>(method, params),
        "tools/call" => fault::<CallToolRequest>(method, params),
        "prompts/list" => fault::<ListPromptsRequest>(method, params),
        "prompts/get" => fault::<GetPromptRequest>(method, params),
        "resources/list" => fault::<ListResourcesRequest>(method, params),
        "resources/templates/list" => fault::<ListResourceTemplatesRequest>(method, params),
        "resources/read" => fault::<ReadResourceRequest>(method, params),
        "tasks/get" => fault::<GetTaskRequest>(method, params),
        "tasks/update" => fault::<UpdateTaskRequest>(method, params),
        _ => fault::<CancelTaskRequest>(method, params),
    };
    let error = ErrorData::invalid_params(format!("invalid params for {method}: {fault}"), None);
    Some((method, error))
}

/// Replaces rmcp's bare "method not found" message (the method's name alone) with one that
/// says why.
pub fn explain_missing_method(error: &mut ErrorData) {
    if error.code == ErrorCode::METHOD_NOT_FOUND && !error.message.contains(' ') {
        *error = missing_method(&error.message);
    }
}

/// The error for a request refused or cancelled because the server is shutting down.
pub fn shutting_down(message: &'static str) -> ErrorData {
    ErrorData::new(SHUTTING_DOWN, message, None)
}

/// What a request that arrives while draining is told.
pub const REFUSED_WHILE_DRAINING: &str =
    "the server is shutting down and accepts no new requests; retry on another instance";
