//! The official MCP conformance suite against the HTTP transport, with the fixtures of the
//! `conformance` feature: every scenario for each protocol generation, and exactly the scenarios
//! each revision requires (which also runs the Tasks extension's). Run by `make conformance`,
//! which installs the pinned suite and puts it and Node 22 on PATH.
#![cfg(feature = "conformance")]

mod support;

use std::path::Path;

use serde_json::Value;
use support::{FakeUpstream, HttpServer};

/// Runs the scenarios `selection` picks and fails on any failure that
/// `interop/expected-failures.yaml` does not list (or on a listed one that passes).
async fn suite_passes(run: &str, selection: &[&str]) {
    let upstream = FakeUpstream::start().await;
    // The Tasks scenarios start 20 tasks from one address, each held for its TTL: already as
    // many as a caller may hold by default.
    let server = HttpServer::start(&upstream, &[("MCP_MAX_TASKS_PER_CLIENT", "100")]).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let results = format!("{root}/target/conformance/{run}");
    let baseline = format!("{root}/interop/expected-failures.yaml");
    let _ = std::fs::remove_dir_all(&results);
    // Async, so the harness keeps draining the server's stderr meanwhile.
    let outcome = tokio::process::Command::new("conformance")
        .args(["server", "--url", &server.url("/mcp")])
        .args(selection)
        .args(["--output-dir", &results, "--expected-failures", &baseline])
        .output()
        .await
        .expect("running `conformance` (make conformance installs it and puts it on PATH)");
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let summary = stdout.split("=== SUMMARY ===").nth(1).unwrap_or(&stdout);
    println!("conformance {run}:{summary}");
    assert!(
        outcome.status.success(),
        "conformance {run} failed; details in {results}\n{summary}\n{}",
        String::from_utf8_lossy(&outcome.stderr)
    );

    // A requirements run also runs scenarios it does not score (extensions such as Tasks, and
    // pending ones), and checks only the scored ones against the baseline: the rest must pass
    // too, or be named in it.
    let listed = baseline_scenarios(&baseline);
    let unexpected: Vec<_> = failing_scenarios(Path::new(&results))
        .into_iter()
        .filter(|scenario| !listed.contains(scenario))
        .collect();
    assert!(
        unexpected.is_empty(),
        "conformance {run}: scenarios failing outside the baseline: {unexpected:?}; details in {results}"
    );

    // The fixtures are tools like any other: every call of one passed the guard chain.
    let calls: Vec<_> = server
        .server
        .logs
        .events("request")
        .into_iter()
        .filter(|line| line["method"] == "tools/call")
        .filter(|line| !line["error"].as_str().unwrap_or_default().starts_with("unknown tool"))
        .collect();
    assert!(calls.len() > 10, "the suite called {} fixture tools", calls.len());
    for call in calls {
        assert!(call["decision"].is_string(), "no guard decision: {call}");
    }
}

/// The scenarios the baseline names, whole or by one of their checks.
fn baseline_scenarios(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("reading the expected-failures file");
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .map(|entry| entry.split(':').next().unwrap_or(entry).trim().to_owned())
        .collect()
}

/// The scenarios with a failed or warned check among the results the suite wrote, one
/// directory each (`server-<scenario>-<timestamp>/checks.json`).
fn failing_scenarios(results: &Path) -> Vec<String> {
    let mut failing = Vec::new();
    for entry in std::fs::read_dir(results).expect("the suite wrote its results") {
        let dir = entry.unwrap().path();
        let checks: Vec<Value> = match std::fs::read(dir.join("checks.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).expect("checks.json is a list of checks"),
            Err(_) => continue,
        };
        if checks
            .iter()
            .any(|c| c["status"] == "FAILURE" || c["status"] == "WARNING")
        {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            // The timestamp, 2026-12-01T01-47-33-414Z, holds six dash-separated parts.
            let scenario = name.rsplitn(7, '-').last().unwrap_or(&name);
            failing.push(scenario.strip_prefix("server-").unwrap_or(scenario).to_owned());
        }
    }
    failing
}

#[tokio::test]
#[ignore = "needs the conformance suite on PATH: make conformance"]
async fn conformance_2026_07_28() {
    suite_passes("2026-07-28", &["--suite", "all", "--spec-version", "2026-07-28"]).await;
}

#[tokio::test]
#[ignore = "needs the conformance suite on PATH: make conformance"]
async fn conformance_2025_11_25() {
    suite_passes("2025-11-25", &["--suite", "all", "--spec-version", "2025-11-25"]).await;
}

#[tokio::test]
#[ignore = "needs the conformance suite on PATH: make conformance"]
async fn requirements_2026_07_28() {
    suite_passes("requirements-2026-07-28", &["--requirements", "2026-07-28"]).await;
}

#[tokio::test]
#[ignore = "needs the conformance suite on PATH: make conformance"]
async fn requirements_2025_11_25() {
    suite_passes("requirements-2025-11-25", &["--requirements", "2025-11-25"]).await;
}
