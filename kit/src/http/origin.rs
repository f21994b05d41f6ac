//! DNS-rebinding protection: the Host and Origin headers must be on allow-lists, checked
//! before anything else so a hostile page gets 403 whatever credentials it carries.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use reqwest::Url;
use serde_json::json;

use crate::refusals::Refusals;
use crate::{config::HttpConfig, telemetry::clip};

#[derive(Clone)]
pub struct HostOriginPolicy(Arc<Lists>);

struct Lists {
    hosts: Vec<AllowedHost>,
    origins: Vec<AllowedOrigin>,
}

/// An allowed Host: `host` (any port) or `host:port`, IPv6 in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

/// An allowed Origin: `null`, `scheme://host[:port]`, or `scheme://host:*` for any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigin {
    /// `null`, as sandboxed documents send.
    Null,
    /// scheme, host, port (`None` for `:*`, any port).
    Site(String, String, Option<u16>),
}

impl std::str::FromStr for AllowedHost {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        parse_host(raw)
            .map(|(host, port)| Self { host, port })
            .ok_or_else(|| format!("'{raw}' is not host or host:port"))
    }
}

impl std::str::FromStr for AllowedOrigin {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        parse_rule(raw)
            .ok_or_else(|| format!("'{raw}' is not an origin like https://app.example.com or http://localhost:*"))
    }
}

const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl HostOriginPolicy {
    /// The configured lists, or loopback defaults for a loopback bind.
    pub fn new(config: &HttpConfig, bind: SocketAddr) -> Self {
        Self::from_lists(&config.allowed_hosts, &config.allowed_origins, bind)
    }

    fn from_lists(allowed_hosts: &[AllowedHost], allowed_origins: &[AllowedOrigin], bind: SocketAddr) -> Self {
        let loopback = bind.ip().is_loopback();
        let hosts = if allowed_hosts.is_empty() && loopback {
            LOOPBACK_HOSTS
                .iter()
                .map(|h| AllowedHost {
                    host: h.to_string(),
                    port: None,
                })
                .collect()
        } else {
            allowed_hosts.to_vec()
        };
        let origins = if allowed_origins.is_empty() && loopback {
            LOOPBACK_HOSTS
                .iter()
                .map(|h| AllowedOrigin::Site("http".into(), h.to_string(), None))
                .collect()
        } else {
            allowed_origins.to_vec()
        };
        Self(Arc::new(Lists { hosts, origins }))
    }

    fn host_allowed(&self, authority: &str) -> bool {
        parse_host(authority).is_some_and(|(host, port)| {
            self.0
                .hosts
                .iter()
                .any(|allowed| allowed.host == host && allowed.port.is_none_or(|p| Some(p) == port))
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if origin == "null" {
            return self.0.origins.contains(&AllowedOrigin::Null);
        }
        let Ok(url) = Url::parse(origin) else { return false };
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        self.0.origins.iter().any(|rule| match rule {
            AllowedOrigin::Null => false,
            AllowedOrigin::Site(scheme, h, p) => scheme == url.scheme() && *h == host && p.is_none_or(|p| p == port),
        })
    }
}

/// `host` or `host:port` (IPv6 in brackets), lower-cased.
fn parse_host(raw: &str) -> Option<(String, Option<u16>)> {
    let raw = raw.trim().to_ascii_lowercase();
    if raw.is_empty() {
        return None;
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match raw.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => Some((raw.clone(), None)),
        Some((host, port)) => Some((host.to_owned(), Some(port.parse().ok()?))),
        None => Some((raw, None)),
    }
}

/// `null`, `scheme://host`, `scheme://host:port` or `scheme://host:*`.
fn parse_rule(raw: &str) -> Option<AllowedOrigin> {
    let raw = raw.trim();
    if raw == "null" {
        return Some(AllowedOrigin::Null);
    }
    let (site, any_port) = match raw.strip_suffix(":*") {
        Some(site) => (site, true),
        None => (raw, false),
    };
    let url = Url::parse(site).ok()?;
    let host = url.host_str()?.trim_matches(['[', ']']).to_ascii_lowercase();
    let port = if any_port {
        None
    } else {
        Some(url.port_or_known_default()?)
    };
    Some(AllowedOrigin::Site(url.scheme().to_owned(), host, port))
}

impl HostOriginPolicy {
    /// Refuses (403) a request whose Host or Origin is not on the lists.
    pub fn check(&self, headers: &HeaderMap, uri: &Uri, refusals: &Refusals) -> Result<(), Response> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .or_else(|| uri.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        if !self.host_allowed(&host) {
            return Err(forbidden(
                refusals,
                "host_not_allowed",
                &format!("Host '{}' is not allowed (MCP_ALLOWED_HOSTS)", clip(&host)),
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("<not text>");
            if !self.origin_allowed(origin) {
                return Err(forbidden(
                    refusals,
                    "origin_not_allowed",
                    &format!("Origin '{}' is not allowed (MCP_ALLOWED_ORIGINS)", clip(origin)),
                ));
            }
        }
        Ok(())
    }
}

fn forbidden(refusals: &Refusals, error: &'static str, description: &str) -> Response {
    refusals.record(error, || {
        tracing::warn!(
            event = "request_refused",
            error,
            reason = description,
            "refused a request at the HTTP edge"
        );
    });
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], origins: &[&str]) -> HostOriginPolicy {
        let hosts: Vec<AllowedHost> = hosts.iter().map(|s| s.parse().unwrap()).collect();
        let origins: Vec<AllowedOrigin> = origins.iter().map(|s| s.parse().unwrap()).collect();
        HostOriginPolicy::from_lists(&hosts, &origins, "0.0.0.0:80".parse().unwrap())
    }

    #[test]
    fn hosts_match_with_or_without_port() {
        let p = policy(&["mcp.example.com", "api.example.com:8443", "[::1]:80"], &[]);
        assert!(p.host_allowed("mcp.example.com") && p.host_allowed("MCP.example.com:9999"));
        assert!(p.host_allowed("api.example.com:8443") && !p.host_allowed("api.example.com:8444"));
        assert!(p.host_allowed("[::1]:80"));
        assert!(!p.host_allowed("evil.example.com") && !p.host_allowed(""));
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let p = policy(&["x"], &["https://app.example.com", "http://localhost:*", "null"]);
        assert!(p.origin_allowed("https://app.example.com") && p.origin_allowed("https://app.example.com:443"));
        assert!(!p.origin_allowed("https://app.example.com:8443") && !p.origin_allowed("http://app.example.com"));
        assert!(p.origin_allowed("http://localhost:6274") && p.origin_allowed("null"));
        assert!(!p.origin_allowed("https://evil.example.com") && !p.origin_allowed("garbage"));
    }

    #[test]
    fn nothing_is_allowed_by_default_off_loopback() {
        let p = policy(&["x"], &[]);
        assert!(!p.origin_allowed("http://localhost:3000"));
    }
}
