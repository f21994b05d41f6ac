//! This server beside its baselines (`baselines/`): the bare rmcp server and the axum floor,
//! each started once per target, loaded in alternating rounds at the same concurrency, each
//! round giving every server the same window in a rotating order, so a drift in the machine's
//! load weighs on all three alike. Per server: throughput and latency, server CPU time per
//! call, and allocations per call; the median of the rounds.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    load::{Client, Target, close, open, run},
    server::{ONE_ADDRESS_MANY_CLIENTS, Server, Transport, cpu_seconds},
    stats::median,
    verdict,
};

pub const ROUNDS: usize = 3;
pub const CONCURRENCY: usize = 16;
pub const WINDOW: Duration = Duration::from_millis(1500);

/// The servers compared, in the order of their columns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    Ours,
    BareRmcp,
    Floor,
}

impl Contender {
    pub const ALL: [Contender; 3] = [Contender::Ours, Contender::BareRmcp, Contender::Floor];

    pub fn label(self) -> &'static str {
        match self {
            Contender::Ours => "this server",
            Contender::BareRmcp => "bare rmcp",
            Contender::Floor => "axum floor",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Contender::Ours => "ours",
            Contender::BareRmcp => "bare-rmcp",
            Contender::Floor => "axum-floor",
        }
    }
}

/// The three programs: the server's bench build and the baselines built beside loadgen.
pub struct Binaries {
    pub ours: PathBuf,
    pub bare_rmcp: PathBuf,
    pub floor: PathBuf,
}

impl Binaries {
    /// The baselines are looked for beside this executable, where `cargo build` puts them.
    pub fn beside_loadgen(ours: &Path) -> Binaries {
        let dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .unwrap_or_default();
        let binaries = Binaries {
            ours: ours.to_path_buf(),
            bare_rmcp: dir.join("bare-rmcp"),
            floor: dir.join("axum-floor"),
        };
        for baseline in [&binaries.bare_rmcp, &binaries.floor] {
            assert!(
                baseline.exists(),
                "{} is missing: build loadgen's workspace (cargo build --release --manifest-path loadgen/Cargo.toml)",
                baseline.display()
            );
        }
        binaries
    }

    /// Starts one of them; this server with the settings of the rest of the bench.
    pub async fn start(&self, contender: Contender, transport: Transport) -> Server {
        match contender {
            Contender::Ours => Server::start(&self.ours, transport, &ONE_ADDRESS_MANY_CLIENTS).await,
            Contender::BareRmcp => Server::start_baseline(&self.bare_rmcp, transport).await,
            Contender::Floor => Server::start_baseline(&self.floor, transport).await,
        }
    }
}

/// One server's figures for one target: medians of the rounds (errors: their sum).
pub struct Figures {
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_us: f64,
    /// NaN when the server did not say (not a bench build).
    pub allocations: f64,
    pub errors: u64,
    /// How busy the server was, in percent of one core: below 100, something else had the
    /// core for the rest of the window (on a shared machine), or the server waited.
    pub server_busy: f64,
    /// How busy the load generator was, in percent of one core: near 100, the throughput is
    /// the generator's limit rather than the server's.
    pub loadgen_busy: f64,
}

impl Figures {
    /// Calls one core of server CPU answers in a second: 10⁶ ÷ CPU µs per call. What the
    /// throughput would be with the server alone on its core and never waiting; on a shared
    /// machine, the steadier measure.
    pub fn per_core(&self) -> f64 {
        1e6 / self.cpu_us
    }
}

pub struct Comparison {
    pub target: Target,
    /// In the order of [`Contender::ALL`].
    pub figures: [Figures; 3],
}

impl Comparison {
    pub fn of(&self, contender: Contender) -> &Figures {
        &self.figures[contender as usize]
    }
}

/// One server's figures, a value per round.
#[derive(Default)]
struct Rounds {
    throughput: Vec<f64>,
    p50_ms: Vec<f64>,
    p99_ms: Vec<f64>,
    cpu_us: Vec<f64>,
    allocations: Vec<f64>,
    errors: u64,
    server_busy: Vec<f64>,
    loadgen_busy: Vec<f64>,
}

pub async fn compare(binaries: &Binaries, target: Target) -> Comparison {
    let mut servers = Vec::new();
    let mut clients: Vec<Option<Vec<Client>>> = Vec::new();
    for contender in Contender::ALL {
        let mut server = binaries.start(contender, target.transport()).await;
        clients.push(Some(open(&mut server, target, CONCURRENCY).await));
        servers.push(server);
    }
    let mut rounds: [Rounds; 3] = Default::default();
    for round in 0..ROUNDS {
        // Ours, bare, floor; then bare, floor, ours; then floor, ours, bare.
        for i in (0..Contender::ALL.len()).map(|k| (k + round) % Contender::ALL.len()) {
            let server = &mut servers[i];
            let allocations_before = server.allocations().await;
            let (cpu_before, own_before) = (server.cpu_seconds(), cpu_seconds("self"));
            let began = Instant::now();
            let (summary, back) = run(clients[i].take().expect("the clients"), WINDOW).await;
            let (cpu_after, own_after) = (server.cpu_seconds(), cpu_seconds("self"));
            let elapsed = began.elapsed().as_secs_f64();
            let allocations_after = server.allocations().await;
            clients[i] = Some(back);
            let calls = summary.all as f64;
            let r = &mut rounds[i];
            r.throughput.push(summary.throughput);
            r.p50_ms.push(summary.p50_ms);
            r.p99_ms.push(summary.p99_ms);
            r.cpu_us.push((cpu_after - cpu_before) * 1e6 / calls);
            r.allocations.push(match (allocations_before, allocations_after) {
                (Some(before), Some(after)) => after.saturating_sub(before) as f64 / calls,
                _ => f64::NAN,
            });
            r.errors += summary.errors;
            r.server_busy.push((cpu_after - cpu_before) / elapsed * 100.0);
            r.loadgen_busy.push((own_after - own_before) / elapsed * 100.0);
        }
    }
    for (server, clients) in servers.into_iter().zip(clients) {
        close(clients.expect("the clients")).await;
        server.stop();
    }
    let figures = rounds.map(|r| Figures {
        throughput: median(r.throughput),
        p50_ms: median(r.p50_ms),
        p99_ms: median(r.p99_ms),
        cpu_us: median(r.cpu_us),
        allocations: median(r.allocations),
        errors: r.errors,
        server_busy: median(r.server_busy),
        loadgen_busy: median(r.loadgen_busy),
    });
    let comparison = Comparison { target, figures };
    for contender in Contender::ALL {
        let f = comparison.of(contender);
        eprintln!(
            "  {:<28} {:<12} {:>8.0} calls/s, p50 {:.2} ms, p99 {:.2} ms, {:.1} µs CPU and {:.0} allocations per call, {} errors; server {:.0} % busy, load generator {:.0} %",
            target.label(),
            contender.label(),
            f.throughput,
            f.p50_ms,
            f.p99_ms,
            f.cpu_us,
            f.allocations,
            f.errors,
            f.server_busy,
            f.loadgen_busy
        );
    }
    comparison
}

/// The table of each server's figures and the table of this server's over each baseline's,
/// adding every figure to the CSV through `row`.
pub fn tables(comparisons: &[Comparison], row: &mut impl FnMut(&str, &str, &str, f64, &str)) -> (String, String) {
    let c = CONCURRENCY.to_string();
    let mut figures = String::from(
        "| transport | server | calls/s | calls/s per core | p50 ms | p99 ms | CPU µs per call | allocations per call | errors | server busy | load generator busy |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut ratios = String::from(
        "| transport | this server ÷ | calls/s per core | calls/s | CPU µs per call | allocations per call | target | |\n\
         |---|---|---:|---:|---:|---:|---|---|\n",
    );
    for comparison in comparisons {
        let (label, key) = (comparison.target.label(), comparison.target.key());
        for contender in Contender::ALL {
            let f = comparison.of(contender);
            let _ = writeln!(
                figures,
                "| {label} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} | {:.0} | {} | {:.0} % | {:.0} % |",
                contender.label(),
                f.throughput,
                f.per_core(),
                f.p50_ms,
                f.p99_ms,
                f.cpu_us,
                f.allocations,
                f.errors,
                f.server_busy,
                f.loadgen_busy
            );
            let name = |measure: &str| format!("{}_{measure}", contender.key());
            row(&name("throughput"), key, &c, f.throughput, "calls/s");
            row(&name("throughput_per_core"), key, &c, f.per_core(), "calls/s");
            row(&name("p50"), key, &c, f.p50_ms, "ms");
            row(&name("p99"), key, &c, f.p99_ms, "ms");
            row(&name("cpu_per_call"), key, &c, f.cpu_us, "us");
            row(&name("allocations_per_call"), key, &c, f.allocations, "allocations");
            row(&name("errors"), key, &c, f.errors as f64, "calls");
            row(&name("server_busy"), key, &c, f.server_busy, "%");
            row(&name("loadgen_busy"), key, &c, f.loadgen_busy, "%");
        }
        let ours = comparison.of(Contender::Ours);
        for baseline in [Contender::BareRmcp, Contender::Floor] {
            let b = comparison.of(baseline);
            let per_core = ours.per_core() / b.per_core();
            let measured = ours.throughput / b.throughput;
            let cpu = ours.cpu_us / b.cpu_us;
            let allocations = ours.allocations / b.allocations;
            let (target, met) = match baseline {
                Contender::BareRmcp => ("≥ 1.0 per core", verdict(per_core >= 1.0)),
                _ => ("", ""),
            };
            let _ = writeln!(
                ratios,
                "| {label} | {} | {per_core:.2} | {measured:.2} | {cpu:.2} | {allocations:.2} | {target} | {met} |",
                baseline.label()
            );
            let name = |measure: &str| format!("ratio_{}_{measure}", baseline.key());
            row(&name("throughput_per_core"), key, &c, per_core, "x");
            row(&name("throughput"), key, &c, measured, "x");
            row(&name("cpu_per_call"), key, &c, cpu, "x");
            row(&name("allocations_per_call"), key, &c, allocations, "x");
        }
    }
    (figures, ratios)
}
