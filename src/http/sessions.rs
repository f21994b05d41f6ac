//! Handshake-revision sessions (2025-11-25, 2025-06-18), bounded and owned.
//!
//! rmcp keeps each session in its `LocalSessionManager` (a task and its channels, tens of KiB);
//! this wrapper adds what an exposed server needs around it: a cap on live sessions in all and
//! per caller (so one client cannot fill memory), and the principal that opened each session,
//! so any other caller is told the session does not exist. rmcp calls `close_session` both on
//! `DELETE` and when a session ends by itself (idle timeout, transport closed), which is where
//! a session's place under the caps is given back.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures_core::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    transport::streamable_http_server::session::{
        ServerSseMessage, SessionId, SessionManager,
        local::{LocalSessionManager, LocalSessionManagerError},
    },
};

/// The bounds on sessions; settings MCP_MAX_SESSIONS, MCP_MAX_SESSIONS_PER_CLIENT and
/// MCP_SESSION_IDLE_TIMEOUT.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub max_total: usize,
    pub max_per_owner: usize,
    pub idle_timeout: Duration,
}

/// Why a new session was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// The server holds as many sessions as it may.
    Server(usize),
    /// This caller holds as many sessions as one caller may.
    Owner(usize),
}

pub struct Sessions {
    local: LocalSessionManager,
    limits: SessionLimits,
    table: std::sync::Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// Each live session's owner (a `Principal::key`).
    owners: HashMap<SessionId, Arc<str>>,
    /// Sessions per owner, reservations included.
    counts: HashMap<Arc<str>, usize>,
    /// Sessions in all, reservations included.
    total: usize,
}

impl Table {
    fn release(&mut self, owner: &Arc<str>) {
        self.total -= 1;
        if let Some(count) = self.counts.get_mut(owner) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(owner);
            }
        }
    }
}

/// A place under the caps, held while an `initialize` is answered; given back on drop unless
/// the session was made.
pub struct Reservation {
    sessions: Arc<Sessions>,
    owner: Option<Arc<str>>,
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Self {
        let mut local = LocalSessionManager::default();
        local.session_config.keep_alive = Some(limits.idle_timeout);
        Self {
            local,
            limits,
            table: Default::default(),
        }
    }

    /// Holds a place for a new session of `owner`, or says which cap is full.
    pub fn reserve(self: &Arc<Self>, owner: &str) -> Result<Reservation, Full> {
        let mut table = self.table.lock().expect("session table");
        if table.total >= self.limits.max_total {
            return Err(Full::Server(self.limits.max_total));
        }
        let owner: Arc<str> = match table.counts.get_key_value(owner) {
            Some((key, _)) => key.clone(),
            None => owner.into(),
        };
        let count = table.counts.entry(owner.clone()).or_default();
        if *count >= self.limits.max_per_owner {
            return Err(Full::Owner(self.limits.max_per_owner));
        }
        *count += 1;
        table.total += 1;
        Ok(Reservation {
            sessions: self.clone(),
            owner: Some(owner),
        })
    }

    /// Whether session `id` is live and belongs to `owner`. Another caller's session and an
    /// unknown one look the same, so a session id cannot be probed.
    pub fn owned_by(&self, id: &str, owner: &str) -> bool {
        let table = self.table.lock().expect("session table");
        table.owners.get(id).is_some_and(|o| &**o == owner)
    }

    /// Live sessions, for the status tool and tests.
    pub fn live(&self) -> usize {
        self.table.lock().expect("session table").owners.len()
    }

    fn forget(&self, id: &SessionId) {
        let mut table = self.table.lock().expect("session table");
        if let Some(owner) = table.owners.remove(id) {
            table.release(&owner);
        }
    }
}

impl Reservation {
    /// The session was made: it keeps its place until it ends.
    pub async fn confirm(mut self, id: &str) {
        let owner = self.owner.take().expect("confirmed once");
        let id: SessionId = id.into();
        self.sessions
            .table
            .lock()
            .expect("session table")
            .owners
            .insert(id.clone(), owner);
        // The session may have ended while its first answer was on its way out.
        if !self.sessions.local.has_session(&id).await.unwrap_or(false) {
            self.sessions.forget(&id);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            self.sessions.table.lock().expect("session table").release(&owner);
        }
    }
}

/// rmcp's session interface, delegated to the local manager; closing also frees the place.
impl SessionManager for Sessions {
    type Error = LocalSessionManagerError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.local.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.local.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.local.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.forget(id);
        self.local.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.local.create_stream(id, message).await
    }

    async fn accept_message(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<(), Self::Error> {
        self.local.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.local.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.local.resume(id, last_event_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(max_total: usize, max_per_owner: usize) -> Arc<Sessions> {
        Arc::new(Sessions::new(SessionLimits {
            max_total,
            max_per_owner,
            idle_timeout: Duration::from_secs(60),
        }))
    }

    #[test]
    fn caps_count_reservations_per_owner_and_in_all() {
        let s = sessions(3, 2);
        let a1 = s.reserve("a").unwrap();
        let _a2 = s.reserve("a").unwrap();
        assert_eq!(s.reserve("a").err(), Some(Full::Owner(2)));
        let _b = s.reserve("b").unwrap();
        assert_eq!(s.reserve("c").err(), Some(Full::Server(3)));
        drop(a1);
        assert!(s.reserve("c").is_ok(), "a dropped reservation gives its place back");
    }

    #[tokio::test]
    async fn a_confirmed_session_belongs_to_its_owner_until_closed() {
        let s = sessions(10, 10);
        let (id, _transport) = s.create_session().await.unwrap();
        s.reserve("a").unwrap().confirm(&id).await;
        assert!(s.owned_by(&id, "a") && !s.owned_by(&id, "b"));
        assert_eq!(s.live(), 1);
        s.close_session(&id).await.unwrap();
        assert!(!s.owned_by(&id, "a"));
        assert_eq!((s.live(), s.table.lock().unwrap().total), (0, 0));
    }
}
