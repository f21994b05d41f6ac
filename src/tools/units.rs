//! `convert_temperature`: a pure tool, no I/O.

use std::time::Duration;

use rmcp::{Json, handler::server::wrapper::Parameters, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use validator::Validate;

use mcp_server_kit::guard::{Rate, ToolPolicy};

use crate::app::App;

/// Any caller; cheap, so 10 calls a second each (bursts of 20); 1 s is plenty.
pub fn policy() -> ToolPolicy {
    ToolPolicy::new::<ConvertRequest>("convert_temperature")
        .quota(Rate::per(10, Duration::from_secs(1), 20))
        .timeout(Duration::from_secs(1))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TemperatureUnit {
    Celsius,
    Fahrenheit,
    Kelvin,
}

impl TemperatureUnit {
    fn to_kelvin(self, value: f64) -> f64 {
        match self {
            Self::Celsius => value + 273.15,
            Self::Fahrenheit => (value - 32.0) * 5.0 / 9.0 + 273.15,
            Self::Kelvin => value,
        }
    }

    fn in_unit_from_kelvin(self, kelvin: f64) -> f64 {
        match self {
            Self::Celsius => kelvin - 273.15,
            Self::Fahrenheit => (kelvin - 273.15) * 9.0 / 5.0 + 32.0,
            Self::Kelvin => kelvin,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct ConvertRequest {
    /// The temperature to convert.
    #[validate(nested)]
    pub temperature: Temperature,
    /// Unit to convert to.
    pub to: TemperatureUnit,
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct Temperature {
    #[validate(range(min = -1_000_000.0, max = 1_000_000.0))]
    pub value: f64,
    pub unit: TemperatureUnit,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Converted {
    pub value: f64,
    pub unit: TemperatureUnit,
}

#[tool_router(router = units_router, vis = "pub(crate)")]
impl App {
    /// Convert a temperature between celsius, fahrenheit and kelvin.
    #[tool(annotations(read_only_hint = true, idempotent_hint = true, open_world_hint = false))]
    pub async fn convert_temperature(
        &self,
        Parameters(request): Parameters<ConvertRequest>,
    ) -> Result<Json<Converted>, String> {
        let Temperature { value, unit } = request.temperature;
        let kelvin = unit.to_kelvin(value);
        if kelvin < 0.0 {
            return Err(format!("{value} {unit:?} is below absolute zero").to_lowercase());
        }
        // Round to 1/100 of a degree so 100 °C reads 212, not 212.00000000000003.
        let value = (request.to.in_unit_from_kelvin(kelvin) * 100.0).round() / 100.0;
        Ok(Json(Converted {
            value,
            unit: request.to,
        }))
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::CallToolRequestParams;
    use serde_json::{Value, json};

    use super::TemperatureUnit::*;
    use crate::app::App;

    #[test]
    fn round_trips_through_kelvin() {
        assert!((Fahrenheit.in_unit_from_kelvin(Celsius.to_kelvin(100.0)) - 212.0).abs() < 1e-9);
        assert!((Celsius.in_unit_from_kelvin(Kelvin.to_kelvin(0.0)) + 273.15).abs() < 1e-9);
    }

    /// The tool behind the kit's whole chain, served in this process: no binary, milliseconds.
    #[tokio::test]
    async fn converts_and_refuses_through_the_guard_chain() {
        let client = mcp_server_kit::testing::connect::<App>(&[]).await.unwrap();
        let call = async |arguments: Value| {
            let arguments = arguments.as_object().unwrap().clone();
            let params = CallToolRequestParams::new("convert_temperature").with_arguments(arguments);
            let result = client.call_tool(params).await.unwrap();
            (
                result.is_error,
                result.structured_content,
                serde_json::to_string(&result.content).unwrap(),
            )
        };

        let (failed, converted, _) =
            call(json!({ "temperature": { "value": 100, "unit": "celsius" }, "to": "fahrenheit" })).await;
        assert_eq!(
            (failed, converted),
            (Some(false), Some(json!({ "value": 212.0, "unit": "fahrenheit" })))
        );
        // Out of range: refused by the guard, before the tool runs, naming the field.
        let (failed, _, text) =
            call(json!({ "temperature": { "value": 1e9, "unit": "celsius" }, "to": "kelvin" })).await;
        assert_eq!(failed, Some(true));
        assert!(text.contains("value"), "{text}");
        // The tool's own failure, for the model to read.
        let (failed, _, text) =
            call(json!({ "temperature": { "value": -300, "unit": "celsius" }, "to": "kelvin" })).await;
        assert_eq!(failed, Some(true));
        assert!(text.contains("below absolute zero"), "{text}");
        client.cancel().await.unwrap();
    }
}
