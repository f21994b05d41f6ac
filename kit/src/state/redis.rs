//! One Redis for every replica: a multiplexed connection that reconnects by itself (with
//! backoff), every command bounded by the command timeout, and one answer to "what if Redis is
//! down" (`MCP_REDIS_ON_FAILURE`): fall back to this process's own state, or refuse.
//!
//! A circuit breaker keeps that answer cheap: after [`FAILURES_TO_OPEN`] failed commands in a
//! row, commands fail at once, without waiting out the timeout, until the probe (a PING a
//! second) gets an answer again (`redis_breaker_open`). `redis_down` and `redis_up` are logged
//! once per change.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::{
    AsyncCommands, FromRedisValue,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

/// What a request that needs Redis does while Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnTrouble {
    /// Carry on with this process's own state (limits per replica), logging and counting it.
    Open,
    /// Refuse with a retryable error.
    Closed,
}

/// A Redis command that did not answer in time, or failed.
#[derive(Debug)]
pub struct Trouble(pub String);

impl std::fmt::Display for Trouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Redis {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
    pub on_trouble: OnTrouble,
    /// Whether the last command (or health probe) got an answer.
    up: AtomicBool,
    /// Failed commands in a row; at [`FAILURES_TO_OPEN`] the breaker opens.
    failing: AtomicU64,
    /// Whether Redis has had its first say: an answer, or a failure (each is logged).
    answered: AtomicBool,
    /// Open: commands fail at once; only the probe reaches Redis, and closes it on an answer.
    open: AtomicBool,
    /// Commands that failed or timed out since start.
    failures: AtomicU64,
}

/// Failed commands in a row that open the breaker: a single slow answer does not.
pub const FAILURES_TO_OPEN: u64 = 3;

impl Redis {
    /// Connects lazily (the first command, or the health probe, opens the connection), so a
    /// replica starts while Redis is still coming up; fails only on a malformed URL.
    pub fn connect(url: &str, prefix: &str, timeout: Duration, on_trouble: OnTrouble) -> Result<Arc<Self>, String> {
        let client = redis::Client::open(url).map_err(|e| format!("MCP_REDIS_URL is not a Redis URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(3)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("cannot set up the Redis connection: {e}"))?;
        let redis = Arc::new(Self {
            connection,
            prefix: prefix.to_owned(),
            timeout,
            on_trouble,
            up: AtomicBool::new(false),
            failing: AtomicU64::new(0),
            answered: AtomicBool::new(false),
            open: AtomicBool::new(false),
            failures: AtomicU64::new(0),
        });
        // A probe every second keeps `/readyz` current and reconnects while idle; it ends with
        // the last handle.
        let probe = Arc::downgrade(&redis);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(redis) = probe.upgrade() else { return };
                let mut connection = redis.connection.clone();
                let answer =
                    tokio::time::timeout(redis.timeout, redis::cmd("PING").query_async::<String>(&mut connection))
                        .await;
                let _ = redis.settle(answer);
            }
        });
        Ok(redis)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// `name` under this server's key prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs `command` within the command timeout.
    pub async fn run<T: FromRedisValue>(&self, command: redis::Cmd) -> Result<T, Trouble> {
        self.closed()?;
        let mut connection = self.connection.clone();
        let answer = tokio::time::timeout(self.timeout, command.query_async::<T>(&mut connection)).await;
        self.settle(answer)
    }

    /// Runs a Lua `script` on `keys` with `args` within the command timeout.
    pub async fn script<T: FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[String],
    ) -> Result<T, Trouble> {
        self.closed()?;
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        let mut connection = self.connection.clone();
        let answer = tokio::time::timeout(self.timeout, invocation.invoke_async::<T>(&mut connection)).await;
        self.settle(answer)
    }

    /// Reads a JSON value stored at `key`.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Trouble> {
        self.closed()?;
        let mut connection = self.connection.clone();
        let answer = tokio::time::timeout(self.timeout, connection.get::<_, Option<String>>(key)).await;
        let raw = self.settle(answer)?;
        raw.map(|raw| serde_json::from_str(&raw).map_err(|e| Trouble(format!("unreadable value at {key}: {e}"))))
            .transpose()
    }

    /// `Err` at once while the breaker is open.
    fn closed(&self) -> Result<(), Trouble> {
        if self.open.load(Ordering::Relaxed) {
            return Err(Trouble(
                "Redis is down (it failed repeatedly; retried once a second in the background)".into(),
            ));
        }
        Ok(())
    }

    fn settle<T>(&self, answer: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>) -> Result<T, Trouble> {
        let result = match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Trouble(format!("Redis failed: {error}"))),
            Err(_) => Err(Trouble(format!(
                "Redis did not answer within {} ms",
                self.timeout.as_millis()
            ))),
        };
        let was_up = self.up.swap(result.is_ok(), Ordering::Relaxed);
        match &result {
            Err(trouble) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                // Once when it stops answering (or never did), not once per failed command.
                if was_up || !self.answered.swap(true, Ordering::Relaxed) {
                    tracing::warn!(event = "redis_down", error = %trouble, "Redis stopped answering");
                }
                let in_a_row = self.failing.fetch_add(1, Ordering::Relaxed) + 1;
                if in_a_row >= FAILURES_TO_OPEN && !self.open.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        event = "redis_breaker_open",
                        failures_in_a_row = in_a_row,
                        "Redis failed {in_a_row} times in a row: commands fail at once until it answers again"
                    );
                }
            }
            Ok(_) => {
                self.failing.store(0, Ordering::Relaxed);
                self.open.store(false, Ordering::Relaxed);
                // The first answer, and the first after it stopped answering.
                if !was_up {
                    tracing::info!(event = "redis_up", "Redis answers");
                }
                self.answered.store(true, Ordering::Relaxed);
            }
        }
        result
    }
}
