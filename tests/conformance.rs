//! The official MCP conformance suite against the HTTP transport, in both protocol
//! generations, with the fixtures of the `conformance` feature. Run by `make conformance`,
//! which installs the pinned suite and puts it and Node 22 on PATH.
#![cfg(feature = "conformance")]

mod support;

use support::{FakeUpstream, HttpServer};

/// Runs every scenario of the suite for `version` and fails on any failure that
/// `interop/expected-failures.yaml` does not list (or on a listed one that passes).
async fn suite_passes(version: &str) {
    let upstream = FakeUpstream::start().await;
    let server = HttpServer::start(&upstream, &[]).await;
    let root = env!("CARGO_MANIFEST_DIR");
    let results = format!("{root}/target/conformance/{version}");
    let _ = std::fs::remove_dir_all(&results);
    // Async, so the harness keeps draining the server's stderr meanwhile.
    let run = tokio::process::Command::new("conformance")
        .args(["server", "--url", &server.url("/mcp"), "--suite", "all"])
        .args(["--spec-version", version, "--output-dir", &results])
        .args(["--expected-failures", &format!("{root}/interop/expected-failures.yaml")])
        .output()
        .await
        .expect("running `conformance` (make conformance installs it and puts it on PATH)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let summary = stdout.split("=== SUMMARY ===").nth(1).unwrap_or(&stdout);
    println!("conformance {version}:{summary}");
    assert!(
        run.status.success(),
        "conformance {version} failed; details in {results}\n{summary}\n{}",
        String::from_utf8_lossy(&run.stderr)
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

#[tokio::test]
#[ignore = "needs the conformance suite on PATH: make conformance"]
async fn conformance_2026_07_28() {
    suite_passes("2026-07-28").await;
}

#[tokio::test]
#[ignore = "needs the conformance suite on PATH: make conformance"]
async fn conformance_2025_11_25() {
    suite_passes("2025-11-25").await;
}
