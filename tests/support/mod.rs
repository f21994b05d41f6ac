//! One harness for every protocol-level suite: spawn the built binary, connect the rmcp client
//! over stdio or HTTP (ephemeral loopback port) in either protocol generation, and run a fake
//! upstream API on loopback. Every server's stderr is collected and must be JSON, line by line.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod balancer;
pub mod introspection;
pub mod jwt;
pub mod otlp;
pub mod prometheus;
pub mod raw;
pub mod readme;
pub mod redis;
pub mod tasks;
pub mod tools;
pub mod upstream;

use std::{
    net::SocketAddr,
    pin::Pin,
    process::Stdio,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use rmcp::{
    ClientLifecycleMode, ClientServiceExt, RoleClient,
    model::{ClientConfig, Implementation, ProtocolVersion},
    service::RunningService,
    transport::{StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig},
};
use serde_json::Value;
use tokio::{
    io::{AsyncRead, BufReader, ReadBuf},
    process::{Child, ChildStdin, ChildStdout, Command},
};

pub use upstream::FakeUpstream;

pub type Client = RunningService<RoleClient, ClientConfig>;

/// The server binary under test.
pub const BIN: &str = env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME")));

/// The protocol generations the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// 2026-07-28: stateless, `server/discover`, no `initialize`.
    Stateless,
    /// 2025-11-25: `initialize` handshake and sessions.
    Handshake20251125,
    /// 2025-06-18: `initialize` handshake and sessions.
    Handshake20250618,
}

pub const GENERATIONS: [Generation; 3] = [
    Generation::Stateless,
    Generation::Handshake20251125,
    Generation::Handshake20250618,
];

impl Generation {
    pub fn version(self) -> ProtocolVersion {
        match self {
            Self::Stateless => ProtocolVersion::V_2026_07_28,
            Self::Handshake20251125 => ProtocolVersion::V_2025_11_25,
            Self::Handshake20250618 => ProtocolVersion::V_2025_06_18,
        }
    }

    fn lifecycle(self) -> ClientLifecycleMode {
        match self {
            Self::Stateless => ClientLifecycleMode::Discover {
                preferred_versions: vec![self.version()],
            },
            _ => ClientLifecycleMode::Initialize,
        }
    }

    fn client_config(self) -> ClientConfig {
        let mut config = ClientConfig::default();
        config.protocol_version = self.version();
        config.client_info = Implementation::new("protocol-tests", "1.0.0");
        config
    }

    /// Connects the rmcp client over any transport in this generation.
    pub async fn connect<T, E, A>(self, transport: T) -> Client
    where
        T: rmcp::transport::IntoTransport<RoleClient, E, A>,
        E: std::error::Error + Send + Sync + 'static,
    {
        self.client_config()
            .serve_with_lifecycle(transport, self.lifecycle())
            .await
            .unwrap_or_else(|e| panic!("{self:?} client failed to connect: {e}"))
    }
}

/// Everything a server process wrote to stderr, line by line, shared with a reader task.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

/// Under load the server holds `info` lines for up to 10 ms to write them together; a reader
/// that looks right after a burst waits this long first.
const LOG_BATCH_WAIT: Duration = Duration::from_millis(50);

impl Logs {
    /// The lines written so far, once any the server still held have been written.
    pub fn lines(&self) -> Vec<String> {
        // Blocking is fine: the lines are read on a thread of their own.
        std::thread::sleep(LOG_BATCH_WAIT);
        self.read_so_far()
    }

    fn read_so_far(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Every line parsed; panics on a line that is not a JSON object.
    pub fn json(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(v) if v.is_object() => v,
                _ => panic!("stderr line is not a JSON object: {l:?}"),
            })
            .collect()
    }

    /// Log records whose `event` field equals `event`.
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.json().into_iter().filter(|v| v["event"] == event).collect()
    }

    /// Requests refused with `decision` (e.g. `invalid`), `expected` of them: those logged in
    /// full, and those the once-a-second `request_refusals` summary counted past the first 10
    /// of a second, waited for while some are missing.
    pub async fn refused(&self, decision: &str, expected: usize) -> usize {
        let in_full = self
            .events("request")
            .iter()
            .filter(|l| l["decision"] == decision)
            .count();
        if in_full >= expected {
            return in_full;
        }
        let summarised = |l: &Value| l["event"] == "request_refusals" && l["reason"] == decision;
        self.wait_for_match(summarised).await;
        let counted: u64 = self
            .json()
            .iter()
            .filter(|l| summarised(l))
            .map(|l| l["not_logged"].as_u64().unwrap_or(0))
            .sum();
        in_full + counted as usize
    }

    /// Waits until a record with `event` appears.
    pub async fn wait_for(&self, event: &str) -> Value {
        self.wait_for_match(|v| v["event"] == event).await
    }

    /// Waits until a record that `matches` appears.
    pub async fn wait_for_match(&self, matches: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..500 {
            if let Some(v) = self
                .read_so_far()
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| matches(v))
            {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "no matching log line within 10 s; stderr was:\n{}",
            self.lines().join("\n")
        );
    }

    /// Reads `stderr` into the lines until it closes, on a thread of its own (so a test that
    /// waits in [`Self::lines`] does not stop the reading); the handle ends when it has.
    fn collect(&self, stderr: tokio::process::ChildStderr) -> tokio::task::JoinHandle<()> {
        use std::{io::BufRead, os::fd::AsRawFd};
        let fd = stderr.into_owned_fd().expect("the server's stderr");
        // SAFETY: clearing O_NONBLOCK on a descriptor this function owns.
        unsafe {
            let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
        let lines = self.0.clone();
        tokio::task::spawn_blocking(move || {
            for line in std::io::BufReader::new(std::fs::File::from(fd)).lines() {
                match line {
                    Ok(line) => lines.lock().unwrap().push(line),
                    Err(_) => break,
                }
            }
        })
    }
}

/// A running server process.
pub struct Server {
    pub child: Child,
    pub logs: Logs,
    stderr_read: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    fn command(envs: &[(&str, String)]) -> Command {
        let mut command = Command::new(BIN);
        // Only the settings a test gives count, not whatever the caller's shell has set.
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("MCP_") || k == "RUST_LOG") {
            command.env_remove(key);
        }
        // A setting given as "" is left unset, to see its default.
        for (key, value) in envs {
            match value.as_str() {
                "" => command.env_remove(key),
                value => command.env(key, value),
            };
        }
        command
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("server is running") as i32
    }

    /// Sends SIGTERM, as an orchestrator does.
    pub fn terminate(&self) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGTERM) }, 0);
    }

    /// Waits for the process to exit (at most `within`) and returns its exit code, once every
    /// line it wrote to stderr has been collected.
    pub async fn exit_code(&mut self, within: Duration) -> i32 {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "server did not exit within {within:?}; stderr:\n{}",
                    self.logs.lines().join("\n")
                )
            })
            .expect("waiting for the server");
        if let Some(read) = self.stderr_read.take() {
            // The pipe may still hold the last lines when the process is gone.
            let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
        }
        status.code().expect("server exited by a signal, not by itself")
    }
}

/// A server on Streamable HTTP, bound to an ephemeral loopback port.
pub struct HttpServer {
    pub server: Server,
    pub addr: SocketAddr,
}

impl HttpServer {
    pub async fn start(upstream: &FakeUpstream, extra: &[(&str, &str)]) -> Self {
        let mut envs = base_env(upstream);
        envs.push(("MCP_TRANSPORT", "http".into()));
        envs.push(("MCP_BIND", "127.0.0.1:0".into()));
        envs.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let mut child = Server::command(&envs).spawn().expect("spawning the server");
        let logs = Logs::default();
        let stderr_read = Some(logs.collect(child.stderr.take().unwrap()));
        let listening = logs.wait_for("listening").await;
        let addr = listening["addr"]
            .as_str()
            .expect("listening line has addr")
            .parse()
            .unwrap();
        Self {
            server: Server {
                child,
                logs,
                stderr_read,
            },
            addr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn connect(&self, generation: Generation) -> Client {
        generation
            .connect(StreamableHttpClientTransport::from_uri(self.url("/mcp")))
            .await
    }

    /// Connects with `Authorization: Bearer <token>` on every request.
    pub async fn connect_as(&self, generation: Generation, token: &str) -> Client {
        let config = StreamableHttpClientTransportConfig::with_uri(self.url("/mcp")).auth_header(token);
        generation
            .connect(StreamableHttpClientTransport::from_config(config))
            .await
    }

    /// One stateless (2026-07-28) JSON-RPC request, by hand, for tests that look at the
    /// HTTP status and headers or need many distinct callers fast.
    pub async fn post(
        &self,
        http: &reqwest::Client,
        token: Option<&str>,
        method: &str,
        params: Value,
    ) -> reqwest::Response {
        let mut params = params;
        params["_meta"] = serde_json::json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": { "name": "raw", "version": "1" },
            "io.modelcontextprotocol/clientCapabilities": {}
        });
        let mut request = http
            .post(self.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = params.get("name").and_then(Value::as_str) {
            request = request.header("mcp-name", name);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        request.json(&body).send().await.expect("POST /mcp")
    }
}

/// A server on stdio, with everything it writes to stdout recorded.
pub struct StdioServer {
    pub server: Server,
    pub stdout_bytes: Arc<Mutex<Vec<u8>>>,
    io: Option<(Tee<ChildStdout>, ChildStdin)>,
}

impl StdioServer {
    pub async fn start(upstream: &FakeUpstream, extra: &[(&str, &str)]) -> Self {
        let mut envs = base_env(upstream);
        envs.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let mut child = Server::command(&envs).spawn().expect("spawning the server");
        let logs = Logs::default();
        let stderr_read = Some(logs.collect(child.stderr.take().unwrap()));
        let stdout_bytes = Arc::new(Mutex::new(Vec::new()));
        let stdout = Tee {
            inner: child.stdout.take().unwrap(),
            seen: stdout_bytes.clone(),
        };
        let stdin = child.stdin.take().unwrap();
        Self {
            server: Server {
                child,
                logs,
                stderr_read,
            },
            stdout_bytes,
            io: Some((stdout, stdin)),
        }
    }

    /// Connects the rmcp client over the process's stdin/stdout (once).
    pub async fn connect(&mut self, generation: Generation) -> Client {
        let io = self.io.take().expect("one client per stdio server");
        generation.connect(io).await
    }

    /// Takes the raw pipes, for tests that write bytes by hand.
    pub fn raw(&mut self) -> (BufReader<Tee<ChildStdout>>, ChildStdin) {
        let (stdout, stdin) = self.io.take().expect("pipes already taken");
        (BufReader::new(stdout), stdin)
    }

    /// Every line the server wrote to stdout.
    pub fn stdout_lines(&self) -> Vec<String> {
        String::from_utf8(self.stdout_bytes.lock().unwrap().clone())
            .expect("stdout is UTF-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Settings every test server gets: the fake upstream, which is on loopback, so its host and
/// loopback are allowed (upstream calls reach only listed hosts at public addresses by default).
fn base_env(upstream: &FakeUpstream) -> Vec<(&'static str, String)> {
    vec![
        ("MCP_UPSTREAM_ALLOW_HOSTS", upstream.host()),
        // weather-example:begin
        ("MCP_GEOCODING_URL", upstream.url()),
        ("MCP_FORECAST_URL", upstream.url()),
        // weather-example:end
        ("MCP_UPSTREAM_ALLOW_PRIVATE", "127.0.0.0/8".into()),
        ("MCP_LOG_FORMAT", "json".into()),
        ("MCP_LOG_LEVEL", "info".into()),
    ]
}

/// An `AsyncRead` that records every byte it passes on.
pub struct Tee<R> {
    inner: R,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Tee<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let new = buf.filled()[before..].to_vec();
        self.seen.lock().unwrap().extend_from_slice(&new);
        poll
    }
}

/// Arguments as the JSON object rmcp's request types take.
pub fn args(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().expect("arguments are an object").clone()
}

/// The text of a tool result's content.
pub fn text(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.clone())
        .collect()
}
