//! A bare rmcp server: the server's rmcp, its `convert_temperature` (same arguments, same
//! result), and nothing of ours: no guard chain, no edge layers, no logs. Over HTTP it is
//! rmcp's `StreamableHttpService` on axum, configured as the server configures it (JSON
//! answers, TCP_NODELAY) but with rmcp's own defaults otherwise: stateless 2026-07-28 requests,
//! 2025-11-25 sessions in rmcp's `LocalSessionManager`. Over stdio it is rmcp's `stdio_pipes()`
//! transport, the one the server reads its pipes with.

use std::{alloc::System, sync::Arc};

use axum::serve::ListenerExt;
use baselines::{
    Mode,
    counting::{Counting, report_allocations_on_sigusr1},
    log_listening,
    temperature::{ConvertRequest, Converted, convert},
};
use rmcp::{
    Json, ServerHandler, ServiceExt,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
    transport::{
        stdio_pipes,
        streamable_http_server::{
            StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
        },
    },
};

#[global_allocator]
static ALLOCATOR: Counting<System> = Counting(System);

/// One instance per session or stateless request, as in the server: the router is built once
/// and shared.
#[derive(Clone)]
struct Bare {
    tool_router: Arc<ToolRouter<Self>>,
}

#[tool_router]
impl Bare {
    /// Convert a temperature between celsius, fahrenheit and kelvin.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    async fn convert_temperature(
        &self,
        Parameters(request): Parameters<ConvertRequest>,
    ) -> Result<Json<Converted>, String> {
        convert(request).map(Json)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Bare {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() {
    report_allocations_on_sigusr1();
    let server = Bare {
        tool_router: Arc::new(Bare::tool_router()),
    };
    match Mode::from_args() {
        Mode::Stdio => {
            let running = server.serve(stdio_pipes()).await.expect("serving stdio");
            let _ = running.waiting().await;
        }
        Mode::Http(bind) => {
            let config = StreamableHttpServerConfig::default().with_json_response(true);
            let service = StreamableHttpService::new(
                move || Ok(server.clone()),
                Arc::new(LocalSessionManager::default()),
                config,
            );
            let app = axum::Router::new().route_service("/mcp", service);
            let listener = tokio::net::TcpListener::bind(bind).await.expect("binding");
            log_listening(listener.local_addr().expect("the bound address"));
            // As the server does: answers leave at once, not after the client's delayed ACK.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app).await.expect("serving HTTP");
        }
    }
}
