//! The server under test: a child process of the release binary, on loopback, its stderr
//! (JSON logs) read on a thread of its own as a log shipper would, its memory read from /proc.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::BufReader as AsyncBufReader,
    process::{ChildStdin, ChildStdout},
    sync::oneshot,
};

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

pub struct Server {
    child: std::process::Child,
    /// Bytes the server has written to stderr so far.
    stderr_bytes: Arc<AtomicU64>,
    /// The bound address (HTTP), read from the `listening` log line.
    pub addr: Option<SocketAddr>,
    /// The JSON-RPC pipes (stdio).
    pub pipes: Option<(ChildStdin, AsyncBufReader<ChildStdout>)>,
}

impl Server {
    /// Starts `binary serve` on `transport` with `args` added. HTTP returns once it listens;
    /// stdio returns at once (requests written before it reads are simply waiting in the pipe).
    pub async fn start(binary: &Path, transport: Transport, args: &[&str]) -> Server {
        let mut command = Command::new(binary);
        // Only the settings given here count, not whatever the caller's shell has set.
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("MCP_") || k == "RUST_LOG") {
            command.env_remove(key);
        }
        let name = match transport {
            Transport::Http => "http",
            Transport::Stdio => "stdio",
        };
        let mut child = command
            .args([
                "serve",
                "--transport",
                name,
                "--bind",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .args(["--rate-limits", GENEROUS_QUOTA])
            .args(args)
            .stdin(if transport == Transport::Stdio {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));

        let (listening, addr) = oneshot::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr_bytes = Arc::new(AtomicU64::new(0));
        let counted = stderr_bytes.clone();
        std::thread::spawn(move || {
            let mut listening = Some(listening);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                counted.fetch_add(line.len() as u64 + 1, Ordering::Relaxed);
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
            addr: None,
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

    /// Resident memory now and at its peak, in MiB (VmRSS and VmHWM of /proc/<pid>/status).
    pub fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
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
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
        (ticks(11) + ticks(12)) / CLOCK_TICKS
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
