use std::process::ExitCode;

#[cfg(not(feature = "bench"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `make bench`: the same allocator, its allocations counted (see `bench.rs`).
#[cfg(feature = "bench")]
#[global_allocator]
static ALLOCATOR: mcp_starter::bench::Counting<tikv_jemallocator::Jemalloc> =
    mcp_starter::bench::Counting(tikv_jemallocator::Jemalloc);

/// jemalloc's settings, read at its start: freed pages go back to the system about a second
/// after they are freed, so memory comes back after a burst. The background thread that gives
/// them back is started once serving ([`start_giving_memory_back`]): made at jemalloc's start,
/// before `main`, it would delay every start, `healthcheck` and `--version` included.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: Conf = Conf(c"background_thread:false,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

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
            runtime.spawn(start_giving_memory_back());
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

/// Starts jemalloc's background thread, a second into serving (after the first answers).
async fn start_giving_memory_back() {
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let mut on = true;
    // SAFETY: "background_thread" is a boolean jemalloc setting; a pointer to a bool and its
    // size are what it takes, and nothing is read back.
    let failed = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"background_thread".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            (&raw mut on).cast(),
            size_of::<bool>(),
        )
    };
    if failed != 0 {
        tracing::warn!(
            event = "allocator",
            code = failed,
            "jemalloc's background thread did not start: freed memory goes back to the system only as new allocations are made"
        );
    }
}
