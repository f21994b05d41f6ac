//! A fake Open-Meteo on loopback: answers geocoding and forecast requests, counts them, and
//! can be made slow, so tests can assert on what reached the upstream and when.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Query, State},
    routing::get,
};
use serde_json::{Value, json};

#[derive(Default)]
struct Counters {
    search: AtomicUsize,
    forecast: AtomicUsize,
    forecast_delay_ms: AtomicU64,
}

pub struct FakeUpstream {
    addr: std::net::SocketAddr,
    counters: Arc<Counters>,
}

impl FakeUpstream {
    pub async fn start() -> Self {
        let counters = Arc::new(Counters::default());
        let app = Router::new()
            .route("/v1/search", get(search))
            .route("/v1/forecast", get(forecast))
            .with_state(counters.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, counters }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes every forecast request take this long before it answers.
    pub fn set_forecast_delay(&self, delay: Duration) {
        self.counters
            .forecast_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn search_hits(&self) -> usize {
        self.counters.search.load(Ordering::SeqCst)
    }

    pub fn forecast_hits(&self) -> usize {
        self.counters.forecast.load(Ordering::SeqCst)
    }

    /// Waits until the forecast endpoint has been hit `n` times.
    pub async fn wait_for_forecast_hits(&self, n: usize) {
        for _ in 0..500 {
            if self.forecast_hits() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("forecast endpoint saw {} hits, expected {n}", self.forecast_hits());
    }
}

/// Knows one city; any other name has no match, like the real API (no `results` key).
async fn search(State(c): State<Arc<Counters>>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    c.search.fetch_add(1, Ordering::SeqCst);
    if q.get("name").map(String::as_str) == Some("Berlin") {
        Json(json!({
            "results": [{
                "id": 2950159, "name": "Berlin", "latitude": 52.52437, "longitude": 13.41053,
                "country": "Germany", "country_code": "DE", "timezone": "Europe/Berlin"
            }],
            "generationtime_ms": 0.5
        }))
    } else {
        Json(json!({ "generationtime_ms": 0.5 }))
    }
}

/// Answers `forecast_days` days of fixed, recognisable weather.
async fn forecast(State(c): State<Arc<Counters>>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    c.forecast.fetch_add(1, Ordering::SeqCst);
    let delay = c.forecast_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let days: usize = q.get("forecast_days").and_then(|d| d.parse().ok()).unwrap_or(7);
    Json(json!({
        "latitude": q.get("latitude").and_then(|v| v.parse::<f64>().ok()),
        "longitude": q.get("longitude").and_then(|v| v.parse::<f64>().ok()),
        "timezone": "Europe/Berlin",
        "daily_units": { "temperature_2m_max": "°C" },
        "daily": {
            "time": (0..days).map(|i| format!("2026-11-{:02}", 21 + i)).collect::<Vec<_>>(),
            "temperature_2m_max": (0..days).map(|i| 10.0 + i as f64).collect::<Vec<_>>(),
            "temperature_2m_min": (0..days).map(|i| 2.0 + i as f64).collect::<Vec<_>>(),
            "precipitation_sum": (0..days).map(|_| 1.5).collect::<Vec<_>>(),
            "weather_code": (0..days).map(|i| if i % 2 == 0 { 3 } else { 61 }).collect::<Vec<_>>(),
        }
    }))
}
