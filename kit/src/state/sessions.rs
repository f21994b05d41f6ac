//! Handshake-revision sessions on Redis, so a session outlives the replica that opened it:
//! rmcp's `SessionStore` (the client's `initialize`, which another replica replays to restore
//! the session), its `EventStore` (the events of a stream, so a dropped stream resumes on any
//! replica from `Last-Event-ID`), the principal that owns each session, and the session caps
//! counted across replicas. Every key expires after the session idle timeout, refreshed each
//! time the session is used.

use std::{sync::Arc, time::Duration};

use rmcp::{
    model::ServerJsonRpcMessage,
    transport::streamable_http_server::session::{
        ServerSseMessage,
        store::{EventId, EventStore, EventStoreError, EventStream, SessionState, SessionStore, SessionStoreError},
    },
};

use super::redis::{Redis, Trouble};

/// Events kept per stream: enough to resume after a dropped connection, bounded.
const EVENTS_PER_STREAM: usize = 1000;

/// KEYS: the server's set, the owner's set. ARGV: per-owner cap, server cap (now from Redis).
/// Returns 0 when a new session fits, 1 when the owner is full, 2 when the server is.
const FITS: &str = r"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 2 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[1]) then return 1 end
return 0
";

/// KEYS: the owner key, the initialize key, the server's set. ARGV: session id, idle ms,
/// key prefix. Returns the owner and, while it exists, pushes every expiry on by `idle`.
const TOUCH: &str = r"
local owner = redis.call('GET', KEYS[1])
if not owner then return false end
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local idle = tonumber(ARGV[2])
local owner_set = ARGV[3] .. 'sessions:owner:' .. owner
redis.call('PEXPIRE', KEYS[1], idle)
redis.call('PEXPIRE', KEYS[2], idle)
redis.call('ZADD', KEYS[3], now + idle, ARGV[1])
redis.call('ZADD', owner_set, now + idle, ARGV[1])
redis.call('PEXPIRE', KEYS[3], idle)
redis.call('PEXPIRE', owner_set, idle)
return owner
";

/// KEYS: the owner key, the server's set. ARGV: session id, owner, idle ms, key prefix.
const ADOPT: &str = r"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local idle = tonumber(ARGV[3])
local owner_set = ARGV[4] .. 'sessions:owner:' .. ARGV[2]
redis.call('SET', KEYS[1], ARGV[2], 'PX', idle)
redis.call('ZADD', KEYS[2], now + idle, ARGV[1])
redis.call('ZADD', owner_set, now + idle, ARGV[1])
redis.call('PEXPIRE', KEYS[2], idle)
redis.call('PEXPIRE', owner_set, idle)
return 0
";

static FITS_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(FITS));
static TOUCH_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(TOUCH));
static ADOPT_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(ADOPT));

/// Which global cap a new session would pass.
#[derive(Debug, PartialEq, Eq)]
pub enum Over {
    Owner,
    Server,
}

pub struct RedisSessions {
    redis: Arc<Redis>,
    idle: Duration,
}

impl RedisSessions {
    pub fn new(redis: Arc<Redis>, idle: Duration) -> Self {
        Self { redis, idle }
    }

    pub fn redis(&self) -> &Arc<Redis> {
        &self.redis
    }

    fn owner_key(&self, id: &str) -> String {
        self.redis.key(&format!("session:{id}:owner"))
    }

    fn init_key(&self, id: &str) -> String {
        self.redis.key(&format!("session:{id}:init"))
    }

    fn all_key(&self) -> String {
        self.redis.key("sessions:all")
    }

    fn owner_set(&self, owner: &str) -> String {
        self.redis.key(&format!("sessions:owner:{owner}"))
    }

    fn idle_ms(&self) -> String {
        self.idle.as_millis().to_string()
    }

    /// Whether one more session of `owner` fits under the caps, counted on every replica.
    pub async fn fits(&self, owner: &str, per_owner: usize, total: usize) -> Result<Result<(), Over>, Trouble> {
        let answer: i64 = self
            .redis
            .script(
                &FITS_SCRIPT,
                &[&self.all_key(), &self.owner_set(owner)],
                &[per_owner.to_string(), total.to_string()],
            )
            .await?;
        Ok(match answer {
            0 => Ok(()),
            1 => Err(Over::Owner),
            _ => Err(Over::Server),
        })
    }

    /// Records that `owner` opened session `id`.
    pub async fn adopt(&self, id: &str, owner: &str) -> Result<(), Trouble> {
        self.redis
            .script::<i64>(
                &ADOPT_SCRIPT,
                &[&self.owner_key(id), &self.all_key()],
                &[id.to_owned(), owner.to_owned(), self.idle_ms(), self.redis.key("")],
            )
            .await
            .map(drop)
    }

    /// The owner of session `id` (refreshing its expiry), or `None` when no replica knows it.
    pub async fn owner(&self, id: &str) -> Result<Option<String>, Trouble> {
        self.redis
            .script(
                &TOUCH_SCRIPT,
                &[&self.owner_key(id), &self.init_key(id), &self.all_key()],
                &[id.to_owned(), self.idle_ms(), self.redis.key("")],
            )
            .await
    }
}

fn store_error(trouble: Trouble) -> SessionStoreError {
    trouble.0.into()
}

#[async_trait::async_trait]
impl SessionStore for RedisSessions {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        self.redis
            .get_json(&self.init_key(session_id))
            .await
            .map_err(store_error)
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let mut set = redis::cmd("SET");
        set.arg(self.init_key(session_id))
            .arg(serde_json::to_string(state)?)
            .arg("PX")
            .arg(self.idle_ms());
        self.redis.run::<()>(set).await.map_err(store_error)
    }

    /// The client ended the session (`DELETE`): every replica forgets it.
    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let owner = self.owner(session_id).await.map_err(store_error)?;
        let mut del = redis::cmd("DEL");
        del.arg(self.init_key(session_id)).arg(self.owner_key(session_id));
        self.redis.run::<()>(del).await.map_err(store_error)?;
        let mut sets = vec![self.all_key()];
        sets.extend(owner.map(|owner| self.owner_set(&owner)));
        for set in sets {
            let mut zrem = redis::cmd("ZREM");
            zrem.arg(set).arg(session_id);
            self.redis.run::<()>(zrem).await.map_err(store_error)?;
        }
        Ok(())
    }
}

/// A stream's events as a Redis stream per SSE stream, capped, expiring with the session.
/// Event ids are `<stream>|<redis entry id>`, so a `Last-Event-ID` names its stream.
pub struct RedisEvents {
    redis: Arc<Redis>,
    idle: Duration,
}

impl RedisEvents {
    pub fn new(redis: Arc<Redis>, idle: Duration) -> Self {
        Self { redis, idle }
    }

    fn key(&self, stream_id: &str) -> String {
        self.redis.key(&format!("events:{stream_id}"))
    }
}

#[async_trait::async_trait]
impl EventStore for RedisEvents {
    async fn store_event(&self, stream_id: &str, event: &ServerSseMessage) -> Result<EventId, EventStoreError> {
        // Priming events (no message) are stored too: a resume after one replays what follows.
        let data = match &event.message {
            Some(message) => serde_json::to_string(message.as_ref())?,
            None => String::new(),
        };
        let key = self.key(stream_id);
        let mut add = redis::cmd("XADD");
        add.arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(EVENTS_PER_STREAM)
            .arg("*")
            .arg("m")
            .arg(data);
        let entry: String = self.redis.run(add).await.map_err(|t| t.0)?;
        let mut expire = redis::cmd("PEXPIRE");
        expire.arg(&key).arg(self.idle.as_millis() as u64);
        self.redis.run::<()>(expire).await.map_err(|t| t.0)?;
        Ok(format!("{stream_id}|{entry}"))
    }

    async fn replay_events_after(&self, last_event_id: &str) -> Result<EventStream, EventStoreError> {
        let (stream_id, entry) = last_event_id
            .rsplit_once('|')
            .ok_or_else(|| format!("not an event id of this server: {last_event_id}"))?;
        let mut range = redis::cmd("XRANGE");
        // Exclusive start: the events after the last one the client saw.
        range.arg(self.key(stream_id)).arg(format!("({entry}")).arg("+");
        let entries: Vec<(String, Vec<(String, String)>)> = self.redis.run(range).await.map_err(|t| t.0)?;
        let mut events = Vec::with_capacity(entries.len());
        for (entry, fields) in entries {
            let data = fields
                .into_iter()
                .find(|(k, _)| k == "m")
                .map(|(_, v)| v)
                .unwrap_or_default();
            let mut event = ServerSseMessage::default();
            event.event_id = Some(format!("{stream_id}|{entry}"));
            if !data.is_empty() {
                let message: ServerJsonRpcMessage = serde_json::from_str(&data)?;
                event.message = Some(Arc::new(message));
            }
            events.push(event);
        }
        Ok(Box::pin(futures_util::stream::iter(events)))
    }
}
