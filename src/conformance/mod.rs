//! Fixtures for the MCP conformance suite (`make conformance`): the tools, resources, prompts
//! and capabilities its scenarios call by fixed names. Compiled only with the `conformance`
//! feature, into the same server: each fixture tool declares its policy like any tool and
//! passes the same guard chain, and every request is observed and logged the same way.

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
    RoleServer,
    handler::server::router::{prompt::PromptRouter, tool::ToolRouter},
    model::{ClientCapabilities, ServerCapabilities},
    service::RequestContext,
};

pub use input::PromptRetry;
pub use resources::{list as list_resources, read as read_resource, subscribe, templates as resource_templates};

use crate::{
    guard::{Rate, ToolPolicy},
    server::McpServer,
};

/// The suite calls some fixtures many times a second from one address; a quota it never meets.
const QUOTA: Rate = Rate::per(1000, Duration::from_secs(1), 1000);

/// A fixture tool's policy: the default chain with a quota the suite never meets.
fn policy<A: serde::de::DeserializeOwned + validator::Validate>(name: &'static str) -> ToolPolicy {
    ToolPolicy::new::<A>(name).quota(QUOTA)
}

/// Every fixture tool with its policy, one pair per tool, as the catalog expects.
pub(crate) fn tools() -> Vec<(ToolRouter<McpServer>, ToolPolicy)> {
    let groups = [
        (McpServer::content_router(), content::policies()),
        (McpServer::notify_router(), notify::policies()),
        (McpServer::client_router(), client::policies()),
        (McpServer::input_router(), input::policies()),
        (McpServer::schemas_router(), schemas::policies()),
        (McpServer::tasks_router(), tasks::policies()),
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
pub(crate) fn prompts() -> PromptRouter<McpServer> {
    McpServer::fixture_prompts_router() + McpServer::input_prompts_router()
}

/// What the fixtures add to the server's capabilities: client logging and resource subscriptions.
pub fn extend(capabilities: &mut ServerCapabilities) {
    capabilities.logging = Some(Default::default());
    capabilities.completions = Some(Default::default());
    if let Some(resources) = capabilities.resources.as_mut() {
        resources.subscribe = Some(true);
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
