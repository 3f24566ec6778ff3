//! The fire-time re-check: whether a due trigger rings, an alarm's next fire, and the plan that keeps it in place whatever was decided.

use jiff::{SignedDuration, Timestamp};

use crate::model::Alarm;
use crate::ports::TriggerPlan;
use crate::schedule::{Calendar, OccurrenceQuery, SuppressionReason};
use crate::trigger::{OccurrenceRef, Trigger, TriggerKind};

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

/// Whether a due trigger rings, on the alarm and calendar alone; [`judge`]
/// then weighs lateness and the occurrence's ringing record.
///
/// [`judge`]: super::judge
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
/// wake-up. When a follow-up is skipped, [`judge`] ends the occurrence's
/// ringing record.
///
/// Whatever the decision, for a `fire` trigger of a live alarm [`judge`]
/// puts [`next_fire_plan`] in the outcome, so the alarm always keeps its
/// next fire. That is what makes changes that do not reschedule
/// (holiday writes, tz-database updates) safe.
///
/// [`judge`]: super::judge
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

/// The next `fire` trigger of `alarm` after `now` under `calendar`, or
/// `None` when it is disabled or will not ring again.
pub(crate) fn next_fire(alarm: &Alarm, calendar: &Calendar, now: Timestamp) -> Option<Trigger> {
    if !alarm.enabled() {
        return None;
    }
    let query = OccurrenceQuery {
        after: now,
        limit: 1,
        include_suppressed: false,
    };
    let occ = alarm
        .occurrences(calendar, &query)
        .items
        .into_iter()
        .next()?;
    Some(Trigger {
        alarm: alarm.id(),
        owner: alarm.owner(),
        occurrence: OccurrenceRef {
            at: occ.fire_at(),
            local: occ.local(),
        },
        kind: TriggerKind::Fire,
        due_at: occ.fire_at(),
        alarm_version: alarm.version(),
    })
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

/// The plan a fired `trigger` still needs when its alarm was edited while
/// the trigger was being fired: `judged` is the alarm the outcome was
/// decided from, `current` the one stored after the commit.
///
/// The edit could not replace the leased trigger, and the plan committed
/// with the outcome carries `judged`'s version, so the store skipped it;
/// without this plan the alarm would be left with no next fire. Nothing is
/// needed for follow-ups (they plan no fire) or when the version is the
/// same (the committed plan stood).
///
/// A trigger prepared ahead of its instant (`now` before it) had its
/// outcome withdrawn by the store when this plan is applied (it was judged
/// against the older alarm), so the plan starts from `now` and brings the
/// occurrence back if the current alarm still rings then; a trigger fired
/// at or after its instant rang, and the plan starts after it.
pub fn replan_after_edit(
    trigger: &Trigger,
    judged: &Alarm,
    current: &Alarm,
    calendar: &Calendar,
    now: Timestamp,
) -> Option<TriggerPlan> {
    (trigger.kind == TriggerKind::Fire && current.version() != judged.version())
        .then(|| next_fire_plan(current, calendar, trigger.occurrence.at.min(now)))
}
