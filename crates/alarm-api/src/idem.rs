//! `Idempotency-Key` handling shared by the operations that accept it: key syntax, the reservation, replay of the stored answer, and releasing a failed attempt's key.

use alarm_domain::ports::{IdempotencyKey, Reservation, StoredResponse};
use alarm_domain::services::ServiceError;

use crate::problem::{ApiError, Problem, ProblemType};
use crate::state::AppState;

/// A reserved key, with this request's claim on it (a late finish or
/// abandon after a take-over cannot touch the retry's reservation).
pub(crate) struct Claim {
    key: IdempotencyKey,
    holder: uuid::Uuid,
}

/// What to do with the request.
pub(crate) enum Begin {
    /// Do the work (and `finish` or `abandon` the claim, when there is one).
    Proceed(Option<Claim>),
    /// The same request was answered before: send this answer again.
    Replay(StoredResponse),
}

/// Checks the header's syntax and reserves the key for `scope` (the
/// operation, with the target resource when there is one).
///
/// # Errors
/// 400 for a malformed key, 409 while the first request is still being
/// answered, 422 when the key was used with another body.
pub(crate) async fn begin(
    state: &AppState,
    owner: alarm_domain::ids::UserId,
    scope: String,
    raw: Option<String>,
    fingerprint: [u8; 32],
) -> Result<Begin, ApiError> {
    let Some(raw) = raw else {
        return Ok(Begin::Proceed(None));
    };
    if !(1..=255).contains(&raw.len()) || !raw.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(Problem::invalid(
            "Idempotency-Key",
            "must be 1..=255 visible ASCII characters",
        )
        .with_status(400)
        .into());
    }
    let key = IdempotencyKey {
        owner,
        scope,
        key: raw,
    };
    let holder = uuid::Uuid::now_v7();
    let reservation = state
        .ports
        .idempotency
        .reserve(
            &key,
            fingerprint,
            holder,
            state.ports.clock.now(),
            state.config.idempotency_ttl,
        )
        .await
        .map_err(|e| ApiError::from(ServiceError::from(e)))?;
    match reservation {
        Reservation::Fresh => Ok(Begin::Proceed(Some(Claim { key, holder }))),
        Reservation::Replay(stored) => Ok(Begin::Replay(stored)),
        Reservation::InFlight => Err(ApiError::of(
            ProblemType::Conflict,
            "a request with this Idempotency-Key is still being processed",
        )),
        Reservation::Mismatch => Err(Problem::invalid(
            "Idempotency-Key",
            "this key was used with a different request body",
        )
        .into()),
    }
}

impl Claim {
    /// Stores the answer for replays.
    pub(crate) async fn finish(self, state: &AppState, answer: StoredResponse) {
        if let Err(e) = state
            .ports
            .idempotency
            .finish(&self.key, self.holder, answer)
            .await
        {
            // The work is done; a retry within the in-flight window is told
            // to wait, after it the work could be repeated.
            tracing::warn!(error = %e, "idempotency answer not stored");
        }
    }

    /// Frees the key after a failed attempt, so the retry runs afresh.
    pub(crate) async fn abandon(self, state: &AppState) {
        let _ = state
            .ports
            .idempotency
            .abandon(&self.key, self.holder)
            .await;
    }
}

/// A stored header's value.
pub(crate) fn header(stored: &StoredResponse, name: &str) -> String {
    stored
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}
