//! Tools whose input schemas carry what the suite looks for: JSON Schema 2020-12 keywords kept
//! as written, and an argument mirrored in an `Mcp-Param-*` header (SEP-2243).

use std::sync::Arc;

use rmcp::{handler::server::wrapper::Parameters, model::JsonObject, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use validator::Validate;

use super::policy;
use crate::{conformance::Fixtures, guard::ToolPolicy};

pub fn policies() -> Vec<ToolPolicy> {
    vec![
        policy::<Contact>("json_schema_2020_12_tool"),
        policy::<RegionRequest>("test_header_param"),
    ]
}

/// The arguments of the 2020-12 tool, for the guard's parse; its advertised schema is
/// `contact_schema`, written by hand.
#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code, reason = "the guard parses it; the tool reads none of it")]
pub struct Contact {
    pub name: Option<String>,
    pub address: Option<serde_json::Value>,
    pub contact_method: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// A schema using `$defs`, `$anchor`, `allOf`/`anyOf` and `if`/`then`/`else`.
fn contact_schema() -> Arc<JsonObject> {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": { "street": { "type": "string" }, "city": { "type": "string" } }
            }
        },
        "properties": {
            "name": { "type": "string" },
            "address": { "$ref": "#/$defs/address" },
            "contactMethod": { "type": "string", "enum": ["phone", "email"] },
            "phone": { "type": "string" },
            "email": { "type": "string" }
        },
        "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
        "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
        "then": { "required": ["phone"] },
        "else": { "required": ["email"] },
        "additionalProperties": false
    });
    match schema {
        serde_json::Value::Object(schema) => Arc::new(schema),
        _ => unreachable!("an object literal"),
    }
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct RegionRequest {
    /// A region name; HTTP clients also send it as the `Mcp-Param-Region` header.
    #[schemars(extend("x-mcp-header" = "Region"))]
    pub region: String,
}

#[tool_router(router = schemas_router, vis = "pub(crate)")]
impl Fixtures {
    /// Records a contact (name, address, and a phone or an email).
    #[tool(input_schema = contact_schema())]
    async fn json_schema_2020_12_tool(&self) -> String {
        "contact recorded".into()
    }

    /// Echoes the region, which HTTP clients also send in a header.
    #[tool]
    async fn test_header_param(&self, Parameters(request): Parameters<RegionRequest>) -> String {
        format!("region: {}", request.region)
    }
}
