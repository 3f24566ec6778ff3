//! The fire-time re-check: whether a due trigger rings, and the plan that keeps an alarm's next fire in place whatever was decided.

use jiff::{SignedDuration, Timestamp};

use super::calendar::next_fire;
use crate::model::Alarm;
use crate::ports::TriggerPlan;
use crate::schedule::{Calendar, OccurrenceQuery, SuppressionReason};
use crate::trigger::{Trigger, TriggerKind};

/// Why a due trigger does not ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The alarm was deleted.
    AlarmGone,
    /// The alarm is disabled.
    AlarmDisabled,
    /// The alarm was edited after this `fire` trigger was computed.
    AlarmChanged,
    /// The occurrence no longer exists at this instant (a holiday delay or
    /// a tz-database change moved it).
    OccurrenceMoved,
}

/// What the runner should do with a due trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireDecision {
    /// Ring it.
    Ring,
    /// Do not ring; nothing to tell the user.
    Skip(SkipReason),
    /// The occurrence is suppressed now (a holiday or exception period added
    /// after scheduling): record it, do not ring.
    Suppressed(SuppressionReason),
}

/// Decides whether `trigger` rings, given the alarm as stored now (`None`
/// when deleted) and the owner's calendar now.
///
/// A `fire` trigger rings only if the alarm has the trigger's version and
/// the occurrence (same instant and nominal wall time) still exists
/// unsuppressed. A follow-up (snooze, escalation) belongs to an occurrence
/// that already rang, so it rings as long as the alarm exists and is
/// enabled; an edit (a new name, a new sound) must not swallow a snoozed
/// wake-up. When a follow-up is skipped the runner ends the occurrence's
/// ringing record.
///
/// Whatever the decision, for a `fire` trigger of a live alarm the runner
/// commits [`next_fire_plan`] with the outcome, so the alarm always keeps
/// its next fire. That is what makes changes that do not reschedule
/// (holiday writes, tz-database updates) safe.
pub fn decide_fire(trigger: &Trigger, alarm: Option<&Alarm>, calendar: &Calendar) -> FireDecision {
    let Some(alarm) = alarm.filter(|a| a.owner() == trigger.owner) else {
        return FireDecision::Skip(SkipReason::AlarmGone);
    };
    if !alarm.enabled() {
        return FireDecision::Skip(SkipReason::AlarmDisabled);
    }
    if trigger.kind != TriggerKind::Fire {
        return FireDecision::Ring;
    }
    if alarm.version() != trigger.alarm_version {
        return FireDecision::Skip(SkipReason::AlarmChanged);
    }
    let query = OccurrenceQuery {
        after: trigger.occurrence.at - SignedDuration::from_secs(1),
        limit: 8,
        include_suppressed: true,
    };
    // Several occurrences can share an instant only if one is suppressed
    // and another rings (a delayed one landing on a suppressed one), so
    // match the nominal wall time as well.
    let preview = alarm.occurrences(calendar, &query);
    let found = preview
        .items
        .iter()
        .take_while(|o| o.fire_at() <= trigger.occurrence.at)
        .find(|o| o.fire_at() == trigger.occurrence.at && o.local() == trigger.occurrence.local);
    match found {
        Some(o) => match o.suppressed() {
            None => FireDecision::Ring,
            Some(reason) => FireDecision::Suppressed(reason.clone()),
        },
        None => FireDecision::Skip(SkipReason::OccurrenceMoved),
    }
}

/// The plan that gives `alarm` its next fire after `now` under `calendar`
/// (none when disabled or ended), stamped with the alarm's version so it
/// never overwrites a fresher plan.
pub fn next_fire_plan(alarm: &Alarm, calendar: &Calendar, now: Timestamp) -> TriggerPlan {
    TriggerPlan::Reschedule {
        alarm: alarm.id(),
        version: alarm.version(),
        next: next_fire(alarm, calendar, now),
    }
}
