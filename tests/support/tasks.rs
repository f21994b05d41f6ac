//! A client that takes tasks (it declares the `io.modelcontextprotocol/tasks` extension) and
//! records the progress notifications it receives; polling a task to its end.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::{
    ClientHandler, ClientServiceExt, RoleClient,
    model::{
        CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig, DetailedTask, GetTaskParams,
        NumberOrString, ProgressNotificationParam, ProgressToken, RequestMetaObject, Task,
    },
    service::{NotificationContext, RunningService},
    transport::StreamableHttpClientTransport,
};
use serde_json::Value;

use super::{Generation, HttpServer, StdioServer, args};

/// The client's handler: its configuration, and every progress notification that arrived.
#[derive(Clone)]
pub struct Recorder {
    config: ClientConfig,
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    fn get_info(&self) -> ClientConfig {
        self.config.clone()
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.progress.lock().unwrap().push(params);
    }
}

pub type TaskClient = RunningService<RoleClient, Recorder>;

/// Connects in `generation`; `tasks`: whether the client declares the tasks extension.
pub async fn connect<T, E, A>(generation: Generation, transport: T, tasks: bool) -> TaskClient
where
    T: rmcp::transport::IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut config = generation.client_config();
    if tasks {
        config.capabilities = ClientCapabilities::builder().enable_tasks().build();
    }
    let recorder = Recorder {
        config,
        progress: Default::default(),
    };
    recorder
        .serve_with_lifecycle(transport, generation.lifecycle())
        .await
        .unwrap_or_else(|e| panic!("{generation:?} client failed to connect: {e}"))
}

pub async fn connect_http(server: &HttpServer, generation: Generation, tasks: bool) -> TaskClient {
    connect(
        generation,
        StreamableHttpClientTransport::from_uri(server.url("/mcp")),
        tasks,
    )
    .await
}

pub async fn connect_http_as(server: &HttpServer, generation: Generation, token: &str) -> TaskClient {
    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(server.url("/mcp"))
            .auth_header(token);
    connect(generation, StreamableHttpClientTransport::from_config(config), true).await
}

pub async fn connect_stdio(server: &mut StdioServer, generation: Generation, tasks: bool) -> TaskClient {
    let io = server.io.take().expect("one client per stdio server");
    connect(generation, io, tasks).await
}

/// Calls `tool` with a progress token; the answer as it came (a result or a task).
pub async fn call(client: &TaskClient, tool: &str, arguments: Value, progress_token: &str) -> CallToolResponse {
    let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args(arguments));
    params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String(progress_token.to_owned().into()),
    )));
    client
        .call_tool_once(params)
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// Calls `tool` and expects a task back.
pub async fn start(client: &TaskClient, tool: &str, arguments: Value) -> Task {
    match call(client, tool, arguments, "task-progress").await {
        CallToolResponse::Task(created) => created.task,
        other => panic!("{tool}: expected a task, got {other:?}"),
    }
}

/// `tasks/get`, which must succeed.
pub async fn get(client: &TaskClient, id: &str) -> DetailedTask {
    client
        .get_task(GetTaskParams::new(id))
        .await
        .unwrap_or_else(|e| panic!("tasks/get {id}: {e}"))
        .task
}

/// Polls until the task is final (within `within`), and returns it.
pub async fn finished(client: &TaskClient, id: &str, within: Duration) -> DetailedTask {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let task = get(client, id).await;
        if task.status().is_terminal() {
            return task;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} still {:?} after {within:?}",
            task.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
