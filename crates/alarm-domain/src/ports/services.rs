//! Ports to outside services: secrets, sealing and notification channels.

use async_trait::async_trait;
use jiff::Timestamp;
use secrecy::SecretString;

use crate::model::User;
use crate::trigger::Delivery;

/// Why a secret could not be read. Never carries the secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// No secret of that name.
    #[error("secret `{0}` not found")]
    NotFound(String),
    /// The provider could not be reached or refused.
    #[error("secret provider failure")]
    Unexpected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Reads named secrets (env, file, Vault, OCI Vault).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait SecretProvider: Send + Sync {
    /// The secret called `name`.
    ///
    /// # Errors
    /// MUST return [`SecretError::NotFound`] when it does not exist.
    async fn get(&self, name: &str) -> Result<SecretString, SecretError>;
}

/// Why a stored secret could not be sealed or opened. Never carries the
/// secret or the sealed text.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Sealed with a key this process does not hold (a key dropped from
    /// the configuration before every row was re-sealed).
    #[error("sealed with key `{0}`, which is not configured")]
    UnknownKey(String),
    /// Not a sealed value, or altered, or sealed for another row.
    #[error("the sealed value does not open")]
    Broken,
    /// The cipher failed.
    #[error("sealing failed")]
    Failed,
}

/// Encrypts the recoverable secrets the database holds (webhook signing
/// secrets) with the data keys from the secret provider, so a dump of the
/// database alone reveals none. Implemented in `alarm-secrets` (AEAD) and
/// given to the SQL stores by the composition root.
pub trait SecretSealer: Send + Sync {
    /// The sealed text of `secret` (ASCII, the key's id inside), bound to
    /// `context` (the row's identity), so it opens only for that row.
    ///
    /// # Errors
    /// [`SealError::Failed`].
    fn seal(&self, secret: &SecretString, context: &[u8]) -> Result<String, SealError>;

    /// The secret `sealed` holds, with `context` as it was sealed.
    ///
    /// # Errors
    /// [`SealError::UnknownKey`] or [`SealError::Broken`].
    fn open(&self, sealed: &str, context: &[u8]) -> Result<SecretString, SealError>;

    /// Whether `stored` is sealed with the current key; `false` for a value
    /// stored before sealing existed (plain text) and for an older key's,
    /// which re-sealing replaces.
    fn is_current(&self, stored: &str) -> bool;

    /// Whether `stored` is sealed at all (by any key), as opposed to a plain
    /// value from before sealing existed.
    fn is_sealed(&self, stored: &str) -> bool;
}

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Worth retrying (timeout, 5xx, 408, 429), optionally not before a time.
    #[error("transient delivery failure")]
    Transient {
        /// `Retry-After`, when the receiver gave one.
        retry_after: Option<Timestamp>,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Final (4xx other than 408/429, refused target).
    #[error("permanent delivery failure")]
    Permanent(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One notification channel (webhook, email, push).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one notification at `now`.
    ///
    /// # Errors
    /// [`NotifyError::Transient`] or [`NotifyError::Permanent`].
    async fn deliver(&self, delivery: &Delivery, now: Timestamp) -> Result<(), NotifyError>;
}

/// Sends the e-mails of an account's own life (a password reset, an
/// address verification), outside the outbox: each carries a one-time
/// secret that is never stored, only its hash is.
#[async_trait]
pub trait AccountMail: Send + Sync {
    /// E-mails `to` the `purpose` token, which works until `expires_at`.
    ///
    /// # Errors
    /// Why the message could not be handed to the mail server (never the
    /// token).
    async fn send_token(
        &self,
        to: &User,
        purpose: super::TokenPurpose,
        token: &SecretString,
        expires_at: Timestamp,
    ) -> Result<(), String>;
}
