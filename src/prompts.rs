//! Prompts: reusable message templates a client can offer its user. Each is a method with
//! `#[prompt]` in an `impl App` block of its own router; add the router below.

use rmcp::handler::server::router::prompt::PromptRouter;

use crate::app::App;

/// Every prompt router, merged.
pub(crate) fn router() -> PromptRouter<App> {
    #[allow(unused_mut, reason = "the routers added below extend it")]
    let mut router = PromptRouter::new();
    // weather-example:begin
    router += App::plan_router();
    // weather-example:end
    router
}
