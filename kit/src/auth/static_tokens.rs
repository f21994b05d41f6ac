//! Static bearer tokens: a list of token → subject + scopes, held as SHA-256 hashes and
//! compared in constant time. The tokens themselves are never kept or logged.
//!
//! Format (an env var or a file): one entry per line or `;`-separated,
//! `<token> <subject> [scope ...]`, where `<token>` may be written `sha256:<hex>` so the
//! file need not hold the secret itself. `#` starts a comment line.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, Principal};

struct Entry {
    hash: [u8; 32],
    subject: String,
    scopes: Vec<String>,
}

pub struct StaticTokens {
    /// Swapped whole by a reload (SIGHUP); a verification in progress keeps the list it read.
    entries: arc_swap::ArcSwap<Vec<Entry>>,
}

/// Shows how many entries there are, never their hashes.
impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticTokens({} entries)", self.entry_count())
    }
}

impl StaticTokens {
    /// Parses the entries; the error names the entry by position, never by its token.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (n, entry) in text
            .split([';', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'))
            .enumerate()
        {
            let mut words = entry.split_whitespace();
            let (Some(token), Some(subject)) = (words.next(), words.next()) else {
                return Err(format!("token entry {} needs '<token> <subject> [scope ...]'", n + 1));
            };
            let hash = match token.strip_prefix("sha256:") {
                Some(hex) => {
                    decode_hex(hex).ok_or_else(|| format!("token entry {}: sha256: needs 64 hex digits", n + 1))?
                }
                None if token.len() < 16 => {
                    return Err(format!("token entry {}: tokens must be at least 16 characters", n + 1));
                }
                None => Sha256::digest(token.as_bytes()).into(),
            };
            entries.push(Entry {
                hash,
                subject: subject.to_owned(),
                scopes: words.map(str::to_owned).collect(),
            });
        }
        if entries.is_empty() {
            return Err("no tokens given".into());
        }
        Ok(Self {
            entries: arc_swap::ArcSwap::from_pointee(entries),
        })
    }

    /// How many entries there are (never empty: parsing refuses an empty list).
    pub fn entry_count(&self) -> usize {
        self.entries.load().len()
    }

    /// Takes `fresh`'s entries (a reload), whole.
    pub fn replace(&self, fresh: StaticTokens) {
        self.entries.store(fresh.entries.load_full());
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Look at every entry, so the time taken says nothing about which one matched.
        let mut found = None;
        let entries = self.entries.load();
        for entry in entries.iter() {
            if bool::from(entry.hash.ct_eq(&presented)) {
                found = Some(entry);
            }
        }
        found
            .map(|e| Principal::authenticated(e.subject.clone(), e.scopes.iter().cloned()))
            .ok_or_else(|| AuthError::InvalidToken("unknown token".into()))
    }
}

fn decode_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_plain_and_hashed_entries() {
        let hashed = format!("{:x}", Sha256::digest(b"second-token-0123456789"));
        let tokens = StaticTokens::parse(&format!(
            "# comment\nfirst-token-0123456789 alice orders:admin extra\n; sha256:{hashed} bob"
        ))
        .unwrap();
        let alice = tokens.verify("first-token-0123456789").unwrap();
        assert_eq!(alice.subject, "alice");
        assert!(alice.has_scope("orders:admin") && alice.has_scope("extra"));
        assert_eq!(tokens.verify("second-token-0123456789").unwrap().subject, "bob");
        assert!(tokens.verify("nope").is_err());
    }

    #[test]
    fn rejects_bad_entries_without_echoing_them() {
        let err = StaticTokens::parse("lonely-token-0123456789").unwrap_err();
        assert!(err.contains("entry 1") && !err.contains("lonely"));
        assert!(
            StaticTokens::parse("short alice")
                .unwrap_err()
                .contains("16 characters")
        );
        assert!(StaticTokens::parse("sha256:abc alice").unwrap_err().contains("64 hex"));
        assert!(StaticTokens::parse("  ").is_err());
    }
}
