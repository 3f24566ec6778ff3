//! Which routines start when an alarm rings, and what their `routine_started` events record.

use jiff::Timestamp;

use crate::model::{Alarm, AlarmEvent, AlarmEventKind, Routine};
use crate::ports::{FireOutcome, IdSource};
use crate::sending::{EventChange, event_data};
use crate::trigger::{RingingChange, Trigger, TriggerKind};

/// Whether `outcome` (what [`super::judge`] answered for `trigger`) starts
/// the alarm's routines: a `fire` that rang. Snooze ends and escalations
/// re-ring an occurrence whose routines already started, and a missed,
/// skipped or suppressed occurrence starts nothing.
#[must_use]
pub fn starts_routines(trigger: &Trigger, outcome: &FireOutcome) -> bool {
    trigger.kind == TriggerKind::Fire && matches!(outcome.ringing, RingingChange::Upsert(_))
}

/// Adds one `routine_started` event per active routine of `routines` (the
/// alarm's attached routines, in their order) to `outcome` when it
/// [`starts_routines`]; inactive routines are left out. Each event names
/// the occurrence that rang and records the routine as it was at that
/// moment ([`routine_detail`]), so an edit afterwards does not rewrite
/// history.
pub fn start_routines(
    trigger: &Trigger,
    alarm: &Alarm,
    outcome: &mut FireOutcome,
    routines: &[Routine],
    now: Timestamp,
    ids: &dyn IdSource,
) {
    if !starts_routines(trigger, outcome) {
        return;
    }
    let RingingChange::Upsert(rang) = &outcome.ringing else {
        return;
    };
    let occurrence = rang.occurrence.at;
    for routine in routines.iter().filter(|r| r.active()) {
        outcome.events.push(AlarmEvent {
            id: crate::ids::EventId::from_uuid(ids.uuid_at(now))
                .unwrap_or_else(|_| crate::ids::EventId::generate()),
            alarm: trigger.alarm,
            owner: trigger.owner,
            kind: AlarmEventKind::RoutineStarted,
            at: now,
            occurrence: Some(occurrence),
            detail: Some(routine_detail(routine)),
            data: Some(event_data(
                alarm,
                Some(occurrence),
                None,
                EventChange::Routine(routine),
            )),
        });
    }
}

/// The detail of a `routine_started` event: a JSON object with the
/// routine's `routine_id`, `name` and ordered `actions`.
#[must_use]
pub fn routine_detail(routine: &Routine) -> String {
    crate::sending::routine_json(routine).to_string()
}
