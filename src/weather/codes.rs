//! The WMO weather interpretation codes (WW) Open-Meteo answers with, and the resources that
//! let the model read them: `weather://codes` and `weather://codes/{code}`.

use rmcp::{
    ErrorData,
    model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate},
};
use serde::Serialize;

use mcp_server_kit::mcp_app::resource_not_found as not_found;

const JSON: &str = "application/json";

const CODES_URI: &str = "weather://codes";
const CODE_PREFIX: &str = "weather://codes/";

pub fn resource() -> Resource {
    Resource::new(CODES_URI, "weather-codes")
        .with_title("WMO weather codes")
        .with_description("Every weather code the forecast tool reports, with its meaning.")
        .with_mime_type(JSON)
}

pub fn template() -> ResourceTemplate {
    ResourceTemplate::new(format!("{CODE_PREFIX}{{code}}"), "weather-code")
        .with_title("One WMO weather code")
        .with_description("The meaning of one weather code, e.g. weather://codes/61.")
        .with_mime_type(JSON)
}

/// Reads `weather://codes` or `weather://codes/{code}`; `None` for any other URI.
pub fn read(uri: &str) -> Option<Result<ReadResourceResult, ErrorData>> {
    let body = if uri == CODES_URI {
        serde_json::to_string_pretty(WEATHER_CODES)
    } else {
        let code = uri.strip_prefix(CODE_PREFIX)?;
        match code.parse::<u8>().ok().and_then(weather_code) {
            Some(code) => serde_json::to_string_pretty(&code),
            None => {
                return Some(Err(not_found(
                    uri,
                    "no such weather code; read weather://codes for the list",
                )));
            }
        }
    };
    Some(
        body.map(|body| ReadResourceResult::new(vec![ResourceContents::text(body, uri).with_mime_type(JSON)]))
            .map_err(|e| ErrorData::internal_error(e.to_string(), None)),
    )
}

/// One row of the WMO weather interpretation codes (WW) that Open-Meteo uses.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct WeatherCode {
    pub code: u8,
    pub description: &'static str,
}

/// The WMO codes Open-Meteo reports, in code order.
pub const WEATHER_CODES: &[WeatherCode] = &[
    WeatherCode {
        code: 0,
        description: "Clear sky",
    },
    WeatherCode {
        code: 1,
        description: "Mainly clear",
    },
    WeatherCode {
        code: 2,
        description: "Partly cloudy",
    },
    WeatherCode {
        code: 3,
        description: "Overcast",
    },
    WeatherCode {
        code: 45,
        description: "Fog",
    },
    WeatherCode {
        code: 48,
        description: "Depositing rime fog",
    },
    WeatherCode {
        code: 51,
        description: "Light drizzle",
    },
    WeatherCode {
        code: 53,
        description: "Moderate drizzle",
    },
    WeatherCode {
        code: 55,
        description: "Dense drizzle",
    },
    WeatherCode {
        code: 56,
        description: "Light freezing drizzle",
    },
    WeatherCode {
        code: 57,
        description: "Dense freezing drizzle",
    },
    WeatherCode {
        code: 61,
        description: "Slight rain",
    },
    WeatherCode {
        code: 63,
        description: "Moderate rain",
    },
    WeatherCode {
        code: 65,
        description: "Heavy rain",
    },
    WeatherCode {
        code: 66,
        description: "Light freezing rain",
    },
    WeatherCode {
        code: 67,
        description: "Heavy freezing rain",
    },
    WeatherCode {
        code: 71,
        description: "Slight snowfall",
    },
    WeatherCode {
        code: 73,
        description: "Moderate snowfall",
    },
    WeatherCode {
        code: 75,
        description: "Heavy snowfall",
    },
    WeatherCode {
        code: 77,
        description: "Snow grains",
    },
    WeatherCode {
        code: 80,
        description: "Slight rain showers",
    },
    WeatherCode {
        code: 81,
        description: "Moderate rain showers",
    },
    WeatherCode {
        code: 82,
        description: "Violent rain showers",
    },
    WeatherCode {
        code: 85,
        description: "Slight snow showers",
    },
    WeatherCode {
        code: 86,
        description: "Heavy snow showers",
    },
    WeatherCode {
        code: 95,
        description: "Thunderstorm",
    },
    WeatherCode {
        code: 96,
        description: "Thunderstorm with slight hail",
    },
    WeatherCode {
        code: 99,
        description: "Thunderstorm with heavy hail",
    },
];

pub fn weather_code(code: u8) -> Option<WeatherCode> {
    WEATHER_CODES.iter().copied().find(|c| c.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weather_codes_are_sorted_and_known() {
        assert!(WEATHER_CODES.windows(2).all(|w| w[0].code < w[1].code));
        assert_eq!(weather_code(3).unwrap().description, "Overcast");
        assert!(weather_code(4).is_none());
    }
}
