//! The one HTTP client tools use to call upstream APIs.
//!
//! Built once from configuration and shared, so connections are pooled. A tool asks for a
//! request by method, gives it a URL, query pairs and perhaps a JSON body, and sends it:
//!
//! - transient failures (connect errors, timeouts, 429, 502, 503, 504) are retried with
//!   jittered exponential backoff, within an attempt limit and a time limit, honouring
//!   `Retry-After` ([`retry`]); only requests that are safe to repeat are ever sent twice;
//! - only allow-listed hosts at public addresses are reached, redirects included ([`ssrf`]);
//! - requests in flight are capped per host and in all, so sockets are too ([`slots`]);
//! - the tool gets one [`UpstreamError`] saying what was tried, written for the model.
//!
//! No token passthrough, by construction: the client is made from configuration alone and a
//! request carries only what the tool gives it (URL, query, JSON or form body). The one header
//! a caller can add is this server's own client credentials for its authorization server
//! (token introspection), which come from configuration; nothing here can see the MCP request
//! or its credentials.

mod error;
mod retry;
mod slots;
mod ssrf;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use reqwest::{Method, StatusCode, Url, header::HeaderValue};
use serde::{Serialize, de::DeserializeOwned};

use error::Target;
pub use error::UpstreamError;
use retry::{Failure, RetryPolicy, root_cause};
use slots::Slots;
use ssrf::{Guard, GuardedResolver};

use crate::config::UpstreamConfig;

/// Connecting may take at most this long (or the attempt timeout, if shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest answer read into memory; an upstream cannot make the server hold more.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct Upstream {
    /// Built on first use: reading the system's root certificates is a good share of start-up
    /// time, which a server whose tools never call out should not pay.
    http: Arc<OnceLock<Result<reqwest::Client, String>>>,
    connect_timeout: Duration,
    guard: Arc<Guard>,
    slots: Arc<Slots>,
    /// Idle connections kept per host: no more than may be in use at once.
    max_idle_per_host: usize,
    retry: RetryPolicy,
    /// `name/version` of the server, sent as User-Agent.
    user_agent: Arc<str>,
}

impl Upstream {
    /// A client that reaches only `hosts` (and, of non-public networks, only those the
    /// configuration allows).
    pub fn new(config: &UpstreamConfig, hosts: Vec<url::Host>) -> Self {
        Self {
            http: Arc::default(),
            connect_timeout: CONNECT_TIMEOUT.min(config.upstream_timeout),
            slots: Arc::new(Slots::new(
                &hosts,
                config.upstream_max_connections as usize,
                config.upstream_max_connections_per_host as usize,
            )),
            max_idle_per_host: config.upstream_max_connections_per_host as usize,
            guard: Arc::new(Guard::new(hosts, config.upstream_allow_private.clone())),
            retry: RetryPolicy {
                attempts: config.upstream_attempts,
                backoff: config.upstream_backoff,
                attempt_timeout: config.upstream_timeout,
                deadline: config.upstream_deadline,
            },
            user_agent: concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION")).into(),
        }
    }

    /// Sends `user_agent` (the app's `name/version`) as User-Agent, instead of the kit's.
    pub fn with_user_agent(mut self, user_agent: &str) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// The pooled HTTP client, built by the first call that needs it.
    fn client(&self) -> Result<&reqwest::Client, String> {
        let built = self.http.get_or_init(|| {
            reqwest::Client::builder()
                .user_agent(&*self.user_agent)
                .connect_timeout(self.connect_timeout)
                .pool_max_idle_per_host(self.max_idle_per_host)
                // The guard filters DNS answers and checks every redirect hop.
                .dns_resolver(Arc::new(GuardedResolver(self.guard.clone())))
                .redirect(self.guard.redirect_policy())
                // A proxy would resolve and connect out of the guard's sight.
                .no_proxy()
                // One retry layer, ours, so every attempt is counted and logged in one place.
                .retry(reqwest::retry::never())
                .build()
                .map_err(|e| format!("the upstream HTTP client could not be built: {}", root_cause(&e)))
        });
        built.as_ref().map_err(Clone::clone)
    }

    /// A GET: safe to repeat, so retried.
    pub fn get(&self, url: Url) -> UpstreamRequest<'_> {
        self.request(Method::GET, url, true)
    }

    /// A HEAD: safe to repeat, so retried.
    pub fn head(&self, url: Url) -> UpstreamRequest<'_> {
        self.request(Method::HEAD, url, true)
    }

    /// A PUT: idempotent by definition (the same state however often it is applied), so retried.
    pub fn put(&self, url: Url) -> UpstreamRequest<'_> {
        self.request(Method::PUT, url, true)
    }

    /// A DELETE: idempotent by definition, so retried.
    pub fn delete(&self, url: Url) -> UpstreamRequest<'_> {
        self.request(Method::DELETE, url, true)
    }

    /// A POST sent once: never retried, since repeating it might apply it twice.
    pub fn post(&self, url: Url) -> UpstreamRequest<'_> {
        self.request(Method::POST, url, false)
    }

    /// A POST that only reads (token introspection, a search): safe to repeat, so retried.
    pub fn post_read_only(&self, url: Url) -> UpstreamRequest<'_> {
        self.request(Method::POST, url, true)
    }

    /// A POST the upstream deduplicates by `key` (sent as the `Idempotency-Key` header, the
    /// same on every attempt), so it is retried like a GET.
    pub fn post_idempotent(&self, url: Url, key: IdempotencyKey) -> UpstreamRequest<'_> {
        let mut request = self.request(Method::POST, url, true);
        request.builder = request.builder.map(|b| b.header("idempotency-key", key.0));
        request
    }

    fn request(&self, method: Method, url: Url, idempotent: bool) -> UpstreamRequest<'_> {
        UpstreamRequest {
            upstream: self,
            target: Target::of(&method, &url),
            builder: self.client().map(|http| http.request(method, url)),
            idempotent,
        }
    }

    /// One attempt (`number`, from 1): wait for a slot, send, then read the whole answer, all
    /// within `limit`. The slot is held until the answer is read. Waiting for one counts as
    /// connecting, so it is bounded by the connect timeout too: a request that gets its slot
    /// still has time to be answered.
    async fn attempt(
        &self,
        request: &reqwest::Request,
        target: &Target,
        limit: Duration,
        number: u32,
    ) -> Result<Answer, Failure> {
        let began = tokio::time::Instant::now();
        let wait = self.connect_timeout.min(limit);
        let _slot = self.slots.take(&target.host, wait).await.map_err(Failure::Busy)?;
        let mut request = request
            .try_clone()
            .expect("bodies are in memory (JSON at most), so requests clone");
        *request.timeout_mut() = Some(limit.saturating_sub(began.elapsed()));
        let http = self.client().map_err(Failure::Other)?;
        #[cfg(feature = "otel")]
        let span = crate::otel::client_span(&mut request, number);
        #[cfg(not(feature = "otel"))]
        let _ = number;
        let sent = http.execute(request).await;
        #[cfg(feature = "otel")]
        if let Some(span) = &span {
            crate::otel::client_answered(span, sent.as_ref().map(|r| r.status().as_u16()).map_err(|_| ()));
        }
        let mut response = sent?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry::retry_after(response.headers(), std::time::SystemTime::now());
            return Err(Failure::Status { status, retry_after });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(Failure::Other(format!(
                    "the answer is larger than {} MiB",
                    MAX_BODY_BYTES >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer::new(target.clone(), status, body))
    }
}

/// A request being built. It holds only what the tool gives it; see the module docs.
#[must_use = "a request does nothing until it is sent"]
pub struct UpstreamRequest<'a> {
    upstream: &'a Upstream,
    target: Target,
    builder: Result<reqwest::RequestBuilder, String>,
    /// Set by the constructor from the method (and the idempotency key), never afterwards.
    idempotent: bool,
}

impl UpstreamRequest<'_> {
    /// Adds query parameters. They are sent, but never logged nor shown in errors.
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.builder = self.builder.map(|b| b.query(pairs));
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: &impl Serialize) -> Self {
        self.builder = self.builder.map(|b| b.json(body));
        self
    }

    /// Sets a form body (`application/x-www-form-urlencoded`).
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        self.builder = self.builder.map(|b| b.form(pairs));
        self
    }

    /// Authenticates this server as an OAuth client (HTTP Basic, RFC 6749 §2.3.1: id and
    /// secret form-encoded first), for its own calls to its authorization server.
    pub(crate) fn client_credentials(mut self, id: &str, secret: &str) -> Self {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        self.builder = self.builder.map(|b| b.basic_auth(encode(id), Some(encode(secret))));
        self
    }

    /// Sends the request, retrying as the method allows, and returns a 2xx answer.
    pub async fn send(self) -> Result<Answer, UpstreamError> {
        let (upstream, target) = (self.upstream, self.target);
        let request = self
            .builder
            .map_err(|e| UpstreamError::invalid(target.clone(), e))?
            .build()
            .map_err(|e| UpstreamError::invalid(target.clone(), root_cause(&e)))?;
        // IP literals never reach the resolver, and an off-list host should not even be
        // looked up: check the URL before anything is sent.
        if let Err(refusal) = upstream.guard.check_url(request.url()) {
            tracing::warn!(
                event = "upstream_refused",
                upstream = %target.host,
                method = %target.method,
                path = %target.path,
                "upstream call refused: {refusal}"
            );
            return Err(UpstreamError::refused(target, refusal));
        }
        upstream
            .retry
            .run(&target, self.idempotent, |limit, number| {
                upstream.attempt(&request, &target, limit, number)
            })
            .await
    }
}

/// A key that makes a POST safe to retry: the upstream applies requests with the same key once.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(HeaderValue);

impl IdempotencyKey {
    /// A fresh random key, for one operation.
    pub fn random() -> Self {
        let key = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        Self(HeaderValue::from_str(&key).expect("hex digits are a valid header value"))
    }
}

/// A successful (2xx) answer, read in full.
#[derive(Debug)]
pub struct Answer {
    target: Target,
    status: StatusCode,
    body: Vec<u8>,
}

impl Answer {
    fn new(target: Target, status: StatusCode, body: Vec<u8>) -> Self {
        Self { target, status, body }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Decodes the body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, UpstreamError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| UpstreamError::unreadable(self.target.clone(), format!("its JSON did not parse: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::{Router, http::HeaderMap, routing::any};

    use super::*;

    /// An upstream on loopback that answers 503 to everything and records the
    /// `Idempotency-Key` of each request.
    async fn failing_upstream() -> (Url, Arc<Mutex<Vec<Option<String>>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = Router::new().route(
            "/orders",
            any(move |headers: HeaderMap| {
                let key = headers.get("idempotency-key").map(|v| v.to_str().unwrap().to_owned());
                record.lock().unwrap().push(key);
                async { axum::http::StatusCode::SERVICE_UNAVAILABLE }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/orders", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (Url::parse(&url).unwrap(), seen)
    }

    fn client_for(url: &Url) -> Upstream {
        Upstream::new(
            &UpstreamConfig {
                upstream_timeout: Duration::from_secs(5),
                upstream_deadline: Duration::from_secs(10),
                upstream_attempts: 3,
                upstream_backoff: Duration::from_millis(1),
                upstream_allow_hosts: Vec::new(),
                upstream_allow_private: vec!["127.0.0.0/8".parse().unwrap()],
                upstream_max_connections: 8,
                upstream_max_connections_per_host: 4,
            },
            url.host().into_iter().map(|host| host.to_owned()).collect(),
        )
    }

    #[tokio::test]
    async fn a_post_is_sent_once_unless_it_carries_an_idempotency_key() {
        let (url, seen) = failing_upstream().await;
        let upstream = client_for(&url);
        let body = serde_json::json!({ "item": 1 });

        let error = upstream.post(url.clone()).json(&body).send().await.unwrap_err();
        assert_eq!(seen.lock().unwrap().len(), 1, "a plain POST was repeated");
        assert_eq!(error.attempts(), 1);
        assert_eq!(error.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert!(error.to_string().contains("without an idempotency key"), "{error}");

        seen.lock().unwrap().clear();
        let key = IdempotencyKey::random();
        let error = upstream
            .post_idempotent(url.clone(), key.clone())
            .json(&body)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error.attempts(), 3);
        let keys = seen.lock().unwrap().clone();
        let sent = key.0.to_str().unwrap().to_owned();
        assert_eq!(keys, vec![Some(sent); 3], "the same key on every attempt");
    }

    #[tokio::test]
    async fn get_put_and_delete_are_retried() {
        let (url, seen) = failing_upstream().await;
        let upstream = client_for(&url);
        for request in [
            upstream.get(url.clone()),
            upstream.put(url.clone()).json(&1),
            upstream.delete(url.clone()),
        ] {
            seen.lock().unwrap().clear();
            assert_eq!(request.send().await.unwrap_err().attempts(), 3);
            assert_eq!(seen.lock().unwrap().len(), 3);
        }
    }
}
