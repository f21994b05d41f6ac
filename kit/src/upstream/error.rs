//! The one error a tool gets from an upstream call, written for the model to read: what was
//! called, what was tried, what went wrong last, and why the client stopped.

use std::{fmt, time::Duration};

use reqwest::{Method, StatusCode, Url};

use super::{retry::Failure, ssrf::Refusal};

/// What a request goes to, as logs and errors show it: method, host and path, never the
/// query string (it may carry keys or personal data).
#[derive(Debug, Clone)]
pub struct Target {
    pub method: Method,
    pub host: String,
    pub path: String,
}

impl Target {
    pub fn of(method: &Method, url: &Url) -> Self {
        Self {
            method: method.clone(),
            host: url.host_str().unwrap_or("?").to_owned(),
            path: url.path().to_owned(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}{}", self.method, self.host, self.path)
    }
}

/// Why the client stopped trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The failure would happen again (e.g. a 4xx other than 429).
    NotTransient,
    /// The request may not be repeated (a POST without an idempotency key).
    NotIdempotent,
    /// The attempt limit was reached.
    Attempts(u32),
    /// The next attempt would start after the time limit for the whole call.
    Deadline(Duration),
    /// The upstream asked for a wait (`Retry-After`) that ends after the time limit.
    RetryAfter { wait: Duration, deadline: Duration },
}

#[derive(Debug)]
enum Kind {
    /// The outbound policy refused the request, or a redirect it led to.
    Refused(Refusal),
    /// Every attempt allowed failed.
    Failed {
        attempts: u32,
        elapsed: Duration,
        last: Failure,
        stop: Stop,
    },
    /// The upstream answered with success, but not with what the tool expected.
    Unreadable(String),
    /// The request itself could not be built (e.g. its body failed to serialise).
    Invalid(String),
}

/// An upstream call that did not work out. Its text is what the model reads in the tool's
/// `isError` result; `?` in a tool turns it into that text.
#[derive(Debug)]
pub struct UpstreamError(Box<Details>); // boxed: results stay small on the happy path

#[derive(Debug)]
struct Details {
    target: Target,
    kind: Kind,
}

impl UpstreamError {
    fn new(target: Target, kind: Kind) -> Self {
        Self(Box::new(Details { target, kind }))
    }

    pub(super) fn refused(target: Target, refusal: Refusal) -> Self {
        Self::new(target, Kind::Refused(refusal))
    }

    pub(super) fn failed(target: Target, attempts: u32, elapsed: Duration, last: Failure, stop: Stop) -> Self {
        // A refusal from the resolver or a redirect reads the same as one made up front.
        let kind = match last {
            Failure::Refused(refusal) => Kind::Refused(refusal),
            last => Kind::Failed {
                attempts,
                elapsed,
                last,
                stop,
            },
        };
        Self::new(target, kind)
    }

    pub(super) fn unreadable(target: Target, detail: String) -> Self {
        Self::new(target, Kind::Unreadable(detail))
    }

    pub(super) fn invalid(target: Target, detail: String) -> Self {
        Self::new(target, Kind::Invalid(detail))
    }

    /// How many attempts were made (0 when the call was refused or invalid).
    pub fn attempts(&self) -> u32 {
        match &self.0.kind {
            Kind::Failed { attempts, .. } => *attempts,
            _ => 0,
        }
    }

    /// The status of the last answer, if the upstream answered at all.
    pub fn status(&self) -> Option<StatusCode> {
        match &self.0.kind {
            Kind::Failed {
                last: Failure::Status { status, .. },
                ..
            } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = &self.0.target;
        match &self.0.kind {
            Kind::Refused(refusal) => {
                write!(f, "{target} was refused by the server's outbound policy: {refusal}")
            }
            Kind::Unreadable(detail) => {
                write!(f, "{target} answered with something unexpected: {detail}")
            }
            Kind::Invalid(detail) => write!(f, "{target} could not be sent: {detail}"),
            Kind::Failed {
                attempts,
                elapsed,
                last,
                stop,
            } => {
                let plural = if *attempts == 1 { "" } else { "s" };
                write!(
                    f,
                    "{target} failed: {last} ({attempts} attempt{plural} in {:.1} s); ",
                    elapsed.as_secs_f64()
                )?;
                match stop {
                    Stop::NotTransient => write!(f, "not retried, as it would fail the same way"),
                    Stop::NotIdempotent => write!(
                        f,
                        "not retried, as a {} without an idempotency key might be applied twice",
                        target.method
                    ),
                    Stop::Attempts(limit) => write!(f, "gave up at the limit of {limit} attempts; try again later"),
                    Stop::Deadline(limit) => write!(
                        f,
                        "gave up at the {} s time limit for one upstream call; try again later",
                        limit.as_secs()
                    ),
                    Stop::RetryAfter { wait, deadline } => write!(
                        f,
                        "the upstream asked to wait {} s before retrying, longer than the {} s \
                         time limit allows; try again in {} s",
                        wait.as_secs(),
                        deadline.as_secs(),
                        wait.as_secs()
                    ),
                }
            }
        }
    }
}

impl std::error::Error for UpstreamError {}

/// Lets a tool write `upstream_call().await?` and return the error's text as its `isError`
/// result.
impl From<UpstreamError> for String {
    fn from(error: UpstreamError) -> Self {
        error.to_string()
    }
}
