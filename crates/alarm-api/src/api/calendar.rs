//! `/api/v1/exception-periods`: the caller's exception periods (vacation, travel, sick leave…), on which their alarms stay silent.
//!
//! Every change re-plans the caller's alarms in the same commit, so the
//! next fire reported by `GET /alarms/{id}` moves at once. As elsewhere,
//! another user's id, an unknown id and a non-UUID id are all 404, decided
//! before the body is read.

use std::sync::Arc;

use alarm_domain::ids::ExceptionPeriodId;
use alarm_domain::model::{ExceptionKind, ExceptionPeriod};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::body::JsonBody;
use crate::dto::{self, ExceptionPeriodInput, ExceptionPeriodList, ExceptionPeriodView};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// A new period.
#[derive(ApiResponse)]
pub(crate) enum Created {
    /// The period; the caller's alarms are re-planned around it.
    #[oai(status = 201)]
    Created(
        Json<ExceptionPeriodView>,
        #[oai(header = "Location")] String,
    ),
}

/// One period.
#[derive(ApiResponse)]
pub(crate) enum PeriodResponse {
    /// The period.
    #[oai(status = 200)]
    Ok(Json<ExceptionPeriodView>),
}

/// The caller's periods.
#[derive(ApiResponse)]
pub(crate) enum Listed {
    /// The periods that match the filters, by start date.
    #[oai(status = 200)]
    Ok(Json<ExceptionPeriodList>),
}

/// Deleted.
#[derive(ApiResponse)]
pub(crate) enum Deleted {
    /// The period is gone; the alarms it silenced ring again.
    #[oai(status = 204)]
    Done,
}

pub(crate) struct ExceptionPeriodsApi;

/// A path id that is not a UUID v7 names nobody's period: 404.
fn period_id(raw: &str) -> Result<ExceptionPeriodId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// A query filter that does not parse is the request's fault: 400 naming it.
fn filter<T>(
    raw: Option<&str>,
    parse: impl Fn(&str) -> Result<T, alarm_domain::ValidationError>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    raw.map(|text| {
        parse(text)
            .map_err(|e| ApiError::from(Problem::invalid(name, e.message()).with_status(400)))
    })
    .transpose()
}

#[OpenApi(prefix_path = "/api/v1/exception-periods", tag = "ApiTags::Calendar")]
impl ExceptionPeriodsApi {
    /// Add an exception period.
    ///
    /// The caller's alarms stay silent from `start` to `end` (inclusive) in
    /// each alarm's own time zone; their previews say so, naming the period.
    /// At most 100 periods per user, each at most 366 days long.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        body: JsonBody<ExceptionPeriodInput>,
    ) -> Result<Created, ApiError> {
        let input = body.into_inner()?;
        let (kind, start, end) = input.to_domain()?;
        let period = state
            .calendar
            .create_exception(&auth.0.actor(), &input.name, kind, start, end)
            .await?;
        let location = state.location(&format!("exception-periods/{}", period.id()));
        Ok(Created::Created(
            Json(ExceptionPeriodView::new(&period)),
            location,
        ))
    }

    /// List the caller's exception periods.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Only the periods that include this day (`YYYY-MM-DD`).
        active_on: Query<Option<String>>,
        /// Only periods of this kind.
        #[oai(name = "type")]
        kind: Query<Option<String>>,
    ) -> Result<Listed, ApiError> {
        let day = filter(
            active_on.0.as_deref(),
            |t| dto::date("active_on", t),
            "active_on",
        )?;
        let kind = filter(kind.0.as_deref(), ExceptionKind::parse, "type")?;
        let mut periods: Vec<ExceptionPeriod> = state
            .calendar
            .list_exceptions(&auth.0.actor())
            .await?
            .into_iter()
            .filter(|p| day.is_none_or(|d| p.contains(d)))
            .filter(|p| kind.is_none_or(|k| p.kind() == k))
            .collect();
        periods.sort_by_key(|p| (p.start(), p.id()));
        Ok(Listed::Ok(Json(ExceptionPeriodList {
            items: periods.iter().map(ExceptionPeriodView::new).collect(),
        })))
    }

    /// Get an exception period.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Exception period id.
        id: Path<String>,
    ) -> Result<PeriodResponse, ApiError> {
        let id = period_id(&id.0)?;
        let period = state.calendar.get_exception(&auth.0.actor(), id).await?;
        Ok(PeriodResponse::Ok(Json(ExceptionPeriodView::new(&period))))
    }

    /// Replace an exception period.
    #[oai(path = "/:id", method = "put")]
    async fn replace(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Exception period id.
        id: Path<String>,
        body: JsonBody<ExceptionPeriodInput>,
    ) -> Result<PeriodResponse, ApiError> {
        // Ownership before the body: another user's id is 404 whatever it holds.
        let id = period_id(&id.0)?;
        let actor = auth.0.actor();
        state.calendar.get_exception(&actor, id).await?;
        let input = body.into_inner()?;
        let (kind, start, end) = input.to_domain()?;
        let period = state
            .calendar
            .update_exception(&actor, id, &input.name, kind, start, end)
            .await?;
        Ok(PeriodResponse::Ok(Json(ExceptionPeriodView::new(&period))))
    }

    /// Delete an exception period.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Exception period id.
        id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        let id = period_id(&id.0)?;
        state.calendar.delete_exception(&auth.0.actor(), id).await?;
        Ok(Deleted::Done)
    }
}
