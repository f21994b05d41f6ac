//! Refusals and other lines a flood would repeat, logged so the flood cannot flood stderr: the
//! first of each kind in a second is logged in full; the rest of that second are counted and
//! summed up in one line per kind. The HTTP edge keeps one summary (`edge_refusals`: 401, 403,
//! 408, 413, 429, 503, refused connections); the server another (`request_refusals`: calls
//! the guard refused, requests a client got wrong, state it could not reach).

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
    /// Refusals of each kind in the current window.
    counts: Mutex<HashMap<&'static str, u64>>,
}

impl Refusals {
    /// The HTTP edge's summary; the once-a-second summary stops when the last handle is dropped.
    pub fn start() -> Arc<Self> {
        Self::start_as("edge_refusals", "at the HTTP edge", true)
    }

    /// The server's own summary, for every transport: one per process.
    pub fn server() -> &'static Arc<Self> {
        static SERVER: OnceLock<Arc<Refusals>> = OnceLock::new();
        SERVER.get_or_init(|| Self::start_as("request_refusals", "by the server", false))
    }

    fn start_as(event: &'static str, place: &'static str, edge: bool) -> Arc<Self> {
        let refusals = Arc::new(Self {
            event,
            place,
            edge,
            counts: Mutex::default(),
        });
        crate::periodic::every(WINDOW, &refusals, Self::summarise);
        refusals
    }

    /// Counts a refusal of kind `reason`; runs `log` (the full line) only for the first of
    /// its kind in the window.
    pub fn record(&self, reason: &'static str, log: impl FnOnce()) {
        if self.edge
            && let Some(metrics) = crate::metrics::get()
        {
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
        let (event, place) = (self.event, self.place);
        for (reason, count) in counts {
            if count > 1 {
                tracing::warn!(
                    event,
                    reason,
                    count,
                    not_logged = count - 1,
                    window_ms = WINDOW.as_millis() as u64,
                    "{count} requests refused {place} ({reason}) in the last second; only the first was logged"
                );
            }
        }
    }
}
