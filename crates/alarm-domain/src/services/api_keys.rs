//! API-key use cases: issue a key (shown once), list, delete, rotate with an overlap, and authenticate a presented key (expiry, hash, last use, audit).

use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::{Actor, Basics, Ports, ServiceError};
use crate::error::{ValidationError, codes};
use crate::ids::ApiKeyId;
use crate::model::{ApiKey, ApiKeyName, ApiKeyScopes};
use crate::ports::{ApiKeyOp, ChangeSet};

super::service_ports! {
    /// The ports [`ApiKeyService`] takes.
    ApiKeyPorts {
        /// The keys.
        keys: dyn ApiKeyStore = api_keys,
        /// Key use is audited.
        audit: dyn AuditLog = audit,
        /// The clock.
        clock: dyn Clock = clock,
        /// Ids and the keys' random bytes.
        ids: dyn IdSource = ids,
    }
}

use crate::ports::{ApiKeyStore, AuditLog, Clock, IdSource};

/// The longest a replaced key keeps working after a rotation.
pub const MAX_ROTATION_OVERLAP: SignedDuration = SignedDuration::from_hours(7 * 24);

/// A use is recorded in `last_used_at` at most this often.
const TOUCH_EVERY: SignedDuration = SignedDuration::from_mins(1);

/// The text every key starts with.
const KEY_TAG: &str = "sak_";

/// A newly issued key: what is stored, and the text, shown this once.
#[derive(Debug)]
pub struct NewApiKey {
    /// The stored key.
    pub key: ApiKey,
    /// `sak_<12 hex>_<43 base64url>`: the credential.
    pub secret: SecretString,
}

/// Why a presented key is refused (the API answers 401 alike for all).
#[derive(Debug, thiserror::Error)]
pub enum KeyRefused {
    /// Not a key this service issued, or a wrong one.
    #[error("unknown key")]
    Unknown,
    /// Past its expiry (or its rotation overlap).
    #[error("expired key")]
    Expired,
    /// The store failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// API-key use cases.
#[derive(Clone)]
pub struct ApiKeyService {
    ports: ApiKeyPorts,
    quota: crate::limits::Quota,
}

fn summary(k: &ApiKey) -> String {
    format!(
        "name={:?} prefix={} scopes={} expires_at={}",
        k.name.as_str(),
        k.prefix,
        k.scopes.names().join(","),
        k.expires_at
            .map_or_else(|| "never".to_owned(), |t| t.to_string())
    )
}

/// The stored form of a key's text.
fn hash(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Equal hashes, compared in constant time.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ApiKeyService {
    /// A service over `ports`.
    pub fn new(ports: Ports) -> Self {
        Self {
            quota: ports.limits.api_keys(),
            ports: ports.into(),
        }
    }

    /// A fresh key's prefix and text.
    fn mint(&self) -> Result<(String, SecretString), ServiceError> {
        use base64::Engine as _;
        let mut bytes = [0u8; 38];
        self.ports.ids.secret_bytes(&mut bytes).map_err(|e| {
            ServiceError::Unexpected(crate::ports::StoreError::Unexpected(e.into()))
        })?;
        let (visible, secret) = bytes.split_at(6);
        let prefix = format!(
            "{KEY_TAG}{}",
            visible
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let text = format!(
            "{prefix}_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        Ok((prefix, SecretString::from(text)))
    }

    /// Issues a key for the actor, acting as the actor within `scopes`
    /// until `expires_at`.
    ///
    /// # Errors
    /// [`ServiceError::Invalid`] (`expires_at` / `in-the-past`);
    /// [`ServiceError::OverQuota`] (`api_keys_per_user`).
    pub async fn create(
        &self,
        actor: &Actor,
        name: ApiKeyName,
        scopes: ApiKeyScopes,
        expires_at: Option<Timestamp>,
    ) -> Result<NewApiKey, ServiceError> {
        let now = self.ports.clock.now();
        if expires_at.is_some_and(|t| t <= now) {
            return Err(ValidationError::new(
                "expires_at",
                codes::IN_THE_PAST,
                "must be in the future",
            )
            .into());
        }
        let (prefix, secret) = self.mint()?;
        let key = ApiKey {
            id: self.ports.new_id(ApiKeyId::from_uuid, ApiKeyId::generate),
            owner: actor.user,
            name,
            prefix,
            scopes,
            created_at: now,
            expires_at,
            retires_at: None,
            last_used_at: None,
        };
        let audit = self.ports.audit(
            actor,
            "api_key.create",
            key.id.as_uuid(),
            None,
            Some(summary(&key)),
            now,
        );
        self.ports
            .keys
            .commit(ChangeSet::audited(
                ApiKeyOp::Create {
                    key: key.clone(),
                    hash: hash(secret.expose_secret()),
                    quota: self.quota,
                },
                audit,
            ))
            .await?;
        Ok(NewApiKey { key, secret })
    }

    /// The actor's keys.
    ///
    /// # Errors
    /// Store failures.
    pub async fn list(&self, actor: &Actor) -> Result<Vec<ApiKey>, ServiceError> {
        Ok(self.ports.keys.list(actor.user).await?)
    }

    /// The actor's key.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn get(&self, actor: &Actor, id: ApiKeyId) -> Result<ApiKey, ServiceError> {
        Ok(self.ports.keys.get(actor.user, id).await?)
    }

    /// Deletes the actor's key: it stops working at once.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`].
    pub async fn delete(&self, actor: &Actor, id: ApiKeyId) -> Result<(), ServiceError> {
        let now = self.ports.clock.now();
        let key = self.ports.keys.get(actor.user, id).await?;
        let audit = self.ports.audit(
            actor,
            "api_key.delete",
            id.as_uuid(),
            Some(summary(&key)),
            None,
            now,
        );
        self.ports
            .keys
            .commit(ChangeSet::audited(
                ApiKeyOp::Delete {
                    owner: actor.user,
                    id,
                },
                audit,
            ))
            .await?;
        Ok(())
    }

    /// Replaces the actor's key with a new one of the same name, scopes and
    /// expiry; the old one keeps working for `overlap` (at most
    /// [`MAX_ROTATION_OVERLAP`], never past its own expiry or an earlier
    /// rotation's end), so clients can switch without an outage. The new
    /// key counts toward the quota as soon as it exists.
    ///
    /// # Errors
    /// [`ServiceError::NotFound`]; [`ServiceError::Invalid`]
    /// (`overlap_seconds` / `out-of-range`).
    pub async fn rotate(
        &self,
        actor: &Actor,
        id: ApiKeyId,
        overlap: SignedDuration,
    ) -> Result<NewApiKey, ServiceError> {
        let now = self.ports.clock.now();
        let old = self.ports.keys.get(actor.user, id).await?;
        if overlap.is_negative() || overlap > MAX_ROTATION_OVERLAP {
            return Err(ValidationError::new(
                "overlap_seconds",
                codes::OUT_OF_RANGE,
                format!("must be 0..={}", MAX_ROTATION_OVERLAP.as_secs()),
            )
            .into());
        }
        let (prefix, secret) = self.mint()?;
        let key = ApiKey {
            id: self.ports.new_id(ApiKeyId::from_uuid, ApiKeyId::generate),
            owner: actor.user,
            name: old.name.clone(),
            prefix,
            scopes: old.scopes,
            created_at: now,
            expires_at: old.expires_at,
            retires_at: None,
            last_used_at: None,
        };
        let end = now + overlap;
        let old_retires_at = old.ends_at().map_or(end, |t| t.min(end));
        let audit = self.ports.audit(
            actor,
            "api_key.rotate",
            id.as_uuid(),
            Some(summary(&old)),
            Some(summary(&key)),
            now,
        );
        self.ports
            .keys
            .commit(ChangeSet::audited(
                ApiKeyOp::Rotate {
                    old: id,
                    old_retires_at,
                    key: key.clone(),
                    hash: hash(secret.expose_secret()),
                    quota: self.quota,
                },
                audit,
            ))
            .await?;
        Ok(NewApiKey { key, secret })
    }

    /// The key `presented` names, if it is one this service issued, it
    /// matches, and it still works. Reads only: the caller checks its
    /// request limits, then calls [`ApiKeyService::record_use`].
    ///
    /// # Errors
    /// [`KeyRefused`].
    pub async fn verify(&self, presented: &str) -> Result<ApiKey, KeyRefused> {
        let now = self.ports.clock.now();
        let prefix_len = KEY_TAG.len() + 12;
        let prefix = presented
            .get(..prefix_len)
            .filter(|p| p.starts_with(KEY_TAG) && presented.len() < 200)
            .ok_or(KeyRefused::Unknown)?;
        let (key, stored) = self
            .ports
            .keys
            .find(prefix)
            .await
            .map_err(ServiceError::from)?
            .ok_or(KeyRefused::Unknown)?;
        if !same(&stored, &hash(presented)) {
            return Err(KeyRefused::Unknown);
        }
        if !key.active_at(now) {
            return Err(KeyRefused::Expired);
        }
        Ok(key)
    }

    /// Records an accepted use of `key`: an audit record (`api_key.use`,
    /// `what` in it) every time, and `last_used_at` when the last recorded
    /// use is older than a minute.
    ///
    /// # Errors
    /// Store failures.
    pub async fn record_use(
        &self,
        key: &ApiKey,
        what: &str,
        correlation_id: &str,
    ) -> Result<(), ServiceError> {
        let now = self.ports.clock.now();
        let since = now - TOUCH_EVERY;
        if key.last_used_at.is_none_or(|t| t < since) {
            self.ports.keys.touch(key.id, now, since).await?;
        }
        let actor = Actor {
            user: key.owner,
            role: crate::model::Role::User,
            correlation_id: correlation_id.to_owned(),
        };
        self.ports
            .audit
            .record(self.ports.audit(
                &actor,
                "api_key.use",
                key.id.as_uuid(),
                None,
                Some(format!("prefix={} {what}", key.prefix)),
                now,
            ))
            .await?;
        Ok(())
    }
}
