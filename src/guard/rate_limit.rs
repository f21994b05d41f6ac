//! Every rate limit's buckets, with `governor`: per tool keyed by principal (one keyed
//! limiter per tool, so two tools never share a bucket and neither do two callers), and the
//! HTTP edge's per-caller and failed-authentication limits. Idle keys of all of them are
//! evicted on one timer, so memory stays bounded however many callers come and go.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, OnceLock},
    time::Duration,
};

use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};

use super::policy::Rate;

pub struct RateLimits {
    by_tool: HashMap<&'static str, DefaultKeyedRateLimiter<String>>,
    /// Set once by the HTTP edge.
    edge: OnceLock<EdgeLimits>,
}

/// The HTTP edge's limits: MCP_HTTP_RATE_LIMIT by principal, MCP_AUTH_FAILURE_LIMIT by address.
pub struct EdgeLimits {
    pub per_caller: Option<DefaultKeyedRateLimiter<String>>,
    pub failures: DefaultKeyedRateLimiter<IpAddr>,
}

/// A keyed limiter allowing `rate`.
pub fn keyed<K: Hash + Eq + Clone>(rate: Rate) -> DefaultKeyedRateLimiter<K> {
    let burst = NonZeroU32::new(rate.burst).expect("a burst of at least 1");
    DefaultKeyedRateLimiter::keyed(
        Quota::with_period(rate.per)
            .expect("a non-zero period")
            .allow_burst(burst),
    )
}

fn evict<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>) {
    limiter.retain_recent();
    limiter.shrink_to_fit();
}

impl RateLimits {
    pub fn new(quotas: impl IntoIterator<Item = (&'static str, Rate)>) -> Self {
        let by_tool = quotas.into_iter().map(|(tool, rate)| (tool, keyed(rate))).collect();
        Self {
            by_tool,
            edge: OnceLock::new(),
        }
    }

    /// Makes the HTTP edge's limits (once; later calls keep the first).
    pub fn set_edge(&self, per_caller: Option<Rate>, failures: Rate) {
        let _ = self.edge.set(EdgeLimits {
            per_caller: per_caller.map(keyed),
            failures: keyed(failures),
        });
    }

    /// The HTTP edge's limits, once made.
    pub fn edge(&self) -> Option<&EdgeLimits> {
        self.edge.get()
    }

    /// Takes one call from `key`'s bucket for `tool`, or says how long until one is free.
    pub fn check(&self, tool: &str, key: &str) -> Result<(), Duration> {
        let Some(limiter) = self.by_tool.get(tool) else {
            return Ok(());
        };
        limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(governor::clock::DefaultClock::default().now()))
    }

    /// Buckets currently held in memory, across tools and the edge.
    pub fn live_keys(&self) -> usize {
        let edge = self.edge.get().map_or(0, |edge| {
            edge.per_caller.as_ref().map_or(0, |l| l.len()) + edge.failures.len()
        });
        self.by_tool.values().map(|l| l.len()).sum::<usize>() + edge
    }

    /// Forgets buckets that are full again (their callers have been idle long enough).
    pub fn evict_idle(&self) {
        self.by_tool.values().for_each(evict);
        if let Some(edge) = self.edge.get() {
            edge.per_caller.iter().for_each(evict);
            evict(&edge.failures);
        }
    }

    /// Evicts idle buckets every `every`, logging how many remain.
    pub fn spawn_eviction(self: &Arc<Self>, every: Duration) {
        crate::periodic::every(every, self, |limits| {
            let before = limits.live_keys();
            limits.evict_idle();
            tracing::debug!(
                event = "rate_limit_eviction",
                before,
                live_keys = limits.live_keys(),
                "evicted idle rate-limit buckets"
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_tool_and_per_key() {
        let limits = RateLimits::new([
            (
                "a",
                Rate {
                    per: Duration::from_secs(60),
                    burst: 1,
                },
            ),
            (
                "b",
                Rate {
                    per: Duration::from_secs(60),
                    burst: 1,
                },
            ),
        ]);
        assert!(limits.check("a", "alice").is_ok());
        let wait = limits.check("a", "alice").unwrap_err();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(limits.check("a", "bob").is_ok());
        assert!(limits.check("b", "alice").is_ok());
        assert_eq!(limits.live_keys(), 3);
    }
}
