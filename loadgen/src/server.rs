//! The server under test: a child process of the release binary (or of a baseline from
//! `baselines/`), on loopback, its stderr (JSON logs) read on a thread of its own as a log
//! shipper would, its memory and CPU time read from /proc, its allocation count asked for with
//! SIGUSR1 (bench builds only).

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::BufReader as AsyncBufReader,
    process::{ChildStdin, ChildStdout},
    sync::{mpsc, oneshot},
};

/// The line a bench build writes to stderr on SIGUSR1: its allocations so far.
const ALLOCATIONS_LINE: &str = "bench_allocations ";

/// Linux's USER_HZ, the unit of /proc/<pid>/stat times, on every common platform.
const CLOCK_TICKS: f64 = 100.0;

/// Quotas no benchmark reaches, so the rate limiter is measured, not the limit.
pub const GENEROUS_QUOTA: &str = "convert_temperature=1000000/s:1000000";

/// For the benchmark: its simulated clients all connect from one address, which per-client
/// caps would treat as one client holding hundreds of sessions and connections.
pub const ONE_ADDRESS_MANY_CLIENTS: [&str; 4] = [
    "--max-sessions-per-client",
    "1000",
    "--max-connections-per-client",
    "1024",
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Stdio,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Stdio => "stdio",
        }
    }
}

pub struct Server {
    child: std::process::Child,
    /// Bytes the server has written to stderr so far.
    stderr_bytes: Arc<AtomicU64>,
    /// Allocation counts, as the server writes them on SIGUSR1.
    allocations: mpsc::UnboundedReceiver<u64>,
    /// The bound address (HTTP), read from the `listening` log line.
    pub addr: Option<SocketAddr>,
    /// The other listeners' addresses, by the event that logged them (`health_listening`,
    /// `metrics_listening`); logged before `listening`, so known once it is.
    listeners: Arc<Mutex<HashMap<String, SocketAddr>>>,
    /// The JSON-RPC pipes (stdio).
    pub pipes: Option<(ChildStdin, AsyncBufReader<ChildStdout>)>,
}

impl Server {
    /// Starts `binary serve` on `transport` with `args` added. HTTP returns once it listens;
    /// stdio returns at once (requests written before it reads are simply waiting in the pipe).
    pub async fn start(binary: &Path, transport: Transport, args: &[&str]) -> Server {
        Self::start_with(binary, transport, args, &[]).await
    }

    /// [`Self::start`] with environment variables set (the OpenTelemetry ones, say).
    pub async fn start_with(binary: &Path, transport: Transport, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Self::spawn(Self::command(binary, transport, args, envs), transport).await
    }

    /// The command [`Self::start_with`] runs, for a caller that adds to it before [`Self::spawn`].
    pub fn command(binary: &Path, transport: Transport, args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut command = Command::new(binary);
        // Only the settings given here count, not whatever the caller's shell has set.
        for (key, _) in
            std::env::vars().filter(|(k, _)| k.starts_with("MCP_") || k.starts_with("OTEL_") || k == "RUST_LOG")
        {
            command.env_remove(key);
        }
        command.envs(envs.iter().copied());
        command
            .args([
                "serve",
                "--transport",
                transport.name(),
                "--bind",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .args(["--rate-limits", GENEROUS_QUOTA])
            .args(args);
        command
    }

    /// Starts a baseline from `baselines/` (`bare-rmcp`, `axum-floor`) on `transport`.
    pub async fn start_baseline(binary: &Path, transport: Transport) -> Server {
        let mut command = Command::new(binary);
        match transport {
            Transport::Http => command.args(["http", "127.0.0.1:0"]),
            Transport::Stdio => command.arg("stdio"),
        };
        Self::spawn(command, transport).await
    }

    /// Starts `command`; HTTP returns once it listens, stdio at once.
    pub async fn spawn(mut command: Command, transport: Transport) -> Server {
        crate::pin::server(&mut command);
        let program = command.get_program().to_owned();
        let mut child = command
            .stdin(if transport == Transport::Stdio {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));

        let (listening, addr) = oneshot::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr_bytes = Arc::new(AtomicU64::new(0));
        let counted = stderr_bytes.clone();
        let (allocations_tx, allocations) = mpsc::unbounded_channel();
        let listeners = Arc::new(Mutex::new(HashMap::new()));
        let found = listeners.clone();
        std::thread::spawn(move || {
            let mut listening = Some(listening);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(count) = line.strip_prefix(ALLOCATIONS_LINE) {
                    let _ = allocations_tx.send(count.trim().parse().unwrap_or(u64::MAX));
                    continue;
                }
                counted.fetch_add(line.len() as u64 + 1, Ordering::Relaxed);
                if line.contains(r#"_listening""#)
                    && let Ok(line) = serde_json::from_str::<serde_json::Value>(&line)
                    && let (Some(event), Some(addr)) = (line["event"].as_str(), line["addr"].as_str())
                    && let Ok(addr) = addr.parse()
                {
                    found.lock().unwrap().insert(event.to_owned(), addr);
                }
                if line.contains(r#""event":"listening""#)
                    && let Some(tx) = listening.take()
                {
                    let _ = tx.send(line);
                }
            }
        });

        let mut server = Server {
            child,
            stderr_bytes,
            allocations,
            addr: None,
            listeners,
            pipes: None,
        };
        match transport {
            Transport::Http => {
                let line = tokio::time::timeout(Duration::from_secs(10), addr)
                    .await
                    .expect("the server listens within 10 s")
                    .expect("the server logs a listening line");
                let line: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
                server.addr = Some(line["addr"].as_str().and_then(|a| a.parse().ok()).expect("addr"));
            }
            Transport::Stdio => {
                let stdin = ChildStdin::from_std(server.child.stdin.take().unwrap()).unwrap();
                let stdout = ChildStdout::from_std(server.child.stdout.take().unwrap()).unwrap();
                server.pipes = Some((stdin, AsyncBufReader::new(stdout)));
            }
        }
        server
    }

    /// The address another listener logged with `event` (e.g. `health_listening`).
    pub fn listener(&self, event: &str) -> Option<SocketAddr> {
        self.listeners.lock().unwrap().get(event).copied()
    }

    /// Resident memory now and at its peak, in MiB (VmRSS and VmHWM of /proc/<pid>/status).
    pub fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(f64::NAN, |kib| kib / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// CPU time the process has used, user and system, in seconds (/proc/<pid>/stat).
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&self.pid().to_string())
    }

    /// Allocations the process has made so far, from a bench build (the server's `bench`
    /// feature, or a baseline): asked for with SIGUSR1, answered on stderr. `None` if no answer
    /// comes within a second.
    pub async fn allocations(&mut self) -> Option<u64> {
        while self.allocations.try_recv().is_ok() {}
        let pid = libc::pid_t::try_from(self.pid()).ok()?;
        // SAFETY: a signal to our own child, which handles SIGUSR1.
        if unsafe { libc::kill(pid, libc::SIGUSR1) } != 0 {
            return None;
        }
        match tokio::time::timeout(Duration::from_secs(1), self.allocations.recv()).await {
            Ok(Some(count)) if count != u64::MAX => Some(count),
            _ => None,
        }
    }

    /// The process id, for what /proc tells of it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Bytes written to stderr so far.
    pub fn stderr_bytes(&self) -> u64 {
        self.stderr_bytes.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time a process has used, user and system, in seconds: `pid` is a process id, or `self`.
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / CLOCK_TICKS
}
