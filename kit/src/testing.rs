//! An in-process client for an app's own tests (the `testing` feature, which an app turns on in
//! its dev-dependencies): the app served by the kit, over an in-memory pipe instead of a
//! spawned process, so a tool's test runs in milliseconds. Everything between the client and
//! the tool is the kit's, as on stdio: the guard chain (scopes, quotas, argument checks,
//! timeouts), tasks, and one log line per request. The kit's own suites drive the built binary
//! over stdio and HTTP instead.
//!
//! ```ignore
//! let client = mcp_server_kit::testing::connect::<App>(&[]).await?;
//! let result = client.call_tool(CallToolRequestParams::new("echo").with_arguments(args)).await?;
//! ```

use std::sync::Arc;

use clap::Parser;
use rmcp::{
    RoleClient, ServiceExt,
    model::{ClientConfig, Implementation, ProtocolVersion},
    service::RunningService,
};

use crate::{
    McpApp, StartError,
    auth::Principal,
    config::{Cli, Command},
    shutdown::Shutdown,
    tasks::MemoryStore,
};

/// A client connected to an app served in this process; dropping it ends the session.
pub type Client = RunningService<RoleClient, ClientConfig>;

/// Serves app `A` in this process with the settings `args` give (flags as on the command line,
/// e.g. `["--rate-limits", "echo=5/s"]`; `MCP_*` variables are read too), and connects a client
/// to it in a 2025-11-25 session, as an anonymous caller (no scopes). Fails with the message a
/// bad setting would print at start.
pub async fn connect<A: McpApp>(args: &[&str]) -> Result<Client, String> {
    connect_as::<A>(args, Principal::anonymous("in-process")).await
}

/// As [`connect`], calling as `caller` (e.g. `Principal::authenticated("ops", ["mcp:admin".into()])`
/// for a tool that needs a scope).
pub async fn connect_as<A: McpApp>(args: &[&str], caller: Principal) -> Result<Client, String> {
    let command_line = ["server", "serve"].into_iter().chain(args.iter().copied());
    let cli = Cli::<A::Settings>::try_parse_from(command_line).map_err(|e| e.to_string())?;
    let Command::Serve(serve) = cli.command else {
        unreachable!("parsed as `serve`")
    };
    let (config, settings) = (serve.config, serve.app);
    config.validate()?;
    let shutdown = Shutdown::new(config.drain_timeout);
    let server = crate::assemble::<A>(
        &config,
        &settings,
        &shutdown,
        Arc::new(MemoryStore::default()),
        None,
        caller,
    )
    .map_err(|error| match error {
        StartError::Config(message) | StartError::Runtime(message) => message,
    })?;
    // Room for any one message both ways; the pipe's buffer is all it holds.
    let (client_end, server_end) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_end).await {
            let _ = running.waiting().await;
        }
    });
    let mut client = ClientConfig::default();
    client.protocol_version = ProtocolVersion::V_2025_11_25;
    client.client_info = Implementation::new("in-process-test", env!("CARGO_PKG_VERSION"));
    client
        .serve(client_end)
        .await
        .map_err(|e| format!("the in-process client could not connect: {e}"))
}
