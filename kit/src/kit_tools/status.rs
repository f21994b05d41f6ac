//! `server_status`: a privileged tool for operators, hidden from callers without its scope.

use std::time::Duration;

use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Serialize;

use super::KitTools;
use crate::{guard::ToolPolicy, mcp_app::NoArguments};

/// The scope an operator's token needs.
pub const ADMIN_SCOPE: &str = "mcp:admin";

pub fn policy() -> ToolPolicy {
    ToolPolicy::new::<NoArguments>("server_status")
        .scope(ADMIN_SCOPE)
        .timeout(Duration::from_secs(1))
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Status {
    pub version: String,
    pub uptime_s: u64,
    /// Requests being handled right now, this one included.
    pub in_flight: usize,
    /// Rate-limit buckets held in memory (one per active caller and tool).
    pub rate_limit_buckets: usize,
    /// Tasks held: running, or keeping their result until their TTL.
    pub tasks: usize,
    /// Where state replicas share lives: `memory` (this process) or `redis`.
    pub shared_state: &'static str,
    /// With Redis: Redis commands that failed or timed out since start (each one decided
    /// as `MCP_REDIS_ON_FAILURE` says).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "u64")]
    pub redis_failures: Option<u64>,
}

impl KitTools {
    async fn status(&self) -> Status {
        Status {
            version: self.version.into(),
            uptime_s: self.started.elapsed().as_secs(),
            in_flight: self.shutdown.in_flight(),
            rate_limit_buckets: self.guard.limits().live_keys(),
            tasks: self.tasks.held().await,
            shared_state: if self.shared.is_some() { "redis" } else { "memory" },
            redis_failures: self.shared.as_ref().map(|redis| redis.failures()),
        }
    }
}

#[tool_router(router = status_router, vis = "pub(crate)")]
impl KitTools {
    /// Operational status of this server process: version, uptime, load and rate-limit state.
    #[tool(annotations(read_only_hint = true, open_world_hint = false))]
    pub async fn server_status(&self) -> Json<Status> {
        Json(self.status().await)
    }
}
