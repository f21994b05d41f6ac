//! The one HTTP client tools use to call upstream APIs.
//!
//! Built once and shared, so connections are pooled. It holds no inbound credentials: a tool
//! can only send what it puts in the request itself, never the caller's token.

use std::time::Duration;

use reqwest::Url;
use serde::de::DeserializeOwned;

use crate::config::UpstreamConfig;

#[derive(Clone)]
pub struct Upstream {
    http: reqwest::Client,
}

impl Upstream {
    pub fn new(config: &UpstreamConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5).min(config.upstream_timeout))
            .timeout(config.upstream_timeout)
            .build()
            .map_err(|e| format!("building the upstream HTTP client: {e}"))?;
        Ok(Self { http })
    }

    /// GETs `url` with `query` and decodes a JSON body. The error says what failed in words a
    /// model can relay: which host, and the status or the network problem.
    pub async fn get_json<T: DeserializeOwned>(&self, url: Url, query: &[(&str, &str)]) -> Result<T, String> {
        let host = url.host_str().unwrap_or("upstream").to_owned();
        let started = std::time::Instant::now();
        let response = self.http.get(url).query(query).send().await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "request failed"
                };
                tracing::warn!(upstream = %host, error = %e, "upstream {what}");
                return Err(format!("upstream {host} {what}"));
            }
        };
        let status = response.status();
        tracing::debug!(upstream = %host, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "upstream answered");
        if !status.is_success() {
            return Err(format!("upstream {host} answered HTTP {status}"));
        }
        response
            .json::<T>()
            .await
            .map_err(|e| format!("upstream {host} sent a response that could not be read: {e}"))
    }
}
