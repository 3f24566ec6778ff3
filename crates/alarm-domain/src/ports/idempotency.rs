//! The idempotency port: remembers the answer to a request made with an `Idempotency-Key`, so a retried request gets the same answer and does not act twice.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use super::StoreError;
use crate::ids::UserId;

/// How long a reservation without an answer blocks its key. A request whose
/// process died mid-way leaves such a reservation; after this the key can
/// be used again instead of answering "in progress" for a whole day.
pub const IDEMPOTENCY_IN_FLIGHT_TIMEOUT: SignedDuration = SignedDuration::from_secs(60);

/// Which request a key belongs to: the same key sent to two endpoints names
/// two requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The caller.
    pub owner: UserId,
    /// The operation, e.g. `POST /alarms`.
    pub scope: String,
    /// The client's key (1..=255 visible ASCII characters, checked by the caller).
    pub key: String,
}

/// A stored answer, replayed as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The status code.
    pub status: u16,
    /// The headers that belong to the answer (e.g. `etag`, `location`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

/// What [`IdempotencyStore::reserve`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// The key is now reserved for this request: act, then `finish` or `abandon`.
    Fresh,
    /// The same request was answered before: replay this.
    Replay(StoredResponse),
    /// The same key is being processed by another request right now.
    InFlight,
    /// The key was used with a different request body.
    Mismatch,
}

impl Reservation {
    /// What a stored record of one key means for a new request, written
    /// once for every adapter: `None` when the record no longer holds the
    /// key (older than `ttl`, or a reservation left unanswered for
    /// [`IDEMPOTENCY_IN_FLIGHT_TIMEOUT`]) and the request may take it;
    /// otherwise a replay of the same request's answer, "in flight" while
    /// it has none, or a mismatch when the body differs.
    pub fn of_stored(
        stored_fingerprint: &[u8],
        created: Timestamp,
        answer: Option<StoredResponse>,
        fingerprint: &[u8; 32],
        now: Timestamp,
        ttl: SignedDuration,
    ) -> Option<Self> {
        let age = now.duration_since(created);
        let expired = age >= ttl || (answer.is_none() && age >= IDEMPOTENCY_IN_FLIGHT_TIMEOUT);
        if expired {
            return None;
        }
        Some(if stored_fingerprint != fingerprint.as_slice() {
            Reservation::Mismatch
        } else if let Some(answer) = answer {
            Reservation::Replay(answer)
        } else {
            Reservation::InFlight
        })
    }
}

/// Idempotency records, one per (owner, scope, key).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Reserves `key` for a request whose body hashes to `fingerprint`; the
    /// reservation is fenced by `holder` (a fresh id per request).
    ///
    /// A record older than `ttl`, or a reservation without an answer older
    /// than [`IDEMPOTENCY_IN_FLIGHT_TIMEOUT`], is replaced as if absent.
    /// Two concurrent calls with one key MUST NOT both get
    /// [`Reservation::Fresh`].
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn reserve(
        &self,
        key: &IdempotencyKey,
        fingerprint: [u8; 32],
        holder: uuid::Uuid,
        now: Timestamp,
        ttl: SignedDuration,
    ) -> Result<Reservation, StoreError>;

    /// Stores the answer of the request that reserved `key` as `holder`.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when `key` is not reserved by
    /// `holder` (never reserved, or taken over after the in-flight timeout):
    /// a late first request must not overwrite its retry's answer.
    async fn finish(
        &self,
        key: &IdempotencyKey,
        holder: uuid::Uuid,
        response: StoredResponse,
    ) -> Result<(), StoreError>;

    /// Drops `holder`'s reservation of `key` (its request failed in a way
    /// worth retrying); another holder's reservation is left alone.
    ///
    /// # Errors
    /// Only infrastructure failures (an unknown key is fine).
    async fn abandon(&self, key: &IdempotencyKey, holder: uuid::Uuid) -> Result<(), StoreError>;

    /// Deletes records created before `before`; returns how many.
    ///
    /// # Errors
    /// Only infrastructure failures.
    async fn purge(&self, before: Timestamp) -> Result<u64, StoreError>;
}
