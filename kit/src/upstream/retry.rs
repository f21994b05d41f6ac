//! Retries, with `backon`: which failures are worth another attempt, how long to wait before
//! it, and when to stop. Every attempt leaves one log line.

use std::{future::Future, time::Duration};

use backon::{Backoff, BackoffBuilder, ExponentialBuilder, Retryable};
use reqwest::{StatusCode, header::HeaderMap};
use tokio::time::Instant;

use super::{
    Answer,
    error::{Stop, Target, UpstreamError},
    slots::Busy,
    ssrf::Refusal,
};

/// No single wait grows past this, however many attempts are allowed.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// How hard one upstream call tries.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first retry waits up to this long; each later one up to twice as long as the last.
    pub backoff: Duration,
    /// The time limit of one attempt (connecting, sending, and reading the whole answer).
    pub attempt_timeout: Duration,
    /// The time limit of the whole call: attempts and the waits between them.
    pub deadline: Duration,
}

/// How one attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// The upstream answered with a status other than 2xx.
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    /// The attempt ran out of time.
    Timeout,
    /// No connection could be made.
    Connect(String),
    /// The connection failed during the exchange.
    Network(String),
    /// The outbound policy refused an address or a redirect; nothing was sent there.
    Refused(Refusal),
    /// No slot came free within the attempt's time limit; nothing was sent.
    Busy(Busy),
    /// Anything else (e.g. an answer too large): not worth repeating.
    Other(String),
}

impl Failure {
    /// Whether the same request might succeed if sent again.
    fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(
                *status,
                StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            ),
            Self::Timeout | Self::Connect(_) | Self::Network(_) | Self::Busy(_) => true,
            Self::Refused(_) | Self::Other(_) => false,
        }
    }

    /// Whether the request never left: then even one that may not be repeated can be retried.
    fn sent_nothing(&self) -> bool {
        matches!(self, Self::Busy(_))
    }

    /// For the log line: the error kind (the status goes in its own field).
    fn kind(&self) -> &'static str {
        match self {
            Self::Status { .. } => "status",
            Self::Timeout => "timeout",
            Self::Connect(_) => "connect",
            Self::Network(_) => "network",
            Self::Refused(_) => "refused",
            Self::Busy(_) => "busy",
            Self::Other(_) => "other",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status { status, .. } => write!(f, "the last answer was HTTP {status}"),
            Self::Timeout => write!(f, "the last attempt timed out"),
            Self::Connect(cause) => write!(f, "could not connect ({cause})"),
            Self::Network(cause) => write!(f, "the connection failed ({cause})"),
            Self::Refused(refusal) => write!(f, "refused: {refusal}"),
            Self::Busy(busy) => write!(f, "{busy}"),
            Self::Other(cause) => write!(f, "{cause}"),
        }
    }
}

impl From<reqwest::Error> for Failure {
    fn from(error: reqwest::Error) -> Self {
        if let Some(refusal) = Refusal::find(&error) {
            return Self::Refused(refusal.clone());
        }
        // reqwest's own message names the URL with its query; the root cause does not.
        let cause = root_cause(&error);
        if error.is_timeout() {
            Self::Timeout
        } else if error.is_connect() {
            Self::Connect(cause)
        } else if error.is_request() || error.is_body() {
            Self::Network(cause)
        } else {
            Self::Other(cause)
        }
    }
}

pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut error = error;
    while let Some(source) = error.source() {
        error = source;
    }
    error.to_string()
}

/// The wait a `Retry-After` header asks for: delta-seconds or an HTTP-date.
pub fn retry_after(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// "Full jitter": a random wait between zero and the exponential delay, so that clients that
/// failed together do not retry together.
fn full_jitter(delay: Duration) -> Duration {
    delay.mul_f64(fastrand::f64())
}

/// One attempt that failed, with what its log line needs.
struct Failed {
    number: u32,
    took: Duration,
    failure: Failure,
}

impl RetryPolicy {
    /// Exponential delays with full jitter, one per retry.
    fn delays(&self) -> impl Backoff {
        ExponentialBuilder::new()
            .with_min_delay(self.backoff)
            .with_factor(2.0)
            .with_max_delay(MAX_DELAY.max(self.backoff))
            .with_max_times(self.attempts.saturating_sub(1) as usize)
            .build()
            .map(full_jitter)
    }

    /// The wait before the next attempt, or why there is none: `Retry-After` wins over the
    /// backoff, and no attempt starts past the deadline.
    fn next_delay(
        &self,
        failure: &Failure,
        backoff: Option<Duration>,
        now: Instant,
        deadline: Instant,
    ) -> Result<Duration, Stop> {
        let backoff = backoff.ok_or(Stop::Attempts(self.attempts))?;
        let asked = match failure {
            Failure::Status { retry_after, .. } => *retry_after,
            _ => None,
        };
        let delay = asked.unwrap_or(backoff);
        if now + delay < deadline {
            Ok(delay)
        } else if let Some(wait) = asked {
            Err(Stop::RetryAfter {
                wait,
                deadline: self.deadline,
            })
        } else {
            Err(Stop::Deadline(self.deadline))
        }
    }

    /// Runs `attempt` until it succeeds or the policy says stop. `attempt` gets the time it
    /// may take. Only an idempotent request is ever sent twice. Dropping the returned future
    /// stops everything at once: nothing is spawned, so nothing outlives it.
    pub async fn run<F, Fut>(&self, target: &Target, idempotent: bool, mut attempt: F) -> Result<Answer, UpstreamError>
    where
        F: FnMut(Duration, u32) -> Fut,
        Fut: Future<Output = Result<Answer, Failure>>,
    {
        let started = Instant::now();
        let deadline = started + self.deadline;
        let mut number = 0;
        let mut stop = None;
        let outcome = (|| {
            number += 1;
            let number = number;
            let begun = Instant::now();
            let limit = self.attempt_timeout.min(deadline.saturating_duration_since(begun));
            let attempt = attempt(limit, number);
            async move {
                match attempt.await {
                    Ok(answer) => Ok((answer, begun.elapsed())),
                    Err(failure) => Err(Failed {
                        number,
                        took: begun.elapsed(),
                        failure,
                    }),
                }
            }
        })
        .retry(self.delays())
        .sleep(tokio::time::sleep)
        .when(|failed: &Failed| (idempotent || failed.failure.sent_nothing()) && failed.failure.is_transient())
        .adjust(|failed, backoff| {
            self.next_delay(&failed.failure, backoff, Instant::now(), deadline)
                .map_err(|why| stop = Some(why))
                .ok()
        })
        .notify(|failed, delay| log_failed(target, failed, Some(delay)))
        .await;

        match outcome {
            Ok((answer, took)) => {
                tracing::info!(
                    event = "upstream_attempt",
                    upstream = %target.host,
                    method = %target.method,
                    path = %target.path,
                    attempt = number,
                    status = answer.status().as_u16(),
                    took_ms = took.as_millis() as u64,
                    "upstream answered"
                );
                if let Some(metrics) = crate::metrics::get() {
                    metrics.upstream_attempt(&target.host, "answered");
                }
                Ok(answer)
            }
            Err(failed) => {
                log_failed(target, &failed, None);
                let stop = if !failed.failure.is_transient() {
                    Stop::NotTransient
                } else if !idempotent && !failed.failure.sent_nothing() {
                    Stop::NotIdempotent
                } else {
                    // `adjust` is the only place that ends retries of a transient failure.
                    stop.unwrap_or(Stop::Attempts(self.attempts))
                };
                Err(UpstreamError::failed(
                    target.clone(),
                    failed.number,
                    started.elapsed(),
                    failed.failure,
                    stop,
                ))
            }
        }
    }
}

/// The log line of a failed attempt: `retry_in_ms` says when the next one starts, and its
/// absence that this was the last.
fn log_failed(target: &Target, failed: &Failed, retry_in: Option<Duration>) {
    let status = match &failed.failure {
        Failure::Status { status, .. } => Some(status.as_u16()),
        _ => None,
    };
    tracing::warn!(
        event = "upstream_attempt",
        upstream = %target.host,
        method = %target.method,
        path = %target.path,
        attempt = failed.number,
        status,
        error = failed.failure.kind(),
        took_ms = failed.took.as_millis() as u64,
        retry_in_ms = retry_in.map(|d| d.as_millis() as u64),
        "upstream attempt failed: {}",
        failed.failure
    );
    if let Some(metrics) = crate::metrics::get() {
        metrics.upstream_attempt(&target.host, failed.failure.kind());
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicU32, Ordering},
        },
        time::SystemTime,
    };

    use reqwest::{Method, header::HeaderValue};

    use super::*;

    fn policy(attempts: u32, deadline_s: u64) -> RetryPolicy {
        RetryPolicy {
            attempts,
            backoff: Duration::from_millis(100),
            attempt_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(deadline_s),
        }
    }

    fn target() -> Target {
        Target {
            method: Method::GET,
            host: "api.example".into(),
            path: "/v1".into(),
        }
    }

    fn status(code: u16, retry_after: Option<u64>) -> Failure {
        Failure::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    /// Runs the policy against attempts that fail with `failures`, then succeed.
    async fn run(
        policy: RetryPolicy,
        idempotent: bool,
        failures: Vec<Failure>,
    ) -> (Result<Answer, UpstreamError>, u32) {
        let calls = Arc::new(AtomicU32::new(0));
        let failures = std::sync::Mutex::new(failures.into_iter());
        let result = policy
            .run(&target(), idempotent, |_, _| {
                calls.fetch_add(1, Ordering::SeqCst);
                let next = failures.lock().unwrap().next();
                async move {
                    match next {
                        Some(failure) => Err(failure),
                        None => Ok(Answer::new(target(), StatusCode::OK, b"{}".to_vec())),
                    }
                }
            })
            .await;
        (result, calls.load(Ordering::SeqCst))
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::now();
        let header = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("retry-after", HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(retry_after(&header("7"), now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        let wait = retry_after(&header(&later), now).unwrap();
        assert!((89..=90).contains(&wait.as_secs()), "{wait:?}");
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(retry_after(&header(&past), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&header("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn only_429_and_gateway_errors_and_network_failures_are_transient() {
        for code in [429, 502, 503, 504] {
            assert!(status(code, None).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 422, 500, 501] {
            assert!(!status(code, None).is_transient(), "{code}");
        }
        assert!(Failure::Timeout.is_transient());
        assert!(Failure::Connect("refused".into()).is_transient());
        let refusal = super::super::ssrf::Guard::new(vec![], vec![])
            .check_ip([127, 0, 0, 1].into())
            .unwrap_err();
        assert!(!Failure::Refused(refusal).is_transient());
    }

    #[test]
    fn delays_grow_exponentially_within_full_jitter() {
        let policy = RetryPolicy {
            attempts: 6,
            backoff: Duration::from_millis(100),
            ..policy(6, 60)
        };
        let delays: Vec<_> = policy.delays().collect();
        assert_eq!(delays.len(), 5, "one delay per retry");
        for (i, delay) in delays.iter().enumerate() {
            assert!(*delay <= Duration::from_millis(100 << i), "{i}: {delay:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let (result, calls) = run(policy(3, 30), true, vec![status(503, None), status(503, None)]).await;
        assert!(result.is_ok());
        assert_eq!(calls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_attempt_limit_ends_retries() {
        let (result, calls) = run(policy(3, 30), true, (0..5).map(|_| status(502, None)).collect()).await;
        let error = result.unwrap_err();
        assert_eq!((calls, error.attempts()), (3, 3));
        assert!(error.to_string().contains("limit of 3 attempts"), "{error}");
        assert!(error.to_string().contains("502 Bad Gateway"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_error_and_a_non_idempotent_request_are_not_retried() {
        let (result, calls) = run(policy(5, 30), true, vec![status(404, None)]).await;
        assert_eq!(calls, 1);
        assert_eq!(result.unwrap_err().status(), Some(StatusCode::NOT_FOUND));

        let (result, calls) = run(policy(5, 30), false, vec![status(503, None)]).await;
        assert_eq!(calls, 1);
        let error = result.unwrap_err().to_string();
        assert!(error.contains("without an idempotency key"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_got_no_slot_is_retried_even_one_that_may_not_be_repeated() {
        let busy = Failure::Busy(Busy {
            waited: Duration::from_secs(5),
            cap: 2,
            scope: "to api.example".into(),
        });
        assert!(busy.sent_nothing() && busy.is_transient());
        let (result, calls) = run(policy(3, 30), false, vec![busy]).await;
        assert!(result.is_ok());
        assert_eq!(calls, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_when_it_fits_the_deadline() {
        let started = Instant::now();
        let (result, calls) = run(policy(3, 30), true, vec![status(429, Some(4))]).await;
        assert!(result.is_ok());
        assert_eq!(calls, 2);
        assert!(started.elapsed() >= Duration::from_secs(4));

        let (result, calls) = run(policy(3, 30), true, vec![status(503, Some(60))]).await;
        assert_eq!(calls, 1, "a wait past the deadline is not taken");
        let error = result.unwrap_err().to_string();
        assert!(error.contains("asked to wait 60 s"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_ends_retries() {
        let policy = RetryPolicy {
            backoff: Duration::from_secs(4),
            ..policy(50, 10)
        };
        let started = Instant::now();
        let (result, calls) = run(policy, true, (0..50).map(|_| Failure::Timeout).collect()).await;
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(calls < 50);
        let error = result.unwrap_err().to_string();
        assert!(error.contains("10 s time limit"), "{error}");
        assert!(error.contains("timed out"), "{error}");
    }
}
