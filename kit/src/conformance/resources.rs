//! Fixture resources: text, binary, a template, and one to subscribe to. They never change, so
//! a subscription is accepted and no update ever follows.

use rmcp::{
    ErrorData,
    model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate},
};
use serde_json::json;

use super::content::PNG;

const TEXT: &str = "test://static-text";
const BINARY: &str = "test://static-binary";
const WATCHED: &str = "test://watched-resource";
const TEMPLATE: (&str, &str) = ("test://template/", "/data");

pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(TEXT, "static-text")
            .with_description("A fixed text resource.")
            .with_mime_type("text/plain"),
        Resource::new(BINARY, "static-binary")
            .with_description("A fixed PNG image.")
            .with_mime_type("image/png"),
        Resource::new(WATCHED, "watched-resource")
            .with_description("A resource to subscribe to.")
            .with_mime_type("text/plain"),
    ]
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{}{{id}}{}", TEMPLATE.0, TEMPLATE.1), "template-data")
            .with_description("JSON data for an id, e.g. test://template/123/data.")
            .with_mime_type("application/json"),
    ]
}

/// Reads a fixture resource; `None` for a URI that is not one.
pub fn read(uri: &str) -> Option<ReadResourceResult> {
    let contents = match uri {
        TEXT => {
            ResourceContents::text("This is the content of the static text resource.", uri).with_mime_type("text/plain")
        }
        BINARY => ResourceContents::blob(PNG, uri).with_mime_type("image/png"),
        WATCHED => ResourceContents::text("Watched resource content", uri).with_mime_type("text/plain"),
        _ => {
            let id = uri.strip_prefix(TEMPLATE.0)?.strip_suffix(TEMPLATE.1)?;
            let body = json!({ "id": id, "templateTest": true, "data": format!("Data for ID: {id}") });
            ResourceContents::text(body.to_string(), uri).with_mime_type("application/json")
        }
    };
    Some(ReadResourceResult::new(vec![contents]))
}

/// Accepts a subscription to a fixture resource.
pub fn subscribe(uri: &str) -> Result<(), ErrorData> {
    match read(uri) {
        Some(_) => Ok(()),
        None => Err(ErrorData::resource_not_found(
            format!("{uri}: no such resource"),
            Some(json!({ "uri": uri })),
        )),
    }
}
