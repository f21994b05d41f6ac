//! `fetch_fixture`: a test-only tool (cargo feature `fixtures`, which `make test` turns on and
//! no production build has). It GETs one URL through the shared upstream client, so the
//! protocol tests in tests/upstream.rs prove retries, time limits, cancellation and the SSRF
//! guard whatever tools a project has.

use std::time::Duration;

use reqwest::Url;
use rmcp::{handler::server::wrapper::Parameters, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use validator::Validate;

use crate::{
    guard::{Rate, ToolPolicy},
    server::McpServer,
};

/// Any caller, generous quota (tests override it when they test quotas); 20 s covers the
/// upstream's own attempt timeout plus a retry, like a real upstream tool.
pub fn policy() -> ToolPolicy {
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
impl McpServer {
    /// Test fixture: GET a URL through the upstream client and return its body as text.
    #[tool(annotations(read_only_hint = true, open_world_hint = true))]
    pub async fn fetch_fixture(&self, Parameters(request): Parameters<FetchRequest>) -> Result<String, String> {
        let url = Url::parse(&request.url).map_err(|e| format!("not a URL: {e}"))?;
        let answer = self.upstream.get(url).send().await?;
        Ok(String::from_utf8_lossy(answer.body()).into_owned())
    }
}
