//! The seam between the kit and the app it serves: the one trait an app implements.
//!
//! An app is a type of its own (holding its clients) whose tools are `#[tool_router] impl`
//! blocks on it, as in rmcp's examples; the kit serves it on every transport, puts every call
//! through the guard chain, observes every request, and never imports the app.

use clap::Args;
use rmcp::{
    ErrorData, RoleServer,
    handler::server::router::{prompt::PromptRouter, tool::ToolRouter},
    model::{
        CompleteRequestParams, CompleteResult, ReadResourceResult, Resource, ResourceTemplate, ServerCapabilities,
        SubscriptionFilter,
    },
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::Deserialize;
use validator::Validate;

use crate::{guard::ToolPolicy, upstream::Upstream};

/// What an MCP server built on this kit offers: its tools with their policies, prompts,
/// resources and instructions, and its own settings.
pub trait McpApp: Clone + Send + Sync + Sized + 'static {
    /// The app's own settings, flattened into the server's command line and `MCP_*`
    /// environment beside the kit's (use `#[derive(clap::Args)]`; an empty struct for none).
    type Settings: Args + Clone + std::fmt::Debug + Send + Sync + 'static;

    /// The server's name, version and one-line description, as `initialize` and
    /// `server/discover` announce them (usually `env!("CARGO_PKG_NAME")` and its siblings).
    const NAME: &'static str;
    const VERSION: &'static str;
    const DESCRIPTION: &'static str;

    /// What the model reads about the server before it calls anything: what each tool,
    /// resource and prompt is for.
    const INSTRUCTIONS: &'static str;

    /// Builds the app from its settings and what the kit shares with it (the upstream client).
    fn new(settings: &Self::Settings, kit: &Kit) -> Result<Self, String>;

    /// Every tool, one router per tool, each with its policy (scope, quota, timeout, tasks).
    fn tools() -> Vec<(ToolRouter<Self>, ToolPolicy)>;

    /// Every prompt.
    fn prompts() -> PromptRouter<Self> {
        PromptRouter::new()
    }

    /// The hosts upstream calls may reach unless `MCP_UPSTREAM_ALLOW_HOSTS` lists them: those
    /// of the APIs the app calls.
    fn upstream_hosts(_settings: &Self::Settings) -> Vec<url::Host> {
        Vec::new()
    }

    /// Resources, read-only data the model can pull in.
    fn resources(&self) -> Vec<Resource> {
        Vec::new()
    }

    fn resource_templates(&self) -> Vec<ResourceTemplate> {
        Vec::new()
    }

    /// Reads a resource of the app's; `None` for a URI it does not know.
    fn read_resource(&self, _uri: &str) -> Option<Result<ReadResourceResult, ErrorData>> {
        None
    }

    /// Capabilities beyond tools, resources, prompts and tasks (completions, resource
    /// subscriptions, client logging), for an app that answers the methods below.
    fn capabilities(&self, _capabilities: &mut ServerCapabilities) {}

    /// `completion/complete`; `None`: not offered.
    fn complete(
        &self,
        _request: &CompleteRequestParams,
        _context: &RequestContext<RoleServer>,
    ) -> Option<Result<CompleteResult, ErrorData>> {
        None
    }

    /// `logging/setLevel`; `None`: not offered.
    fn set_level(&self) -> Option<Result<(), ErrorData>> {
        None
    }

    /// `resources/subscribe` and `resources/unsubscribe`; `None`: not offered.
    fn subscribe(&self, _uri: &str) -> Option<Result<(), ErrorData>> {
        None
    }

    /// Resource subscriptions on 2026-07-28 (`subscriptions/listen`): the filter accepted.
    fn subscription_filter(&self, _requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        None
    }
}

/// What the kit shares with the app it builds.
#[derive(Clone)]
pub struct Kit {
    /// The client for upstream APIs: pooled, retrying, time-limited, SSRF-guarded.
    pub upstream: Upstream,
}

/// Arguments of a tool that takes none; anything passed is refused.
#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct NoArguments {}

/// The answers a retried `prompts/get` brings back (2026-07-28's `input_required` round):
/// rmcp's prompt context does not carry them, so the kit puts them in the request's extensions.
#[derive(Debug, Clone, Default)]
pub struct PromptRetry {
    pub input_responses: Option<rmcp::model::InputResponses>,
}

/// Resource not found, naming the URI (clipped: the answer does not grow with what a client
/// sends).
pub fn resource_not_found(uri: &str, hint: &str) -> ErrorData {
    let uri = crate::telemetry::clip(uri);
    ErrorData::resource_not_found(format!("{uri}: {hint}"), Some(serde_json::json!({ "uri": uri })))
}
