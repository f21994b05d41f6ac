//! What a long-running tool reports as it goes, and how it notices it should stop. A tool takes
//! a `progress: Progress` argument (rmcp fills it from the request, like `Parameters`):
//!
//! - [`Progress::report`] sends `notifications/progress` when the request carries a
//!   `progressToken`, and, when the call runs as a task, shows the message as the task's
//!   `statusMessage` in `tasks/get`;
//! - [`Progress::stopped`] is true once the caller cancelled (a `notifications/cancelled`, or
//!   `tasks/cancel` for a task), so the tool starts no further work.

use rmcp::{
    ErrorData, Peer, RoleServer,
    handler::server::common::{AsRequestContext, FromContextPart},
    model::{ProgressNotificationParam, ProgressToken},
};
use tokio_util::sync::CancellationToken;

use crate::tasks::TaskHandle;

pub struct Progress {
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
    cancelled: CancellationToken,
    task: Option<TaskHandle>,
}

impl<C: AsRequestContext> FromContextPart<C> for Progress {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        let context = context.as_request_context();
        Ok(Self {
            peer: context.peer.clone(),
            token: context.meta.get_progress_token(),
            cancelled: context.ct.clone(),
            task: context.extensions.get::<TaskHandle>().cloned(),
        })
    }
}

impl Progress {
    /// Reports `done` of `total` steps, with a short message for people.
    pub async fn report(&self, done: u32, total: u32, message: String) {
        if let Some(task) = &self.task {
            task.set_status(message.clone()).await;
        }
        if let Some(token) = &self.token {
            let update = ProgressNotificationParam::new(token.clone(), f64::from(done))
                .with_total(f64::from(total))
                .with_message(message);
            // A client that went away misses the update; the work goes on.
            let _ = self.peer.notify_progress(update).await;
        }
    }

    /// Whether the caller asked to stop.
    pub fn stopped(&self) -> bool {
        self.cancelled.is_cancelled()
    }

    /// Resolves when the caller asks to stop.
    pub async fn cancelled(&self) {
        self.cancelled.cancelled().await
    }

    /// The task this call runs as, if it does.
    pub fn task(&self) -> Option<&TaskHandle> {
        self.task.as_ref()
    }
}
