//! `/api/v1/exception-periods`, `/api/v1/holidays` and `/api/v1/holiday-preferences`: the caller's days off (vacation, travel, sick leave…), the holiday calendar (built in, plus administrators' custom holidays) and what the caller's alarms do on holidays.
//!
//! Every change re-plans the caller's alarms in the same commit, so the
//! next fire reported by `GET /alarms/{id}` moves at once. As elsewhere,
//! another user's id, an unknown id and a non-UUID id are all 404, decided
//! before the body is read.

use std::sync::Arc;

use alarm_domain::ids::{ExceptionPeriodId, HolidayId};
use alarm_domain::model::{Country, ExceptionKind, ExceptionPeriod, Locale, StateCode};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::body::JsonBody;
use crate::dto::{
    self, ExceptionPeriodInput, ExceptionPeriodList, ExceptionPeriodView, HolidayInput,
    HolidayList, HolidayPreferencesDto, HolidayView, StoredHolidayView,
};
use crate::lenient::{self, Lenient};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;
use alarm_domain::ports::HolidayPreferences;

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

/// The caller's holiday preferences.
#[derive(ApiResponse)]
pub(crate) enum Preferences {
    /// The preferences in force (`fire` on every holiday until set).
    #[oai(status = 200)]
    Ok(Json<HolidayPreferencesDto>),
}

/// Reset.
#[derive(ApiResponse)]
pub(crate) enum Reset {
    /// Back to `fire` on every holiday, with no overrides.
    #[oai(status = 204)]
    Done,
}

pub(crate) struct HolidayPreferencesApi;

#[OpenApi(prefix_path = "/api/v1/holiday-preferences", tag = "ApiTags::Calendar")]
impl HolidayPreferencesApi {
    /// Get the caller's holiday preferences.
    #[oai(path = "/", method = "get")]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
    ) -> Result<Preferences, ApiError> {
        let prefs = state.calendar.preferences(&auth.0.actor()).await?;
        Ok(Preferences::Ok(Json(HolidayPreferencesDto::new(&prefs))))
    }

    /// Replace the caller's holiday preferences.
    ///
    /// `default` applies to every holiday of the caller's country and state
    /// without an override: `fire`, `skip`, or `delay` by 1..=1440 minutes.
    /// The caller's alarms are re-planned at once, so their previews and
    /// next fires reflect the change in the answer's wake.
    #[oai(path = "/", method = "put")]
    async fn replace(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        body: JsonBody<HolidayPreferencesDto>,
    ) -> Result<Preferences, ApiError> {
        let prefs = body.into_inner()?.to_domain()?;
        let actor = auth.0.actor();
        state.calendar.set_preferences(&actor, prefs).await?;
        let stored = state.calendar.preferences(&actor).await?;
        Ok(Preferences::Ok(Json(HolidayPreferencesDto::new(&stored))))
    }

    /// Reset the caller's holiday preferences.
    #[oai(path = "/", method = "delete")]
    async fn reset(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
    ) -> Result<Reset, ApiError> {
        state
            .calendar
            .set_preferences(&auth.0.actor(), HolidayPreferences::default())
            .await?;
        Ok(Reset::Done)
    }
}

/// The holidays of a year.
#[derive(ApiResponse)]
pub(crate) enum Holidays {
    /// Built-in and custom holidays, by date.
    #[oai(status = 200)]
    Ok(Json<HolidayList>),
}

/// A new custom holiday.
#[derive(ApiResponse)]
pub(crate) enum HolidayCreated {
    /// The holiday.
    #[oai(status = 201)]
    Created(Json<StoredHolidayView>, #[oai(header = "Location")] String),
}

/// A custom holiday.
#[derive(ApiResponse)]
pub(crate) enum HolidayResponse {
    /// The holiday as stored now.
    #[oai(status = 200)]
    Ok(Json<StoredHolidayView>),
}

pub(crate) struct HolidaysApi;

/// A path id that names no stored holiday (not a UUID v7): 404.
fn holiday_id(raw: &str) -> Result<HolidayId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

#[OpenApi(prefix_path = "/api/v1/holidays", tag = "ApiTags::Calendar")]
impl HolidaysApi {
    /// List the holidays of a year.
    ///
    /// The built-in calendar (Brazil: national holidays, the optional
    /// points Carnival and Corpus Christi, and the state holidays of SP, RJ
    /// and MG, computed for any year from 1900 to 2200) plus the custom
    /// holidays administrators added. `country` and `state` default to the
    /// caller's, `year` to the current one (UTC).
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// The year, 1900..=2200.
        year: Query<Option<Lenient<i32>>>,
        /// ISO 3166-1 alpha-2 country (default: the caller's).
        country: Query<Option<String>>,
        /// State code (default: the caller's, when `country` is theirs too).
        #[oai(name = "state")]
        region: Query<Option<String>>,
    ) -> Result<Holidays, ApiError> {
        let bad = |field: &str, e: alarm_domain::ValidationError| {
            ApiError::from(Problem::invalid(field, e.message()).with_status(400))
        };
        let year = match lenient::optional(year.0, "year")? {
            Some(y) => y,
            None => i32::from(
                state
                    .ports
                    .clock
                    .now()
                    .to_zoned(alarm_domain::jiff::tz::TimeZone::UTC)
                    .year(),
            ),
        };
        let me = state.users.me(&auth.0.actor()).await?;
        let asked = country
            .0
            .as_deref()
            .map(Country::parse)
            .transpose()
            .map_err(|e| bad("country", e))?;
        let mine = me.locale();
        let Some(country) = asked.or(mine.map(Locale::country)) else {
            return Err(
                Problem::invalid("country", "give a country (your profile has none)")
                    .with_status(400)
                    .into(),
            );
        };
        let region = match region.0.as_deref() {
            Some(s) => Some(StateCode::parse(s).map_err(|e| bad("state", e))?),
            None => mine
                .filter(|l| l.country() == country)
                .and_then(|l| l.state().cloned()),
        };
        let days = state
            .calendar
            .holidays_of_year(year, country, region.as_ref())
            .await
            .map_err(|e| match e {
                alarm_domain::services::ServiceError::Invalid(v) => bad("year", v),
                other => other.into(),
            })?;
        Ok(Holidays::Ok(Json(HolidayList {
            year,
            country: country.as_str().to_owned(),
            state: region.map(|s| s.as_str().to_owned()),
            items: days.iter().map(HolidayView::new).collect(),
        })))
    }

    /// Add a custom holiday (administrators only).
    ///
    /// Everyone in its country (and state) gets it: their holiday
    /// preferences apply to it, judged when each alarm fires.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        body: JsonBody<HolidayInput>,
    ) -> Result<HolidayCreated, ApiError> {
        let actor = auth.0.actor();
        admin_only(&actor)?;
        let input = body.into_inner()?;
        let (date, country, region) = input.to_domain()?;
        let holiday = state
            .calendar
            .create_holiday(&actor, &input.name, date, country, region, input.optional)
            .await?;
        let location = state.location(&format!("holidays/{}", holiday.id()));
        Ok(HolidayCreated::Created(
            Json(StoredHolidayView::new(&holiday)),
            location,
        ))
    }

    /// Replace a custom holiday (administrators only).
    #[oai(path = "/:id", method = "put")]
    async fn replace(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Holiday id.
        id: Path<String>,
        body: JsonBody<HolidayInput>,
    ) -> Result<HolidayResponse, ApiError> {
        let actor = auth.0.actor();
        admin_only(&actor)?;
        let id = holiday_id(&id.0)?;
        // 404 before the body, as everywhere.
        state.calendar.get_holiday(id).await?;
        let input = body.into_inner()?;
        let (date, country, region) = input.to_domain()?;
        let holiday = state
            .calendar
            .update_holiday(
                &actor,
                id,
                &input.name,
                date,
                country,
                region,
                input.optional,
            )
            .await?;
        Ok(HolidayResponse::Ok(Json(StoredHolidayView::new(&holiday))))
    }

    /// Delete a custom holiday (administrators only).
    ///
    /// Users' per-holiday preferences for it go with it.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Holiday id.
        id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        let actor = auth.0.actor();
        admin_only(&actor)?;
        let id = holiday_id(&id.0)?;
        state.calendar.delete_holiday(&actor, id).await?;
        Ok(Deleted::Done)
    }
}

/// Holiday writes are for administrators: 403 before anything else is read.
fn admin_only(actor: &alarm_domain::services::Actor) -> Result<(), ApiError> {
    if actor.role == alarm_domain::model::Role::Admin {
        Ok(())
    } else {
        Err(alarm_domain::services::ServiceError::Forbidden.into())
    }
}
