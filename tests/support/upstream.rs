//! A fake upstream API on loopback: answers `/data` (what the `fetch_fixture` tool fetches)
// weather-example:begin
//! and, for the weather example, Open-Meteo's geocoding and forecast requests,
// weather-example:end
//! and counts every request by path. Tests can script what it answers instead (a status, a `Retry-After`, a
//! redirect, a delay), so they can assert on what reached the upstream and when.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use rmcp::model::{CallToolRequestParams, CallToolResult};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{Response, StatusCode},
    middleware::{self, Next},
    routing::get,
};
// weather-example:begin
use axum::{Json, extract::Query};
use serde_json::{Value, json};
// weather-example:end

/// The test-only tool that GETs a URL through the server's upstream client.
pub const FETCH: &str = "fetch_fixture";

/// Calls `fetch_fixture` on `url`. The tool exists only in builds with the `fixtures` feature,
/// which `make test` turns on.
pub async fn fetch(client: &super::Client, url: &str) -> CallToolResult {
    let params = CallToolRequestParams::new(FETCH).with_arguments(super::args(serde_json::json!({ "url": url })));
    match client.call_tool(params).await {
        Ok(result) => result,
        Err(e) if e.to_string().contains(FETCH) => {
            panic!("the server has no `{FETCH}` tool: run the tests with `make test` (`--features fixtures`): {e}")
        }
        Err(e) => panic!("an upstream failure is a tool result, not a protocol error: {e}"),
    }
}

/// An answer the fake gives instead of its normal one.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    delay: Duration,
    body: Option<String>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
            body: None,
        }
    }

    /// A 200 with `body`.
    pub fn body(body: impl Into<String>) -> Self {
        Self {
            body: Some(body.into()),
            ..Self::status(200)
        }
    }

    /// With a `Retry-After` header (delta-seconds or an HTTP-date).
    pub fn retry_after(mut self, value: impl Into<String>) -> Self {
        self.headers.push(("retry-after", value.into()));
        self
    }

    /// A 302 to `location`.
    pub fn redirect(location: impl Into<String>) -> Self {
        let mut reply = Self::status(302);
        reply.headers.push(("location", location.into()));
        reply
    }

    /// Never answers in time: holds the request for ten minutes.
    pub fn hang() -> Self {
        Self {
            delay: Duration::from_secs(600),
            ..Self::status(200)
        }
    }
}

#[derive(Default)]
struct Script {
    /// Answers for the next requests to a path, in order.
    next: HashMap<String, VecDeque<Reply>>,
    /// The answer to every request to a path once `next` is used up.
    always: HashMap<String, Reply>,
}

#[derive(Default)]
struct Fake {
    hits: Mutex<HashMap<String, usize>>,
    script: Mutex<Script>,
    delay_ms: AtomicU64,
    traceparents: Mutex<Vec<String>>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

/// Counts a request in flight until it is answered or dropped.
struct InFlight(Arc<Fake>);

impl InFlight {
    fn enter(fake: Arc<Fake>) -> Self {
        let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        fake.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(fake)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct FakeUpstream {
    addr: std::net::SocketAddr,
    fake: Arc<Fake>,
}

impl FakeUpstream {
    pub async fn start() -> Self {
        let fake = Arc::new(Fake::default());
        let app = Router::new().route(DATA, get(data));
        // weather-example:begin
        let app = app
            .route("/v1/search", get(search))
            .route("/v1/forecast", get(forecast));
        // weather-example:end
        let app = app
            .layer(middleware::from_fn_with_state(fake.clone(), count_and_script))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, fake }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fake's host, as an allow-list names it.
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The URL of `/data`, what `fetch_fixture` is given.
    pub fn data_url(&self) -> String {
        format!("{}{DATA}", self.url())
    }

    /// Makes every `/data` request take this long before it answers.
    pub fn set_delay(&self, delay: Duration) {
        self.fake.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Answers the next requests to `path` with `replies`, in order, then as before.
    pub fn script(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut script = self.fake.script.lock().unwrap();
        script.next.entry(path.to_owned()).or_default().extend(replies);
    }

    /// Answers every later request to `path` with `reply`.
    pub fn always(&self, path: &str, reply: Reply) {
        let mut script = self.fake.script.lock().unwrap();
        script.always.insert(path.to_owned(), reply);
    }

    /// Requests received for `path`, whatever was answered.
    pub fn hits(&self, path: &str) -> usize {
        let hits = self.fake.hits.lock().unwrap();
        hits.get(path).copied().unwrap_or(0)
    }

    /// The `traceparent` headers requests came with, in order.
    pub fn traceparents(&self) -> Vec<String> {
        self.fake.traceparents.lock().unwrap().clone()
    }

    /// The most requests the fake was answering at once, on any path.
    pub fn peak_in_flight(&self) -> usize {
        self.fake.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Requests received on any path.
    pub fn total_hits(&self) -> usize {
        self.fake.hits.lock().unwrap().values().sum()
    }

    pub fn data_hits(&self) -> usize {
        self.hits(DATA)
    }

    /// Waits until `/data` has been hit `n` times.
    pub async fn wait_for_data_hits(&self, n: usize) {
        for _ in 0..500 {
            if self.data_hits() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("/data saw {} hits, expected {n}", self.data_hits());
    }
    // weather-example:begin

    pub fn search_hits(&self) -> usize {
        self.hits("/v1/search")
    }

    pub fn forecast_hits(&self) -> usize {
        self.hits("/v1/forecast")
    }
    // weather-example:end
}

/// Counts the request, then answers from the script if it has something for this path.
async fn count_and_script(State(fake): State<Arc<Fake>>, request: Request, next: Next) -> Response<Body> {
    let _in_flight = InFlight::enter(fake.clone());
    let path = request.uri().path().to_owned();
    *fake.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    if let Some(traceparent) = request.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
        fake.traceparents.lock().unwrap().push(traceparent.to_owned());
    }
    let scripted = {
        let mut script = fake.script.lock().unwrap();
        let queued = script.next.get_mut(&path).and_then(VecDeque::pop_front);
        queued.or_else(|| script.always.get(&path).cloned())
    };
    let Some(reply) = scripted else {
        return next.run(request).await;
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    let body = reply.body.unwrap_or_else(|| format!("scripted {}", reply.status));
    response.body(Body::from(body)).unwrap()
}

/// The body `/data` answers with.
pub const DATA_BODY: &str = r#"{"reading":42}"#;
const DATA: &str = "/data";

async fn data(State(fake): State<Arc<Fake>>) -> &'static str {
    let delay = fake.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    DATA_BODY
}
// weather-example:begin

/// Knows two places, one in no country; any other name has no match, like the real API (no
/// `results` key).
async fn search(Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let place = match q.get("name").map(String::as_str) {
        Some("Berlin") => json!({
            "id": 2950159, "name": "Berlin", "latitude": 52.52437, "longitude": 13.41053,
            "country": "Germany", "country_code": "DE", "timezone": "Europe/Berlin"
        }),
        Some("McMurdo Station") => json!({
            "id": 6696480, "name": "McMurdo Station", "latitude": -77.846, "longitude": 166.676,
            "timezone": "Antarctica/McMurdo"
        }),
        _ => return Json(json!({ "generationtime_ms": 0.5 })),
    };
    Json(json!({ "results": [place], "generationtime_ms": 0.5 }))
}

/// Answers `forecast_days` days of fixed, recognisable weather.
async fn forecast(Query(q): Query<HashMap<String, String>>) -> Json<Value> {
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
// weather-example:end
