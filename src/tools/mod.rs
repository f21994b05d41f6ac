//! The tools this server offers: one file per tool, each a typed function on [`App`] with its
//! doc comment as the description the model reads, and its policy (scope, quota, timeout,
//! argument rules) declared beside it. Add a file, then add its router and policy below.

// weather-example:begin
mod forecast;
mod forecasts;
/// What a place name may hold, for the weather prompt's arguments too.
pub(crate) use forecast::{PLACE_NAME, PLACE_NAME_PATTERN};
// weather-example:end
mod units;

use rmcp::handler::server::router::tool::ToolRouter;

use mcp_server_kit::guard::ToolPolicy;

use crate::app::App;

/// Every tool's router, one tool each, with its policy.
pub(crate) fn all() -> Vec<(ToolRouter<App>, ToolPolicy)> {
    vec![
        // weather-example:begin
        (App::forecast_router(), forecast::policy()),
        (App::forecasts_router(), forecasts::policy()),
        // weather-example:end
        (App::units_router(), units::policy()),
    ]
}

#[cfg(test)]
mod tests {
    /// Every tool's schemas keep only standard formats, and every input schema compiles
    /// (schemas compile on a tool's first call; this compiles every one now).
    #[test]
    fn every_tool_schema_is_standard_and_compiles() {
        if let Err(fault) = mcp_server_kit::kit_tools::check_catalog::<crate::app::App>() {
            panic!("{fault}");
        }
    }
}
