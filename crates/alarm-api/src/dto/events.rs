//! Alarm history shapes: one event and a page of events.

use alarm_domain::model::AlarmEvent;
use poem_openapi::Object;

/// Something that happened to an alarm.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EventView {
    /// Id.
    pub id: String,
    /// `created`, `updated`, `enabled`, `disabled`, `triggered`, `snoozed`,
    /// `dismissed`, `escalated`, `missed`, `expired`, `deleted`.
    pub kind: String,
    /// When (UTC).
    pub at: String,
    /// The occurrence it concerns (UTC), if any.
    pub occurrence: Option<String>,
    /// Extra detail.
    pub detail: Option<String>,
}

impl EventView {
    pub(crate) fn new(e: &AlarmEvent) -> Self {
        Self {
            id: e.id.to_string(),
            kind: e.kind.as_str().to_owned(),
            at: e.at.to_string(),
            occurrence: e.occurrence.map(|t| t.to_string()),
            detail: e.detail.clone(),
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
