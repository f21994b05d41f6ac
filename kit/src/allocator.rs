//! jemalloc, the allocator the binary sets (`main.rs`): its background thread, which gives
//! freed memory back to the system, is started once serving.

/// Starts jemalloc's background thread, a second into serving (after the first answers).
pub async fn start_giving_memory_back() {
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
