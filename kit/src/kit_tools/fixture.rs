//! Test-only tools (cargo feature `fixtures`, which `make test` turns on and no production
//! build has), so the protocol tests prove the shared machinery whatever tools a project has:
//! - `fetch_fixture` GETs one URL through the shared upstream client (tests/upstream.rs:
//!   retries, time limits, cancellation, the SSRF guard);
//! - `fetch_fixture_many` GETs it several times, one after another, reporting progress and
//!   running as a task for clients that take tasks (tests/tasks.rs);
//! - only when `MCP_FIXTURE_FAULTS` is set, faults for tests/policy.rs and tests/tasks.rs to
//!   see answered: `broken_schema_fixture`, whose input schema does not compile (`make test`
//!   refuses that everywhere else), and `panic_fixture`, which panics (also as a task).

use std::time::Duration;

use reqwest::Url;
use rmcp::{handler::server::wrapper::Parameters, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use validator::Validate;

use crate::{
    guard::{Rate, TaskSupport, ToolPolicy},
    progress::Progress,
};

use super::KitTools;

pub fn tools() -> Vec<(rmcp::handler::server::router::tool::ToolRouter<KitTools>, ToolPolicy)> {
    let mut tools = vec![
        (KitTools::fixture_router(), policy()),
        (KitTools::fixture_many_router(), many_policy()),
    ];
    if std::env::var_os("MCP_FIXTURE_FAULTS").is_some() {
        tools.push((
            KitTools::broken_schema_router(),
            ToolPolicy::new::<BrokenSchemaRequest>("broken_schema_fixture"),
        ));
        tools.push((
            KitTools::panic_router(),
            ToolPolicy::new::<crate::mcp_app::NoArguments>("panic_fixture").task(TaskSupport::Optional),
        ));
    }
    tools
}

/// Any caller, generous quota (tests override it when they test quotas); 20 s covers the
/// upstream's own attempt timeout plus a retry, like a real upstream tool.
fn policy() -> ToolPolicy {
    ToolPolicy::new::<FetchRequest>("fetch_fixture")
        .quota(Rate::per(100, Duration::from_secs(1), 100))
        .timeout(Duration::from_secs(20))
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct FetchRequest {
    /// The URL to GET.
    #[validate(length(min = 1, max = 2000))]
    pub url: String,
}

#[tool_router(router = fixture_router, vis = "pub(crate)")]
impl KitTools {
    /// Test fixture: GET a URL through the upstream client and return its body as text.
    #[tool(annotations(read_only_hint = true, open_world_hint = true))]
    pub async fn fetch_fixture(&self, Parameters(request): Parameters<FetchRequest>) -> Result<String, String> {
        let url = Url::parse(&request.url).map_err(|e| format!("not a URL: {e}"))?;
        let answer = self.upstream.get(url).send().await?;
        Ok(String::from_utf8_lossy(answer.body()).into_owned())
    }
}

/// As `fetch_fixture`, and a task when the client takes tasks.
fn many_policy() -> ToolPolicy {
    ToolPolicy::new::<FetchManyRequest>("fetch_fixture_many")
        .quota(Rate::per(100, Duration::from_secs(1), 100))
        .timeout(Duration::from_secs(20))
        .task(TaskSupport::Optional)
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct FetchManyRequest {
    /// The URL to GET.
    #[validate(length(min = 1, max = 2000))]
    pub url: String,
    /// How many times, one after another (1 to 50).
    #[validate(range(min = 1, max = 50))]
    pub times: u32,
}

#[tool_router(router = fixture_many_router, vis = "pub(crate)")]
impl KitTools {
    /// Test fixture: GET a URL several times through the upstream client, reporting progress;
    /// returns the bodies, one per line.
    #[tool(annotations(read_only_hint = true, open_world_hint = true))]
    pub async fn fetch_fixture_many(
        &self,
        Parameters(request): Parameters<FetchManyRequest>,
        progress: Progress,
    ) -> Result<String, String> {
        let url = Url::parse(&request.url).map_err(|e| format!("not a URL: {e}"))?;
        let mut bodies = Vec::new();
        for done in 1..=request.times {
            if progress.stopped() {
                return Err("cancelled".into());
            }
            let answer = self.upstream.get(url.clone()).send().await?;
            bodies.push(String::from_utf8_lossy(answer.body()).into_owned());
            progress
                .report(done, request.times, format!("{done} of {} fetched", request.times))
                .await;
        }
        Ok(bodies.join("\n"))
    }
}

/// Arguments whose advertised schema does not compile: its pattern is no regular expression.
#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct BrokenSchemaRequest {
    /// Any text.
    #[schemars(regex(pattern = "("))]
    pub text: String,
}

#[tool_router(router = broken_schema_router, vis = "pub(crate)")]
impl KitTools {
    /// Test fixture: echoes its text, were its arguments ever checked.
    #[tool(annotations(read_only_hint = true))]
    pub async fn broken_schema_fixture(&self, Parameters(request): Parameters<BrokenSchemaRequest>) -> String {
        request.text
    }
}

#[tool_router(router = panic_router, vis = "pub(crate)")]
impl KitTools {
    /// Test fixture: panics, as a tool with a bug would.
    #[tool(annotations(read_only_hint = true))]
    pub async fn panic_fixture(&self) -> String {
        panic!("panic_fixture panics, as asked")
    }
}
