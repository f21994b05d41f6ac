//! OAuth 2.0 Protected Resource Metadata (RFC 9728): tells clients which authorization
//! servers issue tokens for this server and which scopes exist.

use axum::{Json, extract::State};
use reqwest::Url;
use serde_json::{Value, json};

/// The metadata document, built once at startup.
#[derive(Clone)]
pub struct Metadata(pub std::sync::Arc<Value>);

impl Metadata {
    pub fn new(name: &str, resource: &Url, authorization_servers: &[Url], scopes: &[String]) -> Self {
        Self(std::sync::Arc::new(json!({
            "resource": resource.as_str(),
            "authorization_servers": authorization_servers.iter().map(|u| u.as_str().trim_end_matches('/')).collect::<Vec<_>>(),
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": name,
        })))
    }
}

pub async fn protected_resource(State(metadata): State<Metadata>) -> Json<Value> {
    Json(metadata.0.as_ref().clone())
}

/// Where the metadata for `resource` lives: the well-known path inserted before its path
/// (RFC 9728 §3.1), e.g. https://host/.well-known/oauth-protected-resource/mcp.
pub fn url_for(resource: &Url) -> Url {
    let mut url = resource.clone();
    url.set_path(&format!("/.well-known/oauth-protected-resource{}", resource.path()));
    url
}
