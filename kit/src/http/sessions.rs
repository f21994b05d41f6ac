//! Handshake-revision sessions (2025-11-25, 2025-06-18), bounded and owned.
//!
//! rmcp keeps each session in its `LocalSessionManager` (a task and its channels, tens of KiB);
//! this wrapper adds what an exposed server needs around it: a cap on live sessions in all and
//! per caller (so one client cannot fill memory), and the principal that opened each session,
//! so any other caller is told the session does not exist. rmcp calls `close_session` both on
//! `DELETE` and when a session ends by itself (idle timeout, transport closed), which is where
//! a session's place under the caps is given back.
//!
//! With Redis (`state::sessions`), the owner and the caps are also kept there, so every
//! replica checks them, and a session another replica opened (or this one, before a restart)
//! is restored here on its next request.

use crate::refusals::Refusals;
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_core::Stream;
use rmcp::{
    model::{ClientJsonRpcMessage, ClientNotification, ServerJsonRpcMessage},
    transport::streamable_http_server::session::{
        RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
        local::{LocalSessionManager, LocalSessionManagerError},
        store::EventStore,
    },
};

use crate::{
    state::{
        OnTrouble,
        sessions::{Over, RedisEvents, RedisSessions},
    },
    telemetry::id_prefix,
};

/// The bounds on sessions; settings MCP_MAX_SESSIONS, MCP_MAX_SESSIONS_PER_CLIENT and
/// MCP_SESSION_IDLE_TIMEOUT.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub max_total: usize,
    pub max_per_owner: usize,
    pub idle_timeout: Duration,
}

/// With Redis, a session held here is confirmed there at most this often: a request in between
/// costs no round trip (an owner never changes; a `DELETE` on another replica is seen within it).
const TOUCH_EVERY: Duration = Duration::from_secs(1);

/// Why a new session was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// The server holds as many sessions as it may.
    Server(usize),
    /// This caller holds as many sessions as one caller may.
    Owner(usize),
    /// The shared caps cannot be read (Redis down, failing closed).
    Unavailable,
}

/// Whether a request's session is its caller's.
#[derive(Debug, PartialEq, Eq)]
pub enum Owned {
    Yes,
    /// Unknown, expired, or another caller's: the same answer for all three.
    No,
    /// Known to no replica that can be asked now (Redis down): retry.
    Unavailable,
}

pub struct Sessions {
    local: LocalSessionManager,
    limits: SessionLimits,
    table: std::sync::Mutex<Table>,
    shared: Option<Arc<RedisSessions>>,
    /// Woken whenever a request's turn to restore a session ends.
    turn_ended: tokio::sync::Notify,
}

/// The longest a request waits for another request's restore of its session; past it, it goes
/// on as if no restore were under way.
const RESTORE_WAIT: Duration = Duration::from_secs(10);

/// How long an abandoned restore's turn waits for its half-made worker's exit once closed.
const ABANDONED_EXIT_WAIT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Table {
    /// Each live session's owner (a `Principal::key`).
    owners: HashMap<SessionId, Arc<str>>,
    /// With Redis: when each session's owner was last confirmed there (and its expiry pushed on).
    touched: HashMap<SessionId, Instant>,
    /// When each session began here (for `mcp.server.session.duration`).
    opened: HashMap<SessionId, Instant>,
    /// Sessions per owner, reservations included.
    counts: HashMap<Arc<str>, usize>,
    /// Sessions in all, reservations included.
    total: usize,
    /// Sessions being restored: rmcp holds them from `restore_session` on, but their worker
    /// takes nothing before the replayed `initialize` and `initialized`. Until then they are
    /// not reported as held, so a concurrent request of the same session waits for rmcp's
    /// restore to end instead of reaching the worker early (which ends the session with a 500).
    restoring: HashMap<SessionId, Restore>,
    /// With Redis: the one request per session that may restore it here ([`Sessions::restore_turn`]),
    /// by a number of its own.
    turns: HashMap<SessionId, u64>,
    last_turn: u64,
}

/// Where a session's restore here stands.
#[derive(Debug, PartialEq, Eq)]
enum Restore {
    /// rmcp is making its worker.
    Begun,
    /// rmcp has started its worker, which waits for the replayed handshake; `turn`: the number
    /// of the turn restoring it, if any.
    Made { turn: Option<u64> },
    /// The request restoring it ended first: the turn `turn` ends once `ends_left` of the two
    /// ends have come, our close of the worker and the worker's exit (which rmcp follows with
    /// `close_session`).
    Abandoned { turn: u64, ends_left: u8 },
}

impl Table {
    /// Live sessions, to the metrics gauge.
    fn gauge(&self) {
        if let Some(metrics) = crate::metrics::get() {
            metrics.sessions.set(self.owners.len() as i64);
        }
    }

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
    /// Sessions of this process; with `shared`, also on Redis (owners, caps, `initialize`s to
    /// restore from, and stream events to resume from).
    pub fn new(limits: SessionLimits, shared: Option<Arc<RedisSessions>>) -> Self {
        let mut local = LocalSessionManager::default();
        local.session_config.keep_alive = Some(limits.idle_timeout);
        if let Some(shared) = &shared {
            let events: Arc<dyn EventStore> = Arc::new(RedisEvents::new(shared.redis().clone(), limits.idle_timeout));
            local = local.with_event_store(events);
        }
        Self {
            local,
            limits,
            table: Default::default(),
            shared,
            turn_ended: tokio::sync::Notify::new(),
        }
    }

    /// Holds a place for a new session of `owner`, or says which cap is full: this process's
    /// caps, then (with Redis) the caps counted on every replica.
    pub async fn reserve(self: &Arc<Self>, owner: &str) -> Result<Reservation, Full> {
        let reservation = self.reserve_here(owner)?;
        let Some(shared) = &self.shared else {
            return Ok(reservation);
        };
        match shared
            .fits(owner, self.limits.max_per_owner, self.limits.max_total)
            .await
        {
            Ok(Ok(())) => Ok(reservation),
            Ok(Err(Over::Owner)) => Err(Full::Owner(self.limits.max_per_owner)),
            Ok(Err(Over::Server)) => Err(Full::Server(self.limits.max_total)),
            Err(trouble) if shared.redis().on_trouble == OnTrouble::Closed => {
                Refusals::server().record("session_caps_unavailable", || {
                    tracing::warn!(event = "session_caps_unavailable", error = %trouble, "shared session caps unavailable: refusing");
                });
                Err(Full::Unavailable)
            }
            Err(trouble) => {
                Refusals::server().record("session_caps_fallback", || {
                    tracing::warn!(event = "session_caps_fallback", error = %trouble, "shared session caps unavailable: this replica's own decide");
                });
                Ok(reservation)
            }
        }
    }

    fn reserve_here(self: &Arc<Self>, owner: &str) -> Result<Reservation, Full> {
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
    /// unknown one look the same, so a session id cannot be probed. With Redis, the owner
    /// recorded there decides (and the session's expiry moves on); a session this process does
    /// not hold yet is taken in, for rmcp to restore.
    pub async fn owned_by(&self, id: &str, owner: &str) -> Owned {
        let (here, fresh) = {
            let table = self.table.lock().expect("session table");
            let fresh = table.touched.get(id).is_some_and(|at| at.elapsed() < TOUCH_EVERY);
            (table.owners.get(id).map(|o| &**o == owner), fresh)
        };
        let Some(shared) = &self.shared else {
            return if here == Some(true) { Owned::Yes } else { Owned::No };
        };
        if here == Some(true) && fresh {
            return Owned::Yes;
        }
        match shared.owner(id).await {
            Ok(Some(recorded)) if recorded == owner => {
                if here.is_none() {
                    self.take_in(id, owner);
                }
                let mut table = self.table.lock().expect("session table");
                table.touched.insert(id.into(), Instant::now());
                Owned::Yes
            }
            Ok(_) => Owned::No,
            // Redis is down: the sessions this process holds go on; others cannot be checked.
            Err(_) => match here {
                Some(true) => Owned::Yes,
                Some(false) => Owned::No,
                None => Owned::Unavailable,
            },
        }
    }

    /// With Redis, before a request of session `id` goes to rmcp: while this process does not
    /// hold the session, one request at a time goes on (and restores it); the others wait until
    /// it is restored, or that request ended, then find it held or take the next turn.
    ///
    /// rmcp makes concurrent restores of one session wait for the first only from the moment
    /// it begins. A request told "not held here" just before, that reaches rmcp after the first
    /// restore has ended, starts a second restore of a session now held, answered with a 500.
    pub async fn restore_turn(self: &Arc<Self>, id: &str) -> Option<RestoreTurn> {
        self.shared.as_ref()?;
        self.take_turn(id.into()).await
    }

    async fn take_turn(self: &Arc<Self>, id: SessionId) -> Option<RestoreTurn> {
        let turn = async {
            loop {
                // Registered before the look, so a turn ending in between is not missed.
                let ended = self.turn_ended.notified();
                tokio::pin!(ended);
                ended.as_mut().enable();
                if self.held(&id).await {
                    return None;
                }
                let number = {
                    let mut table = self.table.lock().expect("session table");
                    (!table.turns.contains_key(&id)).then(|| {
                        table.last_turn += 1;
                        let number = table.last_turn;
                        table.turns.insert(id.clone(), number);
                        number
                    })
                };
                let Some(number) = number else {
                    ended.await;
                    continue;
                };
                let turn = RestoreTurn {
                    sessions: self.clone(),
                    id: id.clone(),
                    number,
                };
                // Restored by the turn that ended just before this one began: nothing to do.
                return (!self.held(&id).await).then_some(turn);
            }
        };
        tokio::time::timeout(RESTORE_WAIT, turn).await.unwrap_or(None)
    }

    /// Whether rmcp holds session `id` here, ready for requests.
    async fn held(&self, id: &SessionId) -> bool {
        !self.table.lock().expect("session table").restoring.contains_key(id)
            && self.local.has_session(id).await.unwrap_or(false)
    }

    /// Ends the turn to restore `id` (of `number`, or whichever is current) and wakes the waiters.
    fn end_turn(&self, id: &SessionId, number: Option<u64>) {
        let mut table = self.table.lock().expect("session table");
        if number.is_none_or(|n| table.turns.get(id) == Some(&n)) && table.turns.remove(id).is_some() {
            drop(table);
            self.turn_ended.notify_waiters();
        }
    }

    /// One of an abandoned restore's two ends (see [`RestoreTurn`]), of turn `turn` if given;
    /// after both, its turn ends.
    fn abandoned_end(&self, id: &SessionId, turn: Option<u64>) {
        let number = {
            let mut table = self.table.lock().expect("session table");
            let Some(Restore::Abandoned {
                turn: number,
                ends_left,
            }) = table.restoring.get_mut(id)
            else {
                return;
            };
            if turn.is_some_and(|turn| turn != *number) {
                return;
            }
            *ends_left -= 1;
            if *ends_left > 0 {
                return;
            }
            let number = *number;
            table.restoring.remove(id);
            number
        };
        self.end_turn(id, Some(number));
    }

    /// Counts a session opened elsewhere as held here too, as its owner's.
    fn take_in(&self, id: &str, owner: &str) {
        let mut table = self.table.lock().expect("session table");
        let owner: Arc<str> = owner.into();
        if table.owners.insert(id.into(), owner.clone()).is_none() {
            *table.counts.entry(owner).or_default() += 1;
            table.total += 1;
            table.opened.insert(id.into(), Instant::now());
            table.gauge();
        }
    }

    /// Live sessions, for the status tool and tests.
    pub fn live(&self) -> usize {
        self.table.lock().expect("session table").owners.len()
    }

    fn forget(&self, id: &SessionId) {
        let mut table = self.table.lock().expect("session table");
        table.touched.remove(id);
        if let (Some(opened), Some(metrics)) = (table.opened.remove(id), crate::metrics::get()) {
            metrics.session(None, "http", opened.elapsed().as_secs_f64());
        }
        if let Some(owner) = table.owners.remove(id) {
            table.release(&owner);
            table.gauge();
        }
    }
}

impl Reservation {
    /// The session was made: it keeps its place until it ends.
    pub async fn confirm(mut self, id: &str) {
        let owner = self.owner.take().expect("confirmed once");
        if let Some(shared) = &self.sessions.shared
            && let Err(trouble) = shared.adopt(id, &owner).await
        {
            tracing::warn!(event = "session_not_shared", error = %trouble, "the session's owner could not be recorded in Redis: it lives on this replica only");
        }
        let id: SessionId = id.into();
        {
            let mut table = self.sessions.table.lock().expect("session table");
            table.owners.insert(id.clone(), owner);
            table.opened.insert(id.clone(), Instant::now());
            table.gauge();
        }
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

/// A request's turn to restore a session here; ends when the session is restored or the
/// request ends, whichever comes first; if the request ended halfway through the restore, once
/// the half-made worker is gone.
pub struct RestoreTurn {
    sessions: Arc<Sessions>,
    id: SessionId,
    number: u64,
}

impl Drop for RestoreTurn {
    fn drop(&mut self) {
        let abandoned = {
            let mut table = self.sessions.table.lock().expect("session table");
            match table.restoring.get_mut(&self.id) {
                Some(restore) if matches!(*restore, Restore::Made { turn: Some(turn) } if turn == self.number) => {
                    *restore = Restore::Abandoned {
                        turn: self.number,
                        ends_left: 2,
                    };
                    true
                }
                _ => false,
            }
        };
        if !abandoned {
            self.sessions.end_turn(&self.id, Some(self.number));
            return;
        }
        // The request ended (its client went away, say) between rmcp starting the session's
        // worker and replaying its handshake. Left alone, the session would stay marked as
        // restoring while rmcp holds its worker: each later request of it here would start
        // another restore, which rmcp answers with a 500, until that worker times out (a minute,
        // or the idle timeout). The worker is closed instead, and the turn ends once it is gone:
        // a restore begun before its exit would be closed by it.
        let (sessions, id, number) = (self.sessions.clone(), self.id.clone(), self.number);
        tracing::warn!(
            event = "session_restore_abandoned",
            session_id = %id_prefix(&id),
            "a session's restore ended before its handshake was replayed: its half-made worker is closed, and the next request restores it afresh"
        );
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let _ = sessions.local.close_session(&id).await;
                    sessions.abandoned_end(&id, Some(number));
                    // The worker's exit comes at once; should it not, it is counted here.
                    tokio::time::sleep(ABANDONED_EXIT_WAIT).await;
                    sessions.abandoned_end(&id, Some(number));
                });
            }
            // No runtime: the process is exiting.
            Err(_) => sessions.end_turn(&id, Some(self.number)),
        }
    }
}

/// Takes a session off the `restoring` map when dropped.
struct Unmark<'a> {
    sessions: &'a Sessions,
    id: Option<SessionId>,
}

impl Drop for Unmark<'_> {
    fn drop(&mut self) {
        if let Some(id) = &self.id {
            self.sessions.table.lock().expect("session table").restoring.remove(id);
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
        // Test builds: a pause in a restore's replayed handshake, for the replica tests to end
        // a request inside it.
        #[cfg(feature = "fixtures")]
        if let Some(pause) = std::env::var("MCP_FIXTURE_RESTORE_PAUSE_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            && matches!(
                self.table.lock().expect("session table").restoring.get(id),
                Some(Restore::Made { .. })
            )
        {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        self.local.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        if self.table.lock().expect("session table").restoring.contains_key(id) {
            return Ok(false);
        }
        self.local.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        {
            // An abandoned restore's entry stays until both its ends have come.
            let mut table = self.table.lock().expect("session table");
            if !matches!(table.restoring.get(id), Some(Restore::Abandoned { .. })) {
                table.restoring.remove(id);
            }
        }
        self.forget(id);
        let closed = self.local.close_session(id).await;
        self.abandoned_end(id, None);
        closed
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.local.create_stream(id, message).await
    }

    async fn accept_message(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<(), Self::Error> {
        let restored = matches!(
            &message,
            ClientJsonRpcMessage::Notification(n) if matches!(n.notification, ClientNotification::InitializedNotification(_))
        );
        let accepted = self.local.accept_message(id, message).await;
        // Queued after the replayed handshake, a request now reaches the worker in its turn.
        if restored {
            self.table.lock().expect("session table").restoring.remove(id);
            self.end_turn(id, None);
        }
        accepted
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

    /// A session opened on another replica (or before a restart), restored from Redis.
    async fn restore_session(&self, id: SessionId) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.table
            .lock()
            .expect("session table")
            .restoring
            .insert(id.clone(), Restore::Begun);
        // Unmarked unless restored, also when the request restoring it goes away meanwhile.
        let mut unmark = Unmark {
            sessions: self,
            id: Some(id.clone()),
        };
        let outcome = self.local.restore_session(id.clone()).await;
        if matches!(outcome, Ok(RestoreOutcome::Restored(_))) {
            unmark.id = None;
            let mut table = self.table.lock().expect("session table");
            let turn = table.turns.get(&id).copied();
            table.restoring.insert(id, Restore::Made { turn });
        }
        outcome
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.local.event_store()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(max_total: usize, max_per_owner: usize) -> Arc<Sessions> {
        Arc::new(Sessions::new(
            SessionLimits {
                max_total,
                max_per_owner,
                idle_timeout: Duration::from_secs(60),
            },
            None,
        ))
    }

    #[tokio::test]
    async fn requests_of_a_session_not_held_here_take_turns_until_it_is() {
        let s = sessions(3, 2);
        let id: SessionId = "elsewhere".into();
        let first = s.take_turn(id.clone()).await.expect("the first request's turn");
        let second = tokio::spawn({
            let (s, id) = (s.clone(), id.clone());
            async move { s.take_turn(id).await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "waits while the first turn lasts");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(1), second).await;
        assert!(
            matches!(second, Ok(Ok(true))),
            "the first ended without restoring: the next takes its turn: {second:?}"
        );

        let (held, _transport) = s.create_session().await.unwrap();
        let turn = s.take_turn(held.clone()).await;
        assert!(turn.is_none(), "no turn for a session held here");
    }

    #[tokio::test]
    async fn a_restore_ending_wakes_the_requests_waiting_for_it() {
        let s = sessions(3, 2);
        let (id, _transport) = s.create_session().await.unwrap();
        s.table.lock().unwrap().restoring.insert(id.clone(), Restore::Begun);
        let first = s.take_turn(id.clone()).await;
        assert!(first.is_some(), "being restored is not held yet");
        let second = tokio::spawn({
            let (s, id) = (s.clone(), id.clone());
            async move { s.take_turn(id).await.is_none() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "waits while the restore is under way");
        // What `accept_message` does once the replayed handshake is queued.
        s.table.lock().unwrap().restoring.remove(&id);
        s.end_turn(&id, None);
        let second = tokio::time::timeout(Duration::from_secs(1), second).await;
        assert!(
            matches!(second, Ok(Ok(true))),
            "finds the session held, with no turn to take: {second:?}"
        );
        drop(first);
    }

    #[tokio::test]
    async fn caps_count_reservations_per_owner_and_in_all() {
        let s = sessions(3, 2);
        let a1 = s.reserve("a").await.unwrap();
        let _a2 = s.reserve("a").await.unwrap();
        assert_eq!(s.reserve("a").await.err(), Some(Full::Owner(2)));
        let _b = s.reserve("b").await.unwrap();
        assert_eq!(s.reserve("c").await.err(), Some(Full::Server(3)));
        drop(a1);
        assert!(
            s.reserve("c").await.is_ok(),
            "a dropped reservation gives its place back"
        );
    }

    #[tokio::test]
    async fn a_confirmed_session_belongs_to_its_owner_until_closed() {
        let s = sessions(10, 10);
        let (id, _transport) = s.create_session().await.unwrap();
        s.reserve("a").await.unwrap().confirm(&id).await;
        assert_eq!(
            (s.owned_by(&id, "a").await, s.owned_by(&id, "b").await),
            (Owned::Yes, Owned::No)
        );
        assert_eq!(s.live(), 1);
        s.close_session(&id).await.unwrap();
        assert_eq!(s.owned_by(&id, "a").await, Owned::No);
        assert_eq!((s.live(), s.table.lock().unwrap().total), (0, 0));
    }
}
