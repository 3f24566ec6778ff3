//! The fire-time re-check: a trigger rings only if its alarm still exists at the same version and the occurrence is not suppressed.

use jiff::SignedDuration;

use crate::model::Alarm;
use crate::schedule::{Calendar, OccurrenceQuery, SuppressionReason};
use crate::trigger::{Trigger, TriggerKind};

/// What the runner should do with a due trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireDecision {
    /// Ring it.
    Ring,
    /// The alarm was deleted or changed since the trigger was computed:
    /// drop the trigger silently (the change already rescheduled).
    Stale,
    /// The occurrence is suppressed now (a holiday or exception period added
    /// after scheduling): record it, do not ring.
    Suppressed(SuppressionReason),
}

/// Decides whether `trigger` rings, given the alarm as stored now (`None`
/// when deleted) and the owner's calendar now.
pub fn decide_fire(trigger: &Trigger, alarm: Option<&Alarm>, calendar: &Calendar) -> FireDecision {
    let Some(alarm) = alarm else {
        return FireDecision::Stale;
    };
    if alarm.version() != trigger.alarm_version || alarm.owner() != trigger.owner {
        return FireDecision::Stale;
    }
    if trigger.kind != TriggerKind::Fire {
        // Snoozes and escalations follow an occurrence that already rang.
        return FireDecision::Ring;
    }
    let query = OccurrenceQuery {
        after: trigger.occurrence.at - SignedDuration::from_secs(1),
        limit: 1,
        include_suppressed: true,
    };
    match alarm.occurrences(calendar, &query).items.first() {
        Some(o) if o.fire_at() == trigger.occurrence.at => match o.suppressed() {
            None => FireDecision::Ring,
            Some(reason) => FireDecision::Suppressed(reason.clone()),
        },
        // The occurrence no longer exists at that instant (a delay changed it).
        _ => FireDecision::Stale,
    }
}
