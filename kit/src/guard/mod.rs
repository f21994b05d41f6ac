//! The guard chain every `tools/call` passes, on every transport, before the tool runs:
//! authorize (the tool's scope), rate limit (principal × tool), validate (the tool's input
//! schema, then the argument type's rules); then the tool runs under its timeout. Each refusal
//! is a tool result with `isError: true` that says what to change or when to retry.

mod policy;
mod rate_limit;
mod schema;
mod validate;

use std::{collections::HashMap, sync::Arc, time::Duration};

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, MetaObject};
use serde_json::json;

pub use policy::{Rate, TaskSupport, ToolPolicy};
pub use rate_limit::{EdgeLimits, RateLimits, Refused};
pub use validate::check_rules;

use crate::{auth::Principal, telemetry::clip};

/// What the guard decided about a call; logged with every `tools/call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Denied,
    RateLimited,
    Invalid,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::RateLimited => "rate_limited",
            Self::Invalid => "invalid",
        }
    }
}

/// A call the guard turned away: why, and the result to answer with.
pub struct Refusal {
    pub decision: Decision,
    pub result: Box<CallToolResult>,
}

fn refuse(decision: Decision, result: CallToolResult) -> Refusal {
    Refusal {
        decision,
        result: Box::new(result),
    }
}

/// Per-tool settings an operator may override without touching code.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub quotas: HashMap<String, Rate>,
    pub timeouts: HashMap<String, Duration>,
    /// Benchmarking only: no chain at all (the `bench` feature's hidden `--bench-guard-off`).
    #[cfg(feature = "bench")]
    pub off: bool,
}

pub struct Guard {
    policies: HashMap<&'static str, ToolPolicy>,
    limits: Arc<RateLimits>,
    #[cfg(feature = "bench")]
    off: bool,
}

impl Guard {
    /// Applies `overrides` to the declared policies; an override for a tool that does not
    /// exist is an error naming it.
    pub fn new(declared: Vec<ToolPolicy>, overrides: &Overrides) -> Result<Self, String> {
        let mut policies: HashMap<_, _> = declared.into_iter().map(|p| (p.name, p)).collect();
        for (tool, quota) in &overrides.quotas {
            policies.get_mut(tool.as_str()).ok_or_else(|| unknown(tool))?.quota = *quota;
        }
        for (tool, timeout) in &overrides.timeouts {
            policies.get_mut(tool.as_str()).ok_or_else(|| unknown(tool))?.timeout = *timeout;
        }
        let limits = Arc::new(RateLimits::new(policies.values().map(|p| (p.name, p.quota))));
        #[cfg(feature = "bench")]
        if overrides.off {
            tracing::warn!(event = "guard_off", "benchmark build: tool calls skip the guard chain");
        }
        Ok(Self {
            policies,
            limits,
            #[cfg(feature = "bench")]
            off: overrides.off,
        })
    }

    /// Benchmarking only: whether calls skip the chain.
    #[cfg(feature = "bench")]
    pub fn is_off(&self) -> bool {
        self.off
    }

    pub fn limits(&self) -> &Arc<RateLimits> {
        &self.limits
    }

    /// The policy of a tool `principal` may see; `None` for unknown or hidden tools.
    pub fn policy_for(&self, tool: &str, principal: &Principal) -> Option<&ToolPolicy> {
        self.policies
            .get(tool)
            .filter(|p| p.scope.is_none_or(|s| principal.has_scope(s)))
    }

    /// Every tool's name (for the metrics' bounded labels).
    pub fn tool_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.policies.keys().copied()
    }

    /// Whether a tool's calls run as tasks; `None` for an unknown tool.
    pub fn task_support(&self, tool: &str) -> Option<TaskSupport> {
        self.policies.get(tool).map(|p| p.task)
    }

    /// The tools whose calls may run as tasks.
    pub fn task_tools(&self) -> impl Iterator<Item = &ToolPolicy> {
        self.policies.values().filter(|p| p.task != TaskSupport::Forbidden)
    }

    /// The scope a tool needs, if it exists and needs one.
    pub fn required_scope(&self, tool: &str) -> Option<&'static str> {
        self.policies.get(tool).and_then(|p| p.scope)
    }

    /// Every scope some tool needs, for the protected-resource metadata.
    pub fn scopes(&self) -> Vec<&'static str> {
        let mut scopes: Vec<_> = self.policies.values().filter_map(|p| p.scope).collect();
        scopes.sort_unstable();
        scopes.dedup();
        scopes
    }

    /// Runs the chain for a call of `tool`; on refusal, the result to answer with.
    pub async fn admit(
        &self,
        tool: &str,
        principal: &Principal,
        // Lent to the argument check, which gives it back as it was.
        arguments: &mut Option<JsonObject>,
    ) -> Result<&ToolPolicy, Refusal> {
        let Some(policy) = self.policies.get(tool) else {
            return Err(refuse(
                Decision::Denied,
                refusal(format!("unknown tool '{}'", clip(tool))),
            ));
        };
        if let Some(scope) = policy.scope.filter(|s| !principal.has_scope(s)) {
            let message = format!(
                "tool '{tool}' needs the '{scope}' scope, which this caller ({}) does not have",
                principal.subject
            );
            return Err(refuse(Decision::Denied, refusal(message)));
        }
        match self.limits.take(tool, &principal.key).await {
            Ok(()) => {}
            Err(Refused::Wait(wait)) => {
                let retry_after_ms = wait.as_millis().max(1) as u64;
                let mut result = refusal(format!(
                    "tool '{tool}' is rate limited for this caller; retry after {retry_after_ms} ms (quota: {})",
                    policy.quota
                ));
                let mut meta = MetaObject::new();
                meta.0.insert("retryAfterMs".into(), json!(retry_after_ms));
                result.meta = Some(meta);
                return Err(refuse(Decision::RateLimited, result));
            }
            Err(Refused::Unavailable) => {
                let mut result = refusal(format!(
                    "tool '{tool}' cannot be called right now: the shared rate limits are unavailable; retry in a second"
                ));
                let mut meta = MetaObject::new();
                meta.0.insert("retryAfterMs".into(), json!(1000));
                result.meta = Some(meta);
                return Err(refuse(Decision::RateLimited, result));
            }
        }
        if let Err(violations) = policy.arguments.check(arguments) {
            let message = format!("invalid arguments for '{tool}': {}", violations.join("; "));
            return Err(refuse(Decision::Invalid, refusal(message)));
        }
        Ok(policy)
    }
}

fn unknown(tool: &str) -> String {
    format!("no tool named '{tool}'")
}

/// A tool result that refuses the call, saying why.
pub(crate) fn refusal(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// The result for a call cancelled by its tool's timeout.
pub fn timed_out(tool: &str, timeout: Duration) -> CallToolResult {
    refusal(format!(
        "tool '{tool}' did not finish within its {} s timeout and was cancelled; try again later",
        timeout.as_secs_f64()
    ))
}
