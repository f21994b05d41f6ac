//! Who is calling: made once at the edge (from a bearer token over HTTP, from the environment
//! on stdio); everything after the edge sees a `Principal`, never a token.

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Who: a token's subject, or `anonymous`. Safe to log.
    pub subject: String,
    pub scopes: BTreeSet<String>,
    /// What per-caller limits are keyed by: the subject, or for an anonymous caller its
    /// connection (client address over HTTP, the process on stdio).
    pub key: String,
}

impl Principal {
    pub fn authenticated(subject: impl Into<String>, scopes: impl IntoIterator<Item = String>) -> Self {
        let subject = subject.into();
        Self {
            key: format!("sub:{subject}"),
            subject,
            scopes: scopes.into_iter().collect(),
        }
    }

    /// A caller without credentials, told apart from other anonymous callers by `origin`.
    pub fn anonymous(origin: impl std::fmt::Display) -> Self {
        Self {
            subject: "anonymous".into(),
            scopes: BTreeSet::new(),
            key: format!("anon:{origin}"),
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// The scopes of `required` this principal lacks.
    pub fn missing<'a>(&self, required: &'a [String]) -> Vec<&'a str> {
        required
            .iter()
            .filter(|s| !self.has_scope(s))
            .map(String::as_str)
            .collect()
    }
}

/// Splits an OAuth scope string ("a b c") into scopes.
pub fn split_scopes(scopes: &str) -> impl Iterator<Item = String> + '_ {
    scopes.split_whitespace().map(str::to_owned)
}
