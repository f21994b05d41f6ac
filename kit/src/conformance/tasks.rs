//! Tools the Tasks extension scenarios call (SEP-2663, `io.modelcontextprotocol/tasks`): one
//! that never runs as a task, ones that may or must, ones that fail either way, ones that wait
//! for input inside their task, and one that asks for input in the request (SEP-2322) before its
//! last round becomes a task. Each runs on the server's own task runtime, as its policy says.

use std::time::Duration;

use rmcp::{
    ErrorData,
    handler::server::{tool::InputResponses, wrapper::Parameters},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, InputRequests, InputRequiredResult,
    },
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use validator::Validate;

use super::{input::elicitation, policy};
use crate::{
    conformance::Fixtures,
    guard::{TaskSupport, ToolPolicy},
    mcp_app::NoArguments,
    progress::Progress,
};

/// The longest `slow_compute` sleeps; the suite asks for up to 60 s, then cancels.
const MAX_SECONDS: f64 = 120.0;

pub fn policies() -> Vec<ToolPolicy> {
    vec![
        policy::<Greeting>("greet"),
        // Longer than its longest sleep, so a slow call ends by cancellation, not timeout.
        policy::<Compute>("slow_compute")
            .task(TaskSupport::Optional)
            .timeout(Duration::from_secs_f64(MAX_SECONDS + 10.0)),
        policy::<NoArguments>("failing_job").task(TaskSupport::Required),
        policy::<NoArguments>("protocol_error_job").task(TaskSupport::Optional),
        // Asks through its task, or in the request for a client without tasks.
        policy::<Deletion>("confirm_delete").task(TaskSupport::Optional),
        // Waits for its answers inside its task only (task-required in the suite's fixtures).
        policy::<NoArguments>("multi_input").task(TaskSupport::Required),
        // Round 1 asks in the request; the round that brings the name back becomes a task.
        policy::<NoArguments>("test_tool_with_task")
            .task(TaskSupport::Required)
            .task_when(brings_user_name),
    ]
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct Greeting {
    /// Who to greet.
    pub name: String,
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct Compute {
    /// How long to work, in seconds (default 1).
    #[validate(range(min = 0.0, max = MAX_SECONDS))]
    pub seconds: Option<f64>,
    /// A label echoed in the result.
    pub label: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct Deletion {
    /// The file to delete once confirmed.
    pub filename: Option<String>,
}

/// Whether a `test_tool_with_task` call answers round 1 (then it runs as a task).
fn brings_user_name(request: &CallToolRequestParams) -> bool {
    user_name(request.input_responses.as_ref()).is_some()
}

/// The name in an answered `user_name` form; a missing or malformed answer is asked again.
fn user_name(responses: Option<&rmcp::model::InputResponses>) -> Option<String> {
    let answer = responses?.get("user_name")?.as_object()?;
    let name = answer
        .get("content")
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str);
    Some(name.unwrap_or("friend").to_owned())
}

/// A string field of an accepted elicitation answer.
fn field(answer: &Value, name: &str) -> Option<Value> {
    answer.get("content")?.get(name).cloned()
}

fn text(text: String) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

#[tool_router(router = tasks_router, vis = "pub(crate)")]
impl Fixtures {
    /// Greets by name, always within the request.
    #[tool]
    async fn greet(&self, Parameters(greeting): Parameters<Greeting>) -> CallToolResult {
        text(format!("Hello, {}!", greeting.name))
    }

    /// Works for `seconds`, then reports it; a task for clients that take tasks.
    #[tool]
    async fn slow_compute(&self, Parameters(compute): Parameters<Compute>) -> CallToolResult {
        let seconds = compute.seconds.unwrap_or(1.0);
        let label = compute.label.as_deref().unwrap_or("compute");
        // A cancelled task's work is dropped here by the runtime, mid-sleep.
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        text(format!("slow_compute({label}) done after {seconds}s"))
    }

    /// Runs as a task and ends in a tool error (`completed` with `isError`, not `failed`).
    #[tool]
    async fn failing_job(&self) -> CallToolResult {
        tokio::time::sleep(Duration::from_secs(1)).await;
        CallToolResult::error(vec![ContentBlock::text(
            "failing_job: intentional tool execution error",
        )])
    }

    /// Ends in a JSON-RPC error (`failed` with the error, as a task).
    #[tool]
    async fn protocol_error_job(&self) -> Result<CallToolResult, ErrorData> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Err(ErrorData::internal_error(
            "protocol_error_job: intentional protocol-level failure",
            None,
        ))
    }

    /// Asks for a confirmation, then reports the answer: through its task (`input_required`)
    /// when it runs as one, otherwise in the request (SEP-2322), so a client without tasks can
    /// call it too (the suite calls the first listed tool, this one, with no tasks).
    #[tool]
    async fn confirm_delete(
        &self,
        Parameters(deletion): Parameters<Deletion>,
        InputResponses(responses): InputResponses,
        progress: Progress,
    ) -> Result<CallToolResponse, ErrorData> {
        let filename = deletion.filename.as_deref().unwrap_or("file.txt");
        let form = elicitation(
            &format!("Delete {filename}?"),
            json!({ "confirm": { "type": "boolean" } }),
            &["confirm"],
        );
        let answer = match (progress.task(), responses.and_then(|mut r| r.remove("confirm"))) {
            (Some(task), _) => task.input("confirm", form).await?,
            (None, Some(answer)) => answer,
            (None, None) => {
                let requests: InputRequests = [("confirm".to_owned(), form)].into();
                return Ok(InputRequiredResult::from_input_requests(requests).into());
            }
        };
        let confirmed = field(&answer, "confirm").and_then(|v| v.as_bool()).unwrap_or(false);
        Ok(text(format!("confirm_delete({filename}): confirmed = {confirmed}")).into())
    }

    /// Asks for two values at once through its task; either may be answered first.
    #[tool]
    async fn multi_input(&self, progress: Progress) -> Result<CallToolResult, ErrorData> {
        // Its policy requires a task, so a call without one never reaches here.
        let task = progress
            .task()
            .ok_or_else(|| ErrorData::internal_error("multi_input runs only as a task", None))?;
        let form = |which: &str| {
            elicitation(
                &format!("Provide value {which}"),
                json!({ "value": { "type": "string" } }),
                &["value"],
            )
        };
        let (a, b) = tokio::join!(task.input("input-a", form("A")), task.input("input-b", form("B")));
        let value = |answer: &Value| {
            field(answer, "value")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "(none)".into())
        };
        Ok(text(format!("multi_input: a = {}, b = {}", value(&a?), value(&b?))))
    }

    /// Asks the user's name in the request (round 1); the round that brings it runs as a task
    /// whose result greets them.
    #[tool]
    async fn test_tool_with_task(
        &self,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(name) = user_name(responses.as_ref()) else {
            let form = elicitation("What is your name?", json!({ "name": { "type": "string" } }), &["name"]);
            let requests: InputRequests = [("user_name".to_owned(), form)].into();
            return Ok(InputRequiredResult::from_input_requests(requests).into());
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(text(format!("Hello, {name}! (async)")).into())
    }
}
