//! The weather example: a client for Open-Meteo's geocoding and forecast APIs (no key needed),
//! the WMO weather-code table as resources, and a prompt. Its tool, `get_forecast`, lives with
//! the other tools in `src/tools/forecast.rs`; its settings are in `config::WeatherConfig`.

pub mod codes;
mod prompt;

pub use codes::weather_code;

use reqwest::Url;
use serde::Deserialize;

use mcp_server_kit::{
    config::http_url,
    upstream::{Upstream, UpstreamError},
};

/// Where the example's APIs are (tests point both at a fake on loopback).
#[derive(Debug, Clone, clap::Args)]
pub struct WeatherConfig {
    /// Base URL of the Open-Meteo geocoding API.
    #[arg(long, env = "MCP_GEOCODING_URL", default_value = "https://geocoding-api.open-meteo.com",
          value_parser = http_url)]
    pub geocoding_url: Url,

    /// Base URL of the Open-Meteo forecast API.
    #[arg(long, env = "MCP_FORECAST_URL", default_value = "https://api.open-meteo.com",
          value_parser = http_url)]
    pub forecast_url: Url,
}

impl WeatherConfig {
    /// The hosts of both APIs: what upstream calls may reach unless a list is set.
    pub fn hosts(&self) -> impl Iterator<Item = url::Host> + '_ {
        [&self.geocoding_url, &self.forecast_url]
            .into_iter()
            .filter_map(|url| url.host().map(|host| host.to_owned()))
    }
}

/// A place found by name.
#[derive(Debug, Clone, Deserialize)]
pub struct Place {
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default)]
    pub country: Option<String>,
}

/// One day of the forecast as Open-Meteo reports it, in metric units.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub date: String,
    pub temperature_max_c: f64,
    pub temperature_min_c: f64,
    pub precipitation_mm: f64,
    pub weather_code: u8,
}

/// Open-Meteo's column-oriented daily block.
#[derive(Debug, Deserialize)]
struct Daily {
    time: Vec<String>,
    temperature_2m_max: Vec<Option<f64>>,
    temperature_2m_min: Vec<Option<f64>>,
    precipitation_sum: Vec<Option<f64>>,
    weather_code: Vec<Option<u8>>,
}

#[derive(Debug, Deserialize)]
struct ForecastBody {
    timezone: String,
    daily: Daily,
}

#[derive(Debug, Deserialize)]
struct GeocodingBody {
    #[serde(default)]
    results: Vec<Place>,
}

/// Client for the two Open-Meteo endpoints, through the shared upstream client.
#[derive(Clone)]
pub struct OpenMeteo {
    upstream: Upstream,
    geocoding: Url,
    forecast: Url,
}

impl OpenMeteo {
    pub fn new(upstream: Upstream, config: &WeatherConfig) -> Self {
        Self {
            upstream,
            geocoding: config.geocoding_url.clone(),
            forecast: config.forecast_url.clone(),
        }
    }

    /// The best match for a place name, or `None` when nothing matches.
    pub async fn geocode(&self, name: &str) -> Result<Option<Place>, UpstreamError> {
        let url = endpoint(&self.geocoding, "v1/search");
        let body: GeocodingBody = self
            .upstream
            .get(url)
            .query(&[("name", name), ("count", "1"), ("language", "en"), ("format", "json")])
            .send()
            .await?
            .json()?;
        Ok(body.results.into_iter().next())
    }

    /// Daily forecast for `days` days at a place; returns the place's timezone and the days.
    pub async fn daily(&self, place: &Place, days: u8) -> Result<(String, Vec<Day>), UpstreamError> {
        let url = endpoint(&self.forecast, "v1/forecast");
        let (lat, lon, days) = (
            place.latitude.to_string(),
            place.longitude.to_string(),
            days.to_string(),
        );
        let body: ForecastBody = self
            .upstream
            .get(url)
            .query(&[
                ("latitude", lat.as_str()),
                ("longitude", lon.as_str()),
                (
                    "daily",
                    "temperature_2m_max,temperature_2m_min,precipitation_sum,weather_code",
                ),
                ("timezone", "auto"),
                ("forecast_days", days.as_str()),
            ])
            .send()
            .await?
            .json()?;
        let d = body.daily;
        let days = d
            .time
            .into_iter()
            .enumerate()
            .map(|(i, date)| {
                let at = |col: &[Option<f64>]| col.get(i).copied().flatten().unwrap_or(f64::NAN);
                Day {
                    date,
                    temperature_max_c: at(&d.temperature_2m_max),
                    temperature_min_c: at(&d.temperature_2m_min),
                    precipitation_mm: at(&d.precipitation_sum).max(0.0),
                    weather_code: d.weather_code.get(i).copied().flatten().unwrap_or(0),
                }
            })
            .collect();
        Ok((body.timezone, days))
    }
}

/// Joins a path onto a base URL that may itself carry a path prefix.
fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/{path}"));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keeps_a_base_path_prefix() {
        let base = Url::parse("http://127.0.0.1:9/prefix/").unwrap();
        assert_eq!(
            endpoint(&base, "v1/search").as_str(),
            "http://127.0.0.1:9/prefix/v1/search"
        );
        let bare = Url::parse("https://api.open-meteo.com").unwrap();
        assert_eq!(
            endpoint(&bare, "v1/forecast").as_str(),
            "https://api.open-meteo.com/v1/forecast"
        );
    }
}
