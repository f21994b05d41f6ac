//! `get_forecasts`: a long-running tool. It fetches forecasts for up to 20 cities, a few at a
//! time, reports progress after each city, stops at once when cancelled, and runs as a task
//! for clients that take tasks (others get the answer in the request, as for any tool).

use std::time::Duration;

use futures_util::{StreamExt, stream};
use rmcp::{Json, handler::server::wrapper::Parameters, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use validator::Validate;

use super::forecast::{Forecast, PLACE_NAME_PATTERN, default_days};
use mcp_server_kit::{
    guard::{Rate, TaskSupport, ToolPolicy},
    progress::Progress,
};

use crate::app::App;

/// Cities fetched at once: enough to finish 20 cities in a few seconds, few enough not to
/// flood the upstream API.
const CONCURRENCY: usize = 4;

/// Any caller, like `get_forecast`; 10 batches a minute (bursts of 3), since a batch costs up
/// to 40 upstream requests; two minutes for 20 cities even when the upstream is slow; a task when
/// the client takes tasks.
pub fn policy() -> ToolPolicy {
    ToolPolicy::new::<ForecastsRequest>("get_forecasts")
        .quota(Rate::per(10, Duration::from_secs(60), 3))
        .timeout(Duration::from_secs(120))
        .task(TaskSupport::Optional)
    // .scope("weather:batch")  // to keep batches for callers whose token carries this scope
}

#[derive(Debug, Deserialize, JsonSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct ForecastsRequest {
    /// City names, e.g. ["Berlin", "São Paulo"] (1 to 20).
    #[validate(length(min = 1, max = 20))]
    pub cities: Vec<City>,
    /// Number of days to forecast for each city, starting today (1 to 16).
    #[serde(default = "default_days")]
    #[validate(range(min = 1, max = 16))]
    pub days: u8,
}

/// A city name. Its rules are in its schema, which every call's arguments are checked against
/// (a rule of `validator` here would name the field inside, `cities[1].name`, a second time).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub struct City {
    #[schemars(length(min = 1, max = 100), regex(pattern = PLACE_NAME_PATTERN))]
    pub name: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Forecasts {
    /// One entry per city asked for, in the same order.
    pub cities: Vec<CityForecast>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CityForecast {
    /// The city as asked for.
    pub query: String,
    /// The forecast; left out when this city failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<Forecast>,
    /// Why this city has no forecast; left out when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub error: Option<String>,
}

#[tool_router(router = forecasts_router, vis = "pub(crate)")]
impl App {
    /// Get daily forecasts for up to 20 cities at once (as get_forecast gives for one). Long:
    /// reports progress per city, and runs as a task for clients that support tasks.
    #[tool(annotations(read_only_hint = true, open_world_hint = true))]
    pub async fn get_forecasts(
        &self,
        Parameters(request): Parameters<ForecastsRequest>,
        progress: Progress,
    ) -> Result<Json<Forecasts>, String> {
        let total = request.cities.len() as u32;
        let days = request.days;
        let mut done = 0;
        let mut cities = Vec::with_capacity(request.cities.len());
        let progress = &progress;
        // A cancel drops this whole future, in-flight upstream requests included; the check
        // keeps a city whose turn comes in the same instant from starting.
        let mut results = stream::iter(request.cities)
            .map(|city| async move {
                if progress.stopped() {
                    return (city.name, Err("cancelled".to_owned()));
                }
                let forecast = self.forecast_for(&city.name, days).await;
                (city.name, forecast)
            })
            .buffered(CONCURRENCY);
        while let Some((query, forecast)) = results.next().await {
            done += 1;
            progress
                .report(done, total, format!("{done} of {total} cities: {query}"))
                .await;
            let (forecast, error) = match forecast {
                Ok(forecast) => (Some(forecast), None),
                Err(error) => (None, Some(error)),
            };
            cities.push(CityForecast { query, forecast, error });
        }
        Ok(Json(Forecasts { cities }))
    }
}
