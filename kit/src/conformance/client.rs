//! Tools that need something from the client: sampling and elicitation requests on a session
//! (the handshake revisions), and the capability checks every revision makes before asking.
#![allow(deprecated, reason = "sampling is deprecated (SEP-2577); the suite still tests it")]

use rmcp::{
    ErrorData, RoleServer,
    handler::server::wrapper::Parameters,
    model::{
        CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock, CreateMessageRequestParams,
        ElicitRequestParams, InputRequiredResult, SamplingMessage,
    },
    service::RequestContext,
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use validator::Validate;

use super::{client_capabilities, input, policy};
use crate::{conformance::Fixtures, guard::ToolPolicy, mcp_app::NoArguments};

pub fn policies() -> Vec<ToolPolicy> {
    vec![
        policy::<SamplingRequest>("test_sampling"),
        policy::<ElicitationRequest>("test_elicitation"),
        policy::<NoArguments>("test_elicitation_sep1034_defaults"),
        policy::<NoArguments>("test_elicitation_sep1330_enums"),
        policy::<NoArguments>("test_missing_capability"),
        policy::<NoArguments>("test_streaming_elicitation"),
    ]
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct SamplingRequest {
    /// The prompt to send to the client's model.
    pub prompt: String,
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct ElicitationRequest {
    /// The message to show the user.
    pub message: String,
}

/// Asks the client to fill in a form; the answer, or what went wrong, as the tool result.
async fn elicit(context: &RequestContext<RoleServer>, message: &str, schema: Value, label: &str) -> CallToolResult {
    let params = json!({ "mode": "form", "message": message, "requestedSchema": schema });
    let params: ElicitRequestParams = match serde_json::from_value(params) {
        Ok(params) => params,
        Err(e) => return CallToolResult::error(vec![ContentBlock::text(format!("schema not representable: {e}"))]),
    };
    match context.peer.create_elicitation(params).await {
        Ok(result) => CallToolResult::success(vec![ContentBlock::text(format!(
            "{label}: action={}, content={}",
            json!(result.action).as_str().unwrap_or_default(),
            result.content.unwrap_or_default()
        ))]),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("Elicitation failed: {e}"))]),
    }
}

/// `-32021` unless the client declared what `has` looks for.
fn require(
    context: &RequestContext<RoleServer>,
    has: impl Fn(&ClientCapabilities) -> bool,
    needed: Value,
) -> Result<(), ErrorData> {
    if has(&client_capabilities(context)) {
        return Ok(());
    }
    let needed = serde_json::from_value(needed).expect("a valid capabilities object");
    Err(ErrorData::missing_required_client_capability(needed))
}

#[tool_router(router = client_router, vis = "pub(crate)")]
impl Fixtures {
    /// Asks the client's model to answer the prompt (`sampling/createMessage`).
    #[tool]
    async fn test_sampling(
        &self,
        Parameters(request): Parameters<SamplingRequest>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(request.prompt)], 100);
        match context.peer.create_message(params).await {
            Ok(result) => {
                let content = serde_json::to_value(&result.message.content).unwrap_or_default();
                let text = content
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                CallToolResult::success(vec![ContentBlock::text(format!("LLM response: {text}"))])
            }
            Err(e) => CallToolResult::error(vec![ContentBlock::text(format!("Sampling failed: {e}"))]),
        }
    }

    /// Asks the user for a name and an email address (`elicitation/create`).
    #[tool]
    async fn test_elicitation(
        &self,
        Parameters(request): Parameters<ElicitationRequest>,
        context: RequestContext<RoleServer>,
    ) -> CallToolResult {
        let schema = json!({
            "type": "object",
            "properties": {
                "username": { "type": "string", "description": "User's response" },
                "email": { "type": "string", "description": "User's email address" }
            },
            "required": ["username", "email"]
        });
        elicit(&context, &request.message, schema, "User response").await
    }

    /// Asks for a form whose fields all have defaults (SEP-1034).
    #[tool]
    async fn test_elicitation_sep1034_defaults(&self, context: RequestContext<RoleServer>) -> CallToolResult {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": { "type": "string", "description": "User name", "default": "John Doe" },
                "age": { "type": "integer", "description": "User age", "default": 30 },
                "score": { "type": "number", "description": "User score", "default": 95.5 },
                "status": {
                    "type": "string", "description": "User status",
                    "enum": ["active", "inactive", "pending"], "default": "active"
                },
                "verified": { "type": "boolean", "description": "Verification status", "default": true }
            }
        });
        let message = "Please review and update the form fields with defaults";
        elicit(&context, message, schema, "Elicitation completed").await
    }

    /// Asks for a form with each kind of enum field (SEP-1330).
    #[tool]
    async fn test_elicitation_sep1330_enums(&self, context: RequestContext<RoleServer>) -> CallToolResult {
        let titled = |labels: [&str; 3]| {
            let values = ["value1", "value2", "value3"];
            values
                .iter()
                .zip(labels)
                .map(|(value, title)| json!({ "const": value, "title": title }))
                .collect::<Vec<_>>()
        };
        let schema = json!({
            "type": "object",
            "properties": {
                "untitledSingle": { "type": "string", "enum": ["option1", "option2", "option3"] },
                "titledSingle": {
                    "type": "string",
                    "oneOf": titled(["First Option", "Second Option", "Third Option"])
                },
                "legacyEnum": {
                    "type": "string",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"]
                },
                "untitledMulti": {
                    "type": "array",
                    "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
                },
                "titledMulti": {
                    "type": "array",
                    "items": { "anyOf": titled(["First Choice", "Second Choice", "Third Choice"]) }
                }
            }
        });
        elicit(&context, "Please choose", schema, "Elicitation completed").await
    }

    /// Needs the client's `sampling` capability: without it, `-32021` before anything runs.
    #[tool]
    async fn test_missing_capability(&self, context: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        require(&context, |c| c.sampling.is_some(), json!({ "sampling": {} }))?;
        Ok(CallToolResult::success(vec![ContentBlock::text(
            "the client declares sampling",
        )]))
    }

    /// Needs input from the user mid-call: on 2026-07-28 that is an `InputRequiredResult` in the
    /// response, never a request of the server's own on the response stream.
    #[tool]
    async fn test_streaming_elicitation(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        require(&context, |c| c.elicitation.is_some(), json!({ "elicitation": {} }))?;
        let ask = input::elicitation("What is your name?", json!({ "name": { "type": "string" } }), &["name"]);
        Ok(InputRequiredResult::from_input_requests([("user_name".to_owned(), ask)].into()).into())
    }
}
