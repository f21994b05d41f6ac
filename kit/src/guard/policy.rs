//! What a tool declares beside its code: the scope it needs, its rate quota, its timeout,
//! whether it runs as a task, and the type its arguments must parse and validate as (the
//! catalog adds the tool's schema).

use std::{fmt, str::FromStr, sync::Arc, time::Duration};

use rmcp::model::{CallToolRequestParams, JsonObject};
use serde::de::DeserializeOwned;
use validator::Validate;

use super::validate::ArgumentCheck;

#[derive(Clone)]
pub struct ToolPolicy {
    pub name: &'static str,
    /// Scope a caller needs to see and call the tool; `None`: every caller.
    pub scope: Option<&'static str>,
    pub quota: Rate,
    pub timeout: Duration,
    /// Whether a call may (or must) run as a task: answered at once with a task the client
    /// polls (`tasks/get`), the work going on in the background under the same timeout.
    pub task: TaskSupport,
    /// Of the calls a task may serve, which ones become tasks (default: all).
    pub task_when: fn(&CallToolRequestParams) -> bool,
    /// Checks the arguments; the error lists every violation.
    pub(super) arguments: ArgumentCheck,
}

impl ToolPolicy {
    /// A policy with no scope, 60 calls a minute (bursts of 10), a 30 s timeout, and
    /// arguments checked as `A`.
    pub fn new<A: DeserializeOwned + Validate>(name: &'static str) -> Self {
        Self {
            name,
            scope: None,
            quota: Rate {
                per: Duration::from_secs(1),
                burst: 10,
            },
            timeout: Duration::from_secs(30),
            task: TaskSupport::Forbidden,
            task_when: |_| true,
            arguments: ArgumentCheck::of::<A>(),
        }
    }

    pub fn scope(mut self, scope: &'static str) -> Self {
        self.scope = Some(scope);
        self
    }

    pub fn quota(mut self, quota: Rate) -> Self {
        self.quota = quota;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Lets calls run as tasks (for clients that declare the tasks extension), or requires it.
    pub fn task(mut self, support: TaskSupport) -> Self {
        self.task = support;
        self
    }

    /// Runs as a task only the calls `when` picks (e.g. a batch past some size, or the last
    /// round of a multi-round call); the rest answer in the request.
    pub fn task_when(mut self, when: fn(&CallToolRequestParams) -> bool) -> Self {
        self.task_when = when;
        self
    }

    /// Checks arguments against `schema`, the tool's advertised input schema, before parsing
    /// them; the catalog sets it for every tool. Compiled on the tool's first call, once.
    pub fn input_schema(mut self, schema: Arc<JsonObject>) -> Self {
        self.arguments = self.arguments.with_schema(schema);
        self
    }

    /// Compiles the input schema now; an error names what does not compile.
    pub fn input_schema_compiles(&self) -> Result<(), String> {
        self.arguments.schema_compiles()
    }
}

/// Whether a tool's calls run as tasks (the `io.modelcontextprotocol/tasks` extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskSupport {
    /// Always answered within the request.
    Forbidden,
    /// A task when the client declares the tasks extension; otherwise answered in the request.
    Optional,
    /// Only as a task: a client without the tasks extension is refused (-32021).
    Required,
}

/// A rate quota: one call replenished every `per`, up to `burst` calls at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per: Duration,
    pub burst: u32,
}

impl Rate {
    /// `n` calls per `period`, with bursts of up to `burst`.
    pub const fn per(n: u32, period: Duration, burst: u32) -> Self {
        Self {
            per: Duration::from_nanos(period.as_nanos() as u64 / n as u64),
            burst,
        }
    }
}

/// Parses `N/s`, `N/m` or `N/h`, optionally followed by `:BURST` (default: N, at least 1).
impl FromStr for Rate {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let bad = || format!("'{raw}' is not a rate like 30/m or 10/s:20");
        let (rate, burst) = match raw.trim().split_once(':') {
            Some((rate, burst)) => (rate, Some(burst.parse::<u32>().map_err(|_| bad())?)),
            None => (raw.trim(), None),
        };
        let (n, unit) = rate.split_once('/').ok_or_else(bad)?;
        let n: u32 = n.parse().map_err(|_| bad())?;
        let period = match unit {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        let burst = burst.unwrap_or(n);
        if n == 0 || burst == 0 {
            return Err(format!("'{raw}': rate and burst must be at least 1"));
        }
        Ok(Self::per(n, period, burst))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1 per {:?}, bursts of {}", self.per, self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(
            "30/m".parse::<Rate>().unwrap(),
            Rate {
                per: Duration::from_secs(2),
                burst: 30
            }
        );
        assert_eq!(
            "10/s:20".parse::<Rate>().unwrap(),
            Rate {
                per: Duration::from_millis(100),
                burst: 20
            }
        );
        assert!("0/s".parse::<Rate>().is_err());
        assert!("5/d".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }
}
