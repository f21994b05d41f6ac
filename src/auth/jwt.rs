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
use tokio::sync::{Mutex, RwLock};

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
    Static(DecodingKey),
    Jwks(Box<Jwks>),
}

struct Jwks {
    url: Url,
    http: Upstream,
    /// Least time between two fetches caused by unknown key ids, so random `kid`s cannot
    /// turn the server into a flood against the identity provider.
    refetch_cooldown: Duration,
    /// The keys by id, and when they were fetched.
    keys: RwLock<(Option<Instant>, HashMap<String, DecodingKey>)>,
    /// Serialises fetches, so concurrent unknown-kid requests cause one fetch.
    fetching: Mutex<()>,
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
            keys: RwLock::default(),
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
        Ok(Self::new(settings, Keys::Static(key)))
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

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid(&format!("algorithm {:?} is not accepted", header.alg)));
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let claims = match &self.keys {
            Keys::Static(key) => decode(token, key, &validation)?,
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

impl Jwks {
    /// The key for `kid`: from the cache, or after a (rate-limited) refetch.
    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.cached(kid).await {
            return Ok(key);
        }
        let _one_fetch_at_a_time = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.cached(kid).await {
            return Ok(key);
        }
        let last_fetch = self.keys.read().await.0;
        if last_fetch.is_some_and(|at| at.elapsed() < self.refetch_cooldown) {
            return Err(invalid("unknown key id (kid)"));
        }
        self.fetch().await?;
        self.cached(kid).await.ok_or_else(|| invalid("unknown key id (kid)"))
    }

    /// A cached key, unless the cache is too old to trust.
    async fn cached(&self, kid: &str) -> Option<DecodingKey> {
        let keys = self.keys.read().await;
        let fresh = keys.0.is_some_and(|at| at.elapsed() < JWKS_MAX_AGE);
        fresh.then(|| keys.1.get(kid).cloned()).flatten()
    }

    async fn fetch(&self) -> Result<(), AuthError> {
        let set: JwkSet = self.http.get_json(self.url.clone(), &[]).await.map_err(|e| {
            tracing::warn!(event = "jwks_fetch_failed", error = %e, "cannot fetch the JWKS");
            AuthError::Unavailable("cannot fetch the signing keys to verify the token".into())
        })?;
        let keys: HashMap<_, _> = set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect();
        tracing::info!(event = "jwks_fetched", keys = keys.len(), "fetched the JWKS");
        *self.keys.write().await = (Some(Instant::now()), keys);
        Ok(())
    }
}
