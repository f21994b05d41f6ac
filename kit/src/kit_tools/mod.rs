//! The tool catalogue the server offers: the app's tools and the kit's own (`server_status`,
//! and the test-only fixtures of the `fixtures` feature), each tool one router with its policy.
//! Each tool's schemas keep only standard formats, and its policy checks arguments against its
//! input schema as advertised.

mod formats;
mod status;

/// Test-only tools, for tests/upstream.rs and tests/tasks.rs (the `fixtures` feature; never in
/// a release).
#[cfg(feature = "fixtures")]
mod fixture;

pub use status::{ADMIN_SCOPE, Status};

use std::{sync::Arc, time::Instant};

use rmcp::handler::server::router::tool::ToolRouter;

use crate::{guard::ToolPolicy, mcp_app::McpApp, shutdown::Shutdown, tasks::Tasks, upstream::Upstream};

/// The kit's own tools: what they read of the server.
#[derive(Clone)]
pub struct KitTools {
    /// The app's version, which `server_status` reports.
    pub(crate) version: &'static str,
    pub(crate) started: Instant,
    pub(crate) shutdown: Shutdown,
    pub(crate) tasks: Tasks,
    pub(crate) shared: Option<Arc<crate::state::Redis>>,
    pub(crate) guard: Arc<crate::guard::Guard>,
    #[allow(dead_code, reason = "read by the test-only fixtures")]
    pub(crate) upstream: Upstream,
}

/// Every tool's router (the app's and the kit's) and every tool's policy.
pub struct Catalog<A: McpApp> {
    pub app: ToolRouter<A>,
    pub kit: ToolRouter<KitTools>,
    pub policies: Vec<ToolPolicy>,
}

/// The catalogue of app `A` and the kit's tools.
pub fn catalog<A: McpApp>() -> Catalog<A> {
    let mut policies = Vec::new();
    let app = merge(A::tools(), &mut policies);
    #[allow(unused_mut, reason = "only test fixtures extend it")]
    let mut kit = vec![(KitTools::status_router(), status::policy())];
    #[cfg(feature = "fixtures")]
    kit.extend(fixture::tools());
    let kit = merge(kit, &mut policies);
    Catalog { app, kit, policies }
}

/// One router of `tools`, their schemas kept to standard formats, their policies in `policies`.
fn merge<S: Send + Sync + 'static>(
    tools: Vec<(ToolRouter<S>, ToolPolicy)>,
    policies: &mut Vec<ToolPolicy>,
) -> ToolRouter<S> {
    let mut router = ToolRouter::new();
    for (mut tool, mut policy) in tools {
        // One tool per router, named as its policy says: a policy cannot drift from its tool.
        let names: Vec<_> = tool.list_all().into_iter().map(|t| t.name).collect();
        assert_eq!(
            names,
            [policy.name],
            "each router in McpApp::tools holds exactly one tool, named as its policy"
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
    router
}

/// Checks every tool of app `A`: schemas with standard formats only, input schemas that
/// compile. For an app's own tests (`mcp_server_kit::kit_tools::check_catalog::<App>()`).
pub fn check_catalog<A: McpApp>() -> Result<(), String> {
    let Catalog { app, kit, policies } = catalog::<A>();
    let tools = app.list_all().into_iter().chain(kit.list_all());
    for tool in tools {
        let input = serde_json::Value::Object((*tool.input_schema).clone());
        let output = tool
            .output_schema
            .as_ref()
            .map(|o| serde_json::Value::Object((**o).clone()));
        let mut found = Vec::new();
        formats::formats_in(&input, &mut found);
        if let Some(output) = &output {
            formats::formats_in(output, &mut found);
        }
        found.retain(|f| !formats::is_standard(f));
        if !found.is_empty() {
            return Err(format!("{}: non-standard formats {found:?}", tool.name));
        }
    }
    for policy in &policies {
        policy
            .input_schema_compiles()
            .map_err(|error| format!("the input schema of '{}' does not compile: {error}", policy.name))?;
    }
    Ok(())
}
