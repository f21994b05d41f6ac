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
type Served = mcp_starter::app::App;
#[cfg(feature = "conformance")]
type Served = mcp_starter::conformance::Fixtures;

fn main() -> ExitCode {
    mcp_starter::run::<Served>()
}
