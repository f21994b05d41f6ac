use std::process::ExitCode;

#[cfg(not(feature = "bench"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `make bench`: the same allocator, its allocations counted (see `bench.rs`).
#[cfg(feature = "bench")]
#[global_allocator]
static ALLOCATOR: mcp_starter::bench::Counting<tikv_jemallocator::Jemalloc> =
    mcp_starter::bench::Counting(tikv_jemallocator::Jemalloc);

/// jemalloc's settings, read at its start: a background thread gives freed pages back to the
/// system about a second after they are freed, so memory comes back after a burst.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: Conf = Conf(c"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

#[repr(transparent)]
pub struct Conf(*const std::ffi::c_char);
// SAFETY: a pointer to a static, immutable C string.
unsafe impl Sync for Conf {}

use mcp_starter::{
    StartError,
    config::{CONFIG_ERROR_EXIT, Cli, Command, Transport},
    healthcheck, serve, telemetry,
};

fn main() -> ExitCode {
    let cli = Cli::parse_or_exit();
    // stdio serves one client over one pipe: a runtime on this thread alone starts in a quarter
    // of the time and hands no message from thread to thread. HTTP serves many, on every core.
    let stdio = matches!(&cli.command, Command::Serve(config) if config.transport == Transport::Stdio);
    let mut runtime = if stdio {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = runtime.enable_all().build().expect("starting the tokio runtime");
    match cli.command {
        Command::Serve(config) => {
            // Inside the runtime: the trace exporter, when configured, sends on it.
            let logging = {
                let _runtime = runtime.enter();
                telemetry::init(&config.log)
            };
            if let Err(message) = logging {
                eprintln!("{message}");
                return ExitCode::from(CONFIG_ERROR_EXIT as u8);
            }
            #[cfg(feature = "bench")]
            if let Err(error) = runtime.block_on(async { mcp_starter::bench::report_allocations_on_sigusr1() }) {
                eprintln!("error: cannot count allocations: {error}");
                return ExitCode::FAILURE;
            }
            let code = match runtime.block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(StartError::Config(message)) => {
                    telemetry::flush();
                    eprintln!("{message}");
                    ExitCode::from(CONFIG_ERROR_EXIT as u8)
                }
                Err(StartError::Runtime(message)) => {
                    tracing::error!(event = "fatal", "{message}");
                    ExitCode::FAILURE
                }
            };
            // Spans still queued for the collector, then log lines still waiting for their batch.
            #[cfg(feature = "otel")]
            runtime.block_on(async { tokio::task::spawn_blocking(mcp_starter::otel::shutdown).await.ok() });
            telemetry::flush();
            code
        }
        Command::Healthcheck(config) => ExitCode::from(runtime.block_on(healthcheck::run(&config)) as u8),
    }
}
