//! What a load is: the three targets (two HTTP protocol generations and stdio), the simulated
//! clients, and one measured run of calls in a loop.

use std::time::{Duration, Instant};

use crate::{
    http,
    server::{Server, Transport},
    stats::{Samples, Summary},
    stdio,
};

/// Before each measured window, calls whose results are not counted.
pub const WARMUP: Duration = Duration::from_millis(300);
/// Bounds on one client's loop besides its window: calls (far more than any server here
/// answers in a window), and the wait for one answer (a client that waits longer stops).
const MAX_CALLS: u64 = 1_000_000;
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    HttpStateless,
    HttpSession,
    Stdio,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Self::HttpStateless => "HTTP 2026-07-28 (stateless)",
            Self::HttpSession => "HTTP 2025-11-25 (sessions)",
            Self::Stdio => "stdio 2025-11-25",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Self::HttpStateless => "http-2026-07-28",
            Self::HttpSession => "http-2025-11-25",
            Self::Stdio => "stdio-2025-11-25",
        }
    }

    pub fn transport(self) -> Transport {
        match self {
            Self::Stdio => Transport::Stdio,
            _ => Transport::Http,
        }
    }
}

/// A simulated client, calling in a loop.
pub enum Client {
    Http(http::HttpClient),
    Stdio(stdio::StdioClient),
}

impl Client {
    pub async fn call(&mut self) -> bool {
        match self {
            Client::Http(client) => client.call().await,
            Client::Stdio(client) => client.call().await,
        }
    }

    pub async fn close(self) {
        if let Client::Http(client) = self {
            client.close().await;
        }
    }
}

/// As many clients as calls should be in flight. Over stdio they share the one session.
pub async fn open(server: &mut Server, target: Target, count: usize) -> Vec<Client> {
    let protocol = match target {
        Target::Stdio => {
            let (stdin, stdout) = server
                .pipes
                .take()
                .expect("the stdio session is opened once per server");
            let client = stdio::StdioClient::open(stdin, stdout).await;
            return (0..count).map(|_| Client::Stdio(client.clone())).collect();
        }
        Target::HttpStateless => http::Protocol::Stateless,
        Target::HttpSession => http::Protocol::Session,
    };
    let addr = server.addr.expect("an HTTP server");
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(Client::Http(
            http::HttpClient::connect(addr, protocol).await.expect("connecting"),
        ));
    }
    clients
}

pub async fn close(clients: Vec<Client>) {
    for client in clients {
        client.close().await;
    }
}

/// Every client calls in a loop for the warm-up and then the window; calls that start within
/// the window are counted.
pub async fn run(clients: Vec<Client>, window: Duration) -> (Summary, Vec<Client>) {
    let start = Instant::now() + WARMUP;
    let end = start + window;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut samples = Samples::default();
                while Instant::now() < end && samples.all < MAX_CALLS {
                    let began = Instant::now();
                    let Ok(ok) = tokio::time::timeout(CALL_TIMEOUT, client.call()).await else {
                        samples.errors += 1;
                        break;
                    };
                    samples.all += 1;
                    match (began >= start, ok) {
                        (false, _) => {}
                        (true, true) => samples.latencies.push(began.elapsed()),
                        (true, false) => samples.errors += 1,
                    }
                }
                (samples, client)
            })
        })
        .collect();
    let mut samples = Samples::default();
    let mut clients = Vec::new();
    for task in tasks {
        let (s, client) = task.await.expect("a client task");
        samples.merge(s);
        clients.push(client);
    }
    (Summary::of(samples, window), clients)
}
