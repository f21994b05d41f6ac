//! The MCP Inspector's CLI (`inspector --cli`, pinned in interop/package.json) lists and calls
//! tools on the server: over stdio, as a client that spawns it, and over HTTP with a bearer
//! token, in both protocol generations. Run by `make inspector-check`, which installs the
//! Inspector and puts it and Node 22 on PATH.

mod support;

use serde_json::Value;
use support::{
    BIN, FakeUpstream, Generation, HttpServer, StdioServer,
    readme::{run_example, shell_blocks},
    tools::tool_names,
};

const TOKEN: &str = "inspector-check-token-0123456789";
const ADMIN_TOKEN: &str = "inspector-admin-token-0123456789";

/// `inspector --cli <args>` with JSON output: the result, or the exit code and error envelope.
async fn inspector(args: &[&str]) -> Result<Value, (Option<i32>, String)> {
    let mut command = tokio::process::Command::new("inspector");
    // Only the settings a check passes count, not whatever the caller's shell has set.
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("MCP_") || k == "RUST_LOG") {
        command.env_remove(key);
    }
    let out = command
        .arg("--cli")
        .args(args)
        .args(["--format", "json", "--quiet"])
        .output()
        .await
        .expect("running `inspector` (make inspector-check installs it and puts it on PATH)");
    if !out.status.success() {
        return Err((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    Ok(value["result"].clone())
}

/// The names in an Inspector tools/list result.
fn listed_names(list: &Value) -> Vec<&str> {
    let tools = list["tools"].as_array().unwrap_or_else(|| panic!("no tools in {list}"));
    tools.iter().filter_map(|t| t["name"].as_str()).collect()
}

/// The tools the server lists to the rmcp client of a stdio server with these settings.
async fn rmcp_list_on_stdio(upstream: &FakeUpstream, env: &[(&str, &str)]) -> Vec<String> {
    let mut server = StdioServer::start(upstream, env).await;
    let client = server.connect(Generation::Stateless).await;
    let names = tool_names(&client).await;
    client.cancel().await.unwrap();
    names
}

/// On `target` (a server command or a URL with its options): tools/list shows the tools the
/// server lists to the rmcp client for the same caller, and tools/call converts 100 °C.
async fn lists_the_tools_and_converts(target: &[&str], expected: &[String], context: &str) {
    let list = inspector(&[target, &["--method", "tools/list"]].concat())
        .await
        .unwrap();
    assert_eq!(listed_names(&list), expected, "{context}");
    let convert = r#"{"temperature":{"value":100,"unit":"celsius"},"to":"fahrenheit"}"#;
    let call = [
        "--method",
        "tools/call",
        "--tool-name",
        "convert_temperature",
        "--tool-args-json",
        convert,
    ];
    let result = inspector(&[target, &call].concat()).await.unwrap();
    assert_eq!(result["isError"], false, "{context}: {result}");
    // Node prints 212.0 as 212.
    let converted = &result["structuredContent"];
    assert_eq!(converted["value"].as_f64(), Some(212.0), "{context}: {result}");
    assert_eq!(converted["unit"], "fahrenheit", "{context}: {result}");
}

#[tokio::test]
#[ignore = "needs the MCP Inspector on PATH: make inspector-check"]
async fn stdio_lists_and_calls_tools() {
    let upstream = FakeUpstream::start().await;
    // The fake upstream is on loopback, which the upstream client refuses unless allowed.
    let mut server = vec!["-e", "MCP_UPSTREAM_ALLOW_PRIVATE=127.0.0.0/8"];
    // weather-example:begin
    let geocoding = format!("MCP_GEOCODING_URL={}", upstream.url());
    let forecast = format!("MCP_FORECAST_URL={}", upstream.url());
    server.extend(["-e", &geocoding, "-e", &forecast]);
    // weather-example:end
    server.extend([BIN, "serve"]);

    let expected = rmcp_list_on_stdio(&upstream, &[]).await;
    lists_the_tools_and_converts(&server, &expected, "stdio").await;
    // weather-example:begin

    // Arguments of simple types, one --tool-arg each.
    let call = ["--method", "tools/call", "--tool-name", "get_forecast"];
    let args = ["--tool-arg", "city=Berlin", "--tool-arg", "days=2"];
    let result = inspector(&[&server[..], &call, &args].concat()).await.unwrap();
    assert_eq!(result["isError"], false, "{result}");
    assert_eq!(result["structuredContent"]["city"], "Berlin");
    assert_eq!(result["structuredContent"]["days"].as_array().map(Vec::len), Some(2));
    // weather-example:end
}

#[tokio::test]
#[ignore = "needs the MCP Inspector on PATH: make inspector-check"]
async fn stdio_token_from_the_environment_reveals_the_admin_tool() {
    let tokens = format!("{ADMIN_TOKEN} ops mcp:admin");
    let env = [
        ("MCP_AUTH", "static"),
        ("MCP_AUTH_TOKENS", tokens.as_str()),
        ("MCP_AUTH_TOKEN", ADMIN_TOKEN),
    ];
    let settings: Vec<_> = env.iter().map(|(key, value)| format!("{key}={value}")).collect();
    let mut server: Vec<&str> = settings.iter().flat_map(|s| ["-e", s]).collect();
    server.extend([BIN, "serve"]);

    let list = inspector(&[&server[..], &["--method", "tools/list"]].concat())
        .await
        .unwrap();
    assert!(listed_names(&list).contains(&"server_status"), "{list}");
    let upstream = FakeUpstream::start().await;
    assert_eq!(listed_names(&list), rmcp_list_on_stdio(&upstream, &env).await, "{list}");
    let call = ["--method", "tools/call", "--tool-name", "server_status"];
    let status = inspector(&[&server[..], &call].concat()).await.unwrap();
    assert_eq!(
        status["structuredContent"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{status}"
    );
}

#[tokio::test]
#[ignore = "needs the MCP Inspector on PATH: make inspector-check"]
async fn http_with_a_bearer_token_in_both_generations() {
    let upstream = FakeUpstream::start().await;
    let tokens = format!("{TOKEN} inspector mcp:tools");
    let server = HttpServer::start(&upstream, &[("MCP_AUTH", "static"), ("MCP_AUTH_TOKENS", &tokens)]).await;
    let url = server.url("/mcp");
    let bearer = format!("Authorization: Bearer {TOKEN}");

    for (era, generation) in [
        ("legacy", Generation::Handshake20251125),
        ("modern", Generation::Stateless),
    ] {
        let client = server.connect_as(generation, TOKEN).await;
        let expected = tool_names(&client).await;
        client.cancel().await.unwrap();
        let target = [url.as_str(), "--protocol-era", era, "--header", &bearer];
        lists_the_tools_and_converts(&target, &expected, era).await;
    }

    // Both generations were spoken, as the token's subject, and the token was never logged.
    let calls: Vec<_> = server
        .server
        .logs
        .events("request")
        .into_iter()
        .filter(|l| l["method"] == "tools/call")
        .collect();
    let protocols: Vec<_> = calls
        .iter()
        .map(|l| l["protocol"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(protocols, ["2025-11-25", "2026-07-28"]);
    assert!(
        calls
            .iter()
            .all(|l| l["subject"] == "inspector" && l["outcome"] == "ok")
    );
    assert!(!server.server.logs.lines().iter().any(|l| l.contains(TOKEN)));
}

#[tokio::test]
#[ignore = "needs the MCP Inspector on PATH: make inspector-check"]
async fn http_refuses_a_wrong_token() {
    let upstream = FakeUpstream::start().await;
    let tokens = format!("{TOKEN} inspector mcp:tools");
    let server = HttpServer::start(&upstream, &[("MCP_AUTH", "static"), ("MCP_AUTH_TOKENS", &tokens)]).await;
    let wrong = "not-the-inspector-token-0123456789";
    let bearer = format!("Authorization: Bearer {wrong}");

    let refused = inspector(&[&server.url("/mcp"), "--header", &bearer, "--method", "tools/list"]).await;
    assert!(refused.is_err(), "a wrong token was accepted: {refused:?}");
    server.server.logs.wait_for("auth_failed").await;
    assert!(!server.server.logs.lines().iter().any(|l| l.contains(wrong)));
}

/// The README's Inspector commands, run as written: only `npx @modelcontextprotocol/inspector`
/// becomes the pinned `inspector` on PATH, and the binary's path the one built here, given the
/// settings that point it at the fake upstream.
#[tokio::test]
#[ignore = "needs the MCP Inspector on PATH: make inspector-check"]
async fn the_readme_inspector_commands_work_as_written() {
    const NPX: &str = "npx @modelcontextprotocol/inspector --cli ";
    let upstream = FakeUpstream::start().await;
    let settings = [
        format!("MCP_UPSTREAM_ALLOW_HOSTS={}", upstream.host()),
        "MCP_UPSTREAM_ALLOW_PRIVATE=127.0.0.0/8".to_owned(),
        // weather-example:begin
        format!("MCP_GEOCODING_URL={}", upstream.url()),
        format!("MCP_FORECAST_URL={}", upstream.url()),
        // weather-example:end
    ];
    let settings: String = settings.iter().map(|s| format!("-e {s} ")).collect();
    let documented_bin = format!("./target/debug/{}", env!("CARGO_PKG_NAME"));
    let commands: Vec<_> = shell_blocks().into_iter().filter(|block| block.contains(NPX)).collect();
    assert!(!commands.is_empty(), "the README shows the Inspector's CLI");
    for block in commands {
        let script = block
            .replace(NPX, &format!("inspector --cli {settings}"))
            .replace(&documented_bin, BIN);
        let stdout = run_example(block, &script).await;
        assert!(
            stdout.contains("\"tools\"") || stdout.contains("\"isError\": false"),
            "{block}\nprinted: {stdout}"
        );
        assert!(!stdout.contains("\"isError\": true"), "{block}\nprinted: {stdout}");
    }
}
