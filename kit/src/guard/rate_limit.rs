//! Every rate limit's buckets, with `governor`: per tool keyed by principal (one keyed
//! limiter per tool, so two tools never share a bucket and neither do two callers), and the
//! HTTP edge's per-caller and failed-authentication limits. Idle keys of all of them are
//! evicted on one timer, so memory stays bounded however many callers come and go.
//!
//! With Redis (`MCP_REDIS_URL`), the per-tool and per-caller limits are counted there instead,
//! across replicas, with the same semantics (`state::limits`); when Redis cannot answer, the
//! local buckets decide (fail open) or the call is refused as retryable (fail closed).

use crate::refusals::Refusals;
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
use crate::state::{OnTrouble, Redis, limits};

pub struct RateLimits {
    by_tool: HashMap<&'static str, (Rate, DefaultKeyedRateLimiter<String>)>,
    /// Set once by the HTTP edge.
    edge: OnceLock<EdgeLimits>,
    /// Set once at startup when replicas share limits.
    shared: OnceLock<Arc<Redis>>,
}

/// The HTTP edge's limits: MCP_HTTP_RATE_LIMIT by principal, MCP_AUTH_FAILURE_LIMIT by address.
pub struct EdgeLimits {
    pub per_caller: Option<(Rate, DefaultKeyedRateLimiter<String>)>,
    pub failures: DefaultKeyedRateLimiter<IpAddr>,
}

/// Why a call may not go now.
#[derive(Debug)]
pub enum Refused {
    /// The bucket is empty: retry after this long.
    Wait(Duration),
    /// The shared limits cannot be read (Redis down, failing closed).
    Unavailable,
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
        let by_tool = quotas
            .into_iter()
            .map(|(tool, rate)| (tool, (rate, keyed(rate))))
            .collect();
        Self {
            by_tool,
            edge: OnceLock::new(),
            shared: OnceLock::new(),
        }
    }

    /// Counts the per-tool and per-caller limits on Redis from now on (once).
    pub fn share(&self, redis: Arc<Redis>) {
        let _ = self.shared.set(redis);
    }

    /// Makes the HTTP edge's limits (once; later calls keep the first).
    pub fn set_edge(&self, per_caller: Option<Rate>, failures: Rate) {
        let _ = self.edge.set(EdgeLimits {
            per_caller: per_caller.map(|rate| (rate, keyed(rate))),
            failures: keyed(failures),
        });
    }

    /// The HTTP edge's limits, once made.
    pub fn edge(&self) -> Option<&EdgeLimits> {
        self.edge.get()
    }

    /// Takes one call from `key`'s bucket for `tool`, or says why not.
    pub async fn take(&self, tool: &str, key: &str) -> Result<(), Refused> {
        let Some((rate, local)) = self.by_tool.get(tool) else {
            return Ok(());
        };
        self.take_from(|| format!("rl:tool:{tool}:{key}"), *rate, local, key)
            .await
    }

    /// Takes one request from `key`'s per-caller HTTP bucket, if a per-caller limit is set.
    pub async fn take_http(&self, key: &str) -> Result<(), Refused> {
        let Some((rate, local)) = self.edge.get().and_then(|edge| edge.per_caller.as_ref()) else {
            return Ok(());
        };
        self.take_from(|| format!("rl:http:{key}"), *rate, local, key).await
    }

    /// Takes from the shared bucket (named by `bucket`, only when Redis is there) or else the
    /// local one.
    async fn take_from(
        &self,
        bucket: impl FnOnce() -> String,
        rate: Rate,
        local: &DefaultKeyedRateLimiter<String>,
        key: &str,
    ) -> Result<(), Refused> {
        if let Some(redis) = self.shared.get() {
            match limits::take(redis, &bucket(), rate).await {
                Ok(decision) => return decision.map_err(Refused::Wait),
                Err(trouble) if redis.on_trouble == OnTrouble::Closed => {
                    Refusals::server().record("rate_limit_unavailable", || {
                        tracing::warn!(event = "rate_limit_unavailable", error = %trouble, "shared rate limits unavailable: refusing");
                    });
                    return Err(Refused::Unavailable);
                }
                Err(trouble) => {
                    Refusals::server().record("rate_limit_fallback", || {
                        tracing::warn!(event = "rate_limit_fallback", error = %trouble, "shared rate limits unavailable: this replica's own decide");
                    });
                }
            }
        }
        local.check_key(&key.to_owned()).map_err(|not_until| {
            Refused::Wait(not_until.wait_time_from(governor::clock::DefaultClock::default().now()))
        })
    }

    /// Buckets currently held in memory, across tools and the edge.
    pub fn live_keys(&self) -> usize {
        let edge = self.edge.get().map_or(0, |edge| {
            edge.per_caller.as_ref().map_or(0, |(_, l)| l.len()) + edge.failures.len()
        });
        self.by_tool.values().map(|(_, l)| l.len()).sum::<usize>() + edge
    }

    /// Forgets buckets that are full again (their callers have been idle long enough).
    pub fn evict_idle(&self) {
        self.by_tool.values().for_each(|(_, l)| evict(l));
        if let Some(edge) = self.edge.get() {
            edge.per_caller.iter().for_each(|(_, l)| evict(l));
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

    #[tokio::test]
    async fn buckets_are_per_tool_and_per_key() {
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
        assert!(limits.take("a", "alice").await.is_ok());
        let Err(Refused::Wait(wait)) = limits.take("a", "alice").await else {
            panic!("a second call within the minute is refused")
        };
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(limits.take("a", "bob").await.is_ok());
        assert!(limits.take("b", "alice").await.is_ok());
        assert_eq!(limits.live_keys(), 3);
    }
}
