//! Authentication: turns a bearer token into a [`Principal`], with static tokens, JWTs, or
//! opaque tokens the authorization server introspects.
//! The HTTP edge (`http::auth`) and stdio startup both use the same [`Verifier`].

mod introspection;
mod jwt;
mod principal;
mod static_tokens;

pub use introspection::{INTROSPECTION_TIMEOUT, IntrospectionSettings, IntrospectionVerifier};
pub use jwt::{JWKS_FETCH_TIMEOUT, JwtSettings, JwtVerifier};
pub use principal::{Principal, split_scopes};
pub use static_tokens::StaticTokens;

pub enum Verifier {
    Static(StaticTokens),
    Jwt(Box<JwtVerifier>),
    Introspection(IntrospectionVerifier),
}

#[derive(Debug, Clone)]
pub enum AuthError {
    /// The token is wrong: unknown, expired, for another audience... (HTTP 401).
    InvalidToken(String),
    /// The token cannot be checked right now, e.g. the JWKS or the introspection endpoint is
    /// unreachable (HTTP 503).
    Unavailable(String),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidToken(reason) | Self::Unavailable(reason) => f.write_str(reason),
        }
    }
}

impl Verifier {
    /// Whether an authorization server issues the tokens, so OAuth metadata points clients at
    /// it.
    pub fn is_oauth(&self) -> bool {
        matches!(self, Self::Jwt(_) | Self::Introspection(_))
    }

    /// Takes the tokens or key of `fresh`, a verifier built again from the settings' files;
    /// says what it reloaded, for the log line (counts, never tokens).
    pub fn reload_from(&self, fresh: Verifier) -> Result<String, String> {
        match (self, fresh) {
            (Self::Static(current), Self::Static(fresh)) => {
                current.replace(fresh);
                Ok(format!("{} static token entries", current.entry_count()))
            }
            (Self::Jwt(current), Self::Jwt(fresh)) => match current.replace_key(*fresh) {
                true => Ok("the JWT public key".into()),
                false => Err("nothing to reload: the JWKS is refetched as keys rotate".into()),
            },
            (Self::Introspection(current), Self::Introspection(fresh)) => {
                current.replace_credentials(fresh);
                Ok("the introspection client credentials".into())
            }
            _ => Err("the authentication mode cannot change without a restart".into()),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        match self {
            Self::Static(tokens) => tokens.verify(token),
            Self::Jwt(jwt) => jwt.verify(token).await,
            Self::Introspection(introspection) => introspection.verify(token).await,
        }
    }
}
