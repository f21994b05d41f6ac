//! Long-running tool calls as tasks (the `io.modelcontextprotocol/tasks` extension): the call
//! is answered at once with a task, the work goes on here, and the client polls `tasks/get`,
//! answers input requests with `tasks/update` and stops the work with `tasks/cancel`.
//!
//! rmcp's own `TaskManager` runs tasks too, but keeps them unowned, uncapped and in one
//! process; this runtime adds what a server facing many callers needs: a task belongs to the
//! principal that created it, tasks are capped per caller and in all, each expires after its
//! TTL, its work stops at the tool's timeout or the end of a drain, and its state sits behind
//! [`TaskStore`], so a shared store can hold it without touching tools.

mod result_bytes;
mod store;

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rmcp::{
    ErrorData,
    model::{
        CallToolResponse, CallToolResult, DetailedTask, InputRequest, InputRequests, InputResponses, JsonObject, Task,
        TaskPayload, TaskStatus,
    },
};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use store::{BoxFuture, Change, MemoryStore, NotCreated, TaskRecord, TaskStore, Unavailable, apply, now_ms};

use result_bytes::{ResultBytes, json_size};

use crate::{guard, server::SHUTTING_DOWN, shutdown::Shutdown, telemetry::clip};

/// Limits on tasks, from the settings.
#[derive(Debug, Clone)]
pub struct TaskLimits {
    /// How long a result stays readable beyond the tool's timeout; a task is kept (its TTL)
    /// for the timeout plus this, so no result is dropped before its task could end.
    pub result_ttl: Duration,
    /// How often clients are asked to poll.
    pub poll_interval: Duration,
    pub max_total: usize,
    pub max_per_caller: usize,
    /// The largest result a task keeps, as JSON; a larger one becomes an error result.
    pub max_result_bytes: usize,
    /// Result bytes held in all; when full, new tasks are refused until results expire.
    pub max_result_bytes_in_all: usize,
}

/// The task runtime; cloning is cheap.
#[derive(Clone)]
pub struct Tasks {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn TaskStore>,
    limits: TaskLimits,
    shutdown: Shutdown,
    /// Tasks running in this process: how to stop them and the input they wait for.
    running: Mutex<HashMap<String, Running>>,
    /// The bytes of the results this process stored, until they expire.
    result_bytes: Mutex<ResultBytes>,
}

struct Running {
    cancel: CancellationToken,
    waiting: InputRequests,
    answers: HashMap<String, oneshot::Sender<Value>>,
    used_keys: std::collections::HashSet<String>,
}

/// What a tool running as a task can do beyond a plain call: report its status in
/// `tasks/get` and ask the client for input. Tools reach it through [`crate::progress::Progress`].
#[derive(Clone)]
pub struct TaskHandle {
    pub id: String,
    tasks: Tasks,
}

impl Tasks {
    pub fn new(store: Arc<dyn TaskStore>, limits: TaskLimits, shutdown: Shutdown) -> Self {
        let limits_ttl = limits.result_ttl;
        let tasks = Self {
            inner: Arc::new(Inner {
                store,
                limits,
                shutdown,
                running: Mutex::new(HashMap::new()),
                result_bytes: Mutex::default(),
            }),
        };
        // Expired results leave memory even when no one calls.
        let every = (limits_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
        crate::periodic::every(every, &tasks.inner, |inner| {
            let store = inner.store.clone();
            tokio::spawn(async move {
                let _ = store.sweep().await;
            });
        });
        tasks
    }

    pub fn limits(&self) -> &TaskLimits {
        &self.inner.limits
    }

    /// Tasks held (running or holding a result); 0 when the store cannot say.
    pub async fn held(&self) -> usize {
        self.inner.store.held().await.unwrap_or(0)
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn result_bytes(&self) -> std::sync::MutexGuard<'_, ResultBytes> {
        self.inner.result_bytes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The refusal of a new task while results fill the bytes they may hold: the work would
    /// be done for nothing, its result having no room; retryable once the oldest expires.
    fn results_full(&self, tool: &str) -> Option<CallToolResult> {
        let limit = self.inner.limits.max_result_bytes_in_all;
        let mut bytes = self.result_bytes();
        let held = bytes.held(now_ms());
        (held >= limit).then(|| {
            let retry_s = bytes.next_expiry_in_ms(now_ms()).div_ceil(1000).max(1);
            guard::refusal(format!(
                "tool '{tool}' was not started: the server holds {held} bytes of task results, the most it keeps \
                 ({limit}); retry in {retry_s} s, when the oldest expires"
            ))
        })
    }

    /// The final state to store, within the result bounds. Its size is that of the JSON a
    /// client reads; a result over the per-result bound, or one that would take the bytes held
    /// past their total, is replaced by an error result saying so. What is stored is counted
    /// until `expires_at_ms`.
    fn bounded(&self, payload: TaskPayload, tool: &str, expires_at_ms: u64) -> TaskPayload {
        let limits = &self.inner.limits;
        let size = payload_size(&payload);
        let mut bytes = self.result_bytes();
        let now = now_ms();
        let held = bytes.held(now);
        let refusal = if size > limits.max_result_bytes {
            Some(format!(
                "tool '{tool}' finished, but its result was {size} bytes, more than the {} a task keeps; \
                 call it again asking for less",
                limits.max_result_bytes
            ))
        } else if held + size > limits.max_result_bytes_in_all {
            let retry_s = bytes.next_expiry_in_ms(now).div_ceil(1000).max(1);
            Some(format!(
                "tool '{tool}' finished, but its result ({size} bytes) did not fit: the server holds {held} \
                 bytes of task results and keeps at most {}; call it again in {retry_s} s, when the oldest \
                 expires",
                limits.max_result_bytes_in_all
            ))
        } else {
            None
        };
        let (payload, stored) = match refusal {
            None => (payload, size),
            Some(message) => {
                tracing::warn!(
                    event = "task_result_dropped",
                    tool = clip(tool).as_ref(),
                    bytes = size,
                    "{message}"
                );
                let replaced = TaskPayload::Completed {
                    result: object(&guard::refusal(message)),
                };
                // A few hundred bytes: counted too, even past the total.
                let stored = payload_size(&replaced);
                (replaced, stored)
            }
        };
        bytes.add(stored, expires_at_ms);
        payload
    }

    /// Starts `work` as `owner`'s task for `tool` and returns the task to answer with, or the
    /// result that refuses it (too many tasks held). The work ends at `timeout`, on
    /// `tasks/cancel`, or when a drain runs out; its outcome becomes the task's final state.
    pub async fn start<W, F>(
        &self,
        owner: &str,
        subject: &str,
        tool: &str,
        timeout: Duration,
        work: W,
    ) -> Result<Result<Task, CallToolResult>, ErrorData>
    where
        W: FnOnce(TaskHandle, CancellationToken) -> F,
        F: Future<Output = Result<CallToolResponse, ErrorData>> + Send + 'static,
    {
        let Some(in_flight) = self.inner.shutdown.track() else {
            return Err(ErrorData::new(
                SHUTTING_DOWN,
                crate::server::REFUSED_WHILE_DRAINING,
                None,
            ));
        };
        if let Some(refusal) = self.results_full(tool) {
            return Ok(Err(refusal));
        }
        let limits = &self.inner.limits;
        let ttl = timeout + limits.result_ttl;
        let expires_at_ms = now_ms() + ttl.as_millis() as u64;
        let id = new_task_id();
        let now = rmcp::task_manager::current_timestamp();
        let mut task = Task::new(id.clone(), TaskStatus::Working, now.clone(), now)
            .with_ttl_ms(ttl.as_millis() as u64)
            .with_poll_interval_ms(limits.poll_interval.as_millis() as u64);
        task.status_message = Some(format!("{tool} is running"));
        let record = TaskRecord {
            task: DetailedTask::new(task.clone(), TaskPayload::Working),
            owner: owner.to_owned(),
            tool: tool.to_owned(),
            expires_at_ms,
            cancel_requested: false,
        };
        if let Err(not_created) = self
            .inner
            .store
            .create(record, limits.max_per_caller, limits.max_total)
            .await
        {
            let ttl_s = ttl.as_secs();
            let message = match not_created {
                NotCreated::Unavailable(trouble) => return Err(unavailable(trouble)),
                NotCreated::OwnerFull { limit } => format!(
                    "tool '{tool}' was not started: this caller already holds {limit} tasks, the most allowed; \
                     a task is kept {ttl_s} s after it starts, so retry when one expires"
                ),
                NotCreated::ServerFull { limit } => format!(
                    "tool '{tool}' was not started: the server holds {limit} tasks, the most it keeps; retry later"
                ),
            };
            return Ok(Err(guard::refusal(message)));
        }

        let cancel = CancellationToken::new();
        self.running().insert(
            id.clone(),
            Running {
                cancel: cancel.clone(),
                waiting: InputRequests::new(),
                answers: HashMap::new(),
                used_keys: Default::default(),
            },
        );
        let handle = TaskHandle {
            id: id.clone(),
            tasks: self.clone(),
        };
        // A panic in the tool fails its task, as an internal error, rather than leaving it
        // working until it expires.
        let work = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(work(handle, cancel.clone())));
        let tasks = self.clone();
        let (tool, subject) = (tool.to_owned(), subject.to_owned());
        tokio::spawn(async move {
            let _in_flight = in_flight;
            let started = Instant::now();
            let shutdown = tasks.inner.shutdown.clone();
            let cancelled_elsewhere = tasks.cancelled_elsewhere(&id);
            let (outcome, payload) = tokio::select! {
                done = tokio::time::timeout(timeout, work) => match done {
                    Ok(Ok(Ok(CallToolResponse::Complete(result)))) => {
                        let outcome = if result.is_error == Some(true) { "error" } else { "completed" };
                        (outcome, TaskPayload::Completed { result: object(&result) })
                    }
                    Ok(Ok(Ok(_))) => ("failed", TaskPayload::Failed {
                        error: object(&ErrorData::internal_error(
                            "the tool asked for input the request's way; inside a task it asks through its task",
                            None,
                        )),
                    }),
                    Ok(Ok(Err(error))) => ("failed", TaskPayload::Failed { error: object(&error) }),
                    Ok(Err(_)) => ("panicked", TaskPayload::Failed {
                        error: object(&ErrorData::internal_error(
                            "the tool failed while running this task (a fault in the server, logged); retrying may not help",
                            None,
                        )),
                    }),
                    Err(_) => ("timed_out", TaskPayload::Completed { result: object(&guard::timed_out(&tool, timeout)) }),
                },
                _ = cancel.cancelled() => ("cancelled", TaskPayload::Cancelled),
                _ = cancelled_elsewhere => ("cancelled", TaskPayload::Cancelled),
                _ = shutdown.aborted() => {
                    // Long enough for a poller to read why before the process exits.
                    shutdown.linger(tasks.inner.limits.poll_interval * 2);
                    ("shutdown", TaskPayload::Failed {
                        error: object(&ErrorData::new(
                            SHUTTING_DOWN,
                            "the server shut down before this task finished (its drain period ran out); call the tool again",
                            None,
                        )),
                    })
                }
            };
            tasks.running().remove(&id);
            let payload = tasks.bounded(payload, &tool, expires_at_ms);
            if let Err(trouble) = tasks.inner.store.update(&id, Change::Finish(payload)).await {
                tracing::error!(event = "task_state_lost", task_id = id.as_str(), error = %trouble.0, "the task's final state could not be stored");
            }
            tracing::info!(
                event = "task",
                task_id = id.as_str(),
                tool = clip(&tool).as_ref(),
                subject = clip(&subject).as_ref(),
                outcome,
                duration_ms = started.elapsed().as_millis() as u64,
                "task ended: {outcome}"
            );
        });
        Ok(Ok(task))
    }

    /// Resolves when a shared store says task `id` was asked to stop (a `tasks/cancel` that
    /// reached another replica); never, with a store of this process alone.
    fn cancelled_elsewhere(&self, id: &str) -> impl Future<Output = ()> + Send + 'static {
        let (store, id, every) = (
            self.inner.store.clone(),
            id.to_owned(),
            self.inner.limits.poll_interval / 2,
        );
        async move {
            if !store.shared() {
                return std::future::pending().await;
            }
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if store.cancel_requested(&id).await == Ok(true) {
                    return;
                }
            }
        }
    }

    /// `tasks/get`: the task as it stands, if `owner` created it.
    pub async fn get(&self, id: &str, owner: &str) -> Result<DetailedTask, ErrorData> {
        let found = self.inner.store.get(id, owner).await.map_err(unavailable)?;
        Ok(found.ok_or_else(|| not_found(id))?.task)
    }

    /// `tasks/cancel`: stops the work if it still runs here. Acknowledged for a task already
    /// final, which keeps its state.
    pub async fn cancel(&self, id: &str, owner: &str) -> Result<(), ErrorData> {
        self.inner
            .store
            .request_cancel(id, owner)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| not_found(id))?;
        if let Some(running) = self.running().get(id) {
            running.cancel.cancel();
        }
        Ok(())
    }

    /// `tasks/update`: hands the client's answers to the input the task waits for; answers to
    /// anything it is not waiting for are ignored.
    pub async fn update(&self, id: &str, owner: &str, answers: InputResponses) -> Result<(), ErrorData> {
        let found = self.inner.store.get(id, owner).await.map_err(unavailable)?;
        found.ok_or_else(|| not_found(id))?;
        let waiting = {
            let mut running = self.running();
            let Some(task) = running.get_mut(id) else {
                return Ok(());
            };
            for (key, answer) in answers {
                if let Some(sender) = task.answers.remove(&key) {
                    task.waiting.remove(&key);
                    let _ = sender.send(answer);
                }
            }
            task.waiting.clone()
        };
        self.inner
            .store
            .update(id, Change::InputRequests(waiting))
            .await
            .map_err(unavailable)
    }
}

impl TaskHandle {
    /// Shows `message` as the task's `statusMessage` in `tasks/get`.
    pub async fn set_status(&self, message: String) {
        // A status the store missed is overtaken by the next one; the work goes on.
        let _ = self
            .tasks
            .inner
            .store
            .update(&self.id, Change::StatusMessage(message))
            .await;
    }

    /// Asks the client for input (`input_required` in `tasks/get` until `tasks/update`
    /// answers it under `key`, unique within the task) and waits for the answer.
    pub async fn input(&self, key: &str, request: InputRequest) -> Result<Value, ErrorData> {
        let (sender, answer) = oneshot::channel();
        let waiting = {
            let mut running = self.tasks.running();
            let task = running
                .get_mut(&self.id)
                .ok_or_else(|| ErrorData::internal_error("the task is no longer running", None))?;
            if !task.used_keys.insert(key.to_owned()) {
                return Err(ErrorData::internal_error(
                    format!("input key '{key}' was already used in this task"),
                    None,
                ));
            }
            task.waiting.insert(key.to_owned(), request);
            task.answers.insert(key.to_owned(), sender);
            task.waiting.clone()
        };
        self.tasks
            .inner
            .store
            .update(&self.id, Change::InputRequests(waiting))
            .await
            .map_err(unavailable)?;
        answer
            .await
            .map_err(|_| ErrorData::internal_error("the task stopped waiting for input", None))
    }
}

/// The error for a task request the (shared) store could not serve: retryable.
fn unavailable(trouble: Unavailable) -> ErrorData {
    ErrorData::new(
        SHUTTING_DOWN,
        format!("task state is unavailable right now ({}); retry in a second", trouble.0),
        None,
    )
}

fn not_found(id: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!(
            "no task '{}' for this caller: it does not exist, has expired, or another caller created it",
            clip(id)
        ),
        None,
    )
}

/// 122 random bits from the system's secure generator: a handle no one guesses.
fn new_task_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The bytes a final state's result or error takes as JSON.
fn payload_size(payload: &TaskPayload) -> usize {
    match payload {
        TaskPayload::Completed { result } => json_size(result),
        TaskPayload::Failed { error } => json_size(error),
        _ => 0,
    }
}

fn object(value: &impl serde::Serialize) -> JsonObject {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => JsonObject::new(),
    }
}
