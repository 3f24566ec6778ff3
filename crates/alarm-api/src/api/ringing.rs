//! The in-app channel: the caller's ringing occurrences, and snooze and dismiss (both with `Idempotency-Key`).

use std::collections::HashMap;
use std::sync::Arc;

use alarm_domain::ids::AlarmId;
use alarm_domain::ports::StoredResponse;
use alarm_domain::services::ServiceError;
use poem::web::Data;
use poem_openapi::param::{Header, Path};
use poem_openapi::payload::Json;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::dto::{RingingList, RingingView};
use crate::idem;
use crate::problem::ApiError;
use crate::state::AppState;

/// The ringing list.
#[derive(ApiResponse)]
pub(crate) enum Listed {
    /// Occurrences that rang and are neither dismissed, snoozed nor expired.
    #[oai(status = 200)]
    Ok(Json<RingingList>),
}

/// A snoozed occurrence.
#[derive(ApiResponse)]
pub(crate) enum Snoozed {
    /// Snoozed; it rings again at `rings_again_at`.
    #[oai(status = 200)]
    Ok(Json<RingingView>),
}

/// A dismissal.
#[derive(ApiResponse)]
pub(crate) enum Dismissed {
    /// Every ringing occurrence of the alarm is answered; its snoozes and
    /// escalations are cancelled.
    #[oai(status = 204)]
    Done,
}

pub(crate) struct RingingApi;

/// Requests without a body share one fingerprint: the key's scope (which
/// names the alarm) is what tells them apart.
const NO_BODY: [u8; 32] = [0; 32];

fn alarm_id(raw: &str) -> Result<AlarmId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

fn store_err(e: alarm_domain::ports::StoreError) -> ApiError {
    ApiError::from(ServiceError::from(e))
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Ringing")]
impl RingingApi {
    /// List the caller's ringing occurrences.
    ///
    /// Occurrences that rang and are neither dismissed, snoozed nor
    /// expired, oldest first.
    #[oai(path = "/ringing", method = "get")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
    ) -> Result<Listed, ApiError> {
        let ringing: Vec<_> = state
            .ports
            .queue
            .ringing_of(auth.0.user)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|r| !r.snoozed)
            .collect();
        let ids: Vec<AlarmId> = ringing.iter().map(|r| r.alarm).collect();
        let alarms: HashMap<AlarmId, _> = state
            .ports
            .alarms
            .get_many(ids)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|a| a.owner() == auth.0.user)
            .map(|a| (a.id(), a))
            .collect();
        let items = ringing
            .iter()
            .filter_map(|r| alarms.get(&r.alarm).map(|a| RingingView::new(r, a, None)))
            .collect();
        Ok(Listed::Ok(Json(RingingList { items })))
    }

    /// Snooze the alarm's ringing occurrence.
    ///
    /// The most recent ringing occurrence goes quiet and rings again after
    /// the alarm's snooze minutes; its pending escalation is cancelled.
    /// 409 when nothing is ringing or the snooze limit is reached. With an
    /// `Idempotency-Key`, a repeated request returns the first answer and
    /// snoozes once.
    #[oai(path = "/alarms/:id/snooze", method = "post")]
    async fn snooze(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// The alarm.
        id: Path<String>,
        /// 1..=255 visible ASCII characters chosen by the client.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
    ) -> Result<Snoozed, ApiError> {
        let actor = auth.0.actor();
        let id = alarm_id(&id.0)?;
        // Ownership first: another user's alarm is 404 whatever the key.
        let alarm = state.alarms.get(&actor, id).await?;
        let scope = format!("POST /api/v1/alarms/{id}/snooze");
        let claim = match idem::begin(&state, actor.user, scope, idempotency_key.0, NO_BODY).await?
        {
            idem::Begin::Replay(stored) => {
                let value: serde_json::Value =
                    serde_json::from_str(&stored.body).map_err(|e| ApiError::internal(&e))?;
                let view = RingingView::parse_from_json(Some(value)).map_err(|e| {
                    ApiError::internal(&*Box::<dyn std::error::Error>::from(e.into_message()))
                })?;
                return Ok(Snoozed::Ok(Json(view)));
            }
            idem::Begin::Proceed(claim) => claim,
        };
        let (ringing, again) = match state.alarms.snooze_until(&actor, id).await {
            Ok(r) => r,
            Err(e) => {
                if let Some(claim) = claim {
                    claim.abandon(&state).await;
                }
                return Err(e.into());
            }
        };
        let view = RingingView::new(&ringing, &alarm, Some(again));
        if let Some(claim) = claim {
            let stored = StoredResponse {
                status: 200,
                headers: Vec::new(),
                body: view.to_json_string(),
            };
            claim.finish(&state, stored).await;
        }
        Ok(Snoozed::Ok(Json(view)))
    }

    /// Dismiss the alarm's ringing occurrences.
    ///
    /// Every ringing (or snoozed) occurrence of the alarm is answered; its
    /// snoozes and escalations are cancelled. 409 when nothing is ringing.
    /// With an `Idempotency-Key`, a repeated request is answered 204 again.
    #[oai(path = "/alarms/:id/dismiss", method = "post")]
    async fn dismiss(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// The alarm.
        id: Path<String>,
        /// 1..=255 visible ASCII characters chosen by the client.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
    ) -> Result<Dismissed, ApiError> {
        let actor = auth.0.actor();
        let id = alarm_id(&id.0)?;
        state.alarms.get(&actor, id).await?;
        let scope = format!("POST /api/v1/alarms/{id}/dismiss");
        let claim = match idem::begin(&state, actor.user, scope, idempotency_key.0, NO_BODY).await?
        {
            idem::Begin::Replay(_) => return Ok(Dismissed::Done),
            idem::Begin::Proceed(claim) => claim,
        };
        if let Err(e) = state.alarms.dismiss(&actor, id).await {
            if let Some(claim) = claim {
                claim.abandon(&state).await;
            }
            return Err(e.into());
        }
        if let Some(claim) = claim {
            let stored = StoredResponse {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
            };
            claim.finish(&state, stored).await;
        }
        Ok(Dismissed::Done)
    }
}
