//! Where task state lives, behind one small interface: what `tasks/get` reads and what a
//! running task writes. The default keeps it in this process; a shared store (every replica
//! reading the same tasks) implements the same trait, and neither tools nor the runtime change.
//!
//! A store only holds state. Running the work, and the channels a running task listens on,
//! belong to the process that runs it ([`super::Tasks`]).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use rmcp::model::{DetailedTask, InputRequests, TaskPayload};

/// What a store's methods return: a shared store answers over the network.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// One task as stored: its state on the wire, whose it is, and when it goes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TaskRecord {
    pub task: DetailedTask,
    /// The principal that created it (its rate-limit key); nobody else sees it.
    pub owner: String,
    pub tool: String,
    /// Unix milliseconds after which the record is dropped (`createdAt + ttlMs`).
    pub expires_at_ms: u64,
    pub cancel_requested: bool,
}

/// A change to a stored task.
pub enum Change {
    StatusMessage(String),
    /// The client input the task waits for (empty: none), as `tasks/get` shows it.
    InputRequests(InputRequests),
    /// The final state: completed, failed or cancelled. A task already final keeps its state.
    Finish(TaskPayload),
}

/// Why a new task was not stored.
#[derive(Debug, PartialEq, Eq)]
pub enum NotCreated {
    /// The owner holds `limit` tasks already.
    OwnerFull {
        limit: usize,
    },
    /// The server holds `limit` tasks already.
    ServerFull {
        limit: usize,
    },
    Unavailable(Unavailable),
}

/// A shared store that cannot answer now (the request may be retried).
#[derive(Debug, PartialEq, Eq)]
pub struct Unavailable(pub String);

pub trait TaskStore: Send + Sync {
    /// Stores `record` unless its owner, or the server, already holds as many tasks as allowed
    /// (tasks count until they expire, finished or not: their results take memory too).
    fn create(&self, record: TaskRecord, per_owner: usize, total: usize) -> BoxFuture<'_, Result<(), NotCreated>>;

    /// The task `id` if `owner` created it and it has not expired; another owner's task is
    /// reported exactly as a missing one.
    fn get<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Result<Option<TaskRecord>, Unavailable>>;

    /// Applies `change` to task `id` (whoever owns it: the runtime calls this).
    fn update<'a>(&'a self, id: &'a str, change: Change) -> BoxFuture<'a, Result<(), Unavailable>>;

    /// Marks `owner`'s task `id` as asked to stop; `None` if it is not theirs or is gone.
    fn request_cancel<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<Option<TaskRecord>, Unavailable>>;

    /// Whether task `id` was asked to stop (for the replica running it, when the ask may have
    /// reached another one).
    fn cancel_requested<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, Unavailable>>;

    /// Whether other processes share this store (then a running task also watches it for a
    /// cancel that reached another replica).
    fn shared(&self) -> bool {
        false
    }

    /// Drops expired tasks.
    fn sweep(&self) -> BoxFuture<'_, Result<(), Unavailable>>;

    /// Tasks held (for the status tool and tests).
    fn held(&self) -> BoxFuture<'_, Result<usize, Unavailable>>;
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The default: tasks in this process's memory, bounded by the caps and TTLs.
#[derive(Default)]
pub struct MemoryStore {
    tasks: Mutex<HashMap<String, Kept>>,
}

/// One task as the memory store keeps it: the record while the task runs; once final, the
/// record as JSON text, parsed again for each read. A result parsed into a JSON tree takes
/// several times the memory of its text, and a final record is read far less often than it
/// is held (until its TTL runs out).
enum Kept {
    Running(TaskRecord),
    Final {
        owner: String,
        expires_at_ms: u64,
        cancel_requested: bool,
        json: Box<str>,
    },
}

impl Kept {
    fn owner(&self) -> &str {
        match self {
            Self::Running(record) => &record.owner,
            Self::Final { owner, .. } => owner,
        }
    }

    fn expires_at_ms(&self) -> u64 {
        match self {
            Self::Running(record) => record.expires_at_ms,
            Self::Final { expires_at_ms, .. } => *expires_at_ms,
        }
    }

    fn cancel_requested(&mut self) -> &mut bool {
        match self {
            Self::Running(record) => &mut record.cancel_requested,
            Self::Final { cancel_requested, .. } => cancel_requested,
        }
    }

    fn record(&self) -> TaskRecord {
        match self {
            Self::Running(record) => record.clone(),
            Self::Final {
                json, cancel_requested, ..
            } => {
                let mut record: TaskRecord = serde_json::from_str(json).expect("a stored record parses");
                record.cancel_requested = *cancel_requested;
                record
            }
        }
    }

    /// Applies `change`; a record that becomes final is kept as its JSON from then on.
    fn update(&mut self, change: Change) {
        let Self::Running(record) = self else {
            return; // final: kept as it is
        };
        apply(&mut record.task, change);
        if record.task.status().is_terminal() {
            let json = serde_json::to_string(record).expect("a task record serializes");
            *self = Self::Final {
                owner: std::mem::take(&mut record.owner),
                expires_at_ms: record.expires_at_ms,
                cancel_requested: record.cancel_requested,
                json: json.into_boxed_str(),
            };
        }
    }
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Kept>) -> T) -> T {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        tasks.retain(|_, kept| kept.expires_at_ms() > now);
        f(&mut tasks)
    }
}

impl TaskStore for MemoryStore {
    fn create(&self, record: TaskRecord, per_owner: usize, total: usize) -> BoxFuture<'_, Result<(), NotCreated>> {
        let stored = self.with(|tasks| {
            if tasks.len() >= total {
                return Err(NotCreated::ServerFull { limit: total });
            }
            if tasks.values().filter(|kept| kept.owner() == record.owner).count() >= per_owner {
                return Err(NotCreated::OwnerFull { limit: per_owner });
            }
            tasks.insert(record.task.task.task_id.clone(), Kept::Running(record));
            Ok(())
        });
        Box::pin(std::future::ready(stored))
    }

    fn get<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Result<Option<TaskRecord>, Unavailable>> {
        let found = self.with(|tasks| tasks.get(id).filter(|kept| kept.owner() == owner).map(Kept::record));
        Box::pin(std::future::ready(Ok(found)))
    }

    fn update<'a>(&'a self, id: &'a str, change: Change) -> BoxFuture<'a, Result<(), Unavailable>> {
        self.with(|tasks| {
            if let Some(kept) = tasks.get_mut(id) {
                kept.update(change);
            }
        });
        Box::pin(std::future::ready(Ok(())))
    }

    fn request_cancel<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<Option<TaskRecord>, Unavailable>> {
        let found = self.with(|tasks| {
            let kept = tasks.get_mut(id).filter(|kept| kept.owner() == owner)?;
            *kept.cancel_requested() = true;
            Some(kept.record())
        });
        Box::pin(std::future::ready(Ok(found)))
    }

    fn cancel_requested<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, Unavailable>> {
        let asked = self.with(|tasks| tasks.get_mut(id).is_some_and(|kept| *kept.cancel_requested()));
        Box::pin(std::future::ready(Ok(asked)))
    }

    fn sweep(&self) -> BoxFuture<'_, Result<(), Unavailable>> {
        self.with(|_| ());
        Box::pin(std::future::ready(Ok(())))
    }

    fn held(&self) -> BoxFuture<'_, Result<usize, Unavailable>> {
        Box::pin(std::future::ready(Ok(self.with(|tasks| tasks.len()))))
    }
}

/// A change as every store applies it; a final state is never replaced.
pub fn apply(task: &mut DetailedTask, change: Change) {
    if task.status().is_terminal() {
        return;
    }
    match change {
        Change::StatusMessage(message) => task.task.status_message = Some(message),
        Change::InputRequests(requests) if requests.is_empty() => task.payload = TaskPayload::Working,
        Change::InputRequests(input_requests) => task.payload = TaskPayload::InputRequired { input_requests },
        Change::Finish(payload) => task.payload = payload,
    }
    task.task.status = task.payload.status();
    task.task.last_updated_at = rmcp::task_manager::current_timestamp();
}

#[cfg(test)]
mod tests {
    use rmcp::model::{Task, TaskStatus};

    use super::*;

    fn record(id: &str, owner: &str, expires_at_ms: u64) -> TaskRecord {
        let task = Task::new(id, TaskStatus::Working, "t", "t");
        TaskRecord {
            task: DetailedTask::new(task, TaskPayload::Working),
            owner: owner.into(),
            tool: "tool".into(),
            expires_at_ms,
            cancel_requested: false,
        }
    }

    #[tokio::test]
    async fn caps_owners_hides_others_tasks_and_drops_expired_ones() {
        let store = MemoryStore::default();
        let later = now_ms() + 60_000;
        store.create(record("a1", "alice", later), 2, 3).await.unwrap();
        store.create(record("a2", "alice", later), 2, 3).await.unwrap();
        assert_eq!(
            store.create(record("a3", "alice", later), 2, 3).await,
            Err(NotCreated::OwnerFull { limit: 2 })
        );
        store.create(record("b1", "bob", later), 2, 3).await.unwrap();
        assert_eq!(
            store.create(record("b2", "bob", later), 2, 3).await,
            Err(NotCreated::ServerFull { limit: 3 })
        );
        assert!(store.get("a1", "alice").await.unwrap().is_some());
        assert!(store.get("a1", "bob").await.unwrap().is_none());
        assert!(store.request_cancel("a1", "bob").await.unwrap().is_none());

        store.create(record("old", "carol", now_ms() - 1), 2, 10).await.unwrap();
        assert!(
            store.get("old", "carol").await.unwrap().is_none(),
            "expired tasks are gone"
        );
        assert_eq!(store.held().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_final_state_is_kept() {
        let store = MemoryStore::default();
        store.create(record("t", "o", now_ms() + 60_000), 1, 1).await.unwrap();
        store.update("t", Change::Finish(TaskPayload::Cancelled)).await.unwrap();
        store.update("t", Change::StatusMessage("late".into())).await.unwrap();
        let task = store.get("t", "o").await.unwrap().unwrap().task;
        assert_eq!(task.status(), TaskStatus::Cancelled);
        assert_eq!(task.task.status_message, None);
    }

    #[tokio::test]
    async fn a_final_record_kept_as_json_reads_back_whole() {
        let store = MemoryStore::default();
        store.create(record("t", "o", now_ms() + 60_000), 1, 1).await.unwrap();
        let running = store.get("t", "o").await.unwrap().unwrap();
        let mut result = rmcp::model::JsonObject::new();
        result.insert("isError".into(), false.into());
        let payload = TaskPayload::Completed { result };
        store.update("t", Change::Finish(payload.clone())).await.unwrap();
        store.request_cancel("t", "o").await.unwrap().unwrap();
        let done = store.get("t", "o").await.unwrap().unwrap();
        assert_eq!(done.task.payload, payload);
        assert_eq!(
            (done.owner, done.tool, done.expires_at_ms),
            (running.owner, running.tool, running.expires_at_ms)
        );
        assert!(done.cancel_requested && store.cancel_requested("t").await.unwrap());
        assert!(store.get("t", "someone else").await.unwrap().is_none());
    }
}
