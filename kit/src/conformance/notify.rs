//! Tools that send notifications while they run: log messages and progress.
#![allow(
    deprecated,
    reason = "client logging is deprecated (SEP-2577); the suite still tests it"
)]

use std::time::Duration;

use rmcp::{
    RoleServer,
    model::{CallToolResult, ContentBlock, LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam},
    service::RequestContext,
    tool, tool_router,
};

use super::policy;
use crate::{conformance::Fixtures, guard::ToolPolicy, mcp_app::NoArguments};

const STEP: Duration = Duration::from_millis(50);

pub fn policies() -> Vec<ToolPolicy> {
    ["test_tool_with_logging", "test_logging_tool", "test_tool_with_progress"]
        .into_iter()
        .map(policy::<NoArguments>)
        .collect()
}

/// Sends a log message unless the request says it wants none: a 2026-07-28 request asks for
/// log messages with `_meta.logLevel`; a session sets its level with `logging/setLevel`.
async fn log(context: &RequestContext<RoleServer>, message: &str) {
    let per_request = context.meta.protocol_version().is_some(); // 2026-07-28 carries it in `_meta`
    if per_request && context.meta.log_level().is_none() {
        return;
    }
    let param = LoggingMessageNotificationParam::new(LoggingLevel::Info, message.into()).with_logger("conformance");
    let _ = context.peer.notify_logging_message(param).await;
}

#[tool_router(router = notify_router, vis = "pub(crate)")]
impl Fixtures {
    /// Logs three messages, 50 ms apart, then answers.
    #[tool]
    async fn test_tool_with_logging(&self, context: RequestContext<RoleServer>) -> CallToolResult {
        for message in [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed",
        ] {
            log(&context, message).await;
            tokio::time::sleep(STEP).await;
        }
        CallToolResult::success(vec![ContentBlock::text("Tool with logging executed successfully")])
    }

    /// Logs one message, only when the request asked for log messages.
    #[tool]
    async fn test_logging_tool(&self, context: RequestContext<RoleServer>) -> CallToolResult {
        log(&context, "Logging tool ran").await;
        CallToolResult::success(vec![ContentBlock::text("Logging tool completed")])
    }

    /// Reports progress 0, 50 and 100 of 100, 50 ms apart, when the request has a progress token.
    #[tool]
    async fn test_tool_with_progress(&self, context: RequestContext<RoleServer>) -> CallToolResult {
        let token = context.meta.get_progress_token();
        for step in [0.0, 50.0, 100.0] {
            if let Some(token) = &token {
                let param = ProgressNotificationParam::new(token.clone(), step)
                    .with_total(100.0)
                    .with_message(format!("Completed step {step} of 100"));
                let _ = context.peer.notify_progress(param).await;
            }
            tokio::time::sleep(STEP).await;
        }
        CallToolResult::success(vec![ContentBlock::text("Progress test completed")])
    }
}
