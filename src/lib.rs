//! An MCP server on rmcp, served over stdio or Streamable HTTP in both protocol generations.
//! `main.rs` parses the configuration and calls [`serve`]; tests drive the built binary.

pub mod config;
pub mod healthcheck;
pub mod http;
pub mod prompts;
pub mod resources;
pub mod server;
pub mod shutdown;
pub mod stdio;
pub mod telemetry;
mod tools;
pub mod upstream;
pub mod weather;

use config::{ServeConfig, Transport};

/// Runs the server until its transport ends (stdin closed) or a signal has drained it.
pub async fn serve(config: ServeConfig) -> Result<(), String> {
    let shutdown = shutdown::Shutdown::new(config.drain_timeout);
    let upstream = upstream::Upstream::new(&config.upstream)?;
    let weather = weather::OpenMeteo::new(upstream, &config.upstream);
    let server = server::McpServer::new(weather, shutdown.clone());
    tracing::info!(
        event = "starting",
        version = env!("CARGO_PKG_VERSION"),
        transport = config.transport.name(),
        drain_timeout_s = config.drain_timeout.as_secs(),
        "starting"
    );
    match config.transport {
        Transport::Stdio => {
            stdio::run(server, shutdown).await;
            Ok(())
        }
        Transport::Http => http::run(config.bind, server, shutdown).await,
    }
}
