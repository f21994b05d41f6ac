//! The tools this server offers: one file per tool, each a typed function with its doc
//! comment as the description the model reads. Add a file, then add its router below.

mod forecast;
mod units;

use rmcp::handler::server::router::tool::ToolRouter;

use crate::server::McpServer;

/// Every tool router, merged.
pub(crate) fn router() -> ToolRouter<McpServer> {
    McpServer::forecast_router() + McpServer::units_router()
}
