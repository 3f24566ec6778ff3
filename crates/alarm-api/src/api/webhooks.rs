//! `/api/v1/webhooks`: the caller's webhook endpoints (CRUD, secret rotation), their delivery history, retries of a delivery and test pings.
//!
//! Every operation on one registration answers 404 for another user's id,
//! an unknown id and a non-UUID id alike, before looking at the body or the
//! query, as the alarm operations do. The signing secret leaves the server
//! only in the answers to create and rotate-secret.

use std::sync::Arc;

use alarm_domain::ids::WebhookId;
use alarm_domain::model::WebhookRegistration;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use crate::auth::{Caller, WebhookAuth};
use crate::body::JsonBody;
use crate::dto::{
    DeliveryPage, DeliveryView, WebhookInput, WebhookList, WebhookSecretView, WebhookUpdate,
    WebhookView,
};
use crate::lenient::{self, Lenient};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use alarm_domain::model::ApiKeyScope;

/// Answers that carry the signing secret must not be kept by a cache on
/// the way.
const NO_STORE: &str = "no-store";

/// A registered endpoint and its secret.
#[derive(ApiResponse)]
pub(crate) enum Created {
    /// The new registration and its signing secret (shown only here and on
    /// rotate-secret).
    #[oai(status = 201)]
    Created(
        Json<WebhookSecretView>,
        #[oai(header = "Location")] String,
        #[oai(header = "Cache-Control")] String,
    ),
}

/// A registration with a new secret.
#[derive(ApiResponse)]
pub(crate) enum Rotated {
    /// The registration and its new signing secret; the old one keeps
    /// signing beside it until `previous_secret_until`.
    #[oai(status = 200)]
    Ok(
        Json<WebhookSecretView>,
        #[oai(header = "Cache-Control")] String,
    ),
}

/// One registration.
#[derive(ApiResponse)]
pub(crate) enum WebhookResponse {
    /// The registration (without its secret).
    #[oai(status = 200)]
    Ok(Json<WebhookView>),
}

/// The caller's registrations.
#[derive(ApiResponse)]
pub(crate) enum Listed {
    /// Every registration of the caller (at most 20, so no pages).
    #[oai(status = 200)]
    Ok(Json<WebhookList>),
}

/// Deleted.
#[derive(ApiResponse)]
pub(crate) enum Deleted {
    /// The registration is gone; nothing more is sent to it.
    #[oai(status = 204)]
    Done,
}

/// A page of deliveries.
#[derive(ApiResponse)]
pub(crate) enum Deliveries {
    /// Newest first.
    #[oai(status = 200)]
    Ok(Json<DeliveryPage>),
}

/// A queued delivery.
#[derive(ApiResponse)]
pub(crate) enum Queued {
    /// Queued for sending (`pending`); follow it in the delivery list.
    #[oai(status = 202)]
    Accepted(Json<DeliveryView>),
}

/// The event catalogue.
#[derive(ApiResponse)]
pub(crate) enum EventTypes {
    /// Every event type, in a fixed order.
    #[oai(status = 200)]
    Ok(Json<crate::dto::WebhookEventTypeList>),
}

pub(crate) struct WebhooksApi;

/// A path id that is not a UUID v7 names nobody's registration: 404, like
/// another user's id, so the answer does not depend on the id's shape.
fn webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// Delivery ids are the engine's delivery keys (UUID v8) or, for test
/// pings, fresh ids: any UUID; anything else names no delivery.
fn delivery_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// The default page of deliveries: enough for a screen of history.
const DEFAULT_DELIVERIES: u32 = 20;

impl WebhooksApi {
    /// The caller's registration, or the 404 that every miss answers.
    async fn owned(
        state: &AppState,
        caller: &Caller,
        id: &str,
    ) -> Result<WebhookRegistration, ApiError> {
        let id = webhook_id(id)?;
        Ok(state.webhooks.get(&caller.actor(), id).await?)
    }

    fn location(state: &AppState, id: WebhookId) -> String {
        state.location(&format!("webhooks/{id}"))
    }
}

#[OpenApi(prefix_path = "/api/v1/webhooks", tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Register a webhook endpoint.
    ///
    /// Every event named in `events` of every alarm of the caller (or only
    /// of `alarm_ids`) is `POST`ed to `url`, whatever channels the alarm
    /// lists, signed per Standard Webhooks with the `secret` of the answer:
    /// store it now, it is never shown again (rotate-secret makes a new
    /// one). Each event is written to the outbox in the transaction of the
    /// change that caused it; its `webhook-id` (and `data.delivery_id`) is
    /// the event's id, the same on every retry and redelivery. A
    /// registration receives only events made after it exists. The body is
    /// `{type, timestamp, data}`; `data` is described per type by the
    /// `WebhookEventData` schema. URLs whose host
    /// the server refuses to call (loopback, private networks…) are 422
    /// `refused-target`. At most 20 registrations per user.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        auth: WebhookAuth,
        state: Data<&Arc<AppState>>,
        body: JsonBody<WebhookInput>,
    ) -> Result<Created, ApiError> {
        let caller = auth.caller(ApiKeyScope::WebhooksWrite)?;
        let input = body.into_inner()?;
        let (url, events) = input.to_domain()?;
        let alarms = crate::dto::alarm_filter(input.alarm_ids.as_deref())?;
        let created = state
            .webhooks
            .create(&caller.actor(), url, events, alarms)
            .await?;
        let location = Self::location(&state, created.registration.id());
        Ok(Created::Created(
            Json(WebhookSecretView::new(&created)),
            location,
            NO_STORE.to_owned(),
        ))
    }

    /// The webhook event catalogue.
    ///
    /// Every event type a registration may subscribe to, when it is sent,
    /// and an example of the body it is sent with (`WebhookEventBody`).
    #[oai(path = "/event-types", method = "get")]
    async fn event_types(&self, auth: WebhookAuth) -> Result<EventTypes, ApiError> {
        auth.caller(ApiKeyScope::WebhooksRead)?;
        Ok(EventTypes::Ok(Json(crate::dto::catalogue())))
    }

    /// List the caller's webhook endpoints.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        auth: WebhookAuth,
        state: Data<&Arc<AppState>>,
    ) -> Result<Listed, ApiError> {
        let caller = auth.caller(ApiKeyScope::WebhooksRead)?;
        let items = state
            .webhooks
            .list(&caller.actor())
            .await?
            .iter()
            .map(WebhookView::new)
            .collect();
        Ok(Listed::Ok(Json(WebhookList { items })))
    }

    /// Get a webhook endpoint.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        auth: WebhookAuth,
        state: Data<&Arc<AppState>>,
        /// Webhook id.
        id: Path<String>,
    ) -> Result<WebhookResponse, ApiError> {
        let caller = auth.caller(ApiKeyScope::WebhooksRead)?;
        let webhook = Self::owned(&state, &caller, &id.0).await?;
        Ok(WebhookResponse::Ok(Json(WebhookView::new(&webhook))))
    }

    /// Replace a webhook endpoint's URL, events and active flag.
    ///
    /// The secret stays. Re-activating a registration that was disabled
    /// after repeated failures resets `consecutive_failures`.
    #[oai(path = "/:id", method = "put")]
    async fn replace(
        &self,
        auth: WebhookAuth,
        state: Data<&Arc<AppState>>,
        /// Webhook id.
        id: Path<String>,
        body: JsonBody<WebhookUpdate>,
    ) -> Result<WebhookResponse, ApiError> {
        let caller = auth.caller(ApiKeyScope::WebhooksWrite)?;
        // Ownership before the body: another user's id is 404 whatever it holds.
        let current = Self::owned(&state, &caller, &id.0).await?;
        let input = body.into_inner()?;
        let (url, events) = input.to_domain()?;
        let alarms = crate::dto::alarm_filter(input.alarm_ids.as_deref())?;
        let webhook = state
            .webhooks
            .update(
                &caller.actor(),
                current.id(),
                url,
                events,
                input.active,
                alarms,
            )
            .await?;
        Ok(WebhookResponse::Ok(Json(WebhookView::new(&webhook))))
    }

    /// Delete a webhook endpoint.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(
        &self,
        auth: WebhookAuth,
        state: Data<&Arc<AppState>>,
        /// Webhook id.
        id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        let caller = auth.caller(ApiKeyScope::WebhooksWrite)?;
        let id = webhook_id(&id.0)?;
        state.webhooks.delete(&caller.actor(), id).await?;
        Ok(Deleted::Done)
    }

    /// Replace a webhook endpoint's signing secret.
    ///
    /// The new secret is in the answer and nowhere else. Deliveries carry a
    /// signature with each secret until `previous_secret_until` (the
    /// operator's overlap, a day by default), so update the receiver within
    /// it; a second rotation inside the overlap retires the oldest secret.
    /// Of two rotations racing, the later is answered 409 `conflict` and its
    /// secret is never stored; an update racing a rotation keeps the
    /// rotated secret.
    #[oai(path = "/:id/rotate-secret", method = "post")]
    async fn rotate_secret(
        &self,
        auth: WebhookAuth,
        state: Data<&Arc<AppState>>,
        /// Webhook id.
        id: Path<String>,
    ) -> Result<Rotated, ApiError> {
        let caller = auth.caller(ApiKeyScope::WebhooksWrite)?;
        let id = webhook_id(&id.0)?;
        let rotated = state.webhooks.rotate_secret(&caller.actor(), id).await?;
        Ok(Rotated::Ok(
            Json(WebhookSecretView::new(&rotated)),
            NO_STORE.to_owned(),
        ))
    }

    /// List a webhook endpoint's deliveries.
    ///
    /// Newest first. When a page is full, `next_before` names its last
    /// delivery: pass it as `before` for the older ones.
    #[oai(path = "/:id/deliveries", method = "get")]
    async fn deliveries(
        &self,
        auth: WebhookAuth,
        state: Data<&Arc<AppState>>,
        /// Webhook id.
        id: Path<String>,
        /// Page size, 1..=100 (default 20).
        limit: Query<Option<Lenient<u32>>>,
        /// `next_before` of the previous page.
        before: Query<Option<String>>,
    ) -> Result<Deliveries, ApiError> {
        let caller = auth.caller(ApiKeyScope::WebhooksRead)?;
        // The parameters are judged only once the registration is known
        // to be the caller's (404 first, as for alarms).
        let webhook = Self::owned(&state, &caller, &id.0).await?;
        let limit = lenient::optional(limit.0, "limit")?.unwrap_or(DEFAULT_DELIVERIES);
        if !(1..=100).contains(&limit) {
            return Err(
                Problem::invalid("limit", format!("must be 1..=100 (got {limit})"))
                    .with_status(400)
                    .into(),
            );
        }
        let before = before
            .0
            .as_deref()
            .map(|raw| {
                raw.parse::<uuid::Uuid>().map_err(|_| {
                    ApiError::from(
                        Problem::invalid("before", "not a `next_before` from a previous page")
                            .with_status(400),
                    )
                })
            })
            .transpose()?;
        let items: Vec<DeliveryView> = state
            .webhooks
            .deliveries(&caller.actor(), webhook.id(), before, limit)
            .await?
            .iter()
            .map(DeliveryView::new)
            .collect();
        // A short page is the last one; a full one may have more behind it.
        let next_before = (items.len() == limit as usize)
            .then(|| items.last().map(|d| d.id.clone()))
            .flatten();
        Ok(Deliveries::Ok(Json(DeliveryPage { items, next_before })))
    }

    /// Send a delivery again.
    ///
    /// A delivered or given-up (`dead`) delivery is queued again from
    /// attempt one, with the same message id so the receiver can tell a
    /// repeat. 409 while it is still pending.
    #[oai(path = "/:id/deliveries/:delivery_id/retry", method = "post")]
    async fn retry(
        &self,
        auth: WebhookAuth,
        state: Data<&Arc<AppState>>,
        /// Webhook id.
        id: Path<String>,
        /// Delivery id.
        delivery_id: Path<String>,
    ) -> Result<Queued, ApiError> {
        let caller = auth.caller(ApiKeyScope::WebhooksWrite)?;
        let webhook = Self::owned(&state, &caller, &id.0).await?;
        let message = self::delivery_id(&delivery_id.0)?;
        let item = state
            .webhooks
            .retry(&caller.actor(), webhook.id(), message)
            .await?;
        Ok(Queued::Accepted(Json(DeliveryView::new(&item))))
    }

    /// Send a test ping.
    ///
    /// Queues a signed `webhook.test` message to the endpoint, even an
    /// inactive one, so the receiver can be checked before it is enabled.
    /// At most `RATE_LIMIT_TEST_PINGS_PER_HOUR` (default 10) per account
    /// an hour; past it, 429 `rate-limited` naming `test_pings_per_user`.
    #[oai(path = "/:id/test", method = "post")]
    async fn test(
        &self,
        auth: WebhookAuth,
        state: Data<&Arc<AppState>>,
        /// Webhook id.
        id: Path<String>,
    ) -> Result<Queued, ApiError> {
        let caller = auth.caller(ApiKeyScope::WebhooksWrite)?;
        let id = webhook_id(&id.0)?;
        // 404 before 429: only the caller's own registration is counted.
        state.webhooks.get(&caller.actor(), id).await?;
        let d = state
            .limiter
            .hit(
                state.config.rate_limits.test_pings_per_user,
                &caller.user.to_string(),
            )
            .await;
        if !d.allowed() {
            return Err(crate::limiter::refused(
                &d,
                "too many test pings for this account; wait and retry",
            ));
        }
        crate::limiter::note(d);
        let item = state.webhooks.test(&caller.actor(), id).await?;
        Ok(Queued::Accepted(Json(DeliveryView::new(&item))))
    }
}
