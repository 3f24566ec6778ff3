//! `/api/v1/alarms`: CRUD with ETags and `If-Match`, `Idempotency-Key` on create, enable/disable, occurrence preview and history.

use std::sync::Arc;

use alarm_domain::ids::{AlarmId, EventId};
use alarm_domain::jiff::Timestamp;
use alarm_domain::model::{Alarm, AlarmVersion};
use alarm_domain::ports::{PageRequest, StoredResponse};
use alarm_domain::schedule::{MAX_PREVIEW_LIMIT, OccurrenceQuery};
use alarm_domain::tz::TimeZoneName;
use poem::web::Data;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::{ParseFromJSON, ToJSON};
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use crate::auth::{BearerAuth, Caller};
use crate::body::JsonBody;
use crate::dto::{
    AlarmInput, AlarmPage, AlarmView, EventPage, EventView, OccurrenceList, OccurrenceView,
};
use crate::idem;
use crate::lenient::{self, Lenient};
use crate::problem::{ApiError, Problem, ProblemType};
use crate::state::AppState;

/// One alarm.
#[derive(ApiResponse)]
pub(crate) enum AlarmResponse {
    /// The alarm; `ETag` is its version for `If-Match`.
    #[oai(status = 200)]
    Ok(Json<AlarmView>, #[oai(header = "ETag")] String),
}

/// A created alarm.
#[derive(ApiResponse)]
pub(crate) enum Created {
    /// The new alarm (or, for a repeated `Idempotency-Key`, the first answer).
    #[oai(status = 201)]
    Created(
        Json<AlarmView>,
        #[oai(header = "ETag")] String,
        #[oai(header = "Location")] String,
    ),
}

/// A page of alarms.
#[derive(ApiResponse)]
pub(crate) enum AlarmList {
    /// The page.
    #[oai(status = 200)]
    Ok(Json<AlarmPage>),
}

/// Deleted.
#[derive(ApiResponse)]
pub(crate) enum Deleted {
    /// The alarm and its pending fires are gone; its history stays.
    #[oai(status = 204)]
    Done,
}

/// Occurrences.
#[derive(ApiResponse)]
pub(crate) enum Occurrences {
    /// Upcoming occurrences after `from`.
    #[oai(status = 200)]
    Ok(Json<OccurrenceList>),
}

/// Events.
#[derive(ApiResponse)]
pub(crate) enum Events {
    /// The alarm's history.
    #[oai(status = 200)]
    Ok(Json<EventPage>),
}

pub(crate) struct AlarmsApi;

/// The strong ETag of a version.
fn etag(v: AlarmVersion) -> String {
    format!("\"{}\"", v.get())
}

/// A path id that is not a UUID names nobody's alarm: 404, like another
/// user's id, so the answer does not depend on the id's shape.
fn alarm_id(raw: &str) -> Result<AlarmId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// `If-Match` judged against the current version (RFC 9110 §13.1.1:
/// strong comparison, so weak tags never match; `*` matches any). Returns
/// the version the change must be based on (`None` for `*`), so that a
/// change landing between this read and the write is still a 412.
fn check_if_match(
    header: Option<&str>,
    current: AlarmVersion,
) -> Result<Option<AlarmVersion>, ApiError> {
    let Some(header) = header else {
        return Err(ApiError::of(
            ProblemType::PreconditionRequired,
            format!(
                "send If-Match with the alarm's ETag (currently {})",
                etag(current)
            ),
        ));
    };
    let want = etag(current);
    let tags: Vec<&str> = header.split(',').map(str::trim).collect();
    if tags.contains(&"*") {
        Ok(None)
    } else if tags.contains(&want.as_str()) {
        Ok(Some(current))
    } else {
        Err(ApiError::of(
            ProblemType::PreconditionFailed,
            format!("the alarm changed; its current ETag is {want}"),
        ))
    }
}

fn page_limit(limit: Option<u32>, default: u32) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=100).contains(&limit) {
        Ok(limit)
    } else {
        Err(
            Problem::invalid("limit", format!("must be 1..=100 (got {limit})"))
                .with_status(400)
                .into(),
        )
    }
}

fn cursor<T: std::str::FromStr>(raw: Option<&str>) -> Result<Option<T>, ApiError> {
    raw.map(|c| {
        c.parse::<T>().map_err(|_| {
            ApiError::from(
                Problem::invalid("cursor", "not a cursor from a previous page").with_status(400),
            )
        })
    })
    .transpose()
}

/// Instants the preview accepts for `from`.
fn parse_from(raw: Option<&str>, now: Timestamp) -> Result<Timestamp, ApiError> {
    let Some(raw) = raw else { return Ok(now) };
    let bad = |reason: String| ApiError::from(Problem::invalid("from", reason).with_status(400));
    let t: Timestamp = raw.parse().map_err(|_| {
        bad(format!(
            "`{raw}` is not an RFC 3339 instant such as 2026-03-08T00:00:00Z"
        ))
    })?;
    let (lo, hi) = (
        Timestamp::from_second(-2_208_988_800).unwrap_or(Timestamp::MIN),
        Timestamp::from_second(7_258_118_400).unwrap_or(Timestamp::MAX),
    );
    if t < lo || t >= hi {
        return Err(bad("must lie between 1900-01-01 and 2200-01-01".to_owned()));
    }
    Ok(t)
}

impl AlarmsApi {
    async fn view(state: &AppState, alarm: &Alarm) -> Result<AlarmView, ApiError> {
        let next = state.alarms.next_fire_at(alarm).await?;
        Ok(AlarmView::new(alarm, next))
    }

    async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<Alarm, ApiError> {
        let id = alarm_id(id)?;
        Ok(state.alarms.get(&caller.actor(), id).await?)
    }

    fn location(state: &AppState, id: AlarmId) -> String {
        state.location(&format!("alarms/{id}"))
    }
}

#[OpenApi(prefix_path = "/api/v1/alarms", tag = "ApiTags::Alarms")]
impl AlarmsApi {
    /// Create an alarm.
    ///
    /// Only `name`, `time_zone` and `schedules` are required. With an
    /// `Idempotency-Key`, repeating the same request within 24 hours
    /// returns the first answer and creates nothing; the same key with a
    /// different body is refused (422).
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// 1..=255 visible ASCII characters chosen by the client.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<AlarmInput>,
    ) -> Result<Created, ApiError> {
        let actor = auth.0.actor();
        let fingerprint = body.fingerprint();
        let input = body.into_inner()?;
        // The caller's default zone is read only when the body names none.
        let default_zone = match input.time_zone {
            Some(_) => TimeZoneName::utc(),
            None => state.users.me(&actor).await?.time_zone().clone(),
        };
        let draft = input.to_draft(&state.tzdb, &default_zone, &state.ports.limits)?;
        let claim = match idem::begin(
            &state,
            actor.user,
            "POST /api/v1/alarms".to_owned(),
            idempotency_key.0,
            fingerprint,
        )
        .await?
        {
            idem::Begin::Replay(stored) => return replay(stored),
            idem::Begin::Proceed(claim) => claim,
        };
        let result = async {
            let alarm = state.alarms.create(&actor, draft).await?;
            // Counted once per alarm made: a replayed answer is no new alarm.
            metrics::counter!("alarms_created_total").increment(1);
            Ok::<_, ApiError>((Self::view(&state, &alarm).await?, alarm))
        }
        .await;
        let (view, alarm) = match result {
            Ok(v) => v,
            Err(e) => {
                if let Some(claim) = claim {
                    claim.abandon(&state).await;
                }
                return Err(e);
            }
        };
        let tag = etag(alarm.version());
        let location = Self::location(&state, alarm.id());
        if let Some(claim) = claim {
            let stored = StoredResponse {
                status: 201,
                headers: vec![
                    ("etag".to_owned(), tag.clone()),
                    ("location".to_owned(), location.clone()),
                ],
                body: view.to_json_string(),
            };
            claim.finish(&state, stored).await;
        }
        Ok(Created::Created(Json(view), tag, location))
    }

    /// List the caller's alarms.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Page size, 1..=100 (default 50).
        limit: Query<Option<u32>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Only enabled (`true`) or disabled (`false`) alarms.
        enabled: Query<Option<bool>>,
    ) -> Result<AlarmList, ApiError> {
        let limit = page_limit(limit.0, 50)?;
        let after = self::cursor::<AlarmId>(cursor.0.as_deref())?;
        let page = PageRequest::new(after, limit)?;
        let page = state.alarms.list(&auth.0.actor(), enabled.0, page).await?;
        // The page's owner is the caller, so one calendar serves every alarm.
        let actor = auth.0.actor();
        let next = state.alarms.next_fire_at_all(&actor, &page.items).await?;
        let items = page
            .items
            .iter()
            .zip(next)
            .map(|(a, next)| AlarmView::new(a, next))
            .collect();
        Ok(AlarmList::Ok(Json(AlarmPage {
            items,
            next_cursor: page.next.map(|c| c.to_string()),
        })))
    }

    /// Get an alarm.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Alarm id.
        id: Path<String>,
    ) -> Result<AlarmResponse, ApiError> {
        let alarm = Self::owned(&state, &auth.0, &id.0).await?;
        Ok(AlarmResponse::Ok(
            Json(Self::view(&state, &alarm).await?),
            etag(alarm.version()),
        ))
    }

    /// Replace an alarm.
    ///
    /// Requires `If-Match` with the alarm's ETag (428 without it, 412 when stale).
    #[oai(path = "/:id", method = "put")]
    async fn replace(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Alarm id.
        id: Path<String>,
        /// The ETag read before the change, or `*`.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        body: JsonBody<AlarmInput>,
    ) -> Result<AlarmResponse, ApiError> {
        let current = Self::owned(&state, &auth.0, &id.0).await?;
        // A replacement is always based on a version: the one named, or
        // for `*` the one just read (a concurrent edit then answers 412
        // rather than being overwritten unseen).
        let expected = check_if_match(if_match.0.as_deref(), current.version())?;
        let draft =
            body.into_inner()?
                .to_draft(&state.tzdb, current.time_zone(), &state.ports.limits)?;
        let alarm = state
            .alarms
            .update(
                &auth.0.actor(),
                current.id(),
                draft,
                expected.unwrap_or(current.version()),
            )
            .await?;
        Ok(AlarmResponse::Ok(
            Json(Self::view(&state, &alarm).await?),
            etag(alarm.version()),
        ))
    }

    /// Delete an alarm (its history stays readable through the audit log).
    ///
    /// Requires `If-Match`.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Alarm id.
        id: Path<String>,
        /// The ETag read before the change, or `*`.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> Result<Deleted, ApiError> {
        let current = Self::owned(&state, &auth.0, &id.0).await?;
        let expected = check_if_match(if_match.0.as_deref(), current.version())?;
        state
            .alarms
            .delete(&auth.0.actor(), current.id(), expected)
            .await?;
        Ok(Deleted::Done)
    }

    /// Enable an alarm.
    ///
    /// Requires `If-Match`. Enabling an enabled alarm changes nothing.
    #[oai(path = "/:id/enable", method = "post")]
    async fn enable(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Alarm id.
        id: Path<String>,
        /// The ETag read before the change, or `*`.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> Result<AlarmResponse, ApiError> {
        Self::switch(&state, &auth.0, &id.0, if_match.0.as_deref(), true).await
    }

    /// Disable an alarm.
    ///
    /// Requires `If-Match`. Disabling a disabled alarm changes nothing.
    #[oai(path = "/:id/disable", method = "post")]
    async fn disable(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Alarm id.
        id: Path<String>,
        /// The ETag read before the change, or `*`.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
    ) -> Result<AlarmResponse, ApiError> {
        Self::switch(&state, &auth.0, &id.0, if_match.0.as_deref(), false).await
    }

    /// Preview the alarm's occurrences.
    ///
    /// Occurrences strictly after `from` (default now), judged against the
    /// caller's exception periods and holiday preferences, across
    /// daylight-saving changes in the alarm's zone.
    #[oai(path = "/:id/occurrences", method = "get")]
    async fn occurrences(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Alarm id.
        id: Path<String>,
        /// Exclusive start, an RFC 3339 instant between 1900 and 2200 (default now).
        from: Query<Option<String>>,
        /// How many, 1..=500 (default 10).
        limit: Query<Option<Lenient<u32>>>,
        /// Also list suppressed occurrences, with the reason (default false).
        include_suppressed: Query<Option<Lenient<bool>>>,
    ) -> Result<Occurrences, ApiError> {
        let alarm = Self::owned(&state, &auth.0, &id.0).await?;
        let limit = lenient::optional(limit.0, "limit")?.unwrap_or(10);
        let include_suppressed =
            lenient::optional(include_suppressed.0, "include_suppressed")?.unwrap_or(false);
        if !(1..=MAX_PREVIEW_LIMIT).contains(&(limit as usize)) {
            return Err(Problem::invalid(
                "limit",
                format!("must be 1..={MAX_PREVIEW_LIMIT} (got {limit})"),
            )
            .with_status(400)
            .into());
        }
        let after = parse_from(from.0.as_deref(), state.ports.clock.now())?;
        let preview = state
            .alarms
            .preview(
                &auth.0.actor(),
                alarm.id(),
                OccurrenceQuery {
                    after,
                    limit: limit as usize,
                    include_suppressed,
                },
            )
            .await?;
        Ok(Occurrences::Ok(Json(OccurrenceList {
            items: preview.items.iter().map(OccurrenceView::new).collect(),
            complete: preview.complete,
        })))
    }

    /// The alarm's history: created, updated, rang, snoozed…
    #[oai(path = "/:id/events", method = "get")]
    async fn events(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Alarm id.
        id: Path<String>,
        /// Page size, 1..=100 (default 50).
        limit: Query<Option<Lenient<u32>>>,
        /// `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<Events, ApiError> {
        let alarm = Self::owned(&state, &auth.0, &id.0).await?;
        let limit = page_limit(lenient::optional(limit.0, "limit")?, 50)?;
        let after = self::cursor::<EventId>(cursor.0.as_deref())?;
        let page = state
            .ports
            .events
            .list(auth.0.user, alarm.id(), PageRequest::new(after, limit)?)
            .await
            .map_err(|e| ApiError::from(alarm_domain::services::ServiceError::from(e)))?;
        Ok(Events::Ok(Json(EventPage {
            items: page.items.iter().map(EventView::new).collect(),
            next_cursor: page.next.map(|c| c.to_string()),
        })))
    }
}

impl AlarmsApi {
    async fn switch(
        state: &AppState,
        caller: &Caller,
        id: &str,
        if_match: Option<&str>,
        enabled: bool,
    ) -> Result<AlarmResponse, ApiError> {
        let current = Self::owned(state, caller, id).await?;
        let expected = check_if_match(if_match, current.version())?;
        let alarm = state
            .alarms
            .set_enabled(&caller.actor(), current.id(), enabled, expected)
            .await?;
        Ok(AlarmResponse::Ok(
            Json(Self::view(state, &alarm).await?),
            etag(alarm.version()),
        ))
    }
}

/// The stored first answer to a repeated `Idempotency-Key`.
fn replay(stored: StoredResponse) -> Result<Created, ApiError> {
    let value: serde_json::Value =
        serde_json::from_str(&stored.body).map_err(|e| ApiError::internal(&e))?;
    let view = AlarmView::parse_from_json(Some(value))
        .map_err(|e| ApiError::internal(&*Box::<dyn std::error::Error>::from(e.into_message())))?;
    Ok(Created::Created(
        Json(view),
        idem::header(&stored, "etag"),
        idem::header(&stored, "location"),
    ))
}
