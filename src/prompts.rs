//! Prompts: reusable message templates a client can offer its user. Each is a method with
//! `#[prompt]` in an `impl McpServer` block of its own router; add the router below.

use rmcp::handler::server::router::prompt::PromptRouter;

use crate::server::McpServer;

/// Every prompt router, merged.
pub(crate) fn router() -> PromptRouter<McpServer> {
    #[allow(unused_mut, reason = "the routers added below extend it")]
    let mut router = PromptRouter::new();
    // weather-example:begin
    router += McpServer::plan_router();
    // weather-example:end
    #[cfg(feature = "conformance")]
    {
        router += crate::conformance::prompts();
    }
    router
}
