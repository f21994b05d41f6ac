//! Tasks on Redis, so `tasks/get` and `tasks/cancel` work on any replica and results outlive a
//! restart. One key per task holds its record (JSON) and expires with it; a second key says it
//! was asked to stop (the replica running it watches that key); two sorted sets of task ids by
//! expiry count what each owner and the server hold, for the caps. Every key expires with the
//! last task it concerns, so Redis holds nothing for tasks no one can read any more.

use std::sync::{Arc, LazyLock};

use crate::{
    state::Redis,
    tasks::{BoxFuture, Change, NotCreated, TaskRecord, TaskStore, Unavailable, apply, now_ms},
};

/// KEYS: the record, the owner's set, the server's set. ARGV: id, record, expiry (unix ms),
/// per-owner cap, server cap. Returns 0 when stored, 1 when the owner is full, 2 when the
/// server is.
const CREATE: &str = r"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then return 2 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 1 end
local at = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', at)
redis.call('ZADD', KEYS[2], at, ARGV[1])
redis.call('ZADD', KEYS[3], at, ARGV[1])
for i = 2, 3 do
  if redis.call('PEXPIRETIME', KEYS[i]) < at then redis.call('PEXPIREAT', KEYS[i], at) end
end
return 0
";

static CREATE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(CREATE));

pub struct RedisTaskStore {
    redis: Arc<Redis>,
}

impl RedisTaskStore {
    pub fn new(redis: Arc<Redis>) -> Self {
        Self { redis }
    }

    fn record_key(&self, id: &str) -> String {
        self.redis.key(&format!("task:{id}"))
    }

    fn cancel_key(&self, id: &str) -> String {
        self.redis.key(&format!("task:{id}:cancel"))
    }

    fn all_key(&self) -> String {
        self.redis.key("tasks:all")
    }

    async fn read(&self, id: &str) -> Result<Option<TaskRecord>, Unavailable> {
        let record: Option<TaskRecord> = self
            .redis
            .get_json(&self.record_key(id))
            .await
            .map_err(|t| Unavailable(t.0))?;
        Ok(record.filter(|r| r.expires_at_ms > now_ms()))
    }
}

impl TaskStore for RedisTaskStore {
    fn create(&self, record: TaskRecord, per_owner: usize, total: usize) -> BoxFuture<'_, Result<(), NotCreated>> {
        Box::pin(async move {
            let id = record.task.task.task_id.clone();
            let json = serde_json::to_string(&record).expect("a task record serializes");
            let owner_key = self.redis.key(&format!("tasks:owner:{}", record.owner));
            let answer: i64 = self
                .redis
                .script(
                    &CREATE_SCRIPT,
                    &[&self.record_key(&id), &owner_key, &self.all_key()],
                    &[
                        id,
                        json,
                        record.expires_at_ms.to_string(),
                        per_owner.to_string(),
                        total.to_string(),
                    ],
                )
                .await
                .map_err(|t| NotCreated::Unavailable(Unavailable(t.0)))?;
            match answer {
                0 => Ok(()),
                1 => Err(NotCreated::OwnerFull { limit: per_owner }),
                _ => Err(NotCreated::ServerFull { limit: total }),
            }
        })
    }

    fn get<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Result<Option<TaskRecord>, Unavailable>> {
        Box::pin(async move { Ok(self.read(id).await?.filter(|r| r.owner == owner)) })
    }

    fn update<'a>(&'a self, id: &'a str, change: Change) -> BoxFuture<'a, Result<(), Unavailable>> {
        Box::pin(async move {
            let Some(mut record) = self.read(id).await? else {
                return Ok(());
            };
            apply(&mut record.task, change);
            let json = serde_json::to_string(&record).expect("a task record serializes");
            // Only while the record exists, keeping its expiry.
            let mut set = redis::cmd("SET");
            set.arg(self.record_key(id)).arg(json).arg("XX").arg("KEEPTTL");
            self.redis
                .run::<Option<String>>(set)
                .await
                .map(drop)
                .map_err(|t| Unavailable(t.0))
        })
    }

    fn request_cancel<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<Option<TaskRecord>, Unavailable>> {
        Box::pin(async move {
            let Some(record) = self.read(id).await?.filter(|r| r.owner == owner) else {
                return Ok(None);
            };
            let mut set = redis::cmd("SET");
            set.arg(self.cancel_key(id))
                .arg(1)
                .arg("PXAT")
                .arg(record.expires_at_ms);
            self.redis.run::<()>(set).await.map_err(|t| Unavailable(t.0))?;
            Ok(Some(record))
        })
    }

    fn cancel_requested<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, Unavailable>> {
        Box::pin(async move {
            let mut exists = redis::cmd("EXISTS");
            exists.arg(self.cancel_key(id));
            self.redis.run::<bool>(exists).await.map_err(|t| Unavailable(t.0))
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn sweep(&self) -> BoxFuture<'_, Result<(), Unavailable>> {
        Box::pin(async move {
            let mut trim = redis::cmd("ZREMRANGEBYSCORE");
            trim.arg(self.all_key()).arg("-inf").arg(now_ms());
            self.redis.run::<()>(trim).await.map_err(|t| Unavailable(t.0))
        })
    }

    fn held(&self) -> BoxFuture<'_, Result<usize, Unavailable>> {
        Box::pin(async move {
            let mut count = redis::cmd("ZCOUNT");
            count.arg(self.all_key()).arg(now_ms()).arg("+inf");
            self.redis.run::<usize>(count).await.map_err(|t| Unavailable(t.0))
        })
    }
}
