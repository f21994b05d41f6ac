//! Accepting connections with bounds a slow or silent client cannot get around: a cap on open
//! connections in all and per client address (past it, a new connection is closed at once, so
//! the listen queue never fills and other clients keep getting in), a time limit on request
//! headers (slowloris), and an idle limit on kept-alive connections between requests.
//!
//! A connection is never timed out while it has a request in flight: a tool's own timeout and
//! the body read timeout bound those, and an event stream is kept alive by rmcp's pings.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body, extract::ConnectInfo, http::Request};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

use super::drain::hold;
use crate::refusals::Refusals;

/// The connection bounds; settings MCP_MAX_CONNECTIONS, MCP_MAX_CONNECTIONS_PER_CLIENT,
/// MCP_HEADER_READ_TIMEOUT and MCP_IDLE_TIMEOUT.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_total: usize,
    pub max_per_client: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Accepts until `stop`, then asks every open connection to close once its answer is sent;
/// `tracker` is closed and tracks every connection task, so the caller can wait for them.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    refusals: Arc<Refusals>,
    stop: CancellationToken,
    tracker: TaskTracker,
) {
    let open = Arc::new(Open::default());
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning, and
                    // log it as a refusal, once a second in full, not at every retry.
                    refusals.record("accept_failed", || {
                        tracing::warn!(
                            event = "accept_failed",
                            %error,
                            "accepting a connection failed; retrying every 50 ms"
                        );
                    });
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let Some(place) = open.admit(peer.ip(), &limits) else {
            refusals.record("connection_limit", || {
                tracing::warn!(
                    event = "connection_refused",
                    client = %peer.ip(),
                    max = limits.max_total,
                    max_per_client = limits.max_per_client,
                    "open-connection limit reached; closing a new connection"
                );
            });
            drop(tcp);
            continue;
        };
        // Send each write at once: an answer streamed in small pieces (a session's event
        // stream) would otherwise wait on the client's delayed ACK, ~40 ms per call.
        let _ = tcp.set_nodelay(true);
        tracker.spawn(connection(tcp, peer, app.clone(), limits, stop.clone(), place));
    }
    tracker.close();
}

/// Open connections, in all and per address.
#[derive(Default)]
struct Open {
    per_client: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicUsize,
}

/// A connection's place under the caps, given back on drop.
struct Place {
    open: Arc<Open>,
    client: IpAddr,
}

impl Open {
    fn admit(self: &Arc<Self>, client: IpAddr, limits: &ConnectionLimits) -> Option<Place> {
        let mut per_client = self.per_client.lock().expect("connection counts");
        if self.total.load(Ordering::Relaxed) >= limits.max_total {
            return None;
        }
        let count = per_client.entry(client).or_default();
        if *count >= limits.max_per_client {
            return None;
        }
        *count += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(Place {
            open: self.clone(),
            client,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut per_client = self.open.per_client.lock().expect("connection counts");
        if let Some(count) = per_client.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                per_client.remove(&self.client);
            }
        }
        self.open.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the watchdog needs to know about a connection, in milliseconds since it opened.
#[derive(Default)]
struct Activity {
    /// Requests whose answers are still being sent.
    active: AtomicUsize,
    /// Requests seen so far.
    requests: AtomicU64,
    /// When the connection last had nothing in flight (opened, or an answer finished).
    idle_since: AtomicU64,
    /// When the first byte of the next request's head arrived; `NONE` while none has.
    head_since: AtomicU64,
}

const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Self {
            head_since: AtomicU64::new(NONE),
            ..Self::default()
        }
    }

    /// When the connection must be closed, given what it is doing; `None` while a request is
    /// in flight.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Duration> {
        if self.active.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let head = self.head_since.load(Ordering::SeqCst);
        let ms = |d: Duration| d.as_millis() as u64;
        Some(Duration::from_millis(if head != NONE {
            head + ms(limits.header_timeout)
        } else if self.requests.load(Ordering::SeqCst) == 0 {
            // Opened and silent: as slow as a slow header.
            self.idle_since.load(Ordering::SeqCst) + ms(limits.header_timeout)
        } else {
            self.idle_since.load(Ordering::SeqCst) + ms(limits.idle_timeout)
        }))
    }
}

/// Marks a request in flight until its answer has been sent.
struct InFlight {
    activity: Arc<Activity>,
    opened: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.activity.idle_since.store(now, Ordering::SeqCst);
        self.activity.active.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
    _place: Place,
) {
    let opened = Instant::now();
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: tcp,
        activity: activity.clone(),
        opened,
    });
    let service = hyper::service::service_fn({
        let activity = activity.clone();
        move |mut request: Request<Incoming>| {
            activity.active.fetch_add(1, Ordering::SeqCst);
            activity.requests.fetch_add(1, Ordering::SeqCst);
            activity.head_since.store(NONE, Ordering::SeqCst);
            let in_flight = InFlight {
                activity: activity.clone(),
                opened,
            };
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = app.clone().oneshot(request.map(Body::new));
            async move {
                let response = answer.await.unwrap_or_else(|never| match never {});
                Ok::<_, std::convert::Infallible>(hold(response, in_flight))
            }
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let wake = activity
            .deadline(&limits)
            .map(|at| opened + at)
            // In flight: look again later; the answer's end moves the deadline.
            .unwrap_or_else(|| Instant::now() + limits.header_timeout.min(limits.idle_timeout));
        tokio::select! {
            _ = conn.as_mut() => return,
            () = tokio::time::sleep_until(wake) => {
                let expired = activity
                    .deadline(&limits)
                    .is_some_and(|at| opened + at <= Instant::now());
                if expired {
                    // Nothing in flight: closing loses no answer.
                    return;
                }
            }
            () = stop.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The connection's socket, noting when the first byte of a request head arrives.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    opened: Instant,
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && self.activity.active.load(Ordering::SeqCst) == 0 {
            let now = self.opened.elapsed().as_millis() as u64;
            let _ = self
                .activity
                .head_since
                .compare_exchange(NONE, now, Ordering::SeqCst, Ordering::SeqCst);
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
