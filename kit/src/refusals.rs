//! Refusals and other lines a flood would repeat, logged so the flood cannot flood stderr: the
//! first few of each kind in a second are logged in full; the rest of that second are counted
//! and summed up in one line per kind. The HTTP edge keeps one summary (`edge_refusals`: 401,
//! 403, 408, 413, 429, 503, refused connections, accepts that failed, say for want of a file
//! descriptor; the first of each kind in full); the server
//! another (`request_refusals`: calls the guard refused, requests a client got wrong, state it
//! could not reach; the first 10 of each kind in full, so a model's few mistakes all show).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

const WINDOW: Duration = Duration::from_secs(1);

pub struct Refusals {
    /// The summary line's event.
    event: &'static str,
    /// Where the refusals happen, for the summary line's message.
    place: &'static str,
    /// Whether each refusal counts in the HTTP edge's refusal metric.
    edge: bool,
    /// Refusals of a kind logged in full in a window.
    in_full: u64,
    /// Refusals of each kind in the current window.
    counts: Mutex<HashMap<&'static str, u64>>,
}

impl Refusals {
    /// The HTTP edge's summary; the once-a-second summary stops when the last handle is dropped.
    pub fn start() -> Arc<Self> {
        Self::start_as("edge_refusals", "at the HTTP edge", true, 1)
    }

    /// The server's own summary, for every transport: one per process.
    pub fn server() -> &'static Arc<Self> {
        static SERVER: OnceLock<Arc<Refusals>> = OnceLock::new();
        SERVER.get_or_init(|| Self::start_as("request_refusals", "by the server", false, 10))
    }

    fn start_as(event: &'static str, place: &'static str, edge: bool, in_full: u64) -> Arc<Self> {
        let refusals = Arc::new(Self {
            event,
            place,
            edge,
            in_full,
            counts: Mutex::default(),
        });
        crate::periodic::every(WINDOW, &refusals, Self::summarise);
        refusals
    }

    /// Counts a refusal of kind `reason`; runs `log` (the full line) only for the first few of
    /// its kind in the window.
    pub fn record(&self, reason: &'static str, log: impl FnOnce()) {
        if self.edge
            && let Some(metrics) = crate::metrics::get()
        {
            metrics.refusal(reason);
        }
        let in_full = {
            let mut counts = self.counts.lock().expect("refusal counts");
            let count = counts.entry(reason).or_default();
            *count += 1;
            *count <= self.in_full
        };
        if in_full {
            log();
        }
    }

    /// Logs the window's counts past those logged in full, and starts a new window. Also at
    /// exit, so no refusal goes uncounted.
    pub fn summarise(&self) {
        let counts = std::mem::take(&mut *self.counts.lock().expect("refusal counts"));
        let (event, place, in_full) = (self.event, self.place, self.in_full);
        for (reason, count) in counts {
            if count > in_full {
                tracing::warn!(
                    event,
                    reason,
                    count,
                    not_logged = count - in_full,
                    window_ms = WINDOW.as_millis() as u64,
                    "{count} requests refused {place} ({reason}) in the last second; only the first {in_full} were logged"
                );
            }
        }
    }
}
