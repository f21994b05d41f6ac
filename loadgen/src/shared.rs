//! What sharing state on Redis costs: this server in memory and with `--redis-url` (a
//! `redis-server` on loopback, started here), loaded in alternating rounds at the same
//! concurrency, so a drift in the machine's load weighs on both alike. Every `tools/call` then
//! takes its rate-limit decision on Redis, and a session request checks its owner there.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    load::{Target, close, open, run},
    server::{ONE_ADDRESS_MANY_CLIENTS, Server},
    stats::median,
};

pub const CONCURRENCY: usize = 16;
const ROUNDS: usize = 4;
const WINDOW: Duration = Duration::from_millis(1500);
/// With Redis, at least this share of the in-memory throughput, and a p99 under this.
pub const THROUGHPUT_TARGET: f64 = 0.5;
pub const P99_TARGET_MS: f64 = 5.0;

/// In memory vs with Redis: (throughput, p99 ms) each, medians of the rounds.
pub struct SharedCost {
    pub memory: (f64, f64),
    pub redis: (f64, f64),
}

impl SharedCost {
    pub fn throughput_ratio(&self) -> f64 {
        self.redis.0 / self.memory.0
    }
}

/// A `redis-server` on a free loopback port, in memory only; killed on drop.
pub struct RedisServer {
    child: Child,
    pub url: String,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("redis-server is not installed ({e}): run `make redis`"));
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return RedisServer {
                        child,
                        url: format!("redis://127.0.0.1:{port}"),
                    };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start on any of 5 free ports");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn cost(binary: &Path, target: Target, redis: &RedisServer) -> SharedCost {
    let with_redis = [&ONE_ADDRESS_MANY_CLIENTS[..], &["--redis-url", &redis.url]].concat();
    let mut servers = [
        Server::start(binary, target.transport(), &ONE_ADDRESS_MANY_CLIENTS).await,
        Server::start(binary, target.transport(), &with_redis).await,
    ];
    let mut clients = [
        Some(open(&mut servers[0], target, CONCURRENCY).await),
        Some(open(&mut servers[1], target, CONCURRENCY).await),
    ];
    let (mut throughput, mut p99) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for round in 0..ROUNDS {
        for i in [round % 2, 1 - round % 2] {
            let (summary, back) = run(clients[i].take().unwrap(), WINDOW).await;
            assert_eq!(
                summary.errors,
                0,
                "errors with{} Redis",
                if i == 1 { "" } else { "out" }
            );
            throughput[i].push(summary.throughput);
            p99[i].push(summary.p99_ms);
            clients[i] = Some(back);
        }
    }
    for client in clients {
        close(client.unwrap()).await;
    }
    for server in servers {
        server.stop();
    }
    let [t_memory, t_redis] = throughput;
    let [p_memory, p_redis] = p99;
    let cost = SharedCost {
        memory: (median(t_memory), median(p_memory)),
        redis: (median(t_redis), median(p_redis)),
    };
    eprintln!(
        "  {}: in memory {:.0} calls/s, p99 {:.2} ms; with Redis {:.0} calls/s, p99 {:.2} ms ({:.2}×)",
        target.label(),
        cost.memory.0,
        cost.memory.1,
        cost.redis.0,
        cost.redis.1,
        cost.throughput_ratio()
    );
    cost
}
