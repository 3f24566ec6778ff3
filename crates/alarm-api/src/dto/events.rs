//! Alarm history shapes: one event and a page of events.

use alarm_domain::model::{AlarmEvent, AlarmEventKind};
use poem_openapi::Object;
use serde::Deserialize;

/// A routine that started when the alarm rang, as it was then.
#[derive(Debug, Clone, Object, Deserialize)]
pub struct StartedRoutineView {
    /// The routine's id.
    pub routine_id: String,
    /// Its name.
    pub name: String,
    /// Its actions, in order.
    pub actions: Vec<String>,
}

/// Something that happened to an alarm.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventView {
    /// Id.
    pub id: String,
    /// `created`, `updated`, `enabled`, `disabled`, `triggered`, `snoozed`,
    /// `dismissed`, `escalated`, `missed`, `expired`, `deleted`,
    /// `routine_started`.
    pub kind: String,
    /// When (UTC).
    pub at: String,
    /// The occurrence it concerns (UTC), if any.
    pub occurrence: Option<String>,
    /// Extra detail (for `routine_started`, the routine as JSON text).
    pub detail: Option<String>,
    /// For `routine_started`: the routine that started.
    pub routine: Option<StartedRoutineView>,
}

impl EventView {
    pub(crate) fn new(e: &AlarmEvent) -> Self {
        Self {
            id: e.id.to_string(),
            kind: e.kind.as_str().to_owned(),
            at: e.at.to_string(),
            occurrence: e.occurrence.map(|t| t.to_string()),
            detail: e.detail.clone(),
            routine: (e.kind == AlarmEventKind::RoutineStarted)
                .then(|| serde_json::from_str(e.detail.as_deref()?).ok())
                .flatten(),
        }
    }
}

/// A page of events.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventPage {
    /// Oldest first.
    pub items: Vec<EventView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
