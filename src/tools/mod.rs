//! The tools this server offers: one file per tool, each a typed function with its doc
//! comment as the description the model reads, and its policy (scope, quota, timeout,
//! argument rules) declared beside it. Add a file, then add its router and policy below.

mod forecast;
mod status;
mod units;

pub use status::Status;

use rmcp::handler::server::router::tool::ToolRouter;
use schemars::JsonSchema;
use serde::Deserialize;
use validator::Validate;

use crate::{guard::ToolPolicy, server::McpServer};

/// Every tool's router, merged, and every tool's policy.
pub(crate) fn catalog() -> (ToolRouter<McpServer>, Vec<ToolPolicy>) {
    #[allow(unused_mut, reason = "only the conformance fixtures extend it")]
    let mut tools = vec![
        (McpServer::forecast_router(), forecast::policy()),
        (McpServer::units_router(), units::policy()),
        (McpServer::status_router(), status::policy()),
    ];
    #[cfg(feature = "conformance")]
    tools.extend(crate::conformance::tools());
    let mut router = ToolRouter::new();
    let mut policies = Vec::new();
    for (tool, policy) in tools {
        // One tool per router, named as its policy says: a policy cannot drift from its tool.
        let names: Vec<_> = tool.list_all().into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [policy.name],
            "a tool file declares exactly one tool and its policy"
        );
        router += tool;
        policies.push(policy);
    }
    (router, policies)
}

/// Arguments of a tool that takes none; anything passed is refused.
#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct NoArguments {}
