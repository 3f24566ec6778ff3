//! API-key shapes: the input of a new key, a key as listed (never its text), a new key with its text (shown once), and a rotation's overlap.

use alarm_domain::error::{ValidationError, codes};
use alarm_domain::jiff::{SignedDuration, Timestamp};
use alarm_domain::model::{ApiKey, ApiKeyName, ApiKeyScopes};
use poem_openapi::Object;
use serde::Deserialize;

/// A new API key.
#[derive(Clone, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyInput {
    /// 1..=100 characters, e.g. "CI pipeline".
    pub name: String,
    /// What it may do: `webhooks:read` (list and read webhooks and their
    /// deliveries), `webhooks:write` (everything else on `/webhooks`).
    pub scopes: Vec<String>,
    /// When it stops working (RFC 3339, in the future); left out: never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

impl ApiKeyInput {
    /// The name, the scopes and the expiry; errors name their field.
    pub(crate) fn to_domain(
        &self,
    ) -> Result<(ApiKeyName, ApiKeyScopes, Option<Timestamp>), ValidationError> {
        let name = ApiKeyName::parse(&self.name)?;
        // Counted before any scope is parsed.
        if self.scopes.len() > 8 {
            return Err(ValidationError::new(
                "scopes",
                codes::BAD_COUNT,
                "must hold at most 8 scopes",
            ));
        }
        let scopes = ApiKeyScopes::parse(&self.scopes)?;
        let expires_at = self
            .expires_at
            .as_deref()
            .map(|t| {
                t.trim().parse::<Timestamp>().map_err(|_| {
                    ValidationError::new(
                        "expires_at",
                        codes::INVALID_FORMAT,
                        format!("`{t}` is not an RFC 3339 instant such as 2027-01-31T00:00:00Z"),
                    )
                })
            })
            .transpose()?;
        Ok((name, scopes, expires_at))
    }
}

/// A rotation.
#[derive(Clone, Object, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRotation {
    /// How long the old key keeps working, in seconds (0..=604800, default
    /// 3600), never past its own expiry.
    #[serde(default)]
    pub overlap_seconds: Option<i64>,
}

impl ApiKeyRotation {
    /// The overlap (range checked by the service).
    pub(crate) fn overlap(&self) -> SignedDuration {
        SignedDuration::from_secs(self.overlap_seconds.unwrap_or(3600))
    }
}

/// An API key (never its text).
#[derive(Clone, Object)]
pub struct ApiKeyView {
    /// Id (UUID v7).
    pub id: String,
    /// The owner's name for it.
    pub name: String,
    /// The visible start of the key, e.g. `sak_3f9a0c1d2e4b`: which key a
    /// request used.
    pub prefix: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it was made.
    pub created_at: String,
    /// When it stops working as set at creation (absent: never).
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<String>,
    /// When it stops working because a rotation replaced it (absent: not
    /// replaced).
    #[oai(skip_serializing_if_is_none)]
    pub retires_at: Option<String>,
    /// When it last authenticated a request (recorded at most once a
    /// minute; absent: never).
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<String>,
}

impl ApiKeyView {
    pub(crate) fn new(k: &ApiKey) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name.as_str().to_owned(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.names().into_iter().map(str::to_owned).collect(),
            created_at: k.created_at.to_string(),
            expires_at: k.expires_at.map(|t| t.to_string()),
            retires_at: k.retires_at.map(|t| t.to_string()),
            last_used_at: k.last_used_at.map(|t| t.to_string()),
        }
    }
}

/// A new key with its text: shown this once; only its hash is kept.
#[derive(Clone, Object)]
pub struct NewApiKeyView {
    /// The key.
    #[oai(flatten)]
    pub key: ApiKeyView,
    /// Send it as `X-API-Key` on `/api/v1/webhooks…`.
    pub api_key: String,
}

impl std::fmt::Debug for NewApiKeyView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKeyView")
            .field("prefix", &self.key.prefix)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

/// The caller's keys.
#[derive(Clone, Object)]
pub struct ApiKeyList {
    /// Every key, in creation order (at most `QUOTA_API_KEYS_PER_USER`, so no pages).
    pub items: Vec<ApiKeyView>,
}
