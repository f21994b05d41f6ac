//! Resources: read-only data the model can pull in. Each source lists its resources and
//! templates here and answers `read` for its own URIs.

use rmcp::{
    ErrorData,
    model::{ReadResourceResult, Resource, ResourceTemplate},
};

pub fn list() -> Vec<Resource> {
    vec![
        // weather-example:begin
        crate::weather::codes::resource(),
        // weather-example:end
    ]
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        // weather-example:begin
        crate::weather::codes::template(),
        // weather-example:end
    ]
}

/// Reads a resource by URI, from whichever source owns it; `None` for a URI none knows.
#[allow(unused_variables, reason = "a project may start with no resources")]
pub fn read(uri: &str) -> Option<Result<ReadResourceResult, ErrorData>> {
    // weather-example:begin
    if let Some(result) = crate::weather::codes::read(uri) {
        return Some(result);
    }
    // weather-example:end
    None
}
