//! Long-running tool calls as tasks, over the real protocol on both transports and in both
//! protocol generations, with the test-only `fetch_fixture_many` (it GETs the fake upstream
//! `times` times, one after another, reporting progress; a task for clients that take tasks).

mod support;

use std::time::Duration;

use rmcp::model::{CallToolResponse, CancelTaskParams, GetTaskParams, TaskPayload, TaskStatus};
use serde_json::{Value, json};
use support::{
    FakeUpstream, Generation, HttpServer, Server, StdioServer,
    tasks::{self, TaskClient},
    upstream::DATA_BODY,
};

const TOOL: &str = "fetch_fixture_many";

fn many(upstream: &FakeUpstream, times: u32) -> Value {
    json!({ "url": upstream.data_url(), "times": times })
}

/// The final result's text, for a completed task.
fn result_text(task: &rmcp::model::DetailedTask) -> String {
    match &task.payload {
        TaskPayload::Completed { result } => result["content"][0]["text"].as_str().unwrap_or_default().to_owned(),
        other => panic!("expected a completed task, got {other:?}"),
    }
}

async fn runs_to_its_result(client: &TaskClient, upstream: &FakeUpstream, context: &str) {
    let task = tasks::start(client, TOOL, many(upstream, 3)).await;
    assert_eq!(task.status, TaskStatus::Working, "{context}");
    assert!(
        task.ttl_ms.is_some() && task.poll_interval_ms.is_some(),
        "{context}: {task:?}"
    );
    let done = tasks::finished(client, &task.task_id, Duration::from_secs(10)).await;
    assert_eq!(done.status(), TaskStatus::Completed, "{context}");
    assert_eq!(result_text(&done), [DATA_BODY; 3].join("\n"), "{context}");
}

/// A client without the tasks extension gets the answer in the request, with one progress
/// notification per step, in order, each with the total.
async fn reports_progress_in_the_request(client: &TaskClient, upstream: &FakeUpstream, context: &str) {
    let answer = tasks::call(client, TOOL, many(upstream, 4), "steps").await;
    let CallToolResponse::Complete(result) = answer else {
        panic!("{context}: a client without tasks gets a result, got {answer:?}");
    };
    assert_eq!(result.is_error, Some(false), "{context}");
    let progress = client.service().progress.lock().unwrap().clone();
    let steps: Vec<_> = progress.iter().map(|p| (p.progress, p.total)).collect();
    assert_eq!(
        steps,
        [(1.0, Some(4.0)), (2.0, Some(4.0)), (3.0, Some(4.0)), (4.0, Some(4.0))],
        "{context}"
    );
    assert!(
        progress[3].message.as_deref().unwrap_or_default().contains("4 of 4"),
        "{context}"
    );
}

#[tokio::test]
async fn a_task_runs_to_its_result_and_progress_is_reported_on_both_transports() {
    let upstream = FakeUpstream::start().await;
    for generation in [Generation::Stateless, Generation::Handshake20251125] {
        let mut server = StdioServer::start(&upstream, &[]).await;
        let client = tasks::connect_stdio(&mut server, generation, true).await;
        runs_to_its_result(&client, &upstream, &format!("stdio {generation:?}")).await;
        client.cancel().await.unwrap();

        let mut server = StdioServer::start(&upstream, &[]).await;
        let client = tasks::connect_stdio(&mut server, generation, false).await;
        reports_progress_in_the_request(&client, &upstream, &format!("stdio {generation:?}")).await;
        client.cancel().await.unwrap();
    }
    let server = HttpServer::start(&upstream, &[]).await;
    for generation in [Generation::Stateless, Generation::Handshake20251125] {
        let client = tasks::connect_http(&server, generation, true).await;
        runs_to_its_result(&client, &upstream, &format!("http {generation:?}")).await;
        client.cancel().await.unwrap();
        let client = tasks::connect_http(&server, generation, false).await;
        reports_progress_in_the_request(&client, &upstream, &format!("http {generation:?}")).await;
        client.cancel().await.unwrap();
    }
    let ended = server.server.logs.events("task");
    assert!(
        ended.iter().any(|l| l["outcome"] == "completed" && l["tool"] == TOOL),
        "{ended:?}"
    );
}

#[tokio::test]
async fn the_status_message_follows_progress_and_cancel_stops_upstream_calls_at_once() {
    let upstream = FakeUpstream::start().await;
    upstream.set_delay(Duration::from_millis(200));
    let mut stdio = StdioServer::start(&upstream, &[]).await;
    let stdio_client = tasks::connect_stdio(&mut stdio, Generation::Handshake20251125, true).await;
    let http = HttpServer::start(&upstream, &[]).await;
    let http_client = tasks::connect_http(&http, Generation::Stateless, true).await;
    for (client, context) in [(&stdio_client, "stdio"), (&http_client, "http")] {
        let before = upstream.data_hits();
        let task = tasks::start(client, TOOL, many(&upstream, 40)).await;
        upstream.wait_for_data_hits(before + 3).await;
        let running = tasks::get(client, &task.task_id).await;
        assert_eq!(running.status(), TaskStatus::Working, "{context}");
        let message = running.task.status_message.unwrap_or_default();
        assert!(message.contains("of 40 fetched"), "{context}: {message}");

        client.cancel_task(CancelTaskParams::new(&task.task_id)).await.unwrap();
        let cancelled = tasks::finished(client, &task.task_id, Duration::from_secs(5)).await;
        assert_eq!(cancelled.status(), TaskStatus::Cancelled, "{context}");
        let after_cancel = upstream.data_hits();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            upstream.data_hits(),
            after_cancel,
            "{context}: upstream calls after the cancel"
        );
        assert!(after_cancel - before < 40, "{context}: the work went on");

        // Cancelling a final task is acknowledged and changes nothing.
        client.cancel_task(CancelTaskParams::new(&task.task_id)).await.unwrap();
        assert_eq!(tasks::get(client, &task.task_id).await.status(), TaskStatus::Cancelled);
    }
}

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789ab";

fn two_callers(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("MCP_AUTH", "static".to_owned()),
        ("MCP_AUTH_TOKENS", format!("{ALICE} alice; {BOB} bob")),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

async fn start_http(upstream: &FakeUpstream, env: &[(&'static str, String)]) -> HttpServer {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    HttpServer::start(upstream, &env).await
}

#[tokio::test]
async fn a_task_belongs_to_its_creator() {
    let upstream = FakeUpstream::start().await;
    upstream.set_delay(Duration::from_millis(100));
    let server = start_http(&upstream, &two_callers(&[])).await;
    for generation in [Generation::Stateless, Generation::Handshake20251125] {
        let alice = tasks::connect_http_as(&server, generation, ALICE).await;
        let bob = tasks::connect_http_as(&server, generation, BOB).await;
        let task = tasks::start(&alice, TOOL, many(&upstream, 10)).await;
        for refused in [
            bob.get_task(GetTaskParams::new(&task.task_id)).await.unwrap_err(),
            bob.cancel_task(CancelTaskParams::new(&task.task_id)).await.unwrap_err(),
        ] {
            let message = refused.to_string();
            assert!(
                message.contains("no task") && message.contains("another caller"),
                "{message}"
            );
        }
        // Bob's cancel did nothing: Alice's task runs to its end.
        let done = tasks::finished(&alice, &task.task_id, Duration::from_secs(10)).await;
        assert_eq!(done.status(), TaskStatus::Completed);
        // An id that never existed reads the same as another caller's.
        let unknown = alice.get_task(GetTaskParams::new("0".repeat(32))).await.unwrap_err();
        assert!(unknown.to_string().contains("no task"), "{unknown}");
    }
}

#[tokio::test]
async fn tasks_are_capped_per_caller_and_in_all_and_expire_after_their_ttl() {
    let upstream = FakeUpstream::start().await;
    let env = two_callers(&[
        ("MCP_MAX_TASKS_PER_CLIENT", "2"),
        ("MCP_MAX_TASKS", "3"),
        ("MCP_TASK_RESULT_TTL", "1"),
        ("MCP_TOOL_TIMEOUTS", "fetch_fixture_many=1"),
    ]);
    let server = start_http(&upstream, &env).await;
    let alice = tasks::connect_http_as(&server, Generation::Stateless, ALICE).await;
    let bob = tasks::connect_http_as(&server, Generation::Stateless, BOB).await;

    let first = tasks::start(&alice, TOOL, many(&upstream, 1)).await;
    tasks::start(&alice, TOOL, many(&upstream, 1)).await;
    let refused = |answer: CallToolResponse| match answer {
        CallToolResponse::Complete(result) if result.is_error == Some(true) => support::text(&result),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let own_cap = refused(tasks::call(&alice, TOOL, many(&upstream, 1), "p").await);
    assert!(own_cap.contains("already holds 2 tasks"), "{own_cap}");
    tasks::start(&bob, TOOL, many(&upstream, 1)).await;
    let server_cap = refused(tasks::call(&bob, TOOL, many(&upstream, 1), "p").await);
    assert!(server_cap.contains("the server holds 3 tasks"), "{server_cap}");

    // Finished, the result stays readable until the TTL (the 1 s timeout + 1 s), then the task
    // is gone, and its slot free.
    let done = tasks::finished(&alice, &first.task_id, Duration::from_secs(2)).await;
    assert_eq!(done.status(), TaskStatus::Completed);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let gone = alice.get_task(GetTaskParams::new(&first.task_id)).await.unwrap_err();
    assert!(gone.to_string().contains("expired"), "{gone}");
    tasks::start(&alice, TOOL, many(&upstream, 1)).await;

    let refusals = server.server.logs.events("request");
    assert!(
        refusals.iter().any(|l| l["outcome"] == "task_refused"),
        "no task_refused line"
    );
}

#[tokio::test]
async fn the_tools_timeout_bounds_its_task() {
    let upstream = FakeUpstream::start().await;
    upstream.set_delay(Duration::from_millis(300));
    let mut server = StdioServer::start(&upstream, &[("MCP_TOOL_TIMEOUTS", "fetch_fixture_many=1")]).await;
    let client = tasks::connect_stdio(&mut server, Generation::Stateless, true).await;
    let task = tasks::start(&client, TOOL, many(&upstream, 20)).await;
    let done = tasks::finished(&client, &task.task_id, Duration::from_secs(5)).await;
    assert_eq!(
        done.status(),
        TaskStatus::Completed,
        "a timeout is the tool's failure: isError"
    );
    let TaskPayload::Completed { result } = &done.payload else {
        unreachable!()
    };
    assert_eq!(result["isError"], true);
    assert!(result_text(&done).contains("did not finish within its 1 s timeout"));
}

/// SIGTERM with a task running: the task gets the drain period; its owner can still read it
/// meanwhile; then it ends as failed, saying why, readable before the process exits (0).
#[tokio::test]
async fn sigterm_gives_running_tasks_the_drain_period_then_fails_them_clearly() {
    let upstream = FakeUpstream::start().await;
    upstream.set_delay(Duration::from_millis(200));
    let env = [("MCP_DRAIN_TIMEOUT", "1")];
    let mut stdio = StdioServer::start(&upstream, &env).await;
    let client = tasks::connect_stdio(&mut stdio, Generation::Stateless, true).await;
    drained(&mut stdio.server, &client, &upstream, "stdio").await;
    let mut http = HttpServer::start(&upstream, &env).await;
    let client = tasks::connect_http(&http, Generation::Stateless, true).await;
    drained(&mut http.server, &client, &upstream, "http").await;
}

async fn drained(server: &mut Server, client: &TaskClient, upstream: &FakeUpstream, context: &str) {
    let task = tasks::start(client, TOOL, many(upstream, 50)).await;
    server.terminate();
    server.logs.wait_for("drain_started").await;
    assert_eq!(
        tasks::get(client, &task.task_id).await.status(),
        TaskStatus::Working,
        "{context}"
    );
    let failed = tasks::finished(client, &task.task_id, Duration::from_secs(5)).await;
    assert_eq!(failed.status(), TaskStatus::Failed, "{context}");
    let TaskPayload::Failed { error } = &failed.payload else {
        unreachable!()
    };
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("shut down before this task finished"),
        "{context}: {message}"
    );
    assert_eq!(server.exit_code(Duration::from_secs(10)).await, 0, "{context}");
}

/// A tool that panics while running as a task fails the task with an internal error, at
/// once, rather than leaving it working until it expires.
#[tokio::test]
async fn a_task_whose_tool_panics_fails_with_an_internal_error() {
    let upstream = FakeUpstream::start().await;
    let mut server = StdioServer::start(&upstream, &[("MCP_FIXTURE_FAULTS", "1")]).await;
    let client = tasks::connect_stdio(&mut server, Generation::Stateless, true).await;
    let task = tasks::start(&client, "panic_fixture", json!({})).await;
    let done = tasks::finished(&client, &task.task_id, Duration::from_secs(5)).await;
    assert_eq!(done.status(), TaskStatus::Failed);
    let TaskPayload::Failed { error } = &done.payload else {
        unreachable!()
    };
    assert_eq!(error["code"], -32603, "{error:?}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("a fault in the server"), "{message}");
    let line = server
        .server
        .logs
        .wait_for_match(|l| l["event"] == "task" && l["tool"] == "panic_fixture")
        .await;
    assert_eq!(line["outcome"], "panicked", "{line}");
}

/// A completed task's result that is an error, and its text.
fn error_text(task: &rmcp::model::DetailedTask) -> String {
    let TaskPayload::Completed { result } = &task.payload else {
        panic!("expected a completed task, got {task:?}")
    };
    assert_eq!(result["isError"], true, "{result:?}");
    result_text(task)
}

#[tokio::test]
async fn a_result_over_the_per_result_bound_is_kept_as_an_error_naming_its_size() {
    let upstream = FakeUpstream::start().await;
    let mut server = StdioServer::start(&upstream, &[("MCP_MAX_TASK_RESULT_BYTES", "2048")]).await;
    let client = tasks::connect_stdio(&mut server, Generation::Stateless, true).await;

    runs_to_its_result(&client, &upstream, "a small result").await;

    upstream.always("/data", support::upstream::Reply::body("x".repeat(3000)));
    let task = tasks::start(&client, TOOL, many(&upstream, 1)).await;
    let done = tasks::finished(&client, &task.task_id, Duration::from_secs(10)).await;
    let message = error_text(&done);
    let size: usize = message
        .split("its result was ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in: {message}"));
    assert!((3000..3200).contains(&size), "{message}");
    assert!(message.contains("more than the 2048 a task keeps"), "{message}");
    let line = server.server.logs.wait_for("task_result_dropped").await;
    assert_eq!(line["bytes"], size, "{line}");
}

/// Results fill the bytes held in all: a result that does not fit is kept as an error saying
/// so, and then new tasks are refused, retryably, until results expire.
#[tokio::test]
async fn results_are_bounded_in_all_refusing_new_tasks_until_results_expire() {
    let upstream = FakeUpstream::start().await;
    upstream.always("/data", support::upstream::Reply::body("x".repeat(3800)));
    let env = [
        ("MCP_MAX_TASK_RESULT_BYTES", "4096"),
        ("MCP_MAX_TASK_RESULT_BYTES_IN_ALL", "4096"),
        ("MCP_TASK_RESULT_TTL", "1"),
        ("MCP_TOOL_TIMEOUTS", "fetch_fixture_many=1"),
    ];
    let mut server = StdioServer::start(&upstream, &env).await;
    let client = tasks::connect_stdio(&mut server, Generation::Stateless, true).await;

    let first = tasks::start(&client, TOOL, many(&upstream, 1)).await;
    let first = tasks::finished(&client, &first.task_id, Duration::from_secs(5)).await;
    assert_eq!(result_text(&first).len(), 3800);

    let second = tasks::start(&client, TOOL, many(&upstream, 1)).await;
    let second = tasks::finished(&client, &second.task_id, Duration::from_secs(5)).await;
    let message = error_text(&second);
    assert!(message.contains("did not fit"), "{message}");
    assert!(message.contains("keeps at most 4096"), "{message}");

    let refused = match tasks::call(&client, TOOL, many(&upstream, 1), "p").await {
        CallToolResponse::Complete(result) if result.is_error == Some(true) => support::text(&result),
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(refused.contains("was not started"), "{refused}");
    assert!(
        refused.contains("bytes of task results, the most it keeps (4096)"),
        "{refused}"
    );
    let retry_s: u64 = refused
        .split("retry in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait in: {refused}"));
    assert!((1..=2).contains(&retry_s), "{refused}");

    // Once the results expire (the 1 s timeout + 1 s), there is room again.
    tokio::time::sleep(Duration::from_secs(retry_s)).await;
    let third = tasks::start(&client, TOOL, many(&upstream, 1)).await;
    let third = tasks::finished(&client, &third.task_id, Duration::from_secs(5)).await;
    assert_eq!(result_text(&third).len(), 3800);
}
