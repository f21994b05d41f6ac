//! Graceful shutdown as one coordinator, shared by both transports.
//!
//! A signal flips the phase to `Draining`: readiness answers 503 and new requests are
//! refused, while requests already running keep going. They get the drain timeout to finish;
//! whatever is still running then is cancelled (it answers with an error, so nothing is left
//! hanging) and the process exits 0. Tasks count as running work; while draining, clients may
//! still read and cancel their tasks (`tasks/*`), and a task ended by the drain stays readable
//! for a moment before the process exits.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// After the grace period, cancelled requests get this long to send their error answers.
const CANCEL_SETTLE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Starting = 0,
    Serving = 1,
    Draining = 2,
}

#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    phase: AtomicU8,
    in_flight: AtomicUsize,
    idle: Notify,
    /// Fires when the grace period is over: requests still running must stop.
    abort: CancellationToken,
    drain_timeout: Duration,
    /// How long to keep answering after the grace period, so pollers can read why their task
    /// ended (set by tasks the drain ended).
    linger_ms: AtomicU64,
}

/// Held by each request from its arrival until its answer has left (transports hold it);
/// dropping it marks the request finished.
pub struct InFlight {
    inner: Arc<Inner>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.inner.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

impl Shutdown {
    pub fn new(drain_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                phase: AtomicU8::new(Phase::Starting as u8),
                in_flight: AtomicUsize::new(0),
                idle: Notify::new(),
                abort: CancellationToken::new(),
                drain_timeout,
                linger_ms: AtomicU64::new(0),
            }),
        }
    }

    pub fn phase(&self) -> Phase {
        match self.inner.phase.load(Ordering::SeqCst) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            _ => Phase::Draining,
        }
    }

    /// Startup is done: readiness turns 200 (unless a drain already began).
    pub fn mark_serving(&self) {
        let _ = self.inner.phase.compare_exchange(
            Phase::Starting as u8,
            Phase::Serving as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    pub fn is_draining(&self) -> bool {
        self.phase() == Phase::Draining
    }

    /// Registers a new request, or refuses it (`None`) once draining has begun.
    pub fn track(&self) -> Option<InFlight> {
        // Count first, then check: a drain that starts in between sees this request.
        self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight {
            inner: self.inner.clone(),
        };
        (!self.is_draining()).then_some(guard)
    }

    /// Registers a request that is served even while draining: reading or cancelling a task,
    /// which a client needs most when the server is about to go.
    pub fn track_always(&self) -> InFlight {
        self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight {
            inner: self.inner.clone(),
        }
    }

    /// Keeps answering for `period` after the drain, before the process exits.
    pub fn linger(&self, period: Duration) {
        self.inner
            .linger_ms
            .fetch_max(period.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Resolves when the grace period has run out and running requests must stop.
    pub fn aborted(&self) -> WaitForCancellationFuture<'_> {
        self.inner.abort.cancelled()
    }

    /// Drains: refuse new requests, wait for running ones up to the drain timeout, then
    /// cancel the rest and give them a moment to answer. Logs the start and the end.
    pub async fn drain(&self, reason: &str) {
        self.inner.phase.store(Phase::Draining as u8, Ordering::SeqCst);
        let started = Instant::now();
        let in_flight = self.in_flight();
        tracing::info!(
            event = "drain_started",
            reason,
            in_flight,
            drain_timeout_ms = self.inner.drain_timeout.as_millis() as u64,
            "draining: refusing new requests, waiting for in-flight ones"
        );
        let finished = tokio::time::timeout(self.inner.drain_timeout, self.idle())
            .await
            .is_ok();
        let cancelled = if finished { 0 } else { self.in_flight() };
        if !finished {
            tracing::warn!(
                event = "drain_timeout",
                in_flight = cancelled,
                "drain timeout reached: cancelling in-flight requests"
            );
            self.inner.abort.cancel();
            let _ = tokio::time::timeout(CANCEL_SETTLE, self.idle()).await;
            let linger = Duration::from_millis(self.inner.linger_ms.load(Ordering::SeqCst));
            if !linger.is_zero() {
                tracing::info!(
                    event = "drain_linger",
                    linger_ms = linger.as_millis() as u64,
                    "keeping the ended tasks readable before exiting"
                );
                tokio::time::sleep(linger).await;
            }
        }
        tracing::info!(
            event = "drain_finished",
            in_flight = self.in_flight(),
            cancelled,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "drain finished"
        );
    }

    async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Installs the SIGTERM and SIGINT handlers at once (before serving starts, so no signal can
/// meet the default "end now") and returns what waits for one and names it.
pub fn signal() -> impl std::future::Future<Output = &'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_new_work_once_draining_and_waits_for_running_work() {
        let shutdown = Shutdown::new(Duration::from_secs(5));
        shutdown.mark_serving();
        let running = shutdown.track().expect("serving accepts work");
        let drain = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.drain("test").await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(shutdown.track().is_none(), "draining refuses new work");
        assert!(!drain.is_finished(), "drain waits for running work");
        drop(running);
        drain.await.unwrap();
        assert_eq!(shutdown.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn cancels_work_that_outlives_the_grace_period() {
        let shutdown = Shutdown::new(Duration::from_secs(1));
        let running = shutdown.track().unwrap();
        let worker = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                shutdown.aborted().await;
                drop(running);
            }
        });
        shutdown.drain("test").await;
        worker.await.unwrap();
        assert_eq!(shutdown.in_flight(), 0);
    }
}
