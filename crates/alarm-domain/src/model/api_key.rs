//! API keys: a long-lived credential for the webhook endpoints (the gateway's key authentication), with a visible prefix, scopes, an optional expiry and the last time it was used; the key itself is stored only as a SHA-256 hash.

use std::fmt;

use jiff::Timestamp;

use crate::error::{ValidationError, check_text, codes};
use crate::ids::{ApiKeyId, UserId};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiKeyScope {
    /// Read webhook registrations and their deliveries.
    WebhooksRead,
    /// Create, change, delete, test and retry webhooks.
    WebhooksWrite,
}

const SCOPES: [(ApiKeyScope, &str); 2] = [
    (ApiKeyScope::WebhooksRead, "webhooks:read"),
    (ApiKeyScope::WebhooksWrite, "webhooks:write"),
];

impl ApiKeyScope {
    /// The stable name (`webhooks:read`).
    pub fn as_str(self) -> &'static str {
        SCOPES
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("", |(_, name)| name)
    }

    /// Every scope.
    pub fn all() -> [ApiKeyScope; 2] {
        SCOPES.map(|(s, _)| s)
    }
}

/// A non-empty set of scopes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyScopes(u8);

impl ApiKeyScopes {
    /// Parses scope names; duplicates and unknown names are refused.
    ///
    /// # Errors
    /// `scopes` with `bad-count`; `scopes[i]` with `unknown-value` or `duplicate`.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, ValidationError> {
        if names.is_empty() {
            return Err(ValidationError::new(
                "scopes",
                codes::BAD_COUNT,
                "must name at least one scope",
            ));
        }
        let mut bits = 0u8;
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref().trim();
            let bit = SCOPES.iter().position(|(_, n)| *n == name).ok_or_else(|| {
                ValidationError::new(
                    format!("scopes[{i}]"),
                    codes::UNKNOWN_VALUE,
                    format!("`{name}` is not one of webhooks:read, webhooks:write"),
                )
            })?;
            if bits & (1 << bit) != 0 {
                return Err(ValidationError::new(
                    format!("scopes[{i}]"),
                    codes::DUPLICATE,
                    format!("`{name}` is listed twice"),
                ));
            }
            bits |= 1 << bit;
        }
        Ok(Self(bits))
    }

    /// Whether the set holds `scope`.
    pub fn allows(&self, scope: ApiKeyScope) -> bool {
        let bit = SCOPES.iter().position(|(s, _)| *s == scope).unwrap_or(0);
        self.0 & (1 << bit) != 0
    }

    /// The scopes in a fixed order.
    pub fn names(&self) -> Vec<&'static str> {
        SCOPES
            .iter()
            .filter(|(s, _)| self.allows(*s))
            .map(|(_, n)| *n)
            .collect()
    }

    /// The stored form.
    pub fn bits(&self) -> u8 {
        self.0
    }

    /// From the stored form.
    ///
    /// # Errors
    /// `scopes` with `unknown-value` for an empty or unknown bit set.
    pub fn from_bits(bits: u8) -> Result<Self, ValidationError> {
        if bits == 0 || bits >> SCOPES.len() != 0 {
            return Err(ValidationError::new(
                "scopes",
                codes::UNKNOWN_VALUE,
                format!("stored scope bits {bits:#b} are not a scope set"),
            ));
        }
        Ok(Self(bits))
    }
}

impl fmt::Debug for ApiKeyScopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// A key's name: 1..=100 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    /// # Errors
    /// `name` with `empty`, `too-long` or `invalid-format`.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        check_text("name", value, 1, 100).map(Self)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An API key as stored and shown (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The id.
    pub id: ApiKeyId,
    /// Whose key it is; it acts as this user.
    pub owner: UserId,
    /// The owner's name for it.
    pub name: ApiKeyName,
    /// The visible part that identifies it (`sak_` and 12 characters).
    pub prefix: String,
    /// What it may do.
    pub scopes: ApiKeyScopes,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working as its owner set it (`None`: never).
    pub expires_at: Option<Timestamp>,
    /// When it stops working because a rotation replaced it (`None`: not
    /// replaced). Kept apart from `expires_at`, which the replacement copies.
    pub retires_at: Option<Timestamp>,
    /// When it last authenticated a request (recorded at most once a minute).
    pub last_used_at: Option<Timestamp>,
}

/// How long a key that stopped working stays listed (so its owner sees
/// why a client fails) before housekeeping deletes it.
pub const DEAD_KEY_KEPT: jiff::SignedDuration = jiff::SignedDuration::from_hours(24 * 30);

impl ApiKey {
    /// Whether the key works at `now`.
    pub fn active_at(&self, now: Timestamp) -> bool {
        self.ends_at().is_none_or(|end| now < end)
    }

    /// When it stops working, whichever comes first: its expiry or the end
    /// of a rotation's overlap.
    pub fn ends_at(&self) -> Option<Timestamp> {
        match (self.expires_at, self.retires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_answer() {
        let s = ApiKeyScopes::parse(&["webhooks:read"]).expect("scopes");
        assert!(s.allows(ApiKeyScope::WebhooksRead));
        assert!(!s.allows(ApiKeyScope::WebhooksWrite));
        assert_eq!(ApiKeyScopes::from_bits(s.bits()), Ok(s));
        let e = ApiKeyScopes::parse(&["webhooks:read", "alarms:write"]).expect_err("unknown");
        assert_eq!((e.field(), e.code()), ("scopes[1]", codes::UNKNOWN_VALUE));
        let e = ApiKeyScopes::parse(&["webhooks:read", "webhooks:read"]).expect_err("twice");
        assert_eq!(e.code(), codes::DUPLICATE);
        assert!(ApiKeyScopes::parse::<&str>(&[]).is_err());
        assert!(ApiKeyScopes::from_bits(0).is_err());
        assert!(ApiKeyScopes::from_bits(4).is_err());
    }
}
