//! Resources: read-only data the model can pull in. Each source lists its resources and
//! templates here and answers `read` for its own URIs.

use rmcp::{
    ErrorData,
    model::{ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult},
};

pub const JSON: &str = "application/json";

pub fn list() -> ListResourcesResult {
    #[allow(unused_mut, reason = "the sources below extend it")]
    let mut resources = vec![
        // weather-example:begin
        crate::weather::codes::resource(),
        // weather-example:end
    ];
    #[cfg(feature = "conformance")]
    resources.extend(crate::conformance::list_resources());
    ListResourcesResult::with_all_items(resources)
}

pub fn templates() -> ListResourceTemplatesResult {
    #[allow(unused_mut, reason = "the sources below extend it")]
    let mut templates = vec![
        // weather-example:begin
        crate::weather::codes::template(),
        // weather-example:end
    ];
    #[cfg(feature = "conformance")]
    templates.extend(crate::conformance::resource_templates());
    ListResourceTemplatesResult::with_all_items(templates)
}

/// Reads a resource by URI, from whichever source owns it.
pub fn read(uri: &str) -> Result<ReadResourceResult, ErrorData> {
    #[cfg(feature = "conformance")]
    if let Some(result) = crate::conformance::read_resource(uri) {
        return Ok(result);
    }
    // weather-example:begin
    if let Some(result) = crate::weather::codes::read(uri) {
        return result;
    }
    // weather-example:end
    Err(not_found(
        uri,
        "unknown resource; see resources/list and resources/templates/list",
    ))
}

/// Resource not found, naming the URI (clipped: the answer does not grow with what a client
/// sends).
pub fn not_found(uri: &str, hint: &str) -> ErrorData {
    let uri = crate::telemetry::clip(uri);
    ErrorData::resource_not_found(format!("{uri}: {hint}"), Some(serde_json::json!({ "uri": uri })))
}
