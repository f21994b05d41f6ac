//! `convert_temperature`, a pure tool, over the real protocol: what it answers on every
//! transport, and which arguments it refuses, as its schema tells the model. A new tool's
//! test can start as a copy of this file.

mod support;

use serde_json::json;
use support::{
    FakeUpstream, Generation, StdioServer, text,
    tools::{call, each_client, listed, refused, schema},
};

const TOOL: &str = "convert_temperature";

#[tokio::test]
async fn converts_on_every_transport_and_generation() {
    // Every server is given an upstream; this tool never calls it.
    let upstream = FakeUpstream::start().await;
    each_client(&upstream, &[], async |client, context| {
        let arguments = json!({ "temperature": { "value": 100, "unit": "celsius" }, "to": "fahrenheit" });
        let converted = call(client, TOOL, arguments).await;
        assert_eq!(converted.is_error, Some(false), "{context}");
        // Structured output, as its output schema promises.
        assert_eq!(
            converted.structured_content,
            Some(json!({ "value": 212.0, "unit": "fahrenheit" })),
            "{context}"
        );

        // A failure of the tool's own, which the model can read and act on.
        let arguments = json!({ "temperature": { "value": -500, "unit": "celsius" }, "to": "kelvin" });
        let below = call(client, TOOL, arguments).await;
        assert_eq!(
            (below.is_error, text(&below)),
            (Some(true), "-500 celsius is below absolute zero".into()),
            "{context}"
        );
    })
    .await;
}

#[tokio::test]
async fn refuses_what_its_schema_rules_out() {
    let upstream = FakeUpstream::start().await;
    let mut server = StdioServer::start(&upstream, &[]).await;
    let client = server.connect(Generation::Handshake20250618).await;

    // The edge of the range passes; past it, and unknown units or fields, are refused
    // before the tool runs, each naming its field and rule.
    let edge = json!({ "temperature": { "value": 1_000_000, "unit": "kelvin" }, "to": "kelvin" });
    assert_eq!(call(&client, TOOL, edge).await.is_error, Some(false));
    refused(
        &client,
        TOOL,
        json!({ "temperature": { "value": 1_000_001, "unit": "kelvin" }, "to": "kelvin" }),
        &["`temperature.value` must be at most 1000000.0 (maximum)"],
    )
    .await;
    refused(
        &client,
        TOOL,
        json!({ "temperature": { "value": 1, "unit": "rankine" }, "to": "kelvin" }),
        &["`temperature.unit` must be one of celsius, fahrenheit, kelvin (enum)"],
    )
    .await;
    refused(
        &client,
        TOOL,
        json!({ "temperature": { "value": 1, "unit": "kelvin", "note": "x" }, "to": "kelvin" }),
        &["`temperature.note` is not an allowed field (additionalProperties)"],
    )
    .await;

    // The schema the model sees states the same rules.
    let input = schema(&listed(&client, TOOL).await, false);
    assert_eq!(input["additionalProperties"], false);
    let nested = input.to_string();
    assert!(
        nested.contains("\"minimum\":-1000000.0") && nested.contains("\"maximum\":1000000.0"),
        "{nested}"
    );
    assert!(
        nested.contains("\"enum\":[\"celsius\",\"fahrenheit\",\"kelvin\"]"),
        "{nested}"
    );

    client.cancel().await.unwrap();
    let invalid = server.server.logs.refused("invalid", 3).await;
    assert_eq!(invalid, 3, "each refused call is logged as invalid, or counted");
}
