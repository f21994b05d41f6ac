//! Opaque access tokens, checked by asking the authorization server (RFC 7662 token
//! introspection): `active`, then `aud`, `iss`, `exp` and `nbf` as for a JWT, and the scopes.
//!
//! The endpoint is called through the hardened upstream client, allowed to reach its host only,
//! authenticated with this server's client credentials (HTTP Basic). Answers are cached by the
//! token's SHA-256, never the token: an active token until it expires (at most the configured
//! TTL), a refused one briefly, each kind in a map of its own of at most [`MAX_CACHED`] (so
//! made-up tokens cannot push out good ones). Concurrent checks of one token share one call,
//! and at most [`MAX_CALLS`] calls run at once: clients sending new tokens cannot turn the
//! server into a flood against its authorization server. An endpoint that cannot answer makes
//! the check `Unavailable` (HTTP 503), never a wait longer than the client's time limit.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;
use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use reqwest::Url;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{AuthError, Principal, split_scopes};
use crate::upstream::Upstream;

/// The most answers of each kind cached; past it, expired ones go first, then any.
pub const MAX_CACHED: usize = 10_000;

/// The most calls to the endpoint at once; a check past it is `Unavailable`.
pub const MAX_CALLS: usize = 32;

/// The least time between two `introspection_failed` log lines (each says how many failed).
const LOG_FAILURES_EVERY: Duration = Duration::from_secs(10);

/// How long a refused token stays refused without asking again.
const REFUSED_TTL: Duration = Duration::from_secs(10);

/// The one refusal that may not hold for long: it is never remembered.
const NOT_YET_VALID: &str = "token not yet valid (nbf)";

/// The longest one introspection call may take (its attempts included).
pub const INTROSPECTION_TIMEOUT: Duration = Duration::from_secs(5);

pub struct IntrospectionSettings {
    pub url: Url,
    pub client_id: String,
    pub client_secret: String,
    /// This server's resource URL: the audience an answer must name.
    pub audience: String,
    /// The authorization servers trusted: an answer's `iss`, when it has one, is one of them.
    pub issuers: Vec<String>,
    pub leeway: Duration,
    /// The longest an active token's answer is reused.
    pub cache_ttl: Duration,
}

pub struct IntrospectionVerifier {
    inner: Arc<Inner>,
}

type Check = Result<Principal, AuthError>;
type Key = [u8; 32];

/// Answers kept, and until when.
type Cache<T> = Mutex<HashMap<Key, (T, Instant)>>;

struct Inner {
    url: Url,
    http: Upstream,
    /// Client id and secret; SIGHUP may swap them (`replace_credentials`).
    credentials: ArcSwap<(String, String)>,
    audience: String,
    issuers: Vec<String>,
    leeway: Duration,
    cache_ttl: Duration,
    accepted: Cache<Principal>,
    refused: Cache<String>,
    /// The call in flight for a token, which every concurrent check of it awaits.
    asking: Mutex<HashMap<Key, Shared<BoxFuture<'static, Check>>>>,
    calls: Arc<tokio::sync::Semaphore>,
    /// Failed calls not yet logged, and when the last line was (seconds since `started`, plus
    /// one).
    failures: AtomicU64,
    failure_logged: AtomicU64,
    started: Instant,
}

#[derive(Deserialize)]
struct Answer {
    active: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    token_type: Option<String>,
    /// A key or certificate the token is bound to (RFC 7800, RFC 8705).
    #[serde(default)]
    cnf: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl IntrospectionVerifier {
    pub fn new(settings: IntrospectionSettings, http: Upstream) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: settings.url,
                http,
                credentials: ArcSwap::from_pointee((settings.client_id, settings.client_secret)),
                audience: settings.audience,
                issuers: settings
                    .issuers
                    .iter()
                    .map(|i| i.trim_end_matches('/').to_owned())
                    .collect(),
                leeway: settings.leeway,
                cache_ttl: settings.cache_ttl,
                accepted: Mutex::default(),
                refused: Mutex::default(),
                asking: Mutex::default(),
                calls: Arc::new(tokio::sync::Semaphore::new(MAX_CALLS)),
                failures: AtomicU64::new(0),
                failure_logged: AtomicU64::new(0),
                started: Instant::now(),
            }),
        }
    }

    /// Takes `fresh`'s client credentials (a reload of the secret file); answers cached stay.
    pub fn replace_credentials(&self, fresh: IntrospectionVerifier) {
        self.inner.credentials.store(fresh.inner.credentials.load_full());
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let key: Key = Sha256::digest(token.as_bytes()).into();
        if let Some(cached) = self.inner.cached(&key) {
            return cached;
        }
        let asking = {
            let mut asking = self.inner.asking.lock().unwrap_or_else(PoisonError::into_inner);
            match asking.get(&key) {
                Some(call) => call.clone(),
                None => {
                    let Ok(permit) = self.inner.calls.clone().try_acquire_owned() else {
                        return Err(AuthError::Unavailable(
                            "too many tokens are being checked at once; retry in a moment".into(),
                        ));
                    };
                    // A task of its own, so the call ends (and leaves `asking`) even if every
                    // caller waiting on it goes away.
                    let (inner, token) = (self.inner.clone(), token.to_owned());
                    let call = tokio::spawn(async move {
                        let (check, expires_in) = inner.introspect(&token).await;
                        inner.remember(key, &check, expires_in);
                        inner.asking.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
                        drop(permit);
                        check
                    });
                    let call = async move {
                        call.await.unwrap_or_else(|_| {
                            Err(AuthError::Unavailable("the token check stopped before it ended".into()))
                        })
                    }
                    .boxed()
                    .shared();
                    asking.insert(key, call.clone());
                    call
                }
            }
        };
        asking.await
    }
}

impl Inner {
    fn cached(&self, key: &Key) -> Option<Check> {
        let now = Instant::now();
        let accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((principal, until)) = accepted.get(key)
            && now < *until
        {
            return Some(Ok(principal.clone()));
        }
        drop(accepted);
        let refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        let (reason, until) = refused.get(key)?;
        (now < *until).then(|| Err(AuthError::InvalidToken(reason.clone())))
    }

    /// Keeps an answer: an active token until it expires (at most the TTL), a refused one
    /// briefly (one not valid yet, not at all); a check that could not be made, not at all.
    fn remember(&self, key: Key, check: &Check, expires_in: Option<Duration>) {
        match check {
            Ok(principal) => {
                let ttl = self.cache_ttl.min(expires_in.unwrap_or(Duration::MAX));
                keep(&self.accepted, key, principal.clone(), ttl, false);
            }
            Err(AuthError::InvalidToken(reason)) if reason == NOT_YET_VALID => {}
            // Only a shortcut: when full of live refusals (made-up tokens), all are forgotten.
            Err(AuthError::InvalidToken(reason)) => keep(&self.refused, key, reason.clone(), REFUSED_TTL, true),
            Err(AuthError::Unavailable(_)) => {}
        }
    }

    /// Logs a failed call, at most one line per [`LOG_FAILURES_EVERY`], with how many failed.
    fn log_failure(&self, error: &crate::upstream::UpstreamError) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        // Seconds from start, plus one: 0 is "never logged".
        let now = self.started.elapsed().as_secs() + 1;
        let last = self.failure_logged.load(Ordering::Relaxed);
        let due = last == 0 || now >= last + LOG_FAILURES_EVERY.as_secs();
        if due
            && self
                .failure_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let failed = self.failures.swap(0, Ordering::Relaxed);
            tracing::warn!(
                event = "introspection_failed",
                error = %error,
                failed,
                "cannot check tokens at the authorization server's introspection endpoint ({failed} failed since the last line)"
            );
        }
    }

    /// The check of `token`, and for an active one how long until it expires.
    async fn introspect(&self, token: &str) -> (Check, Option<Duration>) {
        let credentials = self.credentials.load();
        let (id, secret) = &**credentials;
        let sent = self
            .http
            .post_read_only(self.url.clone())
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .client_credentials(id, secret)
            .send()
            .await;
        let answer: Answer = match sent.and_then(|answer| answer.json()) {
            Ok(answer) => answer,
            Err(error) => {
                self.log_failure(&error);
                let unavailable =
                    AuthError::Unavailable("the authorization server cannot check the token right now".into());
                return (Err(unavailable), None);
            }
        };
        match self.check(answer) {
            Ok((principal, expires_in)) => (Ok(principal), expires_in),
            Err(refused) => (Err(refused), None),
        }
    }

    fn check(&self, answer: Answer) -> Result<(Principal, Option<Duration>), AuthError> {
        if !answer.active {
            return Err(invalid("token is not active (expired, revoked or unknown)"));
        }
        if answer.cnf.is_some() {
            return Err(invalid(
                "token is bound to a key or certificate (cnf), which this server cannot check",
            ));
        }
        if let Some(kind) = &answer.token_type
            && !kind.eq_ignore_ascii_case("bearer")
            && kind != "access_token"
        {
            return Err(invalid("token is not an access token"));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let leeway = self.leeway.as_secs();
        if answer.exp.is_some_and(|exp| exp.saturating_add(leeway) < now) {
            return Err(invalid("token expired"));
        }
        if answer.nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(invalid(NOT_YET_VALID));
        }
        let for_us = match &answer.aud {
            Some(Audience::One(aud)) => *aud == self.audience,
            Some(Audience::Many(auds)) => auds.contains(&self.audience),
            None => false,
        };
        if !for_us {
            return Err(invalid("token audience is not this server"));
        }
        if let Some(iss) = &answer.iss
            && !self.issuers.iter().any(|trusted| trusted == iss.trim_end_matches('/'))
        {
            return Err(invalid("token issuer is not trusted"));
        }
        // A token granted to a client on its own behalf (client credentials) has no subject.
        let subject = match (answer.sub, answer.client_id) {
            (Some(sub), _) if !sub.is_empty() => sub,
            (_, Some(client)) if !client.is_empty() => format!("client:{client}"),
            _ => return Err(invalid("token has neither a subject nor a client id")),
        };
        let scopes = answer
            .scope
            .as_deref()
            .map(|s| split_scopes(s).collect::<Vec<_>>())
            .unwrap_or_default();
        let expires_in = answer.exp.map(|exp| Duration::from_secs(exp.saturating_sub(now)));
        Ok((Principal::authenticated(subject, scopes), expires_in))
    }
}

/// Keeps `value` for `ttl` in `cache`, which holds at most [`MAX_CACHED`]: past it, expired
/// entries go, then any one (or, for a `disposable` cache, all).
fn keep<T>(cache: &Cache<T>, key: Key, value: T, ttl: Duration, disposable: bool) {
    if ttl.is_zero() {
        return;
    }
    let now = Instant::now();
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= MAX_CACHED && !cache.contains_key(&key) {
        cache.retain(|_, (_, until)| *until > now);
        if cache.len() >= MAX_CACHED && disposable {
            cache.clear();
        } else if cache.len() >= MAX_CACHED
            && let Some(any) = cache.keys().next().copied()
        {
            cache.remove(&any);
        }
    }
    cache.insert(key, (value, now + ttl));
}

fn invalid(reason: &str) -> AuthError {
    AuthError::InvalidToken(reason.to_owned())
}
