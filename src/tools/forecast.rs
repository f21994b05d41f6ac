//! `get_forecast`: a tool that calls a real upstream API and returns structured output.

use std::{sync::LazyLock, time::Duration};

use regex::Regex;
use rmcp::{Json, handler::server::wrapper::Parameters, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use validator::Validate;

use mcp_server_kit::guard::{Rate, ToolPolicy};

use crate::{app::App, weather};

/// Any caller; 30 calls a minute each (bursts of 10), since each call costs two upstream
/// requests; 20 s covers the upstream's own timeout plus a retry.
pub fn policy() -> ToolPolicy {
    ToolPolicy::new::<ForecastRequest>("get_forecast")
        .quota(Rate::per(30, Duration::from_secs(60), 10))
        .timeout(Duration::from_secs(20))
}

/// Letters, spaces and the punctuation place names use; no digits, markup or control characters.
pub(crate) const PLACE_NAME_PATTERN: &str = r#"^[^0-9<>{}\[\]\\/|@#$%^*=+~"\x00-\x1f\x7f]+$"#;
pub(crate) static PLACE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(PLACE_NAME_PATTERN).expect("a valid pattern"));

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct ForecastRequest {
    /// City name, e.g. "Berlin" or "São Paulo".
    #[validate(length(min = 1, max = 100), regex(path = *PLACE_NAME))]
    // The schema takes the pattern's text, so listing tools does not compile the regex.
    #[schemars(length(min = 1, max = 100), regex(pattern = PLACE_NAME_PATTERN))]
    pub city: String,
    /// Number of days to forecast, starting today (1 to 16).
    #[serde(default = "default_days")]
    #[validate(range(min = 1, max = 16))]
    pub days: u8,
}

pub(crate) fn default_days() -> u8 {
    3
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Forecast {
    /// The place the city name resolved to.
    pub city: String,
    /// Country of the place; left out when the geocoder does not know it.
    // Left out rather than null: some clients reject a type list such as ["string", "null"].
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub country: Option<String>,
    pub latitude: f64,
    pub longitude: f64,
    /// IANA timezone the dates are in.
    pub timezone: String,
    pub days: Vec<DailyForecast>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DailyForecast {
    /// Local date, YYYY-MM-DD.
    pub date: String,
    pub temperature_max_c: f64,
    pub temperature_min_c: f64,
    pub precipitation_mm: f64,
    /// WMO weather code; see the weather://codes resource.
    pub weather_code: u8,
    pub summary: String,
}

#[tool_router(router = forecast_router, vis = "pub(crate)")]
impl App {
    /// Get the daily weather forecast for a city: high and low temperature (°C),
    /// precipitation (mm) and a summary of conditions for each day.
    #[tool(annotations(read_only_hint = true, open_world_hint = true))]
    pub async fn get_forecast(
        &self,
        Parameters(request): Parameters<ForecastRequest>,
    ) -> Result<Json<Forecast>, String> {
        self.forecast_for(&request.city, request.days).await.map(Json)
    }
}

impl App {
    /// The forecast for one city: two upstream calls (find the place, then its forecast).
    pub(crate) async fn forecast_for(&self, city: &str, days: u8) -> Result<Forecast, String> {
        let city = city.trim();
        let place = self
            .weather
            .geocode(city)
            .await?
            .ok_or_else(|| format!("no place named '{city}' was found; check the spelling or add the country"))?;
        let (timezone, days) = self.weather.daily(&place, days).await?;
        Ok(Forecast {
            city: place.name,
            country: place.country,
            latitude: place.latitude,
            longitude: place.longitude,
            timezone,
            days: days
                .into_iter()
                .map(|d| DailyForecast {
                    summary: weather::weather_code(d.weather_code).map_or_else(
                        || format!("Weather code {}", d.weather_code),
                        |c| c.description.to_owned(),
                    ),
                    date: d.date,
                    temperature_max_c: d.temperature_max_c,
                    temperature_min_c: d.temperature_min_c,
                    precipitation_mm: d.precipitation_mm,
                    weather_code: d.weather_code,
                })
                .collect(),
        })
    }
}
