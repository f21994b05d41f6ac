//! `get_forecasts`, the long-running example tool, over the real protocol against the fake
//! Open-Meteo: its schema's list limit, its answer in the request on every transport, the
//! same answer as a task with progress, a few cities at a time, and a cancel that stops it.

mod support;

use std::time::Duration;

use rmcp::model::{CancelTaskParams, TaskPayload, TaskStatus};
use serde_json::{Value, json};
use support::{
    FakeUpstream, Generation, HttpServer, StdioServer,
    tasks::{self, TaskClient},
    tools::{call, each_client, listed, refused, schema},
    upstream::Reply,
};

const TOOL: &str = "get_forecasts";
/// More calls than its declared burst.
const QUOTA: (&str, &str) = ("MCP_RATE_LIMITS", "get_forecasts=100/s:100");

fn three_cities() -> Value {
    json!({ "cities": ["Berlin", "McMurdo Station", "Atlantis"], "days": 1 })
}

/// One entry per city, in order; a city that fails has its error, the others their forecast.
fn check_answer(data: &Value, context: &str) {
    let cities = data["cities"].as_array().expect("cities");
    let queries: Vec<_> = cities.iter().map(|c| c["query"].as_str().unwrap()).collect();
    assert_eq!(queries, ["Berlin", "McMurdo Station", "Atlantis"], "{context}");
    assert_eq!(cities[0]["forecast"]["country"], "Germany", "{context}");
    assert_eq!(
        cities[0]["forecast"]["days"].as_array().map(Vec::len),
        Some(1),
        "{context}"
    );
    assert_eq!(cities[1]["forecast"]["city"], "McMurdo Station", "{context}");
    assert!(cities[2].get("forecast").is_none(), "{context}");
    assert!(
        cities[2]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("no place named 'Atlantis'"),
        "{context}"
    );
}

#[tokio::test]
async fn answers_in_the_request_on_every_transport_with_its_list_limit_in_the_schema() {
    let upstream = FakeUpstream::start().await;
    each_client(&upstream, &[QUOTA], async |client, context| {
        let tool = listed(client, TOOL).await;
        let cities = &schema(&tool, false)["properties"]["cities"];
        assert_eq!(
            (&cities["minItems"], &cities["maxItems"]),
            (&json!(1), &json!(20)),
            "{context}"
        );
        assert!(cities["items"]["pattern"].is_string(), "{context}: {cities}");

        let result = call(client, TOOL, three_cities()).await;
        assert_eq!(result.is_error, Some(false), "{context}: {result:?}");
        check_answer(&result.structured_content.expect("structuredContent"), context);
    })
    .await;
}

async fn as_a_task(client: &TaskClient, context: &str) {
    let task = tasks::start(client, TOOL, three_cities()).await;
    let done = tasks::finished(client, &task.task_id, Duration::from_secs(10)).await;
    assert_eq!(done.status(), TaskStatus::Completed, "{context}");
    let TaskPayload::Completed { result } = &done.payload else {
        unreachable!()
    };
    check_answer(&result["structuredContent"], context);
}

#[tokio::test]
async fn runs_as_a_task_for_clients_that_take_tasks_reporting_progress_per_city() {
    let upstream = FakeUpstream::start().await;
    let mut stdio = StdioServer::start(&upstream, &[QUOTA]).await;
    let client = tasks::connect_stdio(&mut stdio, Generation::Handshake20251125, true).await;
    as_a_task(&client, "stdio").await;
    let http = HttpServer::start(&upstream, &[QUOTA]).await;
    let client = tasks::connect_http(&http, Generation::Stateless, true).await;
    as_a_task(&client, "http").await;

    // Without tasks: progress notifications, one per city, in order, with the total.
    let client = tasks::connect_http(&http, Generation::Stateless, false).await;
    tasks::call(&client, TOOL, three_cities(), "cities").await;
    let progress = client.service().progress.lock().unwrap().clone();
    let steps: Vec<_> = progress.iter().map(|p| (p.progress, p.total)).collect();
    assert_eq!(steps, [(1.0, Some(3.0)), (2.0, Some(3.0)), (3.0, Some(3.0))]);
}

#[tokio::test]
async fn fetches_four_cities_at_a_time_and_a_cancel_stops_it_at_once() {
    let upstream = FakeUpstream::start().await;
    upstream.always("/v1/search", Reply::hang());
    let http = HttpServer::start(&upstream, &[]).await;
    let client = tasks::connect_http(&http, Generation::Stateless, true).await;
    let cities: Vec<String> = (0..20).map(|i| format!("City {}", char::from(b'A' + i))).collect();
    let task = tasks::start(&client, TOOL, json!({ "cities": cities })).await;
    for _ in 0..100 {
        if upstream.search_hits() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(upstream.search_hits(), 4, "four cities at a time");

    client.cancel_task(CancelTaskParams::new(&task.task_id)).await.unwrap();
    let cancelled = tasks::finished(&client, &task.task_id, Duration::from_secs(5)).await;
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(upstream.search_hits(), 4, "no upstream call after the cancel");
    assert_eq!(upstream.forecast_hits(), 0);
}

#[tokio::test]
async fn refuses_more_than_twenty_cities_and_bad_names() {
    let upstream = FakeUpstream::start().await;
    let mut server = StdioServer::start(&upstream, &[QUOTA]).await;
    let client = server.connect(Generation::Stateless).await;
    let many: Vec<_> = (0..21).map(|_| "Berlin").collect();
    refused(
        &client,
        TOOL,
        json!({ "cities": many }),
        &["`cities` must have at most 20 items (maxItems)"],
    )
    .await;
    refused(
        &client,
        TOOL,
        json!({ "cities": [] }),
        &["`cities` must have at least 1 item"],
    )
    .await;
    refused(
        &client,
        TOOL,
        json!({ "cities": ["Berlin", "B3rlin"] }),
        &["`cities[1]` must match the pattern", "(pattern)"],
    )
    .await;
    assert_eq!(upstream.search_hits(), 0, "refused before any upstream call");
}
