//! `make bench` only (the `bench` feature): an allocator that counts allocations, so the bench
//! can report allocations per call, and the signal that reads the count.
//!
//! An allocation is a call to `alloc`, `alloc_zeroed` or `realloc`; each adds one to a single
//! process-wide atomic (a relaxed add, a few nanoseconds on the one core the bench gives the
//! server). On SIGUSR1 the process writes `bench_allocations <count>` as one line to stderr,
//! beside its logs; `loadgen` signals before and after each measured window and subtracts.
//! Production builds have neither: their allocator is jemalloc alone.

use std::{
    alloc::{GlobalAlloc, Layout},
    io::Write,
    sync::atomic::{AtomicU64, Ordering},
};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// Wraps an allocator, counting the allocations made through it.
pub struct Counting<A>(pub A);

// SAFETY: every call is passed unchanged to the wrapped allocator.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

/// Allocations made so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// From now on, answers SIGUSR1 with the count as one line on stderr. Call inside the runtime;
/// the handler is installed before this returns.
pub fn report_allocations_on_sigusr1() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut signals = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        while signals.recv().await.is_some() {
            let line = format!("bench_allocations {}\n", allocations());
            // One write of a short line: it never lands inside a log line.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    });
    Ok(())
}
