//! `make bench`: drives the release server on loopback and reports, for `tools/call` on the
//! cheap `convert_temperature`, throughput and latency over HTTP (both protocol generations)
//! and stdio at several concurrency levels; what the guard chain costs; time from process
//! start to first answer; idle and loaded memory; and the binary's size. Prints Markdown
//! tables and writes the same numbers to a CSV.
//!
//! Usage: loadgen <server binary> <out dir>, where the server is the release build with the
//! `bench` feature: the production build plus a hidden `--bench-guard-off`, which only the guard
//! comparison passes.
//!
//! The load generator runs on one thread, beside the server, on the same machine.
//!
//! `loadgen abuse <release binary>` runs `make abuse` instead (see `abuse.rs`).

mod abuse;
mod http;
mod server;
mod stats;
mod stdio;

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use server::{ONE_ADDRESS_MANY_CLIENTS, Server, Transport};
use stats::{Samples, Summary, median};

const CONCURRENCY: [usize; 4] = [1, 16, 64, 256];
const WARMUP: Duration = Duration::from_millis(300);
const WINDOW: Duration = Duration::from_secs(2);
/// The guard comparison: calls in flight, rounds of on/off, and the window of each.
const GUARD_CONCURRENCY: usize = 16;
const GUARD_ROUNDS: usize = 4;
const GUARD_WINDOW: Duration = Duration::from_millis(1500);
const STARTS: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    HttpStateless,
    HttpSession,
    Stdio,
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Self::HttpStateless => "HTTP 2026-07-28 (stateless)",
            Self::HttpSession => "HTTP 2025-11-25 (sessions)",
            Self::Stdio => "stdio 2025-11-25",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::HttpStateless => "http-2026-07-28",
            Self::HttpSession => "http-2025-11-25",
            Self::Stdio => "stdio-2025-11-25",
        }
    }

    fn transport(self) -> Transport {
        match self {
            Self::Stdio => Transport::Stdio,
            _ => Transport::Http,
        }
    }
}

/// A simulated client, calling in a loop.
enum Client {
    Http(http::HttpClient),
    Stdio(stdio::StdioClient),
}

impl Client {
    async fn call(&mut self) -> bool {
        match self {
            Client::Http(client) => client.call().await,
            Client::Stdio(client) => client.call().await,
        }
    }

    async fn close(self) {
        if let Client::Http(client) = self {
            client.close().await;
        }
    }
}

/// As many clients as calls should be in flight. Over stdio they share the one session.
async fn open(server: &mut Server, target: Target, count: usize) -> Vec<Client> {
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

async fn close(clients: Vec<Client>) {
    for client in clients {
        client.close().await;
    }
}

/// Every client calls in a loop for the warm-up and then the window; calls that start within
/// the window are counted.
async fn run(clients: Vec<Client>, window: Duration) -> (Summary, Vec<Client>) {
    let start = Instant::now() + WARMUP;
    let end = start + window;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut samples = Samples::default();
                while Instant::now() < end {
                    let began = Instant::now();
                    let ok = client.call().await;
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

/// The load table for one target, on a fresh server: memory idle, then each concurrency.
struct TargetResult {
    target: Target,
    runs: Vec<(usize, Summary)>,
    idle_mib: f64,
    peak_mib: f64,
}

async fn measure(binary: &Path, target: Target) -> TargetResult {
    let mut server = Server::start(binary, target.transport(), &ONE_ADDRESS_MANY_CLIENTS).await;
    let mut runs = Vec::new();
    let mut idle_mib = f64::NAN;
    let mut stdio_session = None;
    for concurrency in CONCURRENCY {
        let clients = match &stdio_session {
            Some(Client::Stdio(client)) => (0..concurrency).map(|_| Client::Stdio(client.clone())).collect(),
            _ => open(&mut server, target, concurrency).await,
        };
        if idle_mib.is_nan() {
            // Idle: started, clients connected, nothing in flight.
            tokio::time::sleep(Duration::from_millis(200)).await;
            idle_mib = server.memory().0;
        }
        let (summary, mut clients) = run(clients, WINDOW).await;
        eprintln!(
            "  {:<28} {:>4} in flight: {:>8.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            target.label(),
            concurrency,
            summary.throughput,
            summary.p50_ms,
            summary.p99_ms,
            summary.errors
        );
        runs.push((concurrency, summary));
        if target == Target::Stdio {
            stdio_session = clients.pop();
        }
        close(clients).await;
    }
    let peak_mib = server.memory().1;
    server.stop();
    TargetResult {
        target,
        runs,
        idle_mib,
        peak_mib,
    }
}

/// The guard chain's cost, from two servers of the same binary, one with the chain and one
/// without, loaded in alternating rounds: the server CPU time each call takes, and the
/// throughput. CPU per call is the steadier measure on a shared machine; both are reported.
struct GuardCost {
    cpu_us: (f64, f64),
    throughput: (f64, f64),
}

impl GuardCost {
    /// The share of each call's CPU time the chain takes, in percent.
    fn cpu_share(&self) -> f64 {
        (1.0 - self.cpu_us.1 / self.cpu_us.0) * 100.0
    }

    /// The share of throughput the chain takes, in percent.
    fn throughput_share(&self) -> f64 {
        (1.0 - self.throughput.0 / self.throughput.1) * 100.0
    }
}

async fn guard_cost(binary: &Path, target: Target) -> GuardCost {
    let mut servers = [
        Server::start(binary, target.transport(), &ONE_ADDRESS_MANY_CLIENTS).await,
        Server::start(
            binary,
            target.transport(),
            &[&ONE_ADDRESS_MANY_CLIENTS[..], &["--bench-guard-off"]].concat(),
        )
        .await,
    ];
    let mut clients = [
        Some(open(&mut servers[0], target, GUARD_CONCURRENCY).await),
        Some(open(&mut servers[1], target, GUARD_CONCURRENCY).await),
    ];
    let (mut cpu, mut throughput) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for round in 0..GUARD_ROUNDS {
        // With, without, then without, with: a drift in the machine's load weighs on both alike.
        for i in [round % 2, 1 - round % 2] {
            let cpu_before = servers[i].cpu_seconds();
            let (summary, back) = run(clients[i].take().unwrap(), GUARD_WINDOW).await;
            let cpu_after = servers[i].cpu_seconds();
            cpu[i].push((cpu_after - cpu_before) * 1e6 / summary.all as f64);
            throughput[i].push(summary.throughput);
            clients[i] = Some(back);
        }
    }
    let [on, off] = servers;
    let [clients_on, clients_off] = clients;
    close(clients_on.unwrap()).await;
    close(clients_off.unwrap()).await;
    on.stop();
    off.stop();
    let [cpu_on, cpu_off] = cpu;
    let [throughput_on, throughput_off] = throughput;
    let cost = GuardCost {
        cpu_us: (median(cpu_on), median(cpu_off)),
        throughput: (median(throughput_on), median(throughput_off)),
    };
    eprintln!(
        "  guard chain, {}: {:.1} vs {:.1} µs of server CPU per call ({:.1} %); {:.0} vs {:.0} calls/s ({:.1} %)",
        target.label(),
        cost.cpu_us.0,
        cost.cpu_us.1,
        cost.cpu_share(),
        cost.throughput.0,
        cost.throughput.1,
        cost.throughput_share()
    );
    cost
}

/// Milliseconds from spawning the process to the answer of its first call (median, max).
async fn first_answer(binary: &Path, transport: Transport) -> (f64, f64) {
    let mut times = Vec::new();
    for _ in 0..STARTS {
        let began = Instant::now();
        let mut server = Server::start(binary, transport, &ONE_ADDRESS_MANY_CLIENTS).await;
        let answered = match transport {
            Transport::Http => http::first_answer(server.addr.unwrap()).await,
            Transport::Stdio => {
                let (stdin, stdout) = server.pipes.take().unwrap();
                stdio::first_answer(stdin, stdout).await
            }
        };
        let elapsed = began.elapsed().as_secs_f64() * 1e3;
        assert!(answered, "the first call is answered");
        times.push(elapsed);
        server.stop();
    }
    let max = times.iter().copied().fold(0.0, f64::max);
    (median(times), max)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "missed" }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if let [command, binary] = &args[..]
        && command.as_os_str() == "abuse"
    {
        std::process::exit(if abuse::run(binary).await { 0 } else { 1 });
    }
    let [binary, out] = &args[..] else {
        eprintln!(
            "usage: loadgen <release binary with the bench feature> <out dir>\n       loadgen abuse <release binary>"
        );
        std::process::exit(2);
    };
    let began = Instant::now();
    let mut csv = String::from("metric,target,concurrency,value,unit\n");
    let mut row = |metric: &str, target: &str, concurrency: &str, value: f64, unit: &str| {
        let _ = writeln!(csv, "{metric},{target},{concurrency},{value:.3},{unit}");
    };

    eprintln!("throughput and latency (each {WINDOW:?} after {WARMUP:?} of warm-up):");
    let mut results = Vec::new();
    for target in [Target::HttpStateless, Target::HttpSession, Target::Stdio] {
        results.push(measure(binary, target).await);
    }
    eprintln!("guard chain ({GUARD_ROUNDS} rounds of {GUARD_WINDOW:?} each way, {GUARD_CONCURRENCY} in flight):");
    let guard_http = guard_cost(binary, Target::HttpStateless).await;
    let guard_stdio = guard_cost(binary, Target::Stdio).await;
    eprintln!("first answer after start ({STARTS} starts each):");
    let start_stdio = first_answer(binary, Transport::Stdio).await;
    let start_http = first_answer(binary, Transport::Http).await;
    let size_mib = std::fs::metadata(binary).map_or(f64::NAN, |m| m.len() as f64 / 1048576.0);

    let mut table = String::from(
        "| transport | in flight | calls/s | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let mut errors_at_256 = 0;
    for result in &results {
        for (concurrency, s) in &result.runs {
            let _ = writeln!(
                table,
                "| {} | {concurrency} | {:.0} | {:.2} | {:.2} | {} |",
                result.target.label(),
                s.throughput,
                s.p50_ms,
                s.p99_ms,
                s.errors
            );
            let (key, c) = (result.target.key(), concurrency.to_string());
            row("throughput", key, &c, s.throughput, "calls/s");
            row("p50", key, &c, s.p50_ms, "ms");
            row("p99", key, &c, s.p99_ms, "ms");
            row("errors", key, &c, s.errors as f64, "calls");
            if *concurrency == 256 {
                errors_at_256 += s.errors;
            }
        }
        row("rss_idle", result.target.key(), "", result.idle_mib, "MiB");
        row("rss_peak", result.target.key(), "", result.peak_mib, "MiB");
    }
    let gc = GUARD_CONCURRENCY.to_string();
    for (target, cost) in [(Target::HttpStateless, &guard_http), (Target::Stdio, &guard_stdio)] {
        row("guard_on_cpu_per_call", target.key(), &gc, cost.cpu_us.0, "us");
        row("guard_off_cpu_per_call", target.key(), &gc, cost.cpu_us.1, "us");
        row("guard_cost_cpu", target.key(), &gc, cost.cpu_share(), "%");
        row("guard_on_throughput", target.key(), &gc, cost.throughput.0, "calls/s");
        row("guard_off_throughput", target.key(), &gc, cost.throughput.1, "calls/s");
        row("guard_cost_throughput", target.key(), &gc, cost.throughput_share(), "%");
    }
    row("first_answer_median", "stdio", "", start_stdio.0, "ms");
    row("first_answer_max", "stdio", "", start_stdio.1, "ms");
    row("first_answer_median", "http", "", start_http.0, "ms");
    row("first_answer_max", "http", "", start_http.1, "ms");
    row("binary_size", "", "", size_mib, "MiB");

    let idle = results.iter().map(|r| r.idle_mib).fold(0.0, f64::max);
    let memory = results
        .iter()
        .map(|r| format!("{} {:.1}", r.target.key(), r.peak_mib))
        .collect::<Vec<_>>()
        .join(", ");
    let mut summary = String::from("| measure | result | target | |\n|---|---|---|---|\n");
    let mut line = |measure: String, result: String, target: &str, met: Option<bool>| {
        let _ = writeln!(
            summary,
            "| {measure} | {result} | {target} | {} |",
            met.map_or("", verdict)
        );
    };
    for (target, cost) in [(Target::HttpStateless, &guard_http), (Target::Stdio, &guard_stdio)] {
        line(
            format!("guard chain cost, {}, {GUARD_CONCURRENCY} in flight", target.label()),
            format!(
                "{:.1} % of server CPU per call ({:.1} vs {:.1} µs); {:.1} % of throughput ({:.0} vs {:.0} calls/s)",
                cost.cpu_share(),
                cost.cpu_us.0,
                cost.cpu_us.1,
                cost.throughput_share(),
                cost.throughput.0,
                cost.throughput.1
            ),
            "< 10 %",
            Some(cost.cpu_share() < 10.0),
        );
    }
    line(
        "first answer after start, stdio".into(),
        format!("{:.1} ms median, {:.1} ms max", start_stdio.0, start_stdio.1),
        "< 50 ms",
        Some(start_stdio.0 < 50.0),
    );
    line(
        "first answer after start, HTTP".into(),
        format!("{:.1} ms median, {:.1} ms max", start_http.0, start_http.1),
        "< 50 ms",
        Some(start_http.0 < 50.0),
    );
    line(
        "idle RSS (largest of the three)".into(),
        format!("{idle:.1} MiB"),
        "< 20 MiB",
        Some(idle < 20.0),
    );
    line("peak RSS under load (MiB)".into(), memory, "", None);
    line(
        "errors at 256 calls in flight".into(),
        errors_at_256.to_string(),
        "0",
        Some(errors_at_256 == 0),
    );
    line("release binary size".into(), format!("{size_mib:.1} MiB"), "", None);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("\n{table}\n{summary}");
    println!(
        "{cores} cores, load generator and server on the same machine; {:.0} s in all.",
        began.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(out).expect("creating the output directory");
    let path = out.join("results.csv");
    std::fs::write(&path, csv).expect("writing the CSV");
    std::fs::write(out.join("results.md"), format!("{table}\n{summary}")).expect("writing the tables");
    println!("wrote {}", path.display());
}
