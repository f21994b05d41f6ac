//! Fixtures for the MCP conformance suite (`make conformance`): an app of its own, whose tools,
//! resources, prompts and capabilities are those the suite's scenarios call by fixed names.
//! Served by the `conformance` build in place of the app: each fixture tool declares its policy
//! like any tool and passes the same guard chain, and every request is observed and logged the
//! same way.

mod client;
mod content;
mod input;
mod notify;
mod prompts;
mod resources;
mod schemas;
mod tasks;

use std::{collections::HashMap, time::Duration};

use rmcp::{
    ErrorData, RoleServer,
    handler::server::router::{prompt::PromptRouter, tool::ToolRouter},
    model::{
        ClientCapabilities, CompleteRequestParams, CompleteResult, ReadResourceResult, Resource, ResourceTemplate,
        ServerCapabilities, SubscriptionFilter,
    },
    service::RequestContext,
};

use crate::{
    Kit, McpApp,
    guard::{Rate, ToolPolicy},
};

/// The suite calls some fixtures many times a second from one address; a quota it never meets.
const QUOTA: Rate = Rate::per(1000, Duration::from_secs(1), 1000);

/// A fixture tool's policy: the default chain with a quota the suite never meets.
fn policy<A: serde::de::DeserializeOwned + validator::Validate>(name: &'static str) -> ToolPolicy {
    ToolPolicy::new::<A>(name).quota(QUOTA)
}

/// Every fixture tool with its policy, one pair per tool, as the catalog expects.
pub(crate) fn tools() -> Vec<(ToolRouter<Fixtures>, ToolPolicy)> {
    let groups = [
        (Fixtures::content_router(), content::policies()),
        (Fixtures::notify_router(), notify::policies()),
        (Fixtures::client_router(), client::policies()),
        (Fixtures::input_router(), input::policies()),
        (Fixtures::schemas_router(), schemas::policies()),
        (Fixtures::tasks_router(), tasks::policies()),
    ];
    let mut pairs = Vec::new();
    for (router, policies) in groups {
        let mut policies: HashMap<_, _> = policies.into_iter().map(|p| (p.name, p)).collect();
        for route in router {
            let policy = policies
                .remove(route.name())
                .unwrap_or_else(|| panic!("fixture tool '{}' has no policy", route.name()));
            pairs.push((ToolRouter::new().with_route(route), policy));
        }
        assert!(policies.is_empty(), "policies without a tool: {:?}", policies.keys());
    }
    pairs
}

/// Every fixture prompt.
pub(crate) fn prompts() -> PromptRouter<Fixtures> {
    Fixtures::fixture_prompts_router() + Fixtures::input_prompts_router()
}

/// The conformance suite's app.
#[derive(Clone)]
pub struct Fixtures;

impl McpApp for Fixtures {
    type Settings = crate::config::NoAppSettings;

    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "The MCP conformance suite's fixtures.";
    const INSTRUCTIONS: &'static str = "Fixtures for the MCP conformance suite.";

    fn new(_settings: &Self::Settings, _kit: &Kit) -> Result<Self, String> {
        Ok(Self)
    }

    fn tools() -> Vec<(ToolRouter<Self>, ToolPolicy)> {
        tools()
    }

    fn prompts() -> PromptRouter<Self> {
        prompts()
    }

    fn resources(&self) -> Vec<Resource> {
        resources::list()
    }

    fn resource_templates(&self) -> Vec<ResourceTemplate> {
        resources::templates()
    }

    fn read_resource(&self, uri: &str) -> Option<Result<ReadResourceResult, ErrorData>> {
        resources::read(uri).map(Ok)
    }

    /// Client logging, completions (with no suggestions) and resource subscriptions.
    fn capabilities(&self, capabilities: &mut ServerCapabilities) {
        capabilities.logging = Some(Default::default());
        capabilities.completions = Some(Default::default());
        if let Some(resources) = capabilities.resources.as_mut() {
            resources.subscribe = Some(true);
        }
    }

    fn complete(
        &self,
        _request: &CompleteRequestParams,
        _context: &RequestContext<RoleServer>,
    ) -> Option<Result<CompleteResult, ErrorData>> {
        Some(Ok(CompleteResult::default()))
    }

    fn set_level(&self) -> Option<Result<(), ErrorData>> {
        Some(Ok(()))
    }

    fn subscribe(&self, uri: &str) -> Option<Result<(), ErrorData>> {
        Some(resources::subscribe(uri))
    }

    /// The fixtures never change, so a listener gets its acknowledgment and then waits.
    fn subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }
}

/// The capabilities the caller declared: per request on 2026-07-28, at the handshake before.
fn client_capabilities(context: &RequestContext<RoleServer>) -> ClientCapabilities {
    context
        .meta
        .client_capabilities()
        .or_else(|| context.peer.peer_info().map(|info| info.capabilities.clone()))
        .unwrap_or_default()
}
