//! JWT access tokens: signature checked against a JWKS (cached, refetched on an unknown `kid`)
//! or a configured public key; an algorithm allow-list without HMAC or `none`; `iss`, `exp`,
//! `nbf` checked with a small leeway; the audience must be this server's resource URL.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind, jwk::JwkSet};
use reqwest::Url;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{AuthError, Principal, split_scopes};
use crate::upstream::Upstream;

/// Keys older than this are refetched, so removed (revoked) keys stop working.
const JWKS_MAX_AGE: Duration = Duration::from_secs(15 * 60);

pub struct JwtVerifier {
    keys: Keys,
    algorithms: Vec<Algorithm>,
    validation: Validation,
}

enum Keys {
    /// A configured public key; SIGHUP may swap it (`replace_key`).
    Static(arc_swap::ArcSwap<DecodingKey>),
    Jwks(Box<Jwks>),
}

struct Jwks {
    url: Url,
    http: Upstream,
    /// Least time between two fetches, failed ones included, so random `kid`s or a provider
    /// in trouble cannot turn the server into a flood against the identity provider.
    refetch_cooldown: Duration,
    cache: std::sync::Mutex<Cache>,
    /// Held by the one fetch in flight; callers that need it wait for that fetch to end
    /// instead of queueing fetches of their own.
    fetching: Mutex<()>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, DecodingKey>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch last started, successful or not.
    attempted: Option<Instant>,
}

pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub algorithms: Vec<Algorithm>,
    pub leeway: Duration,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Scp>,
}

/// `scp` is a list in some providers and a space-separated string in others.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scp {
    List(Vec<String>),
    Text(String),
}

impl JwtVerifier {
    pub fn with_jwks(settings: JwtSettings, url: Url, http: Upstream, refetch_cooldown: Duration) -> Self {
        let keys = Keys::Jwks(Box::new(Jwks {
            url,
            http,
            refetch_cooldown,
            cache: Default::default(),
            fetching: Mutex::default(),
        }));
        Self::new(settings, keys)
    }

    pub fn with_public_key(settings: JwtSettings, pem: &[u8]) -> Result<Self, String> {
        let family = settings.algorithms.first().ok_or("no algorithm allowed")?;
        let key = match family {
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            _ => DecodingKey::from_rsa_pem(pem),
        }
        .map_err(|e| format!("cannot read the public key: {e}"))?;
        Ok(Self::new(settings, Keys::Static(arc_swap::ArcSwap::from_pointee(key))))
    }

    fn new(settings: JwtSettings, keys: Keys) -> Self {
        let mut validation = Validation::new(settings.algorithms[0]);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = settings.leeway.as_secs();
        Self {
            keys,
            algorithms: settings.algorithms,
            validation,
        }
    }

    /// Takes `fresh`'s public key (a reload of the key file); calls already verified keep
    /// their principal. `false` when either verifier uses a JWKS, which rotates by itself.
    pub fn replace_key(&self, fresh: JwtVerifier) -> bool {
        match (&self.keys, fresh.keys) {
            (Keys::Static(current), Keys::Static(new)) => {
                current.store(new.load_full());
                true
            }
            _ => false,
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid(&format!("algorithm {:?} is not accepted", header.alg)));
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let claims = match &self.keys {
            Keys::Static(key) => decode(token, &key.load(), &validation)?,
            Keys::Jwks(jwks) => {
                let kid = header.kid.ok_or_else(|| invalid("token has no key id (kid)"))?;
                let key = jwks.key(&kid).await?;
                decode(token, &key, &validation)?
            }
        };
        let mut scopes: Vec<String> = claims
            .scope
            .as_deref()
            .map(|s| split_scopes(s).collect())
            .unwrap_or_default();
        match claims.scp {
            Some(Scp::List(list)) => scopes.extend(list),
            Some(Scp::Text(text)) => scopes.extend(split_scopes(&text)),
            None => {}
        }
        Ok(Principal::authenticated(claims.sub, scopes))
    }
}

fn decode(token: &str, key: &DecodingKey, validation: &Validation) -> Result<Claims, AuthError> {
    jsonwebtoken::decode::<Claims>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|e| {
            invalid(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::ImmatureSignature => "token not yet valid (nbf)",
                ErrorKind::InvalidAudience => "token audience is not this server",
                ErrorKind::InvalidIssuer => "token issuer is not trusted",
                ErrorKind::InvalidSignature => "token signature does not verify",
                ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim (exp, iss, aud, sub)",
                ErrorKind::InvalidAlgorithm => "token algorithm does not match its key",
                _ => "token is not valid",
            })
        })
}

fn invalid(reason: &str) -> AuthError {
    AuthError::InvalidToken(reason.to_owned())
}

/// The longest a JWKS fetch may take (one attempt, no retries: the cooldown is the retry);
/// callers waiting on it are answered when it ends.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

impl Jwks {
    /// The key for `kid`: from the cache, or after a fetch, at most one per cooldown. A key
    /// cached longer than the maximum age is refreshed, and kept if the refresh fails.
    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        if let (Some(key), true) = self.cached(kid) {
            return Ok(key);
        }
        // One fetch at a time: wait for the one in flight, if any, and use its keys.
        let (_turn, waited) = match self.fetching.try_lock() {
            Ok(turn) => (turn, false),
            Err(_) => (self.fetching.lock().await, true),
        };
        let (cached, fresh) = self.cached(kid);
        if let (Some(key), true) = (&cached, fresh) {
            return Ok(key.clone());
        }
        // A caller that waited has the answer of the fetch it waited for; it starts no other.
        if waited || !self.may_fetch() {
            return cached.ok_or_else(|| self.missing());
        }
        self.fetch().await;
        self.cached(kid).0.ok_or_else(|| self.missing())
    }

    /// The cached key for `kid`, and whether the cache is young enough to trust as it is.
    fn cached(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        let cache = self.cache.lock().expect("JWKS cache");
        let fresh = cache.fetched.is_some_and(|at| at.elapsed() < JWKS_MAX_AGE);
        (cache.keys.get(kid).cloned(), fresh)
    }

    /// Whether the cooldown since the last attempt is over; if so, counts a new attempt.
    fn may_fetch(&self) -> bool {
        let mut cache = self.cache.lock().expect("JWKS cache");
        if cache.attempted.is_some_and(|at| at.elapsed() < self.refetch_cooldown) {
            return false;
        }
        cache.attempted = Some(Instant::now());
        true
    }

    /// The error for a key that is not there: 401 when keys are known, 503 when the key set
    /// could never be fetched.
    fn missing(&self) -> AuthError {
        match self.cache.lock().expect("JWKS cache").fetched {
            Some(_) => invalid("unknown key id (kid)"),
            None => AuthError::Unavailable("cannot fetch the signing keys to verify the token".into()),
        }
    }

    /// Fetches the key set; on failure the cached keys stay as they are.
    async fn fetch(&self) {
        // The client's own time limit bounds the fetch (see `JWKS_FETCH_TIMEOUT`).
        let answer = self.http.get(self.url.clone()).send().await;
        let set: JwkSet = match answer.and_then(|a| a.json()) {
            Ok(set) => set,
            Err(error) => {
                tracing::warn!(event = "jwks_fetch_failed", error = %error, "cannot fetch the JWKS; keeping the cached keys");
                return;
            }
        };
        let keys: HashMap<_, _> = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        tracing::info!(event = "jwks_fetched", keys = keys.len(), "fetched the JWKS");
        let mut cache = self.cache.lock().expect("JWKS cache");
        cache.keys = keys;
        cache.fetched = Some(Instant::now());
    }
}
