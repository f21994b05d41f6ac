//! `convert_temperature`'s arguments, result and arithmetic, as the server's
//! `src/tools/units.rs` has them (without its argument validation, which is the guard's).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConvertRequest {
    /// The temperature to convert.
    pub temperature: Temperature,
    /// Unit to convert to.
    pub to: TemperatureUnit,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Temperature {
    pub value: f64,
    pub unit: TemperatureUnit,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Converted {
    pub value: f64,
    pub unit: TemperatureUnit,
}

/// The conversion, or the text of the tool error below absolute zero.
pub fn convert(request: ConvertRequest) -> Result<Converted, String> {
    let Temperature { value, unit } = request.temperature;
    let kelvin = unit.to_kelvin(value);
    if kelvin < 0.0 {
        return Err(format!("{value} {unit:?} is below absolute zero").to_lowercase());
    }
    // Round to 1/100 of a degree so 100 °C reads 212, not 212.00000000000003.
    let value = (request.to.in_unit_from_kelvin(kelvin) * 100.0).round() / 100.0;
    Ok(Converted {
        value,
        unit: request.to,
    })
}
