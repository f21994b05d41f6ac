//! Refusals at the HTTP edge (401, 403, 408, 413, 429, 503, refused connections, connections
//! the system would not let it accept, say out of file descriptors), logged so a flood cannot
//! flood stderr: the first refusal of each kind in a second is logged in full;
//! the rest of that second are counted and summed up in one `edge_refusals` line per kind.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

const WINDOW: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Refusals {
    /// Refusals of each kind in the current window.
    counts: Mutex<HashMap<&'static str, u64>>,
}

impl Refusals {
    /// Starts the once-a-second summary; it stops when the last handle is dropped.
    pub fn start() -> Arc<Self> {
        let refusals = Arc::new(Self::default());
        crate::periodic::every(WINDOW, &refusals, Self::summarise);
        refusals
    }

    /// Counts a refusal of kind `reason`; runs `log` (the full line) only for the first of
    /// its kind in the window.
    pub fn record(&self, reason: &'static str, log: impl FnOnce()) {
        if let Some(metrics) = crate::metrics::get() {
            metrics.refusal(reason);
        }
        let first = {
            let mut counts = self.counts.lock().expect("refusal counts");
            let count = counts.entry(reason).or_default();
            *count += 1;
            *count == 1
        };
        if first {
            log();
        }
    }

    fn summarise(&self) {
        let counts = std::mem::take(&mut *self.counts.lock().expect("refusal counts"));
        for (reason, count) in counts {
            if count > 1 {
                tracing::warn!(
                    event = "edge_refusals",
                    reason,
                    count,
                    not_logged = count - 1,
                    window_ms = WINDOW.as_millis() as u64,
                    "{count} requests refused at the HTTP edge ({reason}) in the last second; only the first was logged"
                );
            }
        }
    }
}
