//! `/api/v1/routines` and `/api/v1/alarms/{id}/routines`: the caller's routines (named, ordered actions for a home-automation receiver) and which of them start when an alarm rings.
//!
//! When an alarm rings (its `fire`, not a snooze's end or an escalation),
//! each attached active routine starts: the fire's outcome records a
//! `routine_started` event per routine in the alarm's history, carrying the
//! routine as it was. As elsewhere, another user's id, an unknown id and a
//! non-UUID id are all 404, decided before the body is read.

use std::sync::Arc;

use alarm_domain::ids::{AlarmId, RoutineId};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use crate::auth::BearerAuth;
use crate::body::JsonBody;
use crate::dto::{AlarmRoutinesInput, RoutineInput, RoutineList, RoutineView};
use crate::problem::ApiError;
use crate::state::AppState;

/// A new routine.
#[derive(ApiResponse)]
pub(crate) enum Created {
    /// The routine.
    #[oai(status = 201)]
    Created(Json<RoutineView>, #[oai(header = "Location")] String),
}

/// One routine.
#[derive(ApiResponse)]
pub(crate) enum RoutineResponse {
    /// The routine.
    #[oai(status = 200)]
    Ok(Json<RoutineView>),
}

/// Routines.
#[derive(ApiResponse)]
pub(crate) enum Listed {
    /// The routines.
    #[oai(status = 200)]
    Ok(Json<RoutineList>),
}

/// Deleted.
#[derive(ApiResponse)]
pub(crate) enum Deleted {
    /// The routine is gone and detached from every alarm.
    #[oai(status = 204)]
    Done,
}

/// A path id that is not a UUID v7 names nobody's routine: 404.
fn routine_id(raw: &str) -> Result<RoutineId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

pub(crate) struct RoutinesApi;

#[OpenApi(prefix_path = "/api/v1/routines", tag = "ApiTags::Routines")]
impl RoutinesApi {
    /// Create a routine.
    ///
    /// At most 100 routines per user. Attach it to alarms with
    /// `PUT /api/v1/alarms/{id}/routines`.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        body: JsonBody<RoutineInput>,
    ) -> Result<Created, ApiError> {
        let (name, actions, active) = body.into_inner()?.to_domain()?;
        let routine = state
            .routines
            .create(&auth.0.actor(), name, actions, active)
            .await?;
        let location = state.location(&format!("routines/{}", routine.id()));
        Ok(Created::Created(Json(RoutineView::new(&routine)), location))
    }

    /// List the caller's routines, by id.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
    ) -> Result<Listed, ApiError> {
        let routines = state.routines.list_all(&auth.0.actor()).await?;
        Ok(Listed::Ok(Json(RoutineList {
            items: routines.iter().map(RoutineView::new).collect(),
        })))
    }

    /// Get a routine.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Routine id.
        id: Path<String>,
    ) -> Result<RoutineResponse, ApiError> {
        let id = routine_id(&id.0)?;
        let routine = state.routines.get(&auth.0.actor(), id).await?;
        Ok(RoutineResponse::Ok(Json(RoutineView::new(&routine))))
    }

    /// Replace a routine.
    ///
    /// Alarms it is attached to start the new actions from their next ring.
    #[oai(path = "/:id", method = "put")]
    async fn replace(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Routine id.
        id: Path<String>,
        body: JsonBody<RoutineInput>,
    ) -> Result<RoutineResponse, ApiError> {
        // Ownership before the body: another user's id is 404 whatever it holds.
        let id = routine_id(&id.0)?;
        let actor = auth.0.actor();
        state.routines.get(&actor, id).await?;
        let (name, actions, active) = body.into_inner()?.to_domain()?;
        let routine = state
            .routines
            .update(&actor, id, name, actions, active)
            .await?;
        Ok(RoutineResponse::Ok(Json(RoutineView::new(&routine))))
    }

    /// Delete a routine.
    ///
    /// It is detached from every alarm in the same commit.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Routine id.
        id: Path<String>,
    ) -> Result<Deleted, ApiError> {
        let id = routine_id(&id.0)?;
        state.routines.delete(&auth.0.actor(), id).await?;
        Ok(Deleted::Done)
    }
}

pub(crate) struct AlarmRoutinesApi;

#[OpenApi(prefix_path = "/api/v1/alarms", tag = "ApiTags::Routines")]
impl AlarmRoutinesApi {
    /// The routines attached to an alarm, in the order they start.
    #[oai(path = "/:id/routines", method = "get")]
    async fn get(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Alarm id.
        id: Path<String>,
    ) -> Result<Listed, ApiError> {
        let alarm: AlarmId = id.0.parse().map_err(|_| ApiError::not_found())?;
        let routines = state.routines.attached(&auth.0.actor(), alarm).await?;
        Ok(Listed::Ok(Json(RoutineList {
            items: routines.iter().map(RoutineView::new).collect(),
        })))
    }

    /// Attach routines to an alarm, replacing those attached.
    ///
    /// Each listed routine (at most 10, the caller's own, none twice)
    /// starts, in this order, whenever the alarm rings and the routine is
    /// active: the alarm's history records a `routine_started` event per
    /// routine, with the routine's actions as they were. `[]` detaches all.
    #[oai(path = "/:id/routines", method = "put")]
    async fn replace(
        &self,
        auth: BearerAuth,
        state: Data<&Arc<AppState>>,
        /// Alarm id.
        id: Path<String>,
        body: JsonBody<AlarmRoutinesInput>,
    ) -> Result<Listed, ApiError> {
        let alarm: AlarmId = id.0.parse().map_err(|_| ApiError::not_found())?;
        let actor = auth.0.actor();
        // Ownership before the body: another user's alarm is 404 whatever it holds.
        state.routines.attached(&actor, alarm).await?;
        let ids = body.into_inner()?.to_domain()?;
        let routines = state.routines.attach(&actor, alarm, ids).await?;
        Ok(Listed::Ok(Json(RoutineList {
            items: routines.iter().map(RoutineView::new).collect(),
        })))
    }
}
