//! Resources: one fixed resource and one resource template, both read-only reference data
//! the model can pull in to interpret forecasts.

use rmcp::{
    ErrorData,
    model::{
        ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource, ResourceContents,
        ResourceTemplate,
    },
};

use crate::weather::{WEATHER_CODES, weather_code};

const CODES_URI: &str = "weather://codes";
const CODE_PREFIX: &str = "weather://codes/";
const JSON: &str = "application/json";

pub fn list() -> ListResourcesResult {
    #[allow(unused_mut, reason = "only the conformance fixtures extend it")]
    let mut resources = vec![
        Resource::new(CODES_URI, "weather-codes")
            .with_title("WMO weather codes")
            .with_description("Every weather code the forecast tool reports, with its meaning.")
            .with_mime_type(JSON),
    ];
    #[cfg(feature = "conformance")]
    resources.extend(crate::conformance::list_resources());
    ListResourcesResult::with_all_items(resources)
}

pub fn templates() -> ListResourceTemplatesResult {
    #[allow(unused_mut, reason = "only the conformance fixtures extend it")]
    let mut templates = vec![
        ResourceTemplate::new(format!("{CODE_PREFIX}{{code}}"), "weather-code")
            .with_title("One WMO weather code")
            .with_description("The meaning of one weather code, e.g. weather://codes/61.")
            .with_mime_type(JSON),
    ];
    #[cfg(feature = "conformance")]
    templates.extend(crate::conformance::resource_templates());
    ListResourceTemplatesResult::with_all_items(templates)
}

/// Reads `weather://codes` or `weather://codes/{code}`.
pub fn read(uri: &str) -> Result<ReadResourceResult, ErrorData> {
    #[cfg(feature = "conformance")]
    if let Some(result) = crate::conformance::read_resource(uri) {
        return Ok(result);
    }
    let body = if uri == CODES_URI {
        serde_json::to_string_pretty(WEATHER_CODES)
    } else if let Some(code) = uri.strip_prefix(CODE_PREFIX) {
        let code = code
            .parse::<u8>()
            .ok()
            .and_then(weather_code)
            .ok_or_else(|| not_found(uri, "no such weather code; read weather://codes for the list"))?;
        serde_json::to_string_pretty(&code)
    } else {
        return Err(not_found(
            uri,
            "unknown resource; see resources/list and resources/templates/list",
        ));
    };
    let body = body.map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(body, uri).with_mime_type(JSON),
    ]))
}

fn not_found(uri: &str, hint: &str) -> ErrorData {
    ErrorData::resource_not_found(format!("{uri}: {hint}"), Some(serde_json::json!({ "uri": uri })))
}
