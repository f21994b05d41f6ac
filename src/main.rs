//! The server: the app (`app.rs`, its tools, prompts, resources and settings) served by the
//! kit (`mcp_server_kit`, in `kit/`).

// The conformance build serves the suite's fixtures in place of this app.
#![cfg_attr(feature = "conformance", allow(dead_code))]

mod app;
mod prompts;
mod resources;
mod settings;
mod tools;
// weather-example:begin
mod weather;
// weather-example:end

use std::process::ExitCode;

#[cfg(not(feature = "bench"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `make bench`: the same allocator, its allocations counted (see `bench.rs`).
#[cfg(feature = "bench")]
#[global_allocator]
static ALLOCATOR: mcp_server_kit::bench::Counting<tikv_jemallocator::Jemalloc> =
    mcp_server_kit::bench::Counting(tikv_jemallocator::Jemalloc);

/// jemalloc's settings, read at its start: freed pages go back to the system about a second
/// after they are freed, so memory comes back after a burst. The background thread that gives
/// them back is started once serving: made at jemalloc's start, before `main`, it would delay
/// every start, `healthcheck` and `--version` included.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: Conf = Conf(c"background_thread:false,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr());

#[repr(transparent)]
pub struct Conf(*const std::ffi::c_char);
// SAFETY: a pointer to a static, immutable C string.
unsafe impl Sync for Conf {}

/// The app served: the conformance suite's fixtures in `make conformance`'s build.
#[cfg(not(feature = "conformance"))]
type Served = app::App;
#[cfg(feature = "conformance")]
type Served = mcp_server_kit::conformance::Fixtures;

fn main() -> ExitCode {
    mcp_server_kit::run::<Served>()
}
