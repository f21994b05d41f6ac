//! `get_forecast`, a tool that calls an upstream API, over the real protocol against the fake
//! Open-Meteo: what the model is told about it, what it answers on every transport, and
//! which arguments it refuses.

mod support;

use serde_json::json;
use support::{
    FakeUpstream, Generation, StdioServer, text,
    tools::{call, each_client, listed, property, refused, schema},
};

const TOOL: &str = "get_forecast";

#[tokio::test]
async fn the_model_is_told_how_to_call_it_on_every_transport() {
    let upstream = FakeUpstream::start().await;
    each_client(&upstream, &[], async |client, context| {
        let instructions = client.peer_info().and_then(|i| i.instructions.clone());
        assert!(instructions.unwrap_or_default().contains(TOOL), "{context}");
        let tool = listed(client, TOOL).await;
        assert!(
            tool.description.as_deref().unwrap_or_default().contains("forecast"),
            "{context}"
        );

        // Its input schema carries every rule the arguments are checked against.
        let input = schema(&tool, false);
        assert_eq!(input["required"], json!(["city"]), "{context}");
        assert_eq!(input["additionalProperties"], false, "{context}");
        let city = &input["properties"]["city"];
        assert_eq!(
            (&city["minLength"], &city["maxLength"]),
            (&json!(1), &json!(100)),
            "{context}"
        );
        assert!(
            city["pattern"].as_str().is_some_and(|p| p.starts_with("^[^0-9")),
            "{context}: {city}"
        );
        let days = &input["properties"]["days"];
        assert_eq!(
            (&days["minimum"], &days["maximum"]),
            (&json!(1), &json!(16)),
            "{context}"
        );

        // Its output schema, with the range a u8 implies.
        let output = schema(&tool, true);
        assert!(output["properties"]["days"].is_object(), "{context}: {output}");
        let weather_code = property(&output, "weather_code").expect("weather_code in the output schema");
        assert_eq!(
            (&weather_code["minimum"], &weather_code["maximum"]),
            (&json!(0), &json!(255)),
            "{context}: a u8's range"
        );
    })
    .await;
}

#[tokio::test]
async fn forecasts_a_city_on_every_transport_and_generation() {
    let upstream = FakeUpstream::start().await;
    each_client(&upstream, &[], async |client, context| {
        let before = upstream.forecast_hits();
        let result = call(client, TOOL, json!({ "city": "Berlin", "days": 2 })).await;
        assert_eq!(result.is_error, Some(false), "{context}: {result:?}");
        let data = result.structured_content.expect("structuredContent");
        assert_eq!(data["city"], "Berlin", "{context}");
        assert_eq!(data["country"], "Germany", "{context}");
        assert_eq!(data["timezone"], "Europe/Berlin", "{context}");
        assert_eq!(
            data["days"],
            json!([
                { "date": "2026-11-21", "temperature_max_c": 10.0, "temperature_min_c": 2.0, "precipitation_mm": 1.5, "weather_code": 3, "summary": "Overcast" },
                { "date": "2026-11-22", "temperature_max_c": 11.0, "temperature_min_c": 3.0, "precipitation_mm": 1.5, "weather_code": 61, "summary": "Slight rain" }
            ]),
            "{context}"
        );
        assert_eq!(upstream.forecast_hits(), before + 1, "{context}");

        // A place in no country: the field is left out, as the output schema allows.
        let antarctic = call(client, TOOL, json!({ "city": "McMurdo Station", "days": 1 })).await;
        let data = antarctic.structured_content.expect("structuredContent");
        assert_eq!(data["city"], "McMurdo Station", "{context}");
        assert!(data.get("country").is_none(), "{context}: {data}");

        // A failure the model can act on: isError with a specific message.
        let unknown_city = call(client, TOOL, json!({ "city": "Atlantis" })).await;
        assert_eq!(unknown_city.is_error, Some(true), "{context}");
        assert!(
            text(&unknown_city).contains("no place named 'Atlantis'"),
            "{context}"
        );
    })
    .await;
}

#[tokio::test]
async fn refuses_what_its_schema_rules_out() {
    let upstream = FakeUpstream::start().await;
    // More calls than its declared burst of 10.
    let quota = [("MCP_RATE_LIMITS", "get_forecast=100/s:100")];
    let mut server = StdioServer::start(&upstream, &quota).await;
    let client = server.connect(Generation::Handshake20250618).await;

    // City length and pattern, days range, no unknown fields, types.
    for ok in [
        json!({ "city": "Berlin", "days": 1 }),
        json!({ "city": "Berlin", "days": 16 }),
        json!({ "city": "Berlin" }),
    ] {
        assert_eq!(call(&client, TOOL, ok.clone()).await.is_error, Some(false), "{ok}");
    }
    let ok_name = call(&client, TOOL, json!({ "city": "Saint-Étienne, France" })).await;
    assert!(
        text(&ok_name).contains("no place named"),
        "a valid name reaches the upstream: {}",
        text(&ok_name)
    );
    let cases = [
        (
            json!({ "city": "" }),
            &["`city` must have at least 1 character (minLength)"][..],
        ),
        (
            json!({ "city": "x".repeat(101) }),
            &["`city` must have at most 100 characters (maxLength)"],
        ),
        (
            json!({ "city": "Berlin1" }),
            &["`city` must match the pattern ^[^0-9", "(pattern)"],
        ),
        // Control characters are no part of a place's name.
        (
            json!({ "city": "Ber\u{0}lin" }),
            &["`city` must match the pattern", "(pattern)"],
        ),
        (
            json!({ "city": "Berlin\n" }),
            &["`city` must match the pattern", "(pattern)"],
        ),
        (
            json!({ "city": "Berlin", "days": 0 }),
            &["`days` must be at least 1 (minimum)"],
        ),
        (
            json!({ "city": "Berlin", "days": 17 }),
            &["`days` must be at most 16 (maximum)"],
        ),
        // Every field at once.
        (json!({ "city": "", "days": 17 }), &["`city`", "`days`"]),
        (
            json!({ "city": "Berlin", "hours": 3 }),
            &["`hours` is not an allowed field (additionalProperties)"],
        ),
        (
            json!({ "city": "Berlin", "days": "three" }),
            &["`days` must be an integer (type)"],
        ),
        (json!({}), &["`city` is required (required)"]),
    ];
    for (arguments, rules) in &cases {
        refused(&client, TOOL, arguments.clone(), rules).await;
    }

    client.cancel().await.unwrap();
    // Past 10 a second, refusals of a kind are counted in a summary line rather than each logged.
    let invalid = server.server.logs.refused("invalid", cases.len()).await;
    assert_eq!(
        invalid,
        cases.len(),
        "each refused call is logged as invalid, or counted"
    );
}
