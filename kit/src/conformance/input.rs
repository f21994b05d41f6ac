//! Multi round-trip requests (SEP-2322, 2026-07-28): a tool or prompt that needs something from
//! the client answers `input_required` with the requests to fulfil, and the client calls again
//! with the answers (`inputResponses`) and the `requestState` it was given, sealed here so a
//! tampered one is refused.

use std::{io::Read, sync::LazyLock, time::Duration};

use rmcp::{
    ErrorData, RoleServer,
    handler::server::{
        common::Extension,
        prompt::IntoGetPromptResult,
        tool::{InputResponses, RequestState},
    },
    model::{
        CallToolResponse, CallToolResult, ContentBlock, GetPromptResponse, GetPromptResult, InputRequest,
        InputRequests, InputRequiredResult, PromptMessage, RequestStateCodec, Role, SealOptions,
    },
    prompt, prompt_router,
    service::RequestContext,
    tool, tool_router,
};
use serde_json::{Map, Value, json};

use super::{client_capabilities, policy};
use crate::{conformance::Fixtures, guard::ToolPolicy, mcp_app::NoArguments, mcp_app::PromptRetry};

pub fn policies() -> Vec<ToolPolicy> {
    [
        "test_input_required_result_elicitation",
        "test_input_required_result_sampling",
        "test_input_required_result_list_roots",
        "test_input_required_result_request_state",
        "test_input_required_result_tampered_state",
        "test_input_required_result_multiple_inputs",
        "test_input_required_result_multi_round",
        "test_input_required_result_capabilities",
    ]
    .into_iter()
    .map(policy::<NoArguments>)
    .collect()
}

/// A prompt's answer, complete or input required: one return type for both (rmcp converts
/// each of them, not the enum that holds either).
pub struct PromptAnswer(GetPromptResponse);

impl IntoGetPromptResult for PromptAnswer {
    fn into_get_prompt_result(self) -> Result<GetPromptResponse, ErrorData> {
        Ok(self.0)
    }
}

/// Seals request state with a key made at startup: state from another process, or altered,
/// does not open.
static CODEC: LazyLock<RequestStateCodec> = LazyLock::new(|| {
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut key))
        .expect("reading a key from /dev/urandom");
    RequestStateCodec::try_new(key).expect("a 32-byte key")
});

fn seal(tool: &str, state: Value) -> String {
    let options = SealOptions::new()
        .associated_data(tool.as_bytes())
        .ttl(Duration::from_secs(600));
    CODEC.seal_json_with(&state, &options).expect("JSON state serializes")
}

/// The state a previous round sealed for `tool`; a missing, altered or expired one is refused.
fn open(tool: &str, state: Option<&str>) -> Result<Value, ErrorData> {
    let state = state.ok_or_else(|| ErrorData::invalid_params("requestState is missing", None))?;
    CODEC
        .open_json_with(state, tool.as_bytes())
        .map_err(|_| ErrorData::invalid_params("requestState failed its integrity check", None))
}

/// An `elicitation/create` request for a form of string `fields`, all `required`.
pub fn elicitation(message: &str, fields: Value, required: &[&str]) -> InputRequest {
    request(json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": message,
            "requestedSchema": { "type": "object", "properties": fields, "required": required }
        }
    }))
}

fn sampling(text: &str, max_tokens: u32) -> InputRequest {
    request(json!({
        "method": "sampling/createMessage",
        "params": {
            "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
            "maxTokens": max_tokens
        }
    }))
}

fn list_roots() -> InputRequest {
    request(json!({ "method": "roots/list", "params": {} }))
}

fn request(value: Value) -> InputRequest {
    serde_json::from_value(value).expect("a valid input request")
}

/// The answers to `keys`, each an object; `Ok(None)` while any is missing (ask again), an
/// error when one is not an object. Keys the server did not ask for are ignored.
fn answers(
    responses: Option<&rmcp::model::InputResponses>,
    keys: &[&str],
) -> Result<Option<Vec<Map<String, Value>>>, ErrorData> {
    let Some(responses) = responses else { return Ok(None) };
    let mut found = Vec::new();
    for key in keys {
        match responses.get(*key) {
            None => return Ok(None),
            Some(Value::Object(answer)) => found.push(answer.clone()),
            Some(_) => {
                return Err(ErrorData::invalid_params(
                    format!("inputResponses.{key} must be an object"),
                    None,
                ));
            }
        }
    }
    Ok(Some(found))
}

/// A field of an accepted elicitation answer.
fn field(answer: &Map<String, Value>, name: &str) -> String {
    answer
        .get("content")
        .and_then(|c| c.get(name))
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .unwrap_or_default()
}

fn ask(requests: Vec<(&str, InputRequest)>, state: Option<String>) -> CallToolResponse {
    let requests: InputRequests = requests.into_iter().map(|(k, r)| (k.to_owned(), r)).collect();
    InputRequiredResult::new(Some(requests), state).into()
}

fn done(text: String) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(text)]).into()
}

fn name_form() -> InputRequest {
    elicitation("What is your name?", json!({ "name": { "type": "string" } }), &["name"])
}

fn confirm_form() -> InputRequest {
    elicitation("Please confirm", json!({ "ok": { "type": "boolean" } }), &["ok"])
}

/// Asks for a confirmation with state sealed for `tool`; once confirmed, opens the state the
/// client echoed (or refuses it) and answers "state-ok".
fn confirm(
    tool: &str,
    responses: Option<&rmcp::model::InputResponses>,
    state: Option<&str>,
) -> Result<CallToolResponse, ErrorData> {
    Ok(match answers(responses, &["confirm"])? {
        Some(_) => {
            open(tool, state)?;
            done("state-ok: confirmed".into())
        }
        None => ask(
            vec![("confirm", confirm_form())],
            Some(seal(tool, json!({ "round": 1 }))),
        ),
    })
}

#[tool_router(router = input_router, vis = "pub(crate)")]
impl Fixtures {
    /// Asks the user's name, then greets them.
    #[tool]
    async fn test_input_required_result_elicitation(
        &self,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(match answers(responses.as_ref(), &["user_name"])? {
            Some(answers) => done(format!("Hello, {}!", field(&answers[0], "name"))),
            None => ask(vec![("user_name", name_form())], None),
        })
    }

    /// Asks the client's model a question, then reports its answer.
    #[tool]
    async fn test_input_required_result_sampling(
        &self,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(match answers(responses.as_ref(), &["capital_question"])? {
            Some(answers) => {
                let text = answers[0]
                    .get("content")
                    .and_then(|c| c.get("text"))
                    .and_then(Value::as_str);
                done(format!("The model said: {}", text.unwrap_or_default()))
            }
            None => ask(
                vec![("capital_question", sampling("What is the capital of France?", 100))],
                None,
            ),
        })
    }

    /// Asks the client for its roots, then lists them.
    #[tool]
    async fn test_input_required_result_list_roots(
        &self,
        InputResponses(responses): InputResponses,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(match answers(responses.as_ref(), &["client_roots"])? {
            Some(answers) => done(format!(
                "Roots: {}",
                answers[0].get("roots").cloned().unwrap_or_default()
            )),
            None => ask(vec![("client_roots", list_roots())], None),
        })
    }

    /// Asks for a confirmation with sealed state; answers "state-ok" once the state opens.
    #[tool]
    async fn test_input_required_result_request_state(
        &self,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        confirm(
            "test_input_required_result_request_state",
            responses.as_ref(),
            state.as_deref(),
        )
    }

    /// The same; an altered state is refused with Invalid params.
    #[tool]
    async fn test_input_required_result_tampered_state(
        &self,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        confirm(
            "test_input_required_result_tampered_state",
            responses.as_ref(),
            state.as_deref(),
        )
    }

    /// Asks for a name, a model's greeting and the roots at once.
    #[tool]
    async fn test_input_required_result_multiple_inputs(
        &self,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        const TOOL: &str = "test_input_required_result_multiple_inputs";
        Ok(
            match answers(responses.as_ref(), &["user_name", "greeting", "client_roots"])? {
                Some(answers) => {
                    open(TOOL, state.as_deref())?;
                    done(format!("All inputs received; name: {}", field(&answers[0], "name")))
                }
                None => ask(
                    vec![
                        ("user_name", name_form()),
                        ("greeting", sampling("Generate a greeting", 50)),
                        ("client_roots", list_roots()),
                    ],
                    Some(seal(TOOL, json!({ "round": 1 }))),
                ),
            },
        )
    }

    /// Asks a name, then a favourite colour, carrying the name in sealed state between rounds.
    #[tool]
    async fn test_input_required_result_multi_round(
        &self,
        InputResponses(responses): InputResponses,
        RequestState(state): RequestState,
    ) -> Result<CallToolResponse, ErrorData> {
        const TOOL: &str = "test_input_required_result_multi_round";
        if let Some(answers) = answers(responses.as_ref(), &["step2"])? {
            let state = open(TOOL, state.as_deref())?;
            let name = state["name"].as_str().unwrap_or_default();
            return Ok(done(format!("{name} likes {}", field(&answers[0], "color"))));
        }
        if let Some(answers) = answers(responses.as_ref(), &["step1"])? {
            open(TOOL, state.as_deref())?;
            let name = field(&answers[0], "name");
            let colour = elicitation(
                "Step 2: What is your favorite color?",
                json!({ "color": { "type": "string" } }),
                &["color"],
            );
            return Ok(ask(
                vec![("step2", colour)],
                Some(seal(TOOL, json!({ "round": 2, "name": name }))),
            ));
        }
        let name = elicitation(
            "Step 1: What is your name?",
            json!({ "name": { "type": "string" } }),
            &["name"],
        );
        Ok(ask(vec![("step1", name)], Some(seal(TOOL, json!({ "round": 1 })))))
    }

    /// Asks only for what the client declared it can give.
    #[tool]
    async fn test_input_required_result_capabilities(
        &self,
        InputResponses(responses): InputResponses,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if responses.is_some_and(|r| !r.is_empty()) {
            return Ok(done("inputs received".into()));
        }
        let declared = client_capabilities(&context);
        let mut requests = Vec::new();
        if declared.elicitation.is_some() {
            requests.push(("user_name", name_form()));
        }
        if declared.sampling.is_some() {
            requests.push(("greeting", sampling("Generate a greeting", 50)));
        }
        if declared.roots.is_some() {
            requests.push(("client_roots", list_roots()));
        }
        if requests.is_empty() {
            return Ok(done("the client declared nothing to ask for".into()));
        }
        Ok(ask(requests, None))
    }
}

#[prompt_router(router = "input_prompts_router", vis = "pub(crate)")]
impl Fixtures {
    /// Asks what context to use, then returns a prompt with it.
    #[prompt(name = "test_input_required_result_prompt")]
    async fn test_input_required_result_prompt(
        &self,
        Extension(retry): Extension<PromptRetry>,
    ) -> Result<PromptAnswer, ErrorData> {
        let form = elicitation(
            "What context should the prompt use?",
            json!({ "context": { "type": "string" } }),
            &["context"],
        );
        Ok(match answers(retry.input_responses.as_ref(), &["user_context"])? {
            Some(answers) => {
                let text = format!("Use this context: {}", field(&answers[0], "context"));
                PromptAnswer(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).into())
            }
            None => {
                let requests: InputRequests = [("user_context".to_owned(), form)].into();
                PromptAnswer(InputRequiredResult::from_input_requests(requests).into())
            }
        })
    }
}
