//! The weather domain: Open-Meteo's geocoding and forecast APIs (no key needed), and the WMO
//! weather-code table they answer with. The MCP surface (tools, resources) sits on top of this.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::{config::UpstreamConfig, upstream::Upstream};

/// A place found by name.
#[derive(Debug, Clone, Deserialize)]
pub struct Place {
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
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

/// Client for the two Open-Meteo endpoints, with base URLs from config (tests point them at
/// a fake on loopback).
#[derive(Clone)]
pub struct OpenMeteo {
    upstream: Upstream,
    geocoding: Url,
    forecast: Url,
}

impl OpenMeteo {
    pub fn new(upstream: Upstream, config: &UpstreamConfig) -> Self {
        Self {
            upstream,
            geocoding: config.geocoding_url.clone(),
            forecast: config.forecast_url.clone(),
        }
    }

    /// The best match for a place name, or `None` when nothing matches.
    pub async fn geocode(&self, name: &str) -> Result<Option<Place>, String> {
        let url = endpoint(&self.geocoding, "v1/search");
        let body: GeocodingBody = self
            .upstream
            .get_json(
                url,
                &[("name", name), ("count", "1"), ("language", "en"), ("format", "json")],
            )
            .await?;
        Ok(body.results.into_iter().next())
    }

    /// Daily forecast for `days` days at a place; returns the place's timezone and the days.
    pub async fn daily(&self, place: &Place, days: u8) -> Result<(String, Vec<Day>), String> {
        let url = endpoint(&self.forecast, "v1/forecast");
        let (lat, lon, days) = (
            place.latitude.to_string(),
            place.longitude.to_string(),
            days.to_string(),
        );
        let body: ForecastBody = self
            .upstream
            .get_json(
                url,
                &[
                    ("latitude", lat.as_str()),
                    ("longitude", lon.as_str()),
                    (
                        "daily",
                        "temperature_2m_max,temperature_2m_min,precipitation_sum,weather_code",
                    ),
                    ("timezone", "auto"),
                    ("forecast_days", days.as_str()),
                ],
            )
            .await?;
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

    #[test]
    fn weather_codes_are_sorted_and_known() {
        assert!(WEATHER_CODES.windows(2).all(|w| w[0].code < w[1].code));
        assert_eq!(weather_code(3).unwrap().description, "Overcast");
        assert!(weather_code(4).is_none());
    }
}
