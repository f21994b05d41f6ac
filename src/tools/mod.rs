//! The tools this server offers: one file per tool, each a typed function with its doc
//! comment as the description the model reads, and its policy (scope, quota, timeout,
//! argument rules) declared beside it. Add a file, then add its router and policy below.

// weather-example:begin
mod forecast;
mod forecasts;
/// What a place name may hold, for the weather prompt's arguments too.
pub(crate) use forecast::{PLACE_NAME, PLACE_NAME_PATTERN};
// weather-example:end
mod formats;
mod status;
mod units;

/// A test-only tool, for tests/upstream.rs (the `fixtures` feature; never in a release).
#[cfg(feature = "fixtures")]
mod fixture;

pub use status::Status;

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use schemars::JsonSchema;
use serde::Deserialize;
use validator::Validate;

use crate::{guard::ToolPolicy, server::McpServer};

/// Every tool's router, merged, and every tool's policy. Each tool's schemas keep only standard
/// formats, and its policy checks arguments against its input schema as advertised.
pub(crate) fn catalog() -> (ToolRouter<McpServer>, Vec<ToolPolicy>) {
    #[allow(unused_mut, reason = "only test fixtures extend it")]
    let mut tools = vec![
        // weather-example:begin
        (McpServer::forecast_router(), forecast::policy()),
        (McpServer::forecasts_router(), forecasts::policy()),
        // weather-example:end
        (McpServer::units_router(), units::policy()),
        (McpServer::status_router(), status::policy()),
    ];
    #[cfg(feature = "conformance")]
    tools.extend(crate::conformance::tools());
    #[cfg(feature = "fixtures")]
    tools.extend(fixture::tools());
    let mut router = ToolRouter::new();
    let mut policies = Vec::new();
    for (mut tool, mut policy) in tools {
        // One tool per router, named as its policy says: a policy cannot drift from its tool.
        let names: Vec<_> = tool.list_all().into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [policy.name],
            "a tool file declares exactly one tool and its policy"
        );
        for route in tool.map.values_mut() {
            let attr = &mut route.attr;
            formats::keep_standard_formats(Arc::make_mut(&mut attr.input_schema));
            if let Some(output) = attr.output_schema.as_mut() {
                formats::keep_standard_formats(Arc::make_mut(output));
            }
            // The arguments are checked against exactly the schema the model is shown.
            policy = policy.input_schema(attr.input_schema.clone());
        }
        router += tool;
        policies.push(policy);
    }
    (router, policies)
}

/// Arguments of a tool that takes none; anything passed is refused.
#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct NoArguments {}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Every `format` value anywhere in `value`.
    fn formats<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                out.extend(map.get("format").and_then(Value::as_str));
                map.values().for_each(|v| formats(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| formats(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_tool_schema_keeps_only_standard_formats() {
        let (router, policies) = catalog();
        assert_eq!(router.list_all().len(), policies.len());
        for tool in router.list_all() {
            let input = Value::Object((*tool.input_schema).clone());
            let output = tool.output_schema.as_ref().map(|o| Value::Object((**o).clone()));
            let mut found = Vec::new();
            formats(&input, &mut found);
            if let Some(output) = &output {
                formats(output, &mut found);
            }
            found.retain(|f| !formats::is_standard(f));
            assert!(found.is_empty(), "{}: non-standard formats {found:?}", tool.name);
        }
    }

    /// Schemas compile on a tool's first call; this compiles every one now.
    #[test]
    fn every_tool_input_schema_compiles() {
        let (_, policies) = catalog();
        for policy in &policies {
            if let Err(error) = policy.input_schema_compiles() {
                panic!("the input schema of '{}' does not compile: {error}", policy.name);
            }
        }
    }
}
