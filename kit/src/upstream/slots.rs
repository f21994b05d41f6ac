//! Caps on upstream requests in flight, per host and in all. reqwest bounds only the idle
//! connections it keeps, not the open ones, so without these a flood of tool calls opens a
//! socket per call. A request holds a slot from before it connects until its answer is read
//! whole; one that gets none in time fails as busy, having sent nothing.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The slots of one client: one semaphore in all, one per allowed host.
pub struct Slots {
    all: Arc<Semaphore>,
    all_cap: usize,
    /// Made up front from the allow-list and never grown: only allowed hosts are ever called,
    /// so no caller can make this map hold more.
    per_host: HashMap<String, Arc<Semaphore>>,
    per_host_cap: usize,
}

/// A request's slots, given back when dropped.
pub struct Held {
    _host: Option<OwnedSemaphorePermit>,
    _all: OwnedSemaphorePermit,
}

/// No slot came free in time.
#[derive(Debug, Clone)]
pub struct Busy {
    pub waited: Duration,
    /// The cap that was full, and what it caps: "to 127.0.0.1", "to all upstream hosts".
    pub cap: usize,
    pub scope: String,
}

impl Slots {
    pub fn new(hosts: &[url::Host], all: usize, per_host: usize) -> Self {
        Self {
            all: Arc::new(Semaphore::new(all)),
            all_cap: all,
            per_host: hosts
                .iter()
                .map(|host| (host.to_string(), Arc::new(Semaphore::new(per_host))))
                .collect(),
            per_host_cap: per_host,
        }
    }

    /// A slot for a request to `host`, waiting at most `limit`: the host's first (so requests
    /// queued for one busy host hold none of the shared slots), then one in all.
    pub async fn take(&self, host: &str, limit: Duration) -> Result<Held, Busy> {
        let started = tokio::time::Instant::now();
        let busy = |cap: usize, scope: String| Busy {
            waited: started.elapsed(),
            cap,
            scope,
        };
        let host_slot = match self.per_host.get(host) {
            Some(slots) => Some(
                tokio::time::timeout(limit, slots.clone().acquire_owned())
                    .await
                    .map_err(|_| busy(self.per_host_cap, format!("to {host}")))?
                    .expect("the semaphore is never closed"),
            ),
            None => None,
        };
        let left = limit.saturating_sub(started.elapsed());
        let all = tokio::time::timeout(left, self.all.clone().acquire_owned())
            .await
            .map_err(|_| busy(self.all_cap, "to all upstream hosts".into()))?
            .expect("the semaphore is never closed");
        Ok(Held {
            _host: host_slot,
            _all: all,
        })
    }
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the upstream is busy: the {} requests this server sends at once {} were all in flight \
             for the {:.1} s this attempt could wait, so nothing was sent",
            self.cap,
            self.scope,
            self.waited.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_full_host_waits_then_is_busy_and_a_freed_slot_is_taken() {
        let hosts = vec![
            url::Host::parse("a.example").unwrap(),
            url::Host::parse("b.example").unwrap(),
        ];
        let slots = Slots::new(&hosts, 3, 2);
        let second = Duration::from_secs(1);
        let a1 = slots.take("a.example", second).await.unwrap();
        let _a2 = slots.take("a.example", second).await.unwrap();
        let busy = slots.take("a.example", second).await.err().unwrap();
        assert_eq!((busy.cap, busy.scope.as_str()), (2, "to a.example"));
        assert!(busy.to_string().contains("nothing was sent"), "{busy}");
        let _b1 = slots.take("b.example", second).await.unwrap();
        let busy = slots.take("b.example", second).await.err().unwrap();
        assert_eq!((busy.cap, busy.scope.as_str()), (3, "to all upstream hosts"));
        drop(a1);
        assert!(slots.take("b.example", second).await.is_ok());
    }
}
