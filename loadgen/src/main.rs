//! `make bench`: drives the release server on loopback and reports, for `tools/call` on the
//! cheap `convert_temperature`, throughput and latency over HTTP (both protocol generations)
//! and stdio at several concurrency levels; what the guard chain costs; the server beside its
//! baselines (a bare rmcp server and a raw axum floor, `baselines/`): throughput, latency,
//! CPU time and allocations per call, and their ratios; time from process start to first
//! answer, the baselines' too; what sharing state on Redis costs (`shared.rs`); idle and loaded
//! memory; and the binary's size. Prints Markdown
//! tables, writes the same numbers to a CSV and draws the concurrency sweep as a PNG.
//!
//! Usage: loadgen <server binary> <out dir>, where the server is the release build with the
//! `bench` feature: the production build plus a hidden `--bench-guard-off`, which only the guard
//! comparison passes, and an allocation counter read with SIGUSR1. The baselines are built
//! beside loadgen, in its workspace.
//!
//! The load generator runs on one thread. With two cores or more it is pinned to one and every
//! server to another (`pin.rs`); with one, they share it.
//!
//! `loadgen abuse <release binary>` runs `make abuse` instead (see `abuse.rs`).

mod abuse;
mod abuse_admitted;
mod abuse_health;
// weather-example:begin
mod abuse_tasks;
// weather-example:end
mod bitmap_text;
mod collector;
mod compare;
mod http;
mod load;
mod otel_floor;
mod pin;
mod plot;
mod server;
mod shared;
mod stats;
mod stdio;

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use compare::{Binaries, Contender};
use load::{Client, Target, close, open, run};
use server::{ONE_ADDRESS_MANY_CLIENTS, Server, Transport};
use stats::{Summary, median};

const CONCURRENCY: [usize; 4] = [1, 16, 64, 256];
const WINDOW: Duration = Duration::from_secs(2);
/// The guard comparison: calls in flight, rounds of on/off, and the window of each.
const GUARD_CONCURRENCY: usize = 16;
const GUARD_ROUNDS: usize = 8;
const GUARD_WINDOW: Duration = Duration::from_millis(1500);
const STARTS: usize = 30;
/// First answer: this server's start may take at most this many times the floor's.
const START_RATIO_TARGET: f64 = 1.5;

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

    /// Both shares, and the figures they come from, for the summary table.
    fn describe(&self) -> String {
        format!(
            "{:.1} % of server CPU per call ({:.1} vs {:.1} µs); {:.1} % of throughput ({:.0} vs {:.0} calls/s)",
            self.cpu_share(),
            self.cpu_us.0,
            self.cpu_us.1,
            self.throughput_share(),
            self.throughput.0,
            self.throughput.1
        )
    }
}

async fn guard_cost(binary: &Path, target: Target) -> GuardCost {
    let with = Server::start(binary, target.transport(), &ONE_ADDRESS_MANY_CLIENTS).await;
    let without = Server::start(
        binary,
        target.transport(),
        &[&ONE_ADDRESS_MANY_CLIENTS[..], &["--bench-guard-off"]].concat(),
    )
    .await;
    paired_cost("guard chain", target, [with, without]).await
}

/// What exporting telemetry costs: the server exporting every request's span (and its upstream
/// spans, none here) and its metrics over OTLP to a local sink, against the same build with
/// nothing configured.
async fn telemetry_cost(binary: &Path, target: Target, sink: &collector::Sink) -> GuardCost {
    let endpoint = sink.endpoint();
    let with = Server::start_with(
        binary,
        target.transport(),
        &ONE_ADDRESS_MANY_CLIENTS,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "bench"),
        ],
    )
    .await;
    let without = Server::start(binary, target.transport(), &ONE_ADDRESS_MANY_CLIENTS).await;
    paired_cost("traces and metrics exported", target, [with, without]).await
}

/// Two servers, one with something and one without, loaded in alternating rounds.
async fn paired_cost(what: &str, target: Target, mut servers: [Server; 2]) -> GuardCost {
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
        "  {what}, {}: {:.1} vs {:.1} µs of server CPU per call ({:.1} %); {:.0} vs {:.0} calls/s ({:.1} %)",
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

/// Milliseconds from spawning each contender's process to the answer of its first call (median,
/// max), in the order of [`Contender::ALL`]. The contenders start in turn, one start each per
/// round, so a drift in the machine's load weighs on all of them alike.
async fn first_answers(binaries: &Binaries, transport: Transport) -> Vec<(f64, f64)> {
    let mut times = vec![Vec::new(); Contender::ALL.len()];
    for _ in 0..STARTS {
        for (contender, times) in Contender::ALL.into_iter().zip(&mut times) {
            let began = Instant::now();
            let mut server = binaries.start(contender, transport).await;
            let answered = match transport {
                Transport::Http => http::first_answer(server.addr.unwrap()).await,
                Transport::Stdio => {
                    let (stdin, stdout) = server.pipes.take().unwrap();
                    stdio::first_answer(stdin, stdout).await
                }
            };
            let elapsed = began.elapsed().as_secs_f64() * 1e3;
            assert!(answered, "{}: the first call is answered", contender.label());
            times.push(elapsed);
            server.stop();
        }
    }
    times
        .into_iter()
        .map(|times| {
            let max = times.iter().copied().fold(0.0, f64::max);
            (median(times), max)
        })
        .collect()
}

/// The CPU's model name, from /proc/cpuinfo.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
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
    // `loadgen compare <binary> [target]`: only the comparison with the baselines, for a
    // quick answer while working on speed (targets: http-2026-07-28, http-2025-11-25, stdio-2025-11-25).
    if let [command, binary, only @ ..] = &args[..]
        && command.as_os_str() == "compare"
    {
        let binaries = Binaries::beside_loadgen(binary);
        let _ = pin::split();
        let targets = [Target::HttpStateless, Target::HttpSession, Target::Stdio];
        let mut comparisons = Vec::new();
        for target in targets
            .into_iter()
            .filter(|t| only.is_empty() || only.iter().any(|o| o.as_os_str() == t.key()))
        {
            comparisons.push(compare::compare(&binaries, target).await);
        }
        let (baselines, ratios) = compare::tables(&comparisons, &mut |_, _, _, _, _| {});
        println!("{baselines}\n{ratios}");
        return;
    }
    // `loadgen guard <binary>`: only what the guard chain costs.
    if let [command, binary] = &args[..]
        && command.as_os_str() == "guard"
    {
        let _ = pin::split();
        for target in [Target::HttpStateless, Target::Stdio] {
            guard_cost(binary, target).await;
        }
        return;
    }
    // `loadgen traces <binary>`: only what exporting traces costs, and the SDK's own floor.
    if let [command, binary] = &args[..]
        && command.as_os_str() == "traces"
    {
        let _ = pin::split();
        let sink = collector::Sink::start().await;
        for target in [Target::HttpStateless, Target::Stdio] {
            telemetry_cost(binary, target, &sink).await;
        }
        eprintln!("{} exports received", sink.exports());
        eprintln!(
            "OpenTelemetry's SDK alone: {:.2} µs of CPU per span",
            otel_floor::cpu_us_per_span()
        );
        return;
    }
    let [binary, out] = &args[..] else {
        eprintln!(
            "usage: loadgen <release binary with the bench feature> <out dir>\n       loadgen compare <that binary> [target ...]\n       loadgen abuse <release binary>"
        );
        std::process::exit(2);
    };
    let began = Instant::now();
    let binaries = Binaries::beside_loadgen(binary);
    // Counted before pinning, which leaves this process one core.
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let machine = match pin::split() {
        Some(pin::Cores { load, server }) => format!(
            "{cores} cores ({}); load generator (one thread) pinned to CPU {load}, each server to CPU {server}",
            cpu_model()
        ),
        None => format!(
            "{cores} core ({}); load generator (one thread) and server share it",
            cpu_model()
        ),
    };
    eprintln!("{machine}");
    let mut csv = String::from("metric,target,concurrency,value,unit\n");
    let mut row = |metric: &str, target: &str, concurrency: &str, value: f64, unit: &str| {
        let _ = writeln!(csv, "{metric},{target},{concurrency},{value:.3},{unit}");
    };

    eprintln!(
        "throughput and latency (each {WINDOW:?} after {:?} of warm-up):",
        load::WARMUP
    );
    let mut results = Vec::new();
    for target in [Target::HttpStateless, Target::HttpSession, Target::Stdio] {
        results.push(measure(binary, target).await);
    }
    eprintln!("guard chain ({GUARD_ROUNDS} rounds of {GUARD_WINDOW:?} each way, {GUARD_CONCURRENCY} in flight):");
    let guard_http = guard_cost(binary, Target::HttpStateless).await;
    let guard_stdio = guard_cost(binary, Target::Stdio).await;
    eprintln!(
        "traces and metrics exported over OTLP to a local sink ({GUARD_ROUNDS} rounds of {GUARD_WINDOW:?} each way, {GUARD_CONCURRENCY} in flight):"
    );
    let sink = collector::Sink::start().await;
    let traces_http = telemetry_cost(binary, Target::HttpStateless, &sink).await;
    let traces_stdio = telemetry_cost(binary, Target::Stdio, &sink).await;
    let exported = sink.exports();
    let sdk_floor = otel_floor::cpu_us_per_span();
    eprintln!(
        "  OpenTelemetry's SDK alone, making, batching and encoding a span like the stdio one: {sdk_floor:.2} µs of CPU per span ({:.1} % of a stdio call without telemetry)",
        sdk_floor / traces_stdio.cpu_us.1 * 100.0
    );
    eprintln!("shared state on Redis ({} in flight):", shared::CONCURRENCY);
    let redis = shared::RedisServer::start();
    let mut shared_costs = Vec::new();
    for target in [Target::HttpStateless, Target::HttpSession] {
        shared_costs.push((target, shared::cost(binary, target, &redis).await));
    }
    drop(redis);
    eprintln!(
        "beside the baselines ({} rounds of {:?} each, {} in flight):",
        compare::ROUNDS,
        compare::WINDOW,
        compare::CONCURRENCY
    );
    let mut comparisons = Vec::new();
    for target in [Target::HttpStateless, Target::HttpSession, Target::Stdio] {
        comparisons.push(compare::compare(&binaries, target).await);
    }
    eprintln!("first answer after start ({STARTS} starts each, the contenders in turn):");
    let mut starts = Vec::new();
    for transport in [Transport::Stdio, Transport::Http] {
        let answers = first_answers(&binaries, transport).await;
        for (contender, answer) in Contender::ALL.into_iter().zip(answers) {
            starts.push((transport, contender, answer));
        }
    }
    let start_of = |transport: Transport, contender: Contender| {
        starts
            .iter()
            .find(|(t, c, _)| *t == transport && *c == contender)
            .map_or((f64::NAN, f64::NAN), |s| s.2)
    };
    let mib = |path: &Path| std::fs::metadata(path).map_or(f64::NAN, |m| m.len() as f64 / 1048576.0);
    let size_mib = mib(binary);
    // The production build beside it (target/release/, which `make bench` builds too).
    let release_mib = binary
        .parent()
        .and_then(Path::parent)
        .zip(binary.file_name())
        .map_or(f64::NAN, |(target, name)| mib(&target.join("release").join(name)));

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

    let (baselines, ratios) = compare::tables(&comparisons, &mut row);
    for (transport, contender, (median, max)) in &starts {
        let key = match transport {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        };
        let prefix = match contender {
            Contender::Ours => String::new(),
            other => format!("{}_", other.key()),
        };
        row(&format!("{prefix}first_answer_median"), key, "", *median, "ms");
        row(&format!("{prefix}first_answer_max"), key, "", *max, "ms");
    }
    row("binary_size", "", "", size_mib, "MiB");
    row("release_binary_size", "", "", release_mib, "MiB");

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
            cost.describe(),
            "< 10 %",
            Some(cost.cpu_share() < 10.0),
        );
    }
    for (target, cost) in [(Target::HttpStateless, &traces_http), (Target::Stdio, &traces_stdio)] {
        row("traces_on_cpu_per_call", target.key(), &gc, cost.cpu_us.0, "us");
        row("traces_off_cpu_per_call", target.key(), &gc, cost.cpu_us.1, "us");
        row("traces_cost_cpu", target.key(), &gc, cost.cpu_share(), "%");
        line(
            format!(
                "traces and metrics exported (OTLP to a local sink), {}, {GUARD_CONCURRENCY} in flight",
                target.label()
            ),
            format!("{}; {exported} exports received", cost.describe()),
            "< 10 %",
            Some(cost.cpu_share() < 10.0 && exported > 0),
        );
    }
    row("otel_sdk_cpu_per_span", "none", "1", sdk_floor, "us");
    line(
        "OpenTelemetry's SDK alone: one span like this server's stdio `tools/call` span made, batched and encoded for OTLP (no server, no send)".into(),
        format!(
            "{sdk_floor:.2} µs of CPU per span: {:.1} % of a stdio call without telemetry ({:.1} µs), {:.1} % of an HTTP 2026-07-28 one ({:.1} µs)",
            sdk_floor / traces_stdio.cpu_us.1 * 100.0,
            traces_stdio.cpu_us.1,
            sdk_floor / traces_http.cpu_us.1 * 100.0,
            traces_http.cpu_us.1
        ),
        "",
        None,
    );
    let sc = shared::CONCURRENCY.to_string();
    for (target, cost) in &shared_costs {
        row("memory_throughput", target.key(), &sc, cost.memory.0, "calls/s");
        row("memory_p99", target.key(), &sc, cost.memory.1, "ms");
        row("redis_throughput", target.key(), &sc, cost.redis.0, "calls/s");
        row("redis_p99", target.key(), &sc, cost.redis.1, "ms");
        line(
            format!("with Redis ÷ in memory, {}, {sc} in flight", target.label()),
            format!(
                "{:.2} ({:.0} vs {:.0} calls/s); p99 {:.2} ms (in memory {:.2})",
                cost.throughput_ratio(),
                cost.redis.0,
                cost.memory.0,
                cost.redis.1,
                cost.memory.1
            ),
            &format!("≥ {}, p99 < {} ms", shared::THROUGHPUT_TARGET, shared::P99_TARGET_MS),
            Some(cost.throughput_ratio() >= shared::THROUGHPUT_TARGET && cost.redis.1 < shared::P99_TARGET_MS),
        );
    }
    for (transport, name) in [(Transport::Stdio, "stdio"), (Transport::Http, "HTTP")] {
        let (ours, ours_max) = start_of(transport, Contender::Ours);
        line(
            format!("first answer after start, {name} ({STARTS} starts, in turn with the baselines)"),
            format!("{ours:.1} ms median, {ours_max:.1} ms max"),
            "< 50 ms",
            Some(ours < 50.0),
        );
        let (bare, floor) = (
            start_of(transport, Contender::BareRmcp).0,
            start_of(transport, Contender::Floor).0,
        );
        line(
            format!("first answer after start, {name}: this server ÷ floor"),
            format!(
                "{:.2} ({ours:.1} vs {floor:.1} ms median; bare rmcp {bare:.1} ms)",
                ours / floor
            ),
            &format!("≤ {START_RATIO_TARGET}"),
            Some(ours / floor <= START_RATIO_TARGET),
        );
    }
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
    line(
        "release binary size (the production build, no features)".into(),
        format!("{release_mib:.1} MiB"),
        "< 12.6 MiB",
        Some(release_mib < 12.6),
    );
    line(
        "the measured build's size (with the `bench` and `otel` features)".into(),
        format!("{size_mib:.1} MiB"),
        "",
        None,
    );

    let tables = format!("{table}\n{baselines}\n{ratios}\n{summary}");
    println!("\n{tables}");
    println!("{machine}; {:.0} s in all.", began.elapsed().as_secs_f64());
    std::fs::create_dir_all(out).expect("creating the output directory");
    let path = out.join("results.csv");
    std::fs::write(&path, csv).expect("writing the CSV");
    std::fs::write(out.join("results.md"), format!("{tables}\n{machine}.\n")).expect("writing the tables");
    let lines: Vec<plot::Line> = results
        .iter()
        .map(|r| plot::Line {
            label: r.target.label().into(),
            points: r.runs.iter().map(|(c, s)| (*c, s.throughput, s.p99_ms)).collect(),
        })
        .collect();
    let png = out.join("sweep.png");
    let name = binary.file_name().map_or("server".into(), |n| n.to_string_lossy());
    let title = format!("{name}: tools/call convert_temperature");
    match plot::write(&png, &title, &lines) {
        Ok(()) => println!("wrote {}, {}", path.display(), png.display()),
        Err(e) => eprintln!("no plot: {e}"),
    }
}
